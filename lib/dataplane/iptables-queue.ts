// The one iptables rule of the data plane. This kernel has no nftables `queue`
// expression (CONFIG_NFT_QUEUE off), but the xtables NFQUEUE target works through
// iptables-nft. So nftables classifies, counts and sets a mark; this rule sends
// marked packets to a queue. Keep the nft chain that sets the mark at a lower
// (earlier) priority than the iptables table the rule lives in:
//   raw -300, mangle -150, filter 0 (iptables-nft base chains use these priorities).
import type { CommandHost } from "../remote/command.ts";

export type QueueTable = "raw" | "mangle" | "filter";
export type QueueChain = "PREROUTING" | "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING";

/** Base-chain priority of each iptables-nft table (the nft chain that marks must run before). */
export const IPTABLES_PRIORITY: Record<QueueTable, number> = { raw: -300, mangle: -150, filter: 0 };

const VALID_CHAINS: Record<QueueTable, readonly QueueChain[]> = {
  raw: ["PREROUTING", "OUTPUT"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
};

export interface QueueRule {
  /** iptables table; `raw` PREROUTING runs before conntrack (so a released packet is looked up afresh). */
  table: QueueTable;
  chain: QueueChain;
  /** Packets whose (mark & mask) == mark are queued. */
  mark: number;
  mask?: number;
  queueNum: number;
  /** --queue-bypass: accept instead of drop when no program has the queue bound. Default false. */
  bypass?: boolean;
  /** Use ip6tables instead of iptables. */
  ipv6?: boolean;
}

export class IptablesError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`iptables failed (exit ${code}): ${argv.join(" ")}\n${stderr.trim()}`);
    this.name = "IptablesError";
  }
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** The rule's match + target arguments (after `-A CHAIN`). Validates the spec. */
export function queueRuleArgs(rule: QueueRule): string[] {
  if (!VALID_CHAINS[rule.table]?.includes(rule.chain)) {
    throw new TypeError(
      `iptables table ${rule.table} has no chain ${rule.chain} (valid: ${VALID_CHAINS[rule.table]?.join(", ")})`,
    );
  }
  const mask = rule.mask ?? 0xffffffff;
  for (const [field, value, max] of [
    ["mark", rule.mark, 0xffffffff],
    ["mask", mask, 0xffffffff],
    ["queueNum", rule.queueNum, 65535],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new RangeError(`queue rule ${field} must be an integer 0..${max}, got ${String(value)}`);
    }
  }
  const args = [
    "-m",
    "mark",
    "--mark",
    `${hex(rule.mark)}/${hex(mask)}`,
    "-j",
    "NFQUEUE",
    "--queue-num",
    String(rule.queueNum),
  ];
  if (rule.bypass) args.push("--queue-bypass");
  return args;
}

function binary(rule: QueueRule): string {
  return rule.ipv6 ? "ip6tables" : "iptables";
}

async function ruleExists(host: CommandHost, rule: QueueRule): Promise<boolean> {
  const argv = [binary(rule), "-w", "-t", rule.table, "-C", rule.chain, ...queueRuleArgs(rule)];
  const result = await host.exec(argv);
  if (result.code === 0) return true;
  // -C exits 1 with "does a matching rule exist" when absent; anything else is a real error.
  if (result.code === 1 && /does a matching rule exist|No chain|Bad rule/i.test(result.stderr)) return false;
  throw new IptablesError(argv, result.code, result.stderr);
}

/** Appends the queue rule unless an identical rule is already there. Returns true if it added it. */
export async function ensureQueueRule(host: CommandHost, rule: QueueRule): Promise<boolean> {
  if (await ruleExists(host, rule)) return false;
  const argv = [binary(rule), "-w", "-t", rule.table, "-A", rule.chain, ...queueRuleArgs(rule)];
  const result = await host.exec(argv);
  if (result.code !== 0) throw new IptablesError(argv, result.code, result.stderr);
  return true;
}

/** Deletes every copy of the queue rule; no error when there is none. Returns how many it deleted. */
export async function removeQueueRule(host: CommandHost, rule: QueueRule): Promise<number> {
  let removed = 0;
  while (await ruleExists(host, rule)) {
    const argv = [binary(rule), "-w", "-t", rule.table, "-D", rule.chain, ...queueRuleArgs(rule)];
    const result = await host.exec(argv);
    if (result.code !== 0) throw new IptablesError(argv, result.code, result.stderr);
    removed++;
  }
  return removed;
}
