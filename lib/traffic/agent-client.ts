import { type AgentClient, type LaunchAgentOptions, launchAgent, type RemoteHost } from "../remote/index.ts";
import type {
  AgentOverview,
  TcpShortStart,
  TcpSinkStart,
  TcpStreamsStart,
  UdpReceiverStart,
  UdpSendStart,
} from "./agent-protocol.ts";
import type { Timeline } from "./stream-tally.ts";
import type { SinkReport } from "./tcp-sink.ts";
import type { LongStreamsReport, ShortConnectionsReport } from "./tcp-streams.ts";
import type { DgramReceiverReport, DgramSenderTotals } from "./udp-dgram.ts";

/**
 * Controller side of the traffic agent (traffic.agent.ts): typed methods over the
 * JSON-RPC calls, and one handle per started instrument. Launch it on a lab host with
 * `TrafficAgent.launch(lab.host("h1").remote)` (lib/lab's LabHost has no launchAgent of
 * its own; this goes through lib/remote's launchAgent directly).
 */
export type TimeRange = { fromMs?: number; toMs?: number };

export class TrafficAgent {
  constructor(readonly client: AgentClient) {}

  static async launch(
    remote: RemoteHost,
    options: Omit<LaunchAgentOptions, "args"> = {},
  ): Promise<TrafficAgent> {
    return new TrafficAgent(await launchAgent(remote, "traffic", options));
  }

  get host(): string {
    return this.client.host;
  }

  overview(): Promise<AgentOverview> {
    return this.client.call("overview");
  }

  async startTcpSink(params: TcpSinkStart): Promise<RemoteTcpSink> {
    const r = await this.client.call<{ id: string; ports: number[] }>("tcpSinkStart", params);
    return new RemoteTcpSink(this, r.id, r.ports);
  }

  async startTcpStreams(params: TcpStreamsStart): Promise<RemoteTcpStreams> {
    const r = await this.client.call<{ id: string; runId: number }>("tcpStreamsStart", params);
    return new RemoteTcpStreams(this, r.id, r.runId);
  }

  async startTcpShort(params: TcpShortStart): Promise<RemoteTcpShort> {
    const r = await this.client.call<{ id: string; runId: number }>("tcpShortStart", params);
    return new RemoteTcpShort(this, r.id, r.runId);
  }

  async startUdpSend(params: UdpSendStart): Promise<RemoteUdpSender> {
    const r = await this.client.call<{ id: string }>("udpSendStart", params);
    return new RemoteUdpSender(this, r.id);
  }

  async startUdpReceiver(params: UdpReceiverStart): Promise<RemoteUdpReceiver> {
    const r = await this.client.call<{ id: string; port: number }>("udpReceiverStart", params);
    return new RemoteUdpReceiver(this, r.id, r.port);
  }

  /** @internal */
  stats<T>(id: string, detail?: boolean): Promise<T> {
    return this.client.call<T>("stats", detail === undefined ? { id } : { id, detail });
  }

  /** @internal */
  timeline(id: string, range: TimeRange = {}): Promise<Timeline> {
    return this.client.call<Timeline>("timeline", { id, ...range });
  }

  /** @internal */
  wait<T>(id: string, timeoutMs?: number): Promise<T> {
    return this.client.call<T>("wait", timeoutMs === undefined ? { id } : { id, timeoutMs });
  }

  /** @internal */
  stopInstrument<T>(id: string, graceMs?: number): Promise<T> {
    return this.client.call<T>("stop", graceMs === undefined ? { id } : { id, graceMs });
  }

  stopAll(): Promise<{ stopped: string[] }> {
    return this.client.call("stopAll");
  }

  /** Stops every instrument and the agent process. */
  async close(): Promise<void> {
    if (this.client.running) await this.stopAll().catch(() => undefined);
    await this.client.stop();
  }
}

abstract class Handle {
  constructor(
    readonly agent: TrafficAgent,
    readonly id: string,
  ) {}
}

export class RemoteTcpSink extends Handle {
  constructor(
    agent: TrafficAgent,
    id: string,
    readonly ports: number[],
  ) {
    super(agent, id);
  }
  /** Totals, and with `connections` every connection's detail. */
  report(options: { connections?: boolean } = {}): Promise<SinkReport> {
    return this.agent.stats(this.id, options.connections ?? false);
  }
  timeline(range?: TimeRange): Promise<Timeline> {
    return this.agent.timeline(this.id, range);
  }
  stop(): Promise<SinkReport> {
    return this.agent.stopInstrument(this.id);
  }
}

export class RemoteTcpStreams extends Handle {
  constructor(
    agent: TrafficAgent,
    id: string,
    readonly runId: number,
  ) {
    super(agent, id);
  }
  report(options: { connections?: boolean } = {}): Promise<LongStreamsReport> {
    return this.agent.stats(this.id, options.connections ?? false);
  }
  timeline(range?: TimeRange): Promise<Timeline> {
    return this.agent.timeline(this.id, range);
  }
  /** Half-closes every connection and waits for them; the report has every connection. */
  stop(options: { graceMs?: number } = {}): Promise<LongStreamsReport> {
    return this.agent.stopInstrument(this.id, options.graceMs);
  }
}

export class RemoteTcpShort extends Handle {
  constructor(
    agent: TrafficAgent,
    id: string,
    readonly runId: number,
  ) {
    super(agent, id);
  }
  report(): Promise<ShortConnectionsReport> {
    return this.agent.stats(this.id);
  }
  timeline(range?: TimeRange): Promise<Timeline> {
    return this.agent.timeline(this.id, range);
  }
  finished(timeoutMs?: number): Promise<ShortConnectionsReport> {
    return this.agent.wait(this.id, timeoutMs);
  }
  stop(): Promise<ShortConnectionsReport> {
    return this.agent.stopInstrument(this.id);
  }
}

export class RemoteUdpSender extends Handle {
  totals(): Promise<DgramSenderTotals> {
    return this.agent.stats(this.id);
  }
  finished(timeoutMs?: number): Promise<DgramSenderTotals> {
    return this.agent.wait(this.id, timeoutMs);
  }
  stop(): Promise<DgramSenderTotals> {
    return this.agent.stopInstrument(this.id);
  }
}

export class RemoteUdpReceiver extends Handle {
  constructor(
    agent: TrafficAgent,
    id: string,
    readonly port: number,
  ) {
    super(agent, id);
  }
  /** Per-stream tallies; `timeline: false` leaves the per-stream timelines out. */
  report(options: { timeline?: boolean } = {}): Promise<DgramReceiverReport> {
    return this.agent.stats(this.id, options.timeline ?? true);
  }
  timeline(range?: TimeRange): Promise<Timeline> {
    return this.agent.timeline(this.id, range);
  }
  stop(): Promise<DgramReceiverReport> {
    return this.agent.stopInstrument(this.id);
  }
}
