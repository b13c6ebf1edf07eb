/**
 * The transfer processing mode table (seed 002, Figs. 7A/7B and 8A-8C): destination IP
 * address 70 -> process mode 71. A VIP absent from the table is not received at all
 * (the kernel has no such local address: the packet is discarded with an error).
 */
export type ProcessMode = "normal" | "transition";

export interface ModeRow {
  /** 70 */
  address: string;
  /** 71 */
  mode: ProcessMode;
  since: number;
}

export class ModeTable {
  private readonly rows = new Map<string, ModeRow>();
  /** Per address: how many times it entered transition mode (kept when the row goes). */
  private readonly entered = new Map<string, number>();

  get(address: string): ProcessMode | undefined {
    return this.rows.get(address)?.mode;
  }

  /** Step 1 on the new owner (Fig. 8A): the VIP enters transition mode. */
  setTransition(address: string, now = Date.now()): void {
    if (this.rows.get(address)?.mode !== "transition")
      this.entered.set(address, (this.entered.get(address) ?? 0) + 1);
    this.rows.set(address, { address, mode: "transition", since: now });
  }

  /** Normal operation (Fig. 7) or step 4 on the new owner (Fig. 8C). */
  setNormal(address: string, now = Date.now()): void {
    this.rows.set(address, { address, mode: "normal", since: now });
  }

  /** Step 4 on the old owner (Fig. 8B): the VIP leaves the table. */
  remove(address: string): boolean {
    return this.rows.delete(address);
  }

  /** How many times `address` entered transition mode since this table was made. */
  transitionsEntered(address: string): number {
    return this.entered.get(address) ?? 0;
  }

  list(): ModeRow[] {
    return [...this.rows.values()].sort((a, b) => a.address.localeCompare(b.address));
  }

  inMode(mode: ProcessMode): string[] {
    return this.list()
      .filter((r) => r.mode === mode)
      .map((r) => r.address);
  }
}
