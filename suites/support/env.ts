import { resolve } from "node:path";

/**
 * What `tandem certify` hands the suites (environment variables, because vitest runs the
 * suite files in worker processes): the device adapter, its options, the lab file, the
 * output directory and the hand-off mode.
 */
export interface SuiteEnv {
  dut: string;
  dutOptions: Record<string, string>;
  /** Lab file; undefined means the suite's default lab. */
  lab: string | undefined;
  out: string;
  mode: string | undefined;
}

export function suiteEnv(): SuiteEnv {
  let dutOptions: Record<string, string> = {};
  const raw = process.env.TANDEM_DUT_OPTIONS;
  if (raw) {
    try {
      dutOptions = JSON.parse(raw) as Record<string, string>;
    } catch {
      throw new Error(`TANDEM_DUT_OPTIONS is not a JSON object: ${raw}`);
    }
  }
  return {
    dut: process.env.TANDEM_DUT ?? "reference",
    dutOptions,
    lab: process.env.TANDEM_LAB || undefined,
    out: resolve(process.env.TANDEM_OUT ?? "reports/certify-dev"),
    mode: process.env.TANDEM_MODE || undefined,
  };
}
