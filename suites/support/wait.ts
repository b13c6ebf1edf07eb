/**
 * Waits until `condition` returns a value other than undefined/false, polling every
 * `everyMs`; the timeout error says what was awaited and the last value seen. A small local
 * one until lib/ has its shared `waitUntil` (issue 12, item 4, another branch).
 */
export async function waitUntil<T>(
  condition: () => Promise<T | undefined | false>,
  options: { timeoutMs: number; what: string; everyMs?: number; last?: () => unknown },
): Promise<T> {
  const until = Date.now() + options.timeoutMs;
  for (;;) {
    const v = await condition();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= until)
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for ${options.what}${
          options.last ? `; last seen: ${JSON.stringify(options.last())}` : ""
        }`,
      );
    await new Promise((r) => setTimeout(r, options.everyMs ?? 100));
  }
}
