// The traffic agent: runs on a lab host (started over SSH by launchAgent(remote, "traffic"))
// and drives the portable instruments of issue 4 there: TCP sink, long-lived TCP streams,
// short TCP connections, the dgram UDP sender and receiver. The native AF_PACKET generator
// (native/pktgen) stays the fast UDP path and runs over SSH directly (udp.ts).
import { readdir, readFile } from "node:fs/promises";
import { log, notify, serveAgent } from "../remote/agent-runtime.ts";
import {
  type AgentOverview,
  type InstrumentKind,
  parseParams,
  StatsParams,
  StopParams,
  TcpShortStartParams,
  TcpSinkStartParams,
  TcpStreamsStartParams,
  TimelineParams,
  UdpReceiverStartParams,
  UdpSendStartParams,
  WaitParams,
} from "./agent-protocol.ts";
import { mergeTimelines } from "./analyzer.ts";
import type { Timeline } from "./stream-tally.ts";
import { TcpSink } from "./tcp-sink.ts";
import { TcpLongStreams, TcpShortConnections } from "./tcp-streams.ts";
import { DgramReceiver, DgramSender } from "./udp-dgram.ts";

type Instrument =
  | { kind: "tcp-sink"; sink: TcpSink }
  | { kind: "tcp-streams"; streams: TcpLongStreams }
  | { kind: "tcp-short"; short: TcpShortConnections }
  | { kind: "udp-send"; sender: DgramSender }
  | { kind: "udp-receiver"; receiver: DgramReceiver };

const instruments = new Map<string, Instrument>();
let nextId = 1;

function register(instrument: Instrument): string {
  const id = `${instrument.kind}-${nextId++}`;
  instruments.set(id, instrument);
  return id;
}

function lookup(method: string, id: string): Instrument {
  const instrument = instruments.get(id);
  if (!instrument) {
    const known = [...instruments.keys()].join(", ") || "none";
    throw new Error(`traffic.${method}: id: no instrument "${id}" (running: ${known})`);
  }
  return instrument;
}

function running(instrument: Instrument): boolean {
  switch (instrument.kind) {
    case "udp-send":
      return !instrument.sender.totals().done;
    case "tcp-short":
      return !instrument.short.report().done;
    default:
      return true;
  }
}

async function stats(instrument: Instrument, detail: boolean): Promise<unknown> {
  switch (instrument.kind) {
    case "tcp-sink":
      return instrument.sink.report({ connections: detail });
    case "tcp-streams":
      return instrument.streams.report({ connections: detail });
    case "tcp-short":
      return instrument.short.report();
    case "udp-send":
      return instrument.sender.totals();
    case "udp-receiver":
      return instrument.receiver.report({ timeline: detail });
  }
}

async function timeline(
  instrument: Instrument,
  range: { fromMs?: number; toMs?: number },
): Promise<Timeline> {
  switch (instrument.kind) {
    case "tcp-sink":
      return instrument.sink.timeline(range);
    case "tcp-streams":
      return instrument.streams.timeline(range);
    case "tcp-short":
      return instrument.short.timeline(range);
    case "udp-send":
      throw new Error("traffic.timeline: a UDP sender keeps no timeline; ask its receiver");
    case "udp-receiver": {
      // One series per stream ("stream N"), aligned on one time axis.
      const report = await instrument.receiver.report();
      let merged: Timeline | undefined;
      for (const s of report.streams) {
        const renamed: Timeline = {
          ...s.timeline,
          series: Object.fromEntries(
            Object.entries(s.timeline.series).map(([, counts]) => [`stream ${s.streamId}`, counts]),
          ),
        };
        merged = merged ? mergeTimelines(merged, renamed) : renamed;
      }
      return merged ?? { binMs: 10, startMs: 0, series: {} };
    }
  }
}

async function stop(instrument: Instrument, graceMs: number | undefined): Promise<unknown> {
  switch (instrument.kind) {
    case "tcp-sink":
      return instrument.sink.stop();
    case "tcp-streams":
      return instrument.streams.stop(graceMs === undefined ? {} : { graceMs });
    case "tcp-short":
      return instrument.short.stop();
    case "udp-send":
      return instrument.sender.stop();
    case "udp-receiver":
      return instrument.receiver.stop();
  }
}

function finishedPromise(method: string, instrument: Instrument): Promise<unknown> {
  switch (instrument.kind) {
    case "udp-send":
      return instrument.sender.finished;
    case "tcp-short":
      return instrument.short.finished;
    default:
      throw new Error(`traffic.${method}: a ${instrument.kind} runs until stopped; nothing to wait for`);
  }
}

async function overview(): Promise<AgentOverview> {
  let soft: number | null = null;
  let hard: number | null = null;
  try {
    const limits = await readFile("/proc/self/limits", "utf8");
    const match = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(limits);
    if (match) {
      soft = match[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(match[1]);
      hard = match[2] === "unlimited" ? Number.POSITIVE_INFINITY : Number(match[2]);
    }
  } catch {
    // not Linux: leave unknown
  }
  const openFiles = await readdir("/proc/self/fd").then(
    (entries) => entries.length,
    () => null,
  );
  return {
    pid: process.pid,
    openFilesLimit: { soft, hard },
    openFiles,
    instruments: [...instruments].map(([id, i]) => ({
      id,
      kind: i.kind as InstrumentKind,
      running: running(i),
    })),
  };
}

serveAgent({
  name: "traffic",
  methods: {
    overview,

    async tcpSinkStart(params: unknown) {
      const p = parseParams("tcpSinkStart", TcpSinkStartParams, params);
      const sink = await TcpSink.start(p);
      const id = register({ kind: "tcp-sink", sink });
      return { id, ports: sink.report().totals.ports };
    },

    tcpStreamsStart(params: unknown) {
      const p = parseParams("tcpStreamsStart", TcpStreamsStartParams, params);
      const streams = new TcpLongStreams(p);
      streams.start();
      return { id: register({ kind: "tcp-streams", streams }), runId: streams.runId };
    },

    tcpShortStart(params: unknown) {
      const p = parseParams("tcpShortStart", TcpShortStartParams, params);
      const short = new TcpShortConnections(p);
      short.start();
      const id = register({ kind: "tcp-short", short });
      void short.finished.then((report) => notify("trafficDone", { id, kind: "tcp-short", report }));
      return { id, runId: short.runId };
    },

    async udpSendStart(params: unknown) {
      const p = parseParams("udpSendStart", UdpSendStartParams, params);
      const sender = new DgramSender(p);
      await sender.start();
      const id = register({ kind: "udp-send", sender });
      void sender.finished.then((totals) => notify("trafficDone", { id, kind: "udp-send", report: totals }));
      return { id };
    },

    async udpReceiverStart(params: unknown) {
      const p = parseParams("udpReceiverStart", UdpReceiverStartParams, params);
      const receiver = await DgramReceiver.start(p);
      return { id: register({ kind: "udp-receiver", receiver }), port: receiver.port };
    },

    stats(params: unknown) {
      const p = parseParams("stats", StatsParams, params);
      return stats(lookup("stats", p.id), p.detail ?? false);
    },

    timeline(params: unknown) {
      const p = parseParams("timeline", TimelineParams, params);
      return timeline(lookup("timeline", p.id), { fromMs: p.fromMs, toMs: p.toMs });
    },

    /** Resolves when a finite instrument (UDP sender, short connections) has finished. */
    async wait(params: unknown) {
      const p = parseParams("wait", WaitParams, params);
      const finished = finishedPromise("wait", lookup("wait", p.id));
      if (p.timeoutMs === undefined) return finished;
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          finished,
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`traffic.wait: ${p.id} not finished within ${p.timeoutMs} ms`)),
              p.timeoutMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },

    /** Stops an instrument and returns its final report; the id is forgotten. */
    async stop(params: unknown) {
      const p = parseParams("stop", StopParams, params);
      const instrument = lookup("stop", p.id);
      const report = await stop(instrument, p.graceMs);
      instruments.delete(p.id);
      return report;
    },

    async stopAll() {
      const ids = [...instruments.keys()];
      for (const id of ids) {
        const instrument = instruments.get(id);
        if (instrument) await stop(instrument, 1000);
        instruments.delete(id);
      }
      return { stopped: ids };
    },
  },
  async onShutdown() {
    for (const [id, instrument] of instruments) {
      try {
        await stop(instrument, 500);
      } catch (error) {
        log(`traffic: stopping ${id} at shutdown failed: ${(error as Error).message}`);
      }
    }
    instruments.clear();
  },
});
