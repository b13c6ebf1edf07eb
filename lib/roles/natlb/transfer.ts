import { entriesPerDatagram } from "../../wire/natlb.ts";
import type { ConnEntry } from "./conn-table.ts";
import type { ControlChannel } from "./control-channel.ts";
import { fromWireEntry, toWireEntry } from "./wire-entry.ts";

/**
 * Step 3's entry transfer over the control messages: the entries of one VIP go to the
 * new owner as table entry transfer messages (type 3), `entriesPerDatagram()` per
 * datagram, each part confirmed by an ack. The receiver imports all parts at once when
 * the last one arrives (one `conntrack -R` batch), and only the ack of that part says so.
 */
export async function sendEntryParts(
  channel: ControlChannel,
  args: { vip: string; from: number; to: number; dest: { address: string; port: number }; moveId: number },
  entries: readonly ConnEntry[],
): Promise<number> {
  const per = entriesPerDatagram();
  const parts = Math.max(1, Math.ceil(entries.length / per));
  const acks: Promise<number>[] = [];
  for (let part = 0; part < parts; part++) {
    const chunk = entries.slice(part * per, (part + 1) * per).map((e) => toWireEntry(e));
    acks.push(
      channel.request(
        { type: 3, vip: args.vip, from: args.from, to: args.to, part, parts, entries: chunk },
        args.dest,
        { moveId: args.moveId, timeoutMs: 15_000 },
      ),
    );
  }
  await Promise.all(acks);
  return entries.length;
}

/** Collects the parts of one transfer (per sender and move) until all are there. */
export class PartAssembler {
  private readonly open = new Map<string, { parts: number; got: Map<number, ConnEntry[]> }>();

  /** Returns every entry once the last part arrived, else undefined. */
  add(
    sender: number,
    moveId: number,
    vip: string,
    part: number,
    parts: number,
    entries: ConnEntry[],
  ): ConnEntry[] | undefined {
    const key = `${sender}/${moveId}/${vip}`;
    let t = this.open.get(key);
    if (!t || t.parts !== parts) {
      t = { parts, got: new Map() };
      this.open.set(key, t);
    }
    t.got.set(part, entries);
    if (t.got.size < parts) return undefined;
    this.open.delete(key);
    return [...t.got.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, e]) => e);
  }
}

export function wireEntries(list: readonly Parameters<typeof fromWireEntry>[0][]): ConnEntry[] {
  const out: ConnEntry[] = [];
  for (const w of list) {
    const e = fromWireEntry(w);
    if (e) out.push(e);
  }
  return out;
}
