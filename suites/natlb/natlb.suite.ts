import { describe } from "vitest";
import { certCase } from "../support/requirement.ts";
import { natlbCases } from "./cases.ts";

// Every case is declared; cases whose reference role is not built yet skip with the reason.
describe("natlb", () => {
  for (const def of Object.values(natlbCases)) {
    certCase(def, async () => {
      throw new Error(`${def.id}: no implementation yet`);
    });
  }
});
