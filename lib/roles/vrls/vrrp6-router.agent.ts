/**
 * The reference router as a plain VRRPv3 router over IPv6 (RFC 9568; issue 16), one
 * virtual router on one interface, started on a lab host over SSH by the reference
 * adapter (vendor-adapters/reference) for `--suite vrrp --family ipv6`. It wires the
 * family-neutral state machine (vrrp-state.ts) to:
 *  - RawIo with a raw IPv6 socket of next header 112 joined to ff02::12 (no IPv4 socket);
 *    every packet passes the RFC 9568 7.1 receive checks (validateVrrp6Packet: hop limit
 *    255, version, length, checksum over the IPv6 pseudo-header, type, VRID) or is counted
 *    by reason;
 *  - advertisements sent as whole frames from the virtual MAC 00:00:5e:00:02:VRID and the
 *    router's link-local address to ff02::12 (vrrp6.ts);
 *  - on becoming master, one unsolicited Neighbor Advertisement per virtual address
 *    (Router and Override set, target link-layer = the virtual MAC);
 *  - a macvlan `vrrp6r-<VRID>` with the virtual MAC (no link-local of its own), holding the
 *    virtual addresses (/128, nodad) only while master: the kernel answers Neighbor
 *    Solicitations for them from it, with the virtual MAC as target link-layer address, and
 *    no NS is answered while backup (no address, no answer);
 *  - nftables: the owned table gates forwarding from the macvlan (master forwards, backup
 *    drops; Accept_Mode False drops local delivery to the virtual addresses except ND) and
 *    a guard that outlives the agent drops what it did not admit (a killed master
 *    forwards nothing).
 * JSON-RPC methods: status, counters.
 */
import { readFileSync } from "node:fs";
import { networkInterfaces, setPriority } from "node:os";
import { performance } from "node:perf_hooks";
import { deleteTable, inProcessNft, nftApply, replaceTable } from "../../dataplane/index.ts";
import { agentArgs, log, notify, serveAgent } from "../../remote/agent-runtime.ts";
import { localHost } from "../../remote/command.ts";
import { canonicalIpv6 } from "../../topology/address.ts";
import { decodeIpv6, isLinkLocalV6 } from "../../wire/ipv6.ts";
import { type VrrpRejectReason, validateVrrp6Packet } from "../../wire/vrrp-validate.ts";
import { RawIo } from "./rawio.ts";
import { initialVrrpState, nextDeadline, step, type VrrpAction, type VrrpEvent } from "./vrrp-state.ts";
import {
  orderVirtualAddresses6,
  type Vrrp6AgentArgs,
  vrrp6AdvertisementWithFaults,
  vrrp6GateScript,
  vrrp6GuardTable,
  vrrp6Mac,
  vrrp6Macvlan,
  vrrp6OwnerTable,
  vrrp6TakeoverNas,
} from "./vrrp6.ts";

const args = agentArgs<Vrrp6AgentArgs>();
const faults: ReadonlySet<string> = new Set(args.faults ?? []);
const vrid = args.vrid;
const vmac = vrrp6Mac(vrid);
const macvlan = vrrp6Macvlan(vrid);
const addresses = orderVirtualAddresses6(args.virtualAddresses);
const source = canonicalIpv6(args.source ?? interfaceLinkLocal(args.interface));
if (!isLinkLocalV6(source)) throw new Error(`advertisement source ${source} is not link-local`);
/**
 * RFC 9568 Accept_Mode in force: the address owner always accepts; otherwise the setting
 * (absent: true). The seeded faults invert it where it is false / true (as the IPv4 agent).
 */
const acceptMode =
  args.priority === 255 ||
  (args.acceptMode === false
    ? faults.has("vrrp-accept-mode-ignored")
    : !faults.has("vrrp-accept-mode-forced"));
const owner = { family: "ip6" as const, table: `vrrp6r_${vrid}` };
const guard = { family: "ip6" as const, table: `vrrp6r_${vrid}_guard` };
const host = localHost({ timeoutMs: 30_000 });
const nft = inProcessNft();
const now = () => performance.now();

const rx: Record<string, number> = {};
const count = (k: string) => {
  rx[k] = (rx[k] ?? 0) + 1;
};

let state = initialVrrpState({
  vrid,
  priority: args.priority,
  advertIntervalCs: args.advertIntervalCs,
  preempt: args.preempt,
  primaryAddress: source,
  virtualAddresses: addresses,
  ...(args.faults ? { faults: args.faults } : {}),
});
let io: RawIo | undefined;
let timer: NodeJS.Timeout | undefined;
let stopped = false;

function interfaceLinkLocal(name: string): string {
  const ll = (networkInterfaces()[name] ?? []).find((a) => a.family === "IPv6" && isLinkLocalV6(a.address));
  if (!ll) throw new Error(`${name} has no IPv6 link-local address to advertise from (RFC 9568 5.1.2.1)`);
  return ll.address.split("%")[0] as string;
}

async function sh(script: string): Promise<void> {
  const r = await host.exec(["sh", "-c", script]);
  if (r.code !== 0) throw new Error(`${script}: ${r.stderr.trim() || `exit ${r.code}`}`);
}

/** The macvlan with the virtual MAC, IPv6 on without a link-local of its own, no addresses yet. */
async function setupDataplane(): Promise<void> {
  const lan = args.interface;
  const forwarding = (await host.exec(["sysctl", "-n", `net.ipv6.conf.${lan}.forwarding`])).stdout.trim();
  await host.exec(["ip", "link", "del", macvlan]);
  await sh(
    [
      `ip link add ${macvlan} link ${lan} type macvlan mode bridge`,
      `ip link set ${macvlan} address ${vmac}`,
      `sysctl -qw net.ipv6.conf.${macvlan}.disable_ipv6=0`,
      // Not at creation: `ip link add ... addrgenmode` fails with EAFNOSUPPORT (docs/decisions.md).
      `ip link set ${macvlan} addrgenmode none`,
      `sysctl -qw net.ipv6.conf.${macvlan}.accept_dad=0 net.ipv6.conf.${macvlan}.accept_ra=0 net.ipv6.conf.${macvlan}.router_solicitations=0 net.ipv6.conf.${macvlan}.forwarding=${forwarding === "1" ? 1 : 0}`,
      `ip link set ${macvlan} up`,
    ].join(" && "),
  );
  await replaceTable(nft, guard, vrrp6GuardTable(macvlan));
  await replaceTable(nft, owner, vrrp6OwnerTable({ macvlan, role: "initialize", addresses, acceptMode }));
}

/** Data plane changes in order, each after the one before. */
let dataplaneChain: Promise<void> = Promise.resolve();
let dataplaneRole = "initialize";
function setRole(role: "master" | "backup" | "initialize"): void {
  // Seeded faults: the addresses (and so the NS answers) and/or forwarding as the other role.
  const actsAs = (fault: string) =>
    faults.has(fault) && role !== "initialize" ? (role === "master" ? "backup" : "master") : role;
  const addressRole = actsAs(role === "master" ? "vrrp-no-arp-reply" : "vrrp-arp-while-backup");
  const forward = actsAs(role === "master" ? "vrrp-no-forward" : "vrrp-forward-while-backup");
  dataplaneChain = dataplaneChain.then(async () => {
    try {
      if (addressRole === "master") {
        await sh(addresses.map((a) => `ip -6 addr replace ${a}/128 dev ${macvlan} nodad`).join(" && "));
      } else await sh(`ip -6 addr flush dev ${macvlan}`);
      await nftApply(nft, vrrp6GateScript(owner.table, macvlan, forward));
      dataplaneRole = role;
      log(`role ${role}`);
    } catch (e) {
      count("dataplaneFailed");
      log(`data plane (${role}) failed: ${(e as Error).message}`);
    }
  });
}

function perform(a: VrrpAction): void {
  switch (a.type) {
    case "sendAdvertisement":
      io?.sendFrame(advertisement(a.priority, a.advertIntervalCs));
      count("tx.advertisement");
      return;
    case "sendGratuitousArp":
      // IPv6: unsolicited Neighbor Advertisements, one per virtual address (RFC 9568 6.4.1).
      if (faults.has("vrrp-no-garp")) return;
      for (const f of vrrp6TakeoverNas(vrid, a.addresses)) io?.sendFrame(f);
      count("tx.unsolicitedNa");
      return;
    case "transition":
      notify("role", { role: a.to, at: Date.now(), self: source });
      setRole(a.to);
      return;
  }
}

/** The LAN interface's own MAC (only the seeded fault vrrp-adv-physical-mac sends from it). */
const physicalMac = faults.has("vrrp-adv-physical-mac")
  ? readFileSync(`/sys/class/net/${args.interface}/address`, "utf8").trim()
  : vmac;

function advertisement(priority: number, advertIntervalCs: number): Uint8Array {
  return vrrp6AdvertisementWithFaults(
    { vrid, priority, advertIntervalCs, src: source, addresses, physicalMac },
    faults,
  );
}

/** Seeded faults that accept an advertisement the RFC 9568 7.1 checks discard. */
const ACCEPTED_BY_FAULT: Partial<Record<VrrpRejectReason, string>> = {
  "hop-limit-not-255": "vrrp-rx-accept-ttl",
  "bad-version": "vrrp-rx-accept-version",
  "bad-length": "vrrp-rx-accept-short",
  "bad-checksum": "vrrp-rx-accept-bad-checksum",
  "unknown-vrid": "vrrp-rx-accept-other-vrid",
};

/** A type 1 advertisement read field by field without the receive checks (a faulty router's way). */
function acceptAnyway(packet: Buffer, reason: VrrpRejectReason): void {
  const fault = ACCEPTED_BY_FAULT[reason];
  if (!fault || !faults.has(fault)) return;
  const ip = decodeIpv6(packet);
  if (!ip.ok || ip.value.src === source) return;
  const m = ip.value.payload;
  if (m.length < 6 || ((m[0] ?? 0) & 0x0f) !== 1) return;
  count(`rx.acceptedByFault.${reason}`);
  handle({
    type: "advertisement",
    now: now(),
    from: ip.value.src,
    priority: m[2] ?? 0,
    maxAdverIntCs: (m[0] ?? 0) >> 4 === 3 ? (((m[4] ?? 0) & 0x0f) << 8) | (m[5] ?? 0) : args.advertIntervalCs,
  });
}

function handle(event: VrrpEvent): void {
  if (stopped && event.type !== "shutdown") return;
  const r = step(state, event);
  state = r.state;
  for (const a of r.actions) perform(a);
  schedule();
}

function schedule(): void {
  if (timer) clearTimeout(timer);
  if (stopped) return;
  const d = nextDeadline(state);
  if (d === null) return;
  timer = setTimeout(() => handle({ type: "tick", now: now() }), Math.max(0, d - now()));
}

function onVrrp6(packet: Buffer): void {
  const v = validateVrrp6Packet(packet, { version: 3, vrids: [vrid] });
  if (!v.ok) {
    count(`rx.rejected.${v.reason}`);
    acceptAnyway(packet, v.reason);
    return;
  }
  // Our own frames never reach this socket (sent on AF_PACKET): this is a spoofed source.
  if (v.ip.src === source) {
    count("rx.rejected.own-address");
    return;
  }
  if (v.vrrp.version !== 3) return;
  count("rx.advertisement");
  handle({
    type: "advertisement",
    now: now(),
    from: v.ip.src,
    priority: v.vrrp.priority,
    maxAdverIntCs: v.vrrp.maxAdverIntCs,
  });
}

async function shutdown(): Promise<void> {
  if (stopped) return;
  handle({ type: "shutdown", now: now() });
  stopped = true;
  if (timer) clearTimeout(timer);
  await dataplaneChain;
  io?.close();
  await host.exec(["ip", "link", "del", macvlan]);
  await deleteTable(nft, owner).catch(() => undefined);
  await deleteTable(nft, guard).catch(() => undefined);
}

function status() {
  return {
    role: state.name,
    self: source,
    vrid,
    priority: args.priority,
    addresses,
    masterAddress: state.masterAddress,
    masterAdverIntCs: state.masterAdverIntCs,
    acceptMode,
    dataplane: { role: dataplaneRole, macvlan },
    rx,
    rawio: io ? io.stats() : null,
  };
}

serveAgent({
  name: "vrrp6-router",
  methods: {
    status: () => status(),
    counters: () => rx,
    stopRouter: async () => {
      await shutdown();
      return { stopped: true };
    },
  },
  onShutdown: shutdown,
});

try {
  try {
    setPriority(-10);
  } catch (e) {
    log(`cannot raise priority: ${(e as Error).message}`);
  }
  await setupDataplane();
  io = await RawIo.open({
    interface: args.interface,
    listen: ["vrrp6"],
    ipv4: false,
    onVrrp6,
    onLog: (l) => log(l),
  });
  log(
    `vrrp6 router ${source} (VRID ${vrid}, priority ${args.priority}, addresses ${addresses.join(" ")}, accept mode ${acceptMode}) on ${args.interface}`,
  );
  handle({ type: "startup", now: now() });
} catch (e) {
  log(`startup failed: ${(e as Error).stack ?? e}`);
  await host.exec(["ip", "link", "del", macvlan]).catch(() => undefined);
  process.exit(2);
}
