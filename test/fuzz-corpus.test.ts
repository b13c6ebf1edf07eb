import { describe, expect, it } from "vitest";
import { checkInput, findCodec, readCorpus } from "../lib/fuzz/fuzz.ts";

// Every input in test/fuzz-corpus/ (written by `tandem fuzz` when a decoder threw, failed to
// round-trip or accepted an unsigned message, and kept once the defect was fixed) must now
// get a typed result that satisfies the whole fuzz oracle.
const corpus = readCorpus(new URL("./fuzz-corpus", import.meta.url).pathname);

describe("fuzz corpus", () => {
  it("holds at least one input, each naming a known decoder", () => {
    expect(corpus.length).toBeGreaterThan(0);
    for (const c of corpus) expect(() => findCodec(c.entry.decoder), c.file).not.toThrow();
  });

  it.each(corpus.map((c) => [c.file.split("/").pop()!, c] as const))("%s", (_name, c) => {
    const verdict = checkInput(findCodec(c.entry.decoder), c.bytes);
    expect(verdict, `${c.file} (found: ${c.entry.found})`).toMatchObject({
      outcome: expect.stringMatching(/^(accepted|rejected)$/),
    });
  });
});
