// Type 4 extension (docs/vrls.md): the new owner's "holding" confirmation names packets it
// holds; the old owner's member engine hands them to its stop, so the driver stops only once
// it has taken one of them in itself. Pure engine and wire mapping, no lab.
import { describe, expect, it } from "vitest";
import { MemberEngine } from "../lib/roles/vrls/member.ts";
import type { AllocationEntry, VrlsMessage } from "../lib/roles/vrls/messages.ts";
import { fromWire, toWire } from "../lib/roles/vrls/wire-map.ts";

const O = "198.18.1.2";
const N = "198.18.1.3";
const C = "198.18.1.11";
const D = "198.18.1.12";

function allocation(
  version: number,
  entries: AllocationEntry[],
): Extract<VrlsMessage, { type: "allocation" }> {
  return { type: "allocation", epoch: 1, version, mode: "exactly-once", entries };
}

/** Version 2: both conditions move from O to N. */
const MOVED: AllocationEntry[] = [
  { condition: C, owner: N, previousOwner: O },
  { condition: D, owner: N, previousOwner: O },
];

function holding(held: Record<string, string[]>): Extract<VrlsMessage, { type: "confirmation" }> {
  return { type: "confirmation", epoch: 1, version: 2, observing: [], holding: [C, D], done: false, held };
}

describe("held packets in the holding confirmation", () => {
  it("the old owner's stop carries the packets the new owner named, per condition", () => {
    const o = new MemberEngine({ self: O, timerDelayMs: 20, retryMs: 50 });
    o.onAllocation(
      allocation(1, [
        { condition: C, owner: O, previousOwner: null },
        { condition: D, owner: O, previousOwner: null },
      ]),
      0,
      O,
    );
    o.onAllocation(allocation(2, MOVED), 10, O);
    const actions = o.onConfirmation(N, holding({ [C]: ["00000000000000aa", "00000000000000ab"] }), 12);
    const stop = actions.find((a) => a.type === "stopAndSendMarkers");
    expect(stop).toMatchObject({
      conditions: [C, D],
      held: { [C]: ["00000000000000aa", "00000000000000ab"] },
    });
    // D had none named: the driver falls back to its settle for it.
    expect(stop && "held" in stop ? Object.keys(stop.held ?? {}) : []).toEqual([C]);
  });

  it("survives the wire: identities per condition, in order", () => {
    const entries = MOVED;
    const msg = holding({ [C]: ["fedcba9876543210", "0000000000000001"], [D]: ["00000000000000ff"] });
    const [part] = toWire(msg);
    expect(part).toBeDefined();
    const back = fromWire({ ...(part!.body as object), masterEpoch: 1, sender: N } as never, 0, {
      epoch: 1,
      version: 2,
      entries,
    });
    expect(back).toEqual(msg);
  });
});
