// `tandem bench nft` (printNftBench prints the table, then the JSON line last): what one
// nftables operation costs when `nft` is spawned (`ip netns exec NS nft -f -`, `nft -j list
// counter ...`: what tests and the pre-addon agents did) and through a persistent
// libnftables context in this process (`inProcessNft({ netns })`: what role agents do now).
//
// One scratch namespace carrying a fresh run prefix (`<prefix>-nftbench`), removed on exit,
// on failure and on Ctrl-C/SIGTERM (lib/lab/signals.ts). In it one table with two sets of
// addresses with per-element counters (one per method, so the two never touch each other's
// elements), each preloaded with 64 elements, and a named counter. Operations:
// - set: one transaction adding, then (next iteration) deleting, one element of the set
//   (`updateSet`: `add element ip T S { A }` / `delete element ...`);
// - counter: one named-counter read (`readCounter`): spawned, `nft -j list counter ip T C`,
//   parsed; in process, one libnftnl NFT_MSG_GETOBJ request on the context's counter socket.
// The four series are interleaved iteration by iteration, so a burst of load on the shared
// machine hits spawn and in-process alike.
import { readFile } from "node:fs/promises";
import {
  type InProcessNft,
  inProcessNft,
  listSet,
  type NftTarget,
  nftApply,
  readCounter,
  updateSet,
} from "../lib/dataplane/nft.ts";
import { run } from "../lib/lab/command.ts";
import { namespaceName, newRunPrefix } from "../lib/lab/prefix.ts";
import { registerLiveLab, unregisterLiveLab } from "../lib/lab/signals.ts";
import { teardownPrefix } from "../lib/lab/teardown.ts";
import { type CommandHost, namespaceHost } from "../lib/remote/command.ts";

export type NftBenchMethod = "spawn" | "inproc";
export type NftBenchOperation = "set" | "counter";

export interface LatencySummary {
  samples: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
}

export interface NftBenchResult {
  /** Over both operations together (2 x iterations samples per method). */
  spawn_p50_ms: number;
  spawn_p99_ms: number;
  inproc_p50_ms: number;
  inproc_p99_ms: number;
  iterations: number;
  /** Elements preloaded in each set. */
  set_elements: number;
  /** Per method and operation. */
  detail: Record<`${NftBenchMethod}_${NftBenchOperation}`, LatencySummary>;
  /** Per method, both operations. */
  overall: Record<NftBenchMethod, LatencySummary>;
  /** Load average (1 min) before and after the run: the machine is shared. */
  loadavg: [number, number];
}

export interface NftBenchOptions {
  /** Iterations of each operation per method (default 500). */
  iterations?: number;
  /** Untimed iterations first (default 10). */
  warmup?: number;
  log?: (line: string) => void;
}

const TABLE = { family: "ip", table: "tdnftbench" } as const;
const COUNTER = "seen";
const PRELOAD = 64;
const SETS: Record<NftBenchMethod, string> = { spawn: "by_spawn", inproc: "by_inproc" };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50_ms: round(percentile(sorted, 50)),
    p90_ms: round(percentile(sorted, 90)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

/** 198.18.200.0/21 then onwards: distinct addresses, none of them preloaded. */
function address(i: number): string {
  return `198.18.${200 + ((i >> 8) % 50)}.${i & 0xff}`;
}

const preloaded = (i: number) => `198.19.0.${i + 1}`;

async function loadavg(): Promise<number> {
  return Number((await readFile("/proc/loadavg", "utf8")).split(" ")[0]);
}

export async function runNftBench(options: NftBenchOptions = {}): Promise<NftBenchResult> {
  const iterations = options.iterations ?? 500;
  const warmup = options.warmup ?? 10;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!Number.isInteger(iterations) || iterations < 2) throw new RangeError("iterations must be >= 2");
  if (process.getuid?.() !== 0) throw new Error("bench nft: needs root (it creates a network namespace)");

  const startLoad = await loadavg();
  const prefix = newRunPrefix();
  const ns = namespaceName(prefix, "nftbench");
  registerLiveLab(prefix, () => teardownPrefix(prefix));
  let inproc: InProcessNft | undefined;
  try {
    await run(["ip", "netns", "add", ns]);
    const spawn: CommandHost = namespaceHost(ns, { timeoutMs: 30_000 });
    inproc = inProcessNft({ netns: ns });
    const targets: Record<NftBenchMethod, NftTarget> = { spawn, inproc };
    const setDecl = (name: string) =>
      `  set ${name} { type ipv4_addr; counter; elements = { ${Array.from({ length: PRELOAD }, (_, i) => preloaded(i)).join(", ")} } }`;
    await nftApply(
      spawn,
      [
        `table ${TABLE.family} ${TABLE.table} {`,
        `  counter ${COUNTER} { }`,
        setDecl(SETS.spawn),
        setDecl(SETS.inproc),
        "  chain out {",
        "    type filter hook output priority 0; policy accept;",
        `    ip daddr @${SETS.spawn} counter name ${COUNTER}`,
        `    ip daddr @${SETS.inproc} counter name ${COUNTER}`,
        "  }",
        "}",
        "",
      ].join("\n"),
    );
    log(`bench nft: namespace ${ns}, ${iterations} iterations per method and operation (+${warmup} warm-up)`);

    const samples: Record<`${NftBenchMethod}_${NftBenchOperation}`, number[]> = {
      spawn_set: [],
      spawn_counter: [],
      inproc_set: [],
      inproc_counter: [],
    };
    const methods: NftBenchMethod[] = ["spawn", "inproc"];
    for (let i = -warmup; i < iterations; i++) {
      // Even iterations add element k, odd ones delete it again: every transaction changes the set.
      const k = Math.floor((i + warmup) / 2);
      const change = (i + warmup) % 2 === 0 ? { add: [address(k)] } : { delete: [address(k)] };
      for (const method of methods) {
        const target = targets[method];
        const ref = { ...TABLE, set: SETS[method] };
        let t = performance.now();
        await updateSet(target, ref, change);
        const setMs = performance.now() - t;
        t = performance.now();
        const counter = await readCounter(target, TABLE, COUNTER);
        const counterMs = performance.now() - t;
        if (typeof counter.packets !== "number") throw new Error(`bench nft: bad counter read via ${method}`);
        if (i >= 0) {
          samples[`${method}_set`].push(setMs);
          samples[`${method}_counter`].push(counterMs);
        }
      }
      if (i >= 0 && (i + 1) % 100 === 0) log(`bench nft: ${i + 1}/${iterations}`);
    }

    // Every add was matched by a delete (or one add is left when the count is odd): check the
    // kernel's view, read independently by a spawned nft, so a silently failing path shows.
    const expected = PRELOAD + ((iterations + warmup) % 2);
    for (const method of methods) {
      const listing = await listSet(spawn, { ...TABLE, set: SETS[method] });
      if (listing.elements.length !== expected) {
        throw new Error(
          `bench nft: set ${SETS[method]} has ${listing.elements.length} elements, expected ${expected}`,
        );
      }
    }

    const endLoad = await loadavg();
    const detail = {
      spawn_set: summarize(samples.spawn_set),
      spawn_counter: summarize(samples.spawn_counter),
      inproc_set: summarize(samples.inproc_set),
      inproc_counter: summarize(samples.inproc_counter),
    };
    const overall = {
      spawn: summarize([...samples.spawn_set, ...samples.spawn_counter]),
      inproc: summarize([...samples.inproc_set, ...samples.inproc_counter]),
    };
    return {
      spawn_p50_ms: overall.spawn.p50_ms,
      spawn_p99_ms: overall.spawn.p99_ms,
      inproc_p50_ms: overall.inproc.p50_ms,
      inproc_p99_ms: overall.inproc.p99_ms,
      iterations,
      set_elements: PRELOAD,
      detail,
      overall,
      loadavg: [startLoad, endLoad],
    };
  } finally {
    inproc?.close();
    await teardownPrefix(prefix);
    unregisterLiveLab(prefix);
  }
}

export function printNftBench(result: NftBenchResult): void {
  const header = ["method", "operation", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"];
  const label: Record<string, [string, string]> = {
    spawn_set: ["spawn (ip netns exec nft -f -)", "set element add/delete"],
    inproc_set: ["in process (libnftables)", "set element add/delete"],
    spawn_counter: ["spawn (ip netns exec nft -j)", "named counter read (JSON)"],
    inproc_counter: ["in process (libnftnl)", "named counter read (NFT_MSG_GETOBJ)"],
  };
  const rows: string[][] = [];
  for (const key of ["spawn_set", "inproc_set", "spawn_counter", "inproc_counter"] as const) {
    const s = result.detail[key];
    const [method, operation] = label[key] as [string, string];
    rows.push([method, operation, String(s.samples), ...[s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms].map(fmt)]);
  }
  for (const method of ["spawn", "inproc"] as const) {
    const s = result.overall[method];
    rows.push([
      method === "spawn" ? "spawn" : "in process",
      "both",
      String(s.samples),
      ...[s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms].map(fmt),
    ]);
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  ");
  process.stdout.write(`${line(header)}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
  process.stdout.write(
    `${result.set_elements} elements preloaded per set; load average ${result.loadavg[0]} -> ${result.loadavg[1]}\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function fmt(ms: number): string {
  return ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

// Runnable directly: `node --experimental-strip-types bench/nft.ts` (Node >= 22.6) or through `tandem bench nft`.
if (import.meta.url === `file://${process.argv[1]}`) {
  printNftBench(await runNftBench());
}
