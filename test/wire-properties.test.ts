import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CODECS } from "../lib/wire/registry.ts";
import type { DecodeResult } from "../lib/wire/result.ts";

// Property tests over every codec in lib/wire/registry.ts: round trips, and hostile input.

function expectTypedResult(result: DecodeResult<unknown>, length: number): void {
  expect(typeof result.ok).toBe("boolean");
  if (!result.ok) {
    expect(Number.isInteger(result.error.offset)).toBe(true);
    expect(result.error.offset).toBeGreaterThanOrEqual(0);
    expect(result.error.offset).toBeLessThanOrEqual(length);
    expect(result.error.reason.length).toBeGreaterThan(0);
    // An "internal decoder error" means an exception escaped a bounds check: a bug.
    expect(result.error.reason).not.toMatch(/internal decoder error/);
  }
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("append" as const), extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({
    kind: fc.constant("set" as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff),
  }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(bytes: Uint8Array, mutations: Mutation[]): Uint8Array {
  let out = bytes.slice();
  for (const m of mutations) {
    if (out.length === 0) break;
    if (m.kind === "flip") out[m.at % out.length]! ^= m.xor;
    else if (m.kind === "set") out[m.at % out.length] = m.value;
    else if (m.kind === "truncate") out = out.slice(0, m.at % out.length);
    else {
      const next = new Uint8Array(out.length + m.extra.length);
      next.set(out);
      next.set(m.extra, out.length);
      out = next;
    }
  }
  return out;
}

describe.each(CODECS.map((c) => [c.name, c] as const))("codec %s", (_name, codec) => {
  it("round-trips every valid value (decode(encode(v)) matches v, re-encoding is byte-identical)", () => {
    fc.assert(
      fc.property(codec.arbitrary, (value) => {
        const bytes = codec.encode(value);
        const decoded = codec.decode(bytes);
        if (!decoded.ok) throw new Error(`decode failed: ${decoded.error.reason} at ${decoded.error.offset}`);
        expect(decoded.value).toMatchObject(value as object);
        expect(Buffer.from(codec.encode(decoded.value)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("never throws on random bytes; failures are typed errors", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expectTypedResult(codec.decode(bytes), bytes.length);
      }),
      { numRuns: 1000 },
    );
  });

  it("never throws on mutated valid encodings (re-authenticated where the format is signed)", () => {
    fc.assert(
      fc.property(
        codec.arbitrary,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (v, ms, reseal) => {
          let bytes = mutate(codec.encode(v), ms);
          if (reseal && codec.reseal) bytes = codec.reseal(bytes);
          expectTypedResult(codec.decode(bytes), bytes.length);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("fuzz reaches the body parsers of signed formats", () => {
  it("resealed mutations of VRLS and NAT-LB messages fail for structural reasons, not only bad HMAC", () => {
    for (const name of ["vrls", "natlb-control"]) {
      const codec = CODECS.find((c) => c.name === name)!;
      const reasons = new Set<string>();
      fc.assert(
        fc.property(codec.arbitrary, fc.array(mutation, { minLength: 1, maxLength: 3 }), (v, ms) => {
          const r = codec.decode(codec.reseal!(mutate(codec.encode(v), ms)));
          if (!r.ok) reasons.add(r.error.reason.replace(/\d+/g, "N"));
        }),
        { numRuns: 2000 },
      );
      expect([...reasons].filter((r) => r !== "bad HMAC").length, name).toBeGreaterThan(5);
    }
  });
});
