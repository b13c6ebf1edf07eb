import { EventEmitter } from "node:events";
import snmp, { type Session, type Varbind } from "net-snmp";
import type { CommandHost } from "../remote/command.ts";

/**
 * SNMP read-back of VRRP state through the VRRPv3 MIB (RFC 6527, VRRPV3-MIB, mib-2 207),
 * the standard way a router shows VRRP state: status, priority, master and primary
 * address, and the per-router statistics counters. Any adapter can use it; a device that
 * runs an SNMP agent needs no custom CLI just to be observed (issue 16 item 6).
 *
 * SNMPv2c with net-snmp (npm). The manager sends its UDP datagrams either from this
 * process (a device on a network this machine reaches) or through a CommandHost (`via`):
 * each request is one short command on that host that sends the datagram and prints the
 * answer, so a device inside a lab namespace or behind an SSH host is read from where the
 * packets can go. No retries: a request unanswered within the timeout is an error naming
 * the agent's address, port and the OID asked.
 */

export const VRRPV3_MIB = {
  /** vrrpv3OperationsEntry: INDEX { ifIndex, vrrpv3OperationsVrId, vrrpv3OperationsInetAddrType }. */
  operationsEntry: "1.3.6.1.2.1.207.1.1.1.1",
  /** vrrpv3StatisticsEntry: AUGMENTS vrrpv3OperationsEntry (same index). */
  statisticsEntry: "1.3.6.1.2.1.207.1.2.5.1",
  routerChecksumErrors: "1.3.6.1.2.1.207.1.2.1.0",
  routerVersionErrors: "1.3.6.1.2.1.207.1.2.2.0",
  routerVrIdErrors: "1.3.6.1.2.1.207.1.2.3.0",
} as const;

/** vrrpv3OperationsStatus: initialize(1), backup(2), master(3). */
export type Vrrpv3Status = "initialize" | "backup" | "master";

export interface Vrrpv3Statistics {
  masterTransitions?: number;
  /** vrrpv3StatisticsNewMasterReason: notMaster(0), priority(1), preempted(2), masterNoResponse(3). */
  newMasterReason?: "notMaster" | "priority" | "preempted" | "masterNoResponse" | `unknown(${number})`;
  rcvdAdvertisements?: number;
  advIntervalErrors?: number;
  ipTtlErrors?: number;
  /** vrrpv3StatisticsProtoErrReason: noError(0), ipTtlError(1), versionError(2), checksumError(3), vrIdError(4). */
  protoErrReason?:
    | "noError"
    | "ipTtlError"
    | "versionError"
    | "checksumError"
    | "vrIdError"
    | `unknown(${number})`;
  rcvdPriZeroPackets?: number;
  sentPriZeroPackets?: number;
  rcvdInvalidTypePackets?: number;
  addressListErrors?: number;
  packetLengthErrors?: number;
}

/** One row of vrrpv3OperationsTable with its vrrpv3StatisticsTable counters; absent: the agent did not fill the column. */
export interface Vrrpv3Router {
  ifIndex: number;
  vrid: number;
  family: 4 | 6;
  status?: Vrrpv3Status;
  priority?: number;
  masterIpAddr?: string;
  primaryIpAddr?: string;
  virtualMacAddr?: string;
  addrCount?: number;
  /** vrrpv3OperationsAdvInterval, centiseconds. */
  advIntervalCs?: number;
  preemptMode?: boolean;
  acceptMode?: boolean;
  /** vrrpv3OperationsUpTime, TimeTicks (centiseconds). */
  upTimeCs?: number;
  statistics: Vrrpv3Statistics;
}

export interface Vrrpv3MibSnapshot {
  /** vrrpv3RouterChecksumErrors / VersionErrors / VrIdErrors (scalars). */
  global: { checksumErrors?: number; versionErrors?: number; vrIdErrors?: number };
  routers: Vrrpv3Router[];
}

export interface SnmpAgentTarget {
  /** The agent's address (IPv4 or IPv6). */
  address: string;
  /** Default 161. */
  port?: number;
  /** SNMPv2c community; default "public". */
  community?: string;
  /** Per request; default 3000 ms. */
  timeoutMs?: number;
  /** Send the requests from this host (a lab namespace, an SSH host) instead of this process. */
  via?: CommandHost;
}

/** A failed SNMP read: names the agent, the port and the OID asked. */
export class SnmpReadError extends Error {
  constructor(
    readonly agent: string,
    readonly port: number,
    readonly oid: string,
    detail: string,
  ) {
    super(`SNMP ${agent}:${port} ${oid}: ${detail}`);
    this.name = "SnmpReadError";
  }
}

const OPERATION_COLUMNS = {
  3: "masterIpAddr",
  4: "primaryIpAddr",
  5: "virtualMacAddr",
  6: "status",
  7: "priority",
  8: "addrCount",
  9: "advIntervalCs",
  10: "preemptMode",
  11: "acceptMode",
  12: "upTimeCs",
} as const;

const STATISTICS_COLUMNS = {
  1: "masterTransitions",
  2: "newMasterReason",
  3: "rcvdAdvertisements",
  4: "advIntervalErrors",
  5: "ipTtlErrors",
  6: "protoErrReason",
  7: "rcvdPriZeroPackets",
  8: "sentPriZeroPackets",
  9: "rcvdInvalidTypePackets",
  10: "addressListErrors",
  11: "packetLengthErrors",
} as const;

const NEW_MASTER_REASONS = ["notMaster", "priority", "preempted", "masterNoResponse"] as const;
const PROTO_ERR_REASONS = ["noError", "ipTtlError", "versionError", "checksumError", "vrIdError"] as const;

/** Reads the whole VRRPv3 MIB of one agent: the operations and statistics tables and the global counters. */
export async function readVrrpv3Mib(target: SnmpAgentTarget): Promise<Vrrpv3MibSnapshot> {
  const port = target.port ?? 161;
  const session = openSession(target);
  try {
    const ops = await walk(session, target, VRRPV3_MIB.operationsEntry);
    const stats = await walk(session, target, VRRPV3_MIB.statisticsEntry);
    const scalars = await get(session, target, [
      VRRPV3_MIB.routerChecksumErrors,
      VRRPV3_MIB.routerVersionErrors,
      VRRPV3_MIB.routerVrIdErrors,
    ]);
    const routers = new Map<string, Vrrpv3Router>();
    const row = (index: string, oid: string): Vrrpv3Router => {
      let r = routers.get(index);
      if (!r) {
        const [ifIndex, vrid, addrType] = index.split(".").map(Number);
        if (ifIndex === undefined || vrid === undefined || (addrType !== 1 && addrType !== 2))
          throw new SnmpReadError(
            target.address,
            port,
            oid,
            `index ${index} is not ifIndex.vrId.inetAddrType`,
          );
        r = { ifIndex, vrid, family: addrType === 1 ? 4 : 6, statistics: {} };
        routers.set(index, r);
      }
      return r;
    };
    for (const vb of ops) {
      const { column, index } = splitColumn(VRRPV3_MIB.operationsEntry, vb.oid);
      const name = OPERATION_COLUMNS[column as keyof typeof OPERATION_COLUMNS];
      if (!name) {
        row(index, vb.oid);
        continue;
      }
      const r = row(index, vb.oid);
      const where = (detail: string) => new SnmpReadError(target.address, port, vb.oid, detail);
      switch (name) {
        case "masterIpAddr":
        case "primaryIpAddr":
          r[name] = inetAddress(vb, where);
          break;
        case "virtualMacAddr":
          r.virtualMacAddr = [...octets(vb, where)].map((b) => b.toString(16).padStart(2, "0")).join(":");
          break;
        case "status": {
          const s = integer(vb, where);
          if (s < 1 || s > 3)
            throw where(`vrrpv3OperationsStatus ${s} is not initialize(1), backup(2) or master(3)`);
          r.status = (["initialize", "backup", "master"] as const)[s - 1];
          break;
        }
        case "preemptMode":
        case "acceptMode":
          r[name] = integer(vb, where) === 1; // TruthValue: true(1), false(2)
          break;
        default:
          r[name] = integer(vb, where);
      }
    }
    for (const vb of stats) {
      const { column, index } = splitColumn(VRRPV3_MIB.statisticsEntry, vb.oid);
      const name = STATISTICS_COLUMNS[column as keyof typeof STATISTICS_COLUMNS];
      if (!name) continue; // discontinuity time, refresh rate
      const s = row(index, vb.oid).statistics;
      const where = (detail: string) => new SnmpReadError(target.address, port, vb.oid, detail);
      const n = integer(vb, where);
      if (name === "newMasterReason") s.newMasterReason = NEW_MASTER_REASONS[n] ?? `unknown(${n})`;
      else if (name === "protoErrReason") s.protoErrReason = PROTO_ERR_REASONS[n] ?? `unknown(${n})`;
      else s[name] = n;
    }
    const scalar = (i: number): number | undefined => {
      const vb = scalars[i];
      if (!vb || snmp.isVarbindError(vb)) return undefined;
      return integer(vb, (d) => new SnmpReadError(target.address, port, vb.oid, d));
    };
    return {
      global: { checksumErrors: scalar(0), versionErrors: scalar(1), vrIdErrors: scalar(2) },
      routers: [...routers.values()].sort((a, b) => a.ifIndex - b.ifIndex || a.vrid - b.vrid),
    };
  } finally {
    session.close();
  }
}

/** The row for one VRID (and family), or an error naming the agent and what it has. */
export function vrrpv3Router(snapshot: Vrrpv3MibSnapshot, vrid: number, family: 4 | 6 = 4): Vrrpv3Router {
  const r = snapshot.routers.find((x) => x.vrid === vrid && x.family === family);
  if (!r)
    throw new Error(
      `VRRPv3 MIB has no IPv${family} row for VRID ${vrid} (rows: ${
        snapshot.routers.map((x) => `ifIndex ${x.ifIndex} VRID ${x.vrid} IPv${x.family}`).join(", ") || "none"
      })`,
    );
  return r;
}

function openSession(target: SnmpAgentTarget): Session {
  const family = target.address.includes(":") ? "udp6" : "udp4";
  const transportState = { lastError: "" };
  const session = snmp.createSession(target.address, target.community ?? "public", {
    port: target.port ?? 161,
    version: snmp.Version2c,
    retries: 0,
    timeout: target.timeoutMs ?? 3000,
    transport: family,
    ...(target.via
      ? { dgramModule: commandHostDgram(target.via, target.timeoutMs ?? 3000, transportState) }
      : {}),
  });
  session.on("error", () => {}); // surfaced per request
  (session as unknown as { tandemTransport: typeof transportState }).tandemTransport = transportState;
  return session;
}

function transportNote(session: Session): string {
  const t = (session as unknown as { tandemTransport?: { lastError: string } }).tandemTransport;
  return t?.lastError ? ` (transport: ${t.lastError})` : "";
}

function requestError(session: Session, target: SnmpAgentTarget, oid: string, error: Error): SnmpReadError {
  return new SnmpReadError(
    target.address,
    target.port ?? 161,
    oid,
    `${error.name === "RequestTimedOutError" ? `no answer within ${target.timeoutMs ?? 3000} ms` : error.message}${transportNote(session)}`,
  );
}

function walk(session: Session, target: SnmpAgentTarget, base: string): Promise<Varbind[]> {
  return new Promise((resolve, reject) => {
    const out: Varbind[] = [];
    let bad: SnmpReadError | undefined;
    session.subtree(
      base,
      20,
      (varbinds) => {
        for (const vb of varbinds) {
          if (snmp.isVarbindError(vb)) {
            bad = new SnmpReadError(target.address, target.port ?? 161, vb.oid, snmp.varbindError(vb));
            return true;
          }
          out.push(vb);
        }
        return undefined;
      },
      (error) => {
        if (error) reject(requestError(session, target, base, error));
        else if (bad) reject(bad);
        else resolve(out);
      },
    );
  });
}

function get(session: Session, target: SnmpAgentTarget, oids: string[]): Promise<Varbind[]> {
  return new Promise((resolve, reject) => {
    session.get(oids, (error, varbinds) => {
      if (error) reject(requestError(session, target, oids.join(","), error));
      else resolve(varbinds);
    });
  });
}

function splitColumn(entry: string, oid: string): { column: number; index: string } {
  const rest = oid.slice(entry.length + 1).split(".");
  return { column: Number(rest[0]), index: rest.slice(1).join(".") };
}

type Where = (detail: string) => SnmpReadError;

function integer(vb: Varbind, where: Where): number {
  if (typeof vb.value === "number") return vb.value;
  if (vb.type === snmp.ObjectType.Counter64 && Buffer.isBuffer(vb.value)) {
    let n = 0n;
    for (const b of vb.value) n = (n << 8n) | BigInt(b);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw where(`Counter64 ${n} exceeds 2^53`);
    return Number(n);
  }
  if (typeof vb.value === "bigint") return Number(vb.value);
  throw where(`expected an integer, got type ${vb.type} value ${JSON.stringify(String(vb.value))}`);
}

function octets(vb: Varbind, where: Where): Buffer {
  if (Buffer.isBuffer(vb.value)) return vb.value;
  throw where(`expected an OCTET STRING, got type ${vb.type}`);
}

function inetAddress(vb: Varbind, where: Where): string {
  const b = octets(vb, where);
  if (b.length === 4) return [...b].join(".");
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
  }
  if (b.length === 0) return "";
  throw where(`InetAddress of ${b.length} bytes (expected 4 or 16)`);
}

/**
 * A dgram-compatible socket for net-snmp whose datagrams leave from `host`: each send
 * runs one short python3 command there that sends the datagram, waits for one answer and
 * prints it (base64). An unanswered request emits nothing; net-snmp's timeout reports it.
 */
const DATAGRAM_SCRIPT = [
  "import base64, socket, sys",
  "addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])",
  "s = socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_DGRAM)",
  "s.settimeout(timeout)",
  "s.sendto(base64.b64decode(sys.stdin.read()), (addr, port))",
  "try:",
  "    data = s.recv(65535)",
  "except socket.timeout:",
  "    sys.exit(3)",
  "print(base64.b64encode(data).decode())",
].join("\n");

function commandHostDgram(host: CommandHost, timeoutMs: number, state: { lastError: string }) {
  return {
    createSocket(_type: string) {
      const socket = new (class extends EventEmitter {
        closed = false;
        ref() {
          return this;
        }
        unref() {
          return this;
        }
        bind() {
          return this;
        }
        close() {
          if (this.closed) return;
          this.closed = true;
          setImmediate(() => this.emit("close"));
        }
        send(
          buffer: Buffer,
          offset: number,
          length: number,
          port: number,
          address: string,
          cb?: (error: Error | null, bytes?: number) => void,
        ) {
          const payload = buffer.subarray(offset, offset + length).toString("base64");
          host
            .exec(["python3", "-c", DATAGRAM_SCRIPT, address, String(port), String(timeoutMs / 1000)], {
              input: payload,
              timeoutMs: timeoutMs + 5000,
            })
            .then((r) => {
              if (this.closed) return;
              if (r.code === 3) {
                state.lastError = `no datagram back from ${address}:${port} on ${host.name}`;
                return;
              }
              if (r.code !== 0) {
                state.lastError = `python3 on ${host.name} exited ${r.code}: ${r.stderr.trim().slice(-300)}`;
                return;
              }
              const data = Buffer.from(r.stdout.trim(), "base64");
              this.emit("message", data, {
                address,
                port,
                family: address.includes(":") ? "IPv6" : "IPv4",
                size: data.length,
              });
            })
            .catch((e: unknown) => {
              state.lastError = `on ${host.name}: ${e instanceof Error ? e.message : String(e)}`;
            });
          cb?.(null, length);
        }
      })();
      return socket;
    },
  };
}
