import cliProgress from "cli-progress";
import { estimateRemainingMs, type SuiteDurations } from "../certify/durations.ts";
import type { FaultsEvent } from "../certify/faults.ts";
import type { CertifyEvent } from "../certify/run.ts";

/**
 * Progress for long steps on stderr: a rewritten status line on a terminal, one line
 * per finished step otherwise (CI logs). stdout stays clean for --json output.
 */
export class ProgressLine {
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = performance.now();
  private lastStep = "";

  constructor(private readonly label: string) {}

  update = (step: string, done: number, total: number): void => {
    const elapsed = ((performance.now() - this.started) / 1000).toFixed(1);
    const line = `[${this.label}] ${step} ${done}/${total} (${elapsed}s)`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${line}`);
    } else if (done === total && step !== this.lastStep) {
      process.stderr.write(`${line}\n`);
    }
    if (done === total) this.lastStep = step;
  };

  done(message: string): void {
    const elapsed = ((performance.now() - this.started) / 1000).toFixed(2);
    process.stderr.write(`${this.tty ? "\r\x1b[2K" : ""}[${this.label}] ${message} in ${elapsed}s\n`);
  }
}

/**
 * One cli-progress bar on stderr with a once-a-second refresh, and lines logged above it
 * (or written plainly when no bar is shown). Shared by the certify and faults displays.
 */
class TerminalBar {
  private multibar: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private ticker: NodeJS.Timeout | undefined;

  constructor(private readonly write: (line: string) => void) {}

  get shown(): boolean {
    return this.bar !== undefined;
  }

  start(format: string, total: number, refresh: () => void): void {
    this.multibar = new cliProgress.MultiBar(
      {
        stream: process.stderr,
        format,
        hideCursor: true,
        clearOnComplete: true,
        barsize: 24,
        fps: 4,
        autopadding: true,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar = this.multibar.create(total, 0);
    this.ticker = setInterval(refresh, 1000);
  }

  update(value: number, payload: Record<string, unknown>): void {
    this.bar?.update(value, payload);
  }

  log(line: string): void {
    if (this.multibar) this.multibar.log(`${line}\n`);
    else this.write(line);
  }

  /** `refresh` runs once more first; lines logged since the last render would otherwise be dropped. */
  stop(refresh: () => void): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    refresh();
    this.multibar?.update();
    this.multibar?.stop();
    this.multibar = undefined;
    this.bar = undefined;
  }
}

/**
 * `tandem certify` progress, on stderr (stdout stays for the verdict and --json).
 *
 * On a terminal: a cli-progress bar with the current case, cases done of the total,
 * pass/fail so far and the time left (estimated from the case history, see
 * lib/certify/durations.ts), with each finished case and each harness step logged above
 * it. cli-progress rather than listr2 or ora: the cases run in another process and arrive
 * as events, which a bar with free-form tokens renders directly, while listr2 wants to own
 * and run the tasks and ora is a spinner without counts. Not on a terminal (CI logs, or
 * with --verbose, whose raw output would tear a bar): one plain line per finished case and
 * per finished step.
 */

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

export class CertifyDisplay {
  private readonly started = performance.now();
  private cases: { id: string; requirements: string[] }[] = [];
  private history: SuiteDurations = { cases: {} };
  private finished = new Set<string>();
  private counts = { pass: 0, fail: 0, other: 0 };
  private running: { id: string; since: number } | undefined;
  private labSince: number | undefined = performance.now();
  private labStep = "";
  private readonly bar: TerminalBar;

  constructor(
    private readonly tty: boolean,
    write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  ) {
    this.bar = new TerminalBar(write);
  }

  private log(line: string): void {
    this.bar.log(line);
  }

  private eta(): string {
    const pending = this.cases.filter((c) => !this.finished.has(c.id) && c.id !== this.running?.id);
    const ms = estimateRemainingMs(
      this.history,
      pending.map((c) => c.id),
      this.running ? { id: this.running.id, elapsedMs: performance.now() - this.running.since } : undefined,
      this.labSince !== undefined ? { elapsedMs: performance.now() - this.labSince } : undefined,
    );
    return ms === undefined ? "time left unknown (no history)" : `~${duration(ms)} left`;
  }

  private refresh(): void {
    if (!this.bar) return;
    const current = this.running
      ? `${this.running.id} (${duration(performance.now() - this.running.since)})`
      : this.labSince !== undefined
        ? `lab bring-up${this.labStep ? `: ${this.labStep}` : ""}`
        : "";
    this.bar.update(this.finished.size, {
      pass: this.counts.pass,
      fail: this.counts.fail,
      other: this.counts.other ? `, ${this.counts.other} other` : "",
      elapsed: duration(performance.now() - this.started),
      left: this.eta(),
      current,
    });
  }

  private startBar(): void {
    if (!this.tty || this.bar.shown) return;
    this.bar.start(
      "{bar} {value}/{total} cases | {pass} pass, {fail} fail{other} | {elapsed}, {left} | {current}",
      this.cases.length,
      () => this.refresh(),
    );
    this.refresh();
  }

  handle = (e: CertifyEvent): void => {
    switch (e.type) {
      case "step":
        this.log(`${e.step}: ${e.detail ?? ""}`.trimEnd());
        break;
      case "cases":
        this.cases = e.cases;
        this.history = e.history;
        this.log(
          `suite: ${e.cases.length} cases; ${Object.keys(e.history.cases).length ? `estimated ${this.eta().replace(" left", "")} from earlier runs` : "no earlier run to estimate the time from"}`,
        );
        this.startBar();
        break;
      case "lab-progress":
        this.labStep = `${e.step} ${e.done}/${e.total}`;
        if (this.tty) this.refresh();
        else if (e.done === e.total) this.log(`lab: ${this.labStep}`);
        break;
      case "lab-up":
        this.labSince = undefined;
        this.log(`lab: ${e.prefix} up in ${(e.ms / 1000).toFixed(1)} s`);
        this.refresh();
        break;
      case "case-start":
        this.labSince = undefined;
        this.running = { id: e.id, since: performance.now() };
        this.refresh();
        break;
      case "case-end": {
        this.finished.add(e.id);
        if (this.running?.id === e.id) this.running = undefined;
        if (e.outcome === "pass") this.counts.pass++;
        else if (e.outcome === "fail") this.counts.fail++;
        else this.counts.other++;
        const total = Math.max(this.cases.length, this.finished.size);
        this.log(
          `[${this.finished.size}/${total}] ${e.outcome.padEnd(5)} ${e.requirements.join(",") || "-"} ${e.id} ${(e.durationMs / 1000).toFixed(1)} s`,
        );
        this.refresh();
        break;
      }
      case "interrupt":
        this.log(`${e.signal}: stopping the suite, tearing the lab down, writing an interrupted report`);
        break;
    }
  };

  stop(): void {
    this.bar.stop(() => this.refresh());
  }
}

/**
 * `tandem faults` progress, on stderr. On a terminal: the same kind of cli-progress bar as
 * certify's, counting runs (the clean run, then fault i/N) with caught/missed so far and
 * the run in progress (its finished cases); each finished run is logged above the bar.
 * Not on a terminal: one plain line per finished run ("[faults natlb] fault 3/13
 * natlb-no-garp: CAUGHT (...) 12 s; so far 3 caught, 0 missed").
 */
export class FaultsDisplay {
  private readonly started = performance.now();
  private readonly bar: TerminalBar;
  private state = { suite: "", run: "", index: 0, total: 0, caught: 0, missed: 0, cases: 0, since: 0 };

  constructor(
    private readonly tty: boolean,
    write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  ) {
    this.bar = new TerminalBar(write);
  }

  private log(line: string): void {
    this.bar.log(line);
  }

  private refresh(): void {
    if (!this.bar.shown) return;
    const s = this.state;
    this.bar.update(s.index, {
      suite: s.suite,
      caught: s.caught,
      missed: s.missed,
      elapsed: duration(performance.now() - this.started),
      current: s.run
        ? `${s.index === 0 ? "clean run" : `fault ${s.index}/${s.total} ${s.run}`} (${s.cases} cases done, ${duration(performance.now() - s.since)})`
        : "",
    });
  }

  handle = (e: FaultsEvent): void => {
    const s = this.state;
    switch (e.type) {
      case "run-start":
        if (e.index === 0) {
          this.stopBar();
          Object.assign(s, { suite: e.suite, caught: 0, missed: 0 });
          this.log(`[faults ${e.suite}] clean run (whole suite), then ${e.total} fault run(s)`);
          if (this.tty) this.startBar(e.total);
        }
        Object.assign(s, { run: e.run, index: e.index, total: e.total, cases: 0, since: performance.now() });
        this.refresh();
        break;
      case "case-end":
        s.cases++;
        this.refresh();
        break;
      case "run-end":
        Object.assign(s, { caught: e.caught, missed: e.missed, index: e.index + 1, run: "" });
        this.log(`[faults ${e.suite}] ${e.line}`);
        this.refresh();
        break;
    }
  };

  private startBar(total: number): void {
    // The clean run and one run per fault.
    this.bar.start(
      "{bar} {value}/{total} runs ({suite}) | {caught} caught, {missed} missed | {elapsed} | {current}",
      total + 1,
      () => this.refresh(),
    );
  }

  private stopBar(): void {
    this.bar.stop(() => this.refresh());
  }

  stop(): void {
    this.stopBar();
  }
}
