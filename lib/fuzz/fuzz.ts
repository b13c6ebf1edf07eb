import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { fromHex, toHex } from "../wire/bytes.ts";
import { CODECS, type CodecEntry } from "../wire/registry.ts";

/**
 * Fuzzing of every decoder in lib/wire/registry.ts (`tandem fuzz`, test/fuzz.test.ts,
 * test/fuzz-corpus.test.ts).
 *
 * Inputs come from fast-check (already the project's property-testing library, so the
 * generators of valid values in the registry are reused as they are; a coverage-guided
 * fuzzer such as jazzer.js would need a native instrumentation toolchain and cannot
 * reuse them). Three kinds of input:
 * - random: raw random bytes, short and long;
 * - mutated: a valid encoding (from the codec's arbitrary) with 1-6 structure-aware
 *   mutations: bit flips, boundary values written over 8/16/32-bit fields, truncation,
 *   over-long tails, inserted, deleted and duplicated ranges, splices of two valid
 *   encodings;
 * - resealed: for signed formats, the same mutations followed by a fresh HMAC (and
 *   checksum), so the input passes authentication and reaches the body parsers.
 *
 * Every input must satisfy the oracle in `checkInput`.
 */

export type InputKind = "random" | "mutated" | "resealed";

export interface FuzzInput {
  kind: InputKind;
  bytes: Uint8Array;
}

export type Verdict =
  | { outcome: "rejected" | "accepted" }
  | { outcome: "exception" | "round-trip" | "unsigned-accepted" | "untyped"; detail: string };

/** Keys a decoder derives from the bytes (lengths, checksums) rather than from the value encoded. */
const DERIVED_KEYS = new Set([
  "checksum",
  "checksumValid",
  "trailerLength",
  "headerLength",
  "totalLength",
  "length",
  "count",
  "dataOffset",
]);

function semantic(value: unknown): unknown {
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map(semantic);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!DERIVED_KEYS.has(k)) out[k] = semantic(v);
  return out;
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * The oracle, for one input:
 * - the decoder returns a typed result (never throws; a failure has an integer offset
 *   within the input, a non-empty reason, and is not an "internal decoder error", which
 *   is how guardDecode reports an exception that escaped a bounds check);
 * - when it decodes: re-encoding the value gives bytes that decode to the same value
 *   (fields derived from the bytes, such as lengths and checksums, excepted);
 * - for a signed format: it decodes only when its MAC verifies (checked by the codec's
 *   own `verify`, independent of the decoder).
 */
export function checkInput(codec: CodecEntry<unknown>, bytes: Uint8Array): Verdict {
  let result: ReturnType<CodecEntry<unknown>["decode"]>;
  try {
    result = codec.decode(bytes);
  } catch (e) {
    return { outcome: "exception", detail: `decode threw ${describe(e)}` };
  }
  if (result === null || typeof result !== "object" || typeof result.ok !== "boolean") {
    return { outcome: "untyped", detail: `decode returned ${String(result)}` };
  }
  if (!result.ok) {
    const { offset, reason } = result.error;
    if (/internal decoder error/.test(reason)) return { outcome: "exception", detail: reason };
    if (
      !Number.isInteger(offset) ||
      offset < 0 ||
      offset > bytes.length ||
      typeof reason !== "string" ||
      !reason
    ) {
      return { outcome: "untyped", detail: `bad error offset ${offset} / reason ${JSON.stringify(reason)}` };
    }
    return { outcome: "rejected" };
  }
  if (codec.verify && !codec.verify(bytes)) {
    return { outcome: "unsigned-accepted", detail: "decoded although its MAC does not verify" };
  }
  let again: Uint8Array;
  try {
    again = codec.encode(result.value);
  } catch (e) {
    return { outcome: "round-trip", detail: `re-encoding the decoded value threw ${describe(e)}` };
  }
  let second: ReturnType<CodecEntry<unknown>["decode"]>;
  try {
    second = codec.decode(again);
  } catch (e) {
    return { outcome: "exception", detail: `decoding the re-encoded value threw ${describe(e)}` };
  }
  if (!second.ok) {
    return {
      outcome: "round-trip",
      detail: `re-encoded value does not decode: ${second.error.reason} at ${second.error.offset}`,
    };
  }
  if (!isDeepStrictEqual(semantic(result.value), semantic(second.value))) {
    return { outcome: "round-trip", detail: "re-encoded value decodes to a different value" };
  }
  return { outcome: "accepted" };
}

// ---------- input generation ----------

const BOUNDARY = [0, 1, 2, 0x7f, 0x80, 0xfe, 0xff] as const;
const BOUNDARY16 = [0, 1, 0x7fff, 0x8000, 0xfffe, 0xffff] as const;

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("byte" as const), at: fc.nat(), value: fc.constantFrom(...BOUNDARY) }),
  fc.record({
    kind: fc.constant("random-byte" as const),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ kind: fc.constant("u16" as const), at: fc.nat(), value: fc.constantFrom(...BOUNDARY16) }),
  fc.record({
    kind: fc.constant("u16-delta" as const),
    at: fc.nat(),
    delta: fc.integer({ min: -8, max: 8 }),
  }),
  fc.record({
    kind: fc.constant("u32" as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("append" as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    extra: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 32 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function splice(a: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length - remove + insert.length);
  out.set(a.subarray(0, at));
  out.set(insert, at);
  out.set(a.subarray(at + remove), at + insert.length);
  return out;
}

export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out: Uint8Array = input.slice();
  for (const m of mutations) {
    if (m.kind === "append") {
      out = splice(out, out.length, 0, m.extra);
      continue;
    }
    if (out.length === 0) continue;
    const at = m.at % out.length;
    switch (m.kind) {
      case "flip":
        out[at]! ^= 1 << m.bit;
        break;
      case "byte":
      case "random-byte":
        out[at] = m.value;
        break;
      case "u16":
        if (at + 1 < out.length) {
          out[at] = m.value >> 8;
          out[at + 1] = m.value & 0xff;
        }
        break;
      case "u16-delta":
        if (at + 1 < out.length) {
          const v = (((out[at]! << 8) | out[at + 1]!) + m.delta) & 0xffff;
          out[at] = v >> 8;
          out[at + 1] = v & 0xff;
        }
        break;
      case "u32":
        if (at + 3 < out.length) new DataView(out.buffer, out.byteOffset).setUint32(at, m.value);
        break;
      case "truncate":
        out = out.slice(0, at);
        break;
      case "insert":
        out = splice(out, at, 0, m.extra);
        break;
      case "delete":
        out = splice(out, at, Math.min(m.n, out.length - at), new Uint8Array(0));
        break;
      case "duplicate":
        out = splice(out, at, 0, out.slice(at, at + m.n));
        break;
    }
  }
  return out;
}

/** The fast-check arbitrary of hostile inputs for one codec. */
export function inputArbitrary(codec: CodecEntry<unknown>): fc.Arbitrary<FuzzInput> {
  const random = fc
    .oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 1600 }))
    .map((bytes) => ({ kind: "random" as const, bytes }));
  const valid = codec.arbitrary.map((v) => codec.encode(v));
  const mutatedBytes = fc
    .tuple(
      valid,
      fc.array(mutation, { minLength: 1, maxLength: 6 }), // a splice with another valid encoding one time in five
      fc.oneof({ arbitrary: fc.constant(null), weight: 4 }, { arbitrary: valid, weight: 1 }),
      fc.nat(),
    )
    .map(([bytes, ms, other, cut]) => {
      // A splice: the head of one valid encoding, the tail of another.
      const base =
        other === null
          ? bytes
          : splice(
              bytes,
              cut % (bytes.length + 1),
              bytes.length - (cut % (bytes.length + 1)),
              other.subarray(cut % (other.length + 1)),
            );
      return mutate(base, ms);
    });
  const mutated = mutatedBytes.map((bytes) => ({ kind: "mutated" as const, bytes }));
  const reseal = codec.reseal;
  if (!reseal) return fc.oneof({ arbitrary: random, weight: 1 }, { arbitrary: mutated, weight: 3 });
  const resealed = mutatedBytes.map((bytes) => ({ kind: "resealed" as const, bytes: reseal(bytes) }));
  return fc.oneof(
    { arbitrary: random, weight: 1 },
    { arbitrary: mutated, weight: 1 },
    { arbitrary: resealed, weight: 2 },
  );
}

// ---------- campaign ----------

export interface Finding {
  decoder: string;
  kind: InputKind;
  outcome: Exclude<Verdict["outcome"], "rejected" | "accepted">;
  detail: string;
  hex: string;
}

export interface DecoderStats {
  decoder: string;
  inputs: number;
  byKind: Record<InputKind, number>;
  accepted: number;
  rejected: number;
  exceptions: number;
  roundTripViolations: number;
  unsignedAccepted: number;
  untyped: number;
  seconds: number;
  inputsPerSecond: number;
  seed: number;
  findings: Finding[];
}

export interface CampaignOptions {
  /** Inputs per decoder (default 100,000). */
  count?: number;
  /** Time budget per decoder in seconds; the decoder stops at whichever comes first. */
  seconds?: number;
  seed?: number;
  /** Findings kept (and written to the corpus) per decoder. */
  maxFindings?: number;
}

export function decoderNames(): string[] {
  return CODECS.map((c) => c.name);
}

export function findCodec(name: string): CodecEntry<unknown> {
  const codec = CODECS.find((c) => c.name === name);
  if (!codec)
    throw new Error(`--decoder: unknown decoder "${name}"; known: ${decoderNames().join(", ")}, all`);
  return codec;
}

export function fuzzDecoder(codec: CodecEntry<unknown>, options: CampaignOptions = {}): DecoderStats {
  const count = options.count ?? 100_000;
  const seed = options.seed ?? (Date.now() ^ (Math.random() * 0x100000000)) >>> 0;
  const maxFindings = options.maxFindings ?? 20;
  const stats: DecoderStats = {
    decoder: codec.name,
    inputs: 0,
    byKind: { random: 0, mutated: 0, resealed: 0 },
    accepted: 0,
    rejected: 0,
    exceptions: 0,
    roundTripViolations: 0,
    unsignedAccepted: 0,
    untyped: 0,
    seconds: 0,
    inputsPerSecond: 0,
    seed,
    findings: [],
  };
  const started = process.hrtime.bigint();
  // The property never fails: every verdict is counted, so one run reports all defects
  // (fc.assert would stop, and shrink, at the first one).
  fc.check(
    fc.property(inputArbitrary(codec), (input) => {
      stats.inputs++;
      stats.byKind[input.kind]++;
      const verdict = checkInput(codec, input.bytes);
      switch (verdict.outcome) {
        case "accepted":
          stats.accepted++;
          return true;
        case "rejected":
          stats.rejected++;
          return true;
        case "exception":
          stats.exceptions++;
          break;
        case "round-trip":
          stats.roundTripViolations++;
          break;
        case "unsigned-accepted":
          stats.unsignedAccepted++;
          break;
        case "untyped":
          stats.untyped++;
          break;
      }
      if (stats.findings.length < maxFindings) {
        stats.findings.push({
          decoder: codec.name,
          kind: input.kind,
          outcome: verdict.outcome,
          detail: verdict.detail,
          hex: toHex(input.bytes),
        });
      }
      return true;
    }),
    {
      numRuns: count,
      seed,
      ...(options.seconds !== undefined
        ? { interruptAfterTimeLimit: options.seconds * 1000, markInterruptAsFailure: false }
        : {}),
    },
  );
  stats.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  stats.inputsPerSecond = Math.round(stats.inputs / stats.seconds);
  return stats;
}

export function violations(s: DecoderStats): number {
  return s.exceptions + s.roundTripViolations + s.unsignedAccepted + s.untyped;
}

// ---------- corpus ----------

/** One file per crashing input in test/fuzz-corpus/, replayed by test/fuzz-corpus.test.ts. */
export interface CorpusEntry {
  decoder: string;
  /** What went wrong when the input was found. */
  found: string;
  hex: string;
}

export function writeCorpus(dir: string, findings: readonly Finding[]): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const f of findings) {
    const id = createHash("sha256").update(f.decoder).update(f.hex).digest("hex").slice(0, 16);
    const file = join(dir, `${f.decoder}-${id}.json`);
    const entry: CorpusEntry = {
      decoder: f.decoder,
      found: `${f.outcome} (${f.kind}): ${f.detail}`,
      hex: f.hex,
    };
    writeFileSync(file, `${JSON.stringify(entry, null, 2)}\n`);
    written.push(file);
  }
  return written;
}

export function readCorpus(dir: string): { file: string; entry: CorpusEntry; bytes: Uint8Array }[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".json"));
  } catch {
    return [];
  }
  return names.sort().map((name) => {
    const file = join(dir, name);
    const entry = JSON.parse(readFileSync(file, "utf8")) as CorpusEntry;
    if (typeof entry.decoder !== "string") throw new Error(`${file}: field "decoder" missing`);
    if (typeof entry.hex !== "string" || !/^([0-9a-f]{2})*$/i.test(entry.hex)) {
      throw new Error(`${file}: field "hex" is not an even-length hex string: ${JSON.stringify(entry.hex)}`);
    }
    return { file, entry, bytes: fromHex(entry.hex) };
  });
}

// ---------- report ----------

export function formatTable(rows: readonly DecoderStats[]): string {
  const header = [
    "decoder",
    "inputs",
    "random",
    "mutated",
    "resealed",
    "accepted",
    "exceptions",
    "round-trip",
    "unsigned-ok",
    "inputs/s",
  ];
  const lines = rows.map((s) => [
    s.decoder,
    String(s.inputs),
    String(s.byKind.random),
    String(s.byKind.mutated),
    String(s.byKind.resealed),
    String(s.accepted),
    String(s.exceptions + s.untyped),
    String(s.roundTripViolations),
    String(s.unsignedAccepted),
    String(s.inputsPerSecond),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [fmt(header), ...lines.map(fmt)].join("\n");
}

export function jsonSummary(rows: readonly DecoderStats[]): Record<string, unknown> {
  return {
    fuzz: Object.fromEntries(
      rows.map((s) => [
        s.decoder,
        {
          inputs: s.inputs,
          by_kind: s.byKind,
          accepted: s.accepted,
          exceptions: s.exceptions + s.untyped,
          round_trip_violations: s.roundTripViolations,
          unsigned_accepted: s.unsignedAccepted,
          inputs_per_s: s.inputsPerSecond,
          seconds: Number(s.seconds.toFixed(2)),
          seed: s.seed,
        },
      ]),
    ),
  };
}
