/**
 * The VRRP/VRLS messages seen on a LAN, in order (a capture of IP protocol 112 read back):
 * time, sender, type. Used to check the seed's message sequences on the wire (Fig. 15:
 * 6 -> 7 -> 8 -> 3 -> 4 [-> 5]). Frames that are not IPv4/112 are skipped.
 */
import type { Lab } from "../lab/index.ts";
import { Capture } from "./capture.ts";

export interface WireMessage {
  at: number;
  src: string;
  dst: string;
  type: number;
}

export class VrlsWireLog {
  private constructor(private readonly capture: Capture) {}

  static async start(lab: Lab, host: string, iface = "eth0"): Promise<VrlsWireLog> {
    return new VrlsWireLog(
      await Capture.start(lab.host(host).remote, {
        interface: iface,
        filter: "ip proto 112",
        snapLength: 128,
      }),
    );
  }

  async stop(): Promise<WireMessage[]> {
    await this.capture.stop();
    const out: WireMessage[] = [];
    for await (const r of this.capture.reader()) {
      const b = r.data;
      if (b.length < 14 + 20 + 1 || b[12] !== 0x08 || b[13] !== 0x00) continue;
      const ihl = ((b[14] ?? 0) & 0x0f) * 4;
      if (b[23] !== 112 || b.length < 14 + ihl + 1) continue;
      const ip = (o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
      out.push({ at: r.tsMs, src: ip(26), dst: ip(30), type: (b[14 + ihl] ?? 0) & 0x0f });
    }
    await this.capture.remove();
    return out;
  }
}

/**
 * Finds `sequence` (types, each from the given sender or anyone) in order in `log`, each
 * step after the previous, starting at or after `from`. Returns the matched messages or null.
 */
export function findSequence(
  log: readonly WireMessage[],
  sequence: readonly { type: number; src?: string }[],
  from = 0,
): WireMessage[] | null {
  const matched: WireMessage[] = [];
  let i = 0;
  let t = from;
  for (const step of sequence) {
    while (i < log.length) {
      const m = log[i++] as WireMessage;
      if (m.at < t) continue;
      if (m.type === step.type && (step.src === undefined || m.src === step.src)) {
        matched.push(m);
        t = m.at;
        break;
      }
    }
    if (matched.length < sequence.indexOf(step) + 1) return null;
  }
  return matched;
}
