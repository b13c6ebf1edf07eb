import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkInput, fuzzDecoder, inputArbitrary, mutate, violations } from "../lib/fuzz/fuzz.ts";
import { toHex } from "../lib/wire/bytes.ts";
import { CODECS, type CodecEntry } from "../lib/wire/registry.ts";
import { fail, ok } from "../lib/wire/result.ts";

// `tandem fuzz` in CI: a short budget per decoder of lib/wire/registry.ts (the million-input
// run is a benchmark: docs/fuzzing.md). A failure prints the seed that reproduces it:
// `tandem fuzz --decoder NAME --count N --seed S`.
const BUDGET = 3000;

describe.each(CODECS.map((c) => [c.name, c] as const))("fuzz %s", (_name, codec) => {
  it(`${BUDGET} hostile inputs: typed results, round trips, acceptance only with a verifying MAC`, () => {
    const stats = fuzzDecoder(codec, { count: BUDGET });
    expect(stats.findings, `seed ${stats.seed}`).toEqual([]);
    expect(violations(stats)).toBe(0);
    expect(stats.inputs).toBe(BUDGET);
    // Every kind of input was generated, and some decoded (the round-trip check ran).
    expect(stats.byKind.random).toBeGreaterThan(0);
    expect(stats.byKind.mutated).toBeGreaterThan(0);
    if (codec.reseal) expect(stats.byKind.resealed).toBeGreaterThan(0);
    expect(stats.accepted).toBeGreaterThan(0);
  });
});

describe("the fuzz oracle", () => {
  const vrls = CODECS.find((c) => c.name === "vrls")!;
  const natlb = CODECS.find((c) => c.name === "natlb-control")!;
  const sample = <T>(a: fc.Arbitrary<T>) => fc.sample(a, { numRuns: 1, seed: 7 })[0]!;

  it("accepts a valid encoding and rejects a mutated one without complaint", () => {
    for (const codec of CODECS) {
      const bytes = codec.encode(sample(codec.arbitrary));
      expect(checkInput(codec, bytes), codec.name).toEqual({ outcome: "accepted" });
      // Truncated to nothing: a typed failure.
      expect(checkInput(codec, new Uint8Array(0)), codec.name).toEqual({ outcome: "rejected" });
    }
  });

  it("flags a decoder that throws, one whose error is untyped, and one reporting an internal error", () => {
    const base = CODECS[0]!;
    const throwing: CodecEntry<unknown> = {
      ...base,
      decode: () => {
        throw new RangeError("offset is out of bounds");
      },
    };
    expect(checkInput(throwing, new Uint8Array([1]))).toMatchObject({ outcome: "exception" });
    const internal: CodecEntry<unknown> = { ...base, decode: () => fail(0, "internal decoder error: boom") };
    expect(checkInput(internal, new Uint8Array([1]))).toMatchObject({ outcome: "exception" });
    const badOffset: CodecEntry<unknown> = { ...base, decode: () => fail(5, "too short") };
    expect(checkInput(badOffset, new Uint8Array([1]))).toMatchObject({ outcome: "untyped" });
  });

  it("flags a decoded value that does not survive re-encoding", () => {
    const ethernet = CODECS.find((c) => c.name === "ethernet")!;
    const frame = ethernet.encode(sample(ethernet.arbitrary));
    const lossy: CodecEntry<unknown> = {
      ...ethernet,
      // Decodes, but the second decode sees different bytes (the source MAC is lost).
      encode: (v) => {
        const b = ethernet.encode(v);
        b[6]! ^= 0xff;
        return b;
      },
    };
    expect(checkInput(lossy, frame)).toMatchObject({ outcome: "round-trip" });
  });

  it("flags a signed format that decodes although its MAC does not verify", () => {
    for (const codec of [vrls, natlb]) {
      const bytes = codec.encode(sample(codec.arbitrary));
      const last = bytes.length - 1;
      bytes[last]! ^= 1;
      // The real decoder rejects it ...
      expect(checkInput(codec, bytes)).toEqual({ outcome: "rejected" });
      // ... a decoder that skipped the HMAC check would be caught by the independent verify.
      const careless: CodecEntry<unknown> = {
        ...codec,
        decode: (b) => {
          const good = codec.decode(codec.reseal!(b));
          return good.ok ? ok(good.value) : fail(0, "x");
        },
      };
      expect(checkInput(careless, bytes)).toMatchObject({ outcome: "unsigned-accepted" });
    }
  });

  it("resealed inputs carry a verifying MAC; mutations change the bytes", () => {
    fc.assert(
      fc.property(inputArbitrary(vrls), (input) => {
        if (input.kind === "resealed" && input.bytes.length >= 40)
          expect(vrls.verify!(input.bytes)).toBe(true);
      }),
      { numRuns: 300 },
    );
    const bytes = vrls.encode(sample(vrls.arbitrary));
    expect(toHex(mutate(bytes, [{ kind: "u16", at: 2, value: 0xffff }]))).not.toBe(toHex(bytes));
    expect(mutate(bytes, [{ kind: "truncate", at: 10 }]).length).toBe(10);
    expect(mutate(bytes, [{ kind: "duplicate", at: 0, n: 8 }]).length).toBe(bytes.length + 8);
  });
});
