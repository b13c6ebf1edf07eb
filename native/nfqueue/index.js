// ESM wrapper over the native binding (build/Release/tandem_nfqueue.node).
// Types and documentation: index.d.ts.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const binding = require("./build/Release/tandem_nfqueue.node");

const VERDICTS = { drop: binding.NF_DROP, accept: binding.NF_ACCEPT, repeat: binding.NF_REPEAT };

function verdictCode(verdict) {
  const code = VERDICTS[verdict];
  if (code === undefined)
    throw new TypeError(`verdict must be 'accept', 'drop' or 'repeat', got ${String(verdict)}`);
  return code;
}

/** Parses /proc/net/netfilter/nfnetlink_queue (one line per bound queue). */
export function parseQueueStats(text) {
  const out = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const n = f.map((x) => Number(x));
    out.push({
      queueNum: n[0],
      portid: n[1],
      queueTotal: n[2],
      copyMode: n[3],
      copyRange: n[4],
      queueDropped: n[5],
      userDropped: n[6],
      idSequence: n[7],
    });
  }
  return out;
}

export class NfQueue {
  #native;
  #queueNum;
  constructor(queueNum, options, onPacket) {
    this.#queueNum = queueNum;
    this.#native = new binding.Queue(queueNum, options ?? {}, (batch) => {
      // A throwing handler must not cost the rest of the batch its delivery (each packet
      // needs a verdict); the first error is rethrown afterwards (uncaughtException).
      let failure;
      for (const packet of batch) {
        try {
          onPacket(packet);
        } catch (e) {
          failure ??= { e };
        }
      }
      if (failure) throw failure.e;
    });
    // Packets that arrived while the queue was being configured.
    setImmediate(() => {
      if (this.#native.counters().open) this.#native.pump();
    });
  }
  get queueNum() {
    return this.#queueNum;
  }
  verdict(id, verdict, options) {
    this.#native.verdict(id, verdictCode(verdict), options?.mark, options?.payload);
  }
  verdictMany(ids, verdict, options) {
    const array = ids instanceof Uint32Array ? ids : Uint32Array.from(ids);
    if (array.length > 0) this.#native.verdictMany(array, verdictCode(verdict), options?.mark);
  }
  verdictUpTo(id, verdict, options) {
    this.#native.verdictUpTo(id, verdictCode(verdict), options?.mark);
  }
  pump() {
    if (this.#native.counters().open) this.#native.pump();
  }
  counters() {
    return this.#native.counters();
  }
  stats() {
    const counters = this.#native.counters();
    const all = parseQueueStats(this.#native.readProcStats());
    const kernel = all.find((s) => s.queueNum === this.#queueNum && s.portid === counters.portid);
    return { ...counters, kernel };
  }
  close() {
    this.#native.close();
  }
}

export function openQueue(queueNum, options, onPacket) {
  return new NfQueue(queueNum, options, onPacket);
}
