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
