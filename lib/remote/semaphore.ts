/** Counts free slots; `acquire` waits in FIFO order when none is free. */
export class Semaphore {
  private readonly waiting: Array<() => void> = [];
  private free: number;

  constructor(readonly size: number) {
    this.free = size;
  }

  get inUse(): number {
    return this.size - this.free;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with a release function (calling it twice releases once). */
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
