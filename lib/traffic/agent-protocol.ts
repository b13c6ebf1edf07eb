import { z } from "zod";

/**
 * Parameters of the traffic agent's JSON-RPC methods (traffic.agent.ts), validated on the
 * agent and typed on the controller (agent-client.ts). Every started instrument gets an
 * id ("tcp-sink-1", "udp-send-3", ...) used by stats/timeline/wait/stop.
 */
const Port = z.number().int().min(1).max(65_535);
const Ports = z.array(Port).min(1);
const Positive = z.number().positive();
const Ipv4 = z.ipv4();

export const TcpSinkStartParams = z.strictObject({
  ports: Ports,
  host: Ipv4.optional(),
  stallThresholdMs: Positive.optional(),
  binMs: Positive.optional(),
  backlog: z.number().int().positive().optional(),
});

export const TcpStreamsStartParams = z.strictObject({
  dstIp: Ipv4,
  ports: Ports,
  connections: z.number().int().min(1).max(60_000),
  recordsPerSecond: Positive,
  recordBytes: z.number().int().min(20).max(65_535).optional(),
  connectRatePerSecond: Positive.optional(),
  connectTimeoutMs: Positive.optional(),
  srcIp: Ipv4.optional(),
  runId: z.number().int().min(0).max(0xffffffff).optional(),
  durationMs: Positive.optional(),
  maxQueuedBytes: Positive.optional(),
  binMs: Positive.optional(),
});

export const TcpShortStartParams = z.strictObject({
  dstIp: Ipv4,
  ports: Ports,
  ratePerSecond: Positive,
  count: z.number().int().positive().optional(),
  durationMs: Positive.optional(),
  recordsPerConnection: z.number().int().min(0).optional(),
  recordBytes: z.number().int().min(20).max(65_535).optional(),
  connectTimeoutMs: Positive.optional(),
  replyTimeoutMs: Positive.optional(),
  maxInFlight: z.number().int().positive().optional(),
  srcIp: Ipv4.optional(),
  runId: z.number().int().min(0).max(0xffffffff).optional(),
  binMs: Positive.optional(),
});

export const UdpSendStartParams = z.strictObject({
  streamId: z.number().int().min(0).max(0xffffffff),
  dstIp: Ipv4,
  dstPort: Port,
  srcIp: Ipv4.optional(),
  srcPort: Port.optional(),
  payloadBytes: z.number().int().min(20).max(65_507).optional(),
  pps: z.number().min(0),
  count: z.number().int().positive().optional(),
  durationMs: Positive.optional(),
  maxInFlight: z.number().int().positive().optional(),
});

export const UdpReceiverStartParams = z.strictObject({
  port: Port,
  host: Ipv4.optional(),
  binMs: Positive.optional(),
  receiveBufferBytes: z.number().int().positive().optional(),
});

export const StatsParams = z.strictObject({
  id: z.string().min(1),
  /** Per-connection detail (TCP) or per-stream timelines (UDP receiver). */
  detail: z.boolean().optional(),
});
export const TimelineParams = z.strictObject({
  id: z.string().min(1),
  fromMs: z.number().optional(),
  toMs: z.number().optional(),
});
export const WaitParams = z.strictObject({ id: z.string().min(1), timeoutMs: Positive.optional() });
export const StopParams = z.strictObject({ id: z.string().min(1), graceMs: Positive.optional() });

export type TcpSinkStart = z.infer<typeof TcpSinkStartParams>;
export type TcpStreamsStart = z.infer<typeof TcpStreamsStartParams>;
export type TcpShortStart = z.infer<typeof TcpShortStartParams>;
export type UdpSendStart = z.infer<typeof UdpSendStartParams>;
export type UdpReceiverStart = z.infer<typeof UdpReceiverStartParams>;

export type InstrumentKind = "tcp-sink" | "tcp-streams" | "tcp-short" | "udp-send" | "udp-receiver";

export interface InstrumentSummary {
  id: string;
  kind: InstrumentKind;
  /** Still running (a sender still sending, a sink still listening). */
  running: boolean;
}

export interface AgentOverview {
  pid: number;
  /** RLIMIT_NOFILE of the agent (soft, hard); Node raises the soft limit to the hard one at start. */
  openFilesLimit: { soft: number | null; hard: number | null };
  openFiles: number | null;
  instruments: InstrumentSummary[];
}

/** Parses method params; the error names the method, the field and the value. */
export function parseParams<T>(method: string, schema: z.ZodType<T>, params: unknown): T {
  const result = schema.safeParse(params ?? {});
  if (result.success) return result.data;
  const details = result.error.issues
    .map((issue) => {
      const path = issue.path.join(".") || "(params)";
      const value = issue.path.reduce<unknown>(
        (v, key) => (v && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[key] : undefined),
        params,
      );
      return `${path}: ${issue.message}${value === undefined ? "" : ` (got ${JSON.stringify(value)})`}`;
    })
    .join("; ");
  throw new Error(`traffic.${method}: ${details}`);
}
