import type { RemoteHost, RemoteProcess } from "../../lib/remote/index.ts";

/**
 * Sends prebuilt Ethernet frames from a lab host: once, or periodically, on command.
 * The frames are built in TypeScript with lib/wire's encoders (so a malformed frame is
 * exactly the bytes we meant); the sender is a few lines of Debian's python3 on an
 * AF_PACKET socket, run over SSH and driven with JSON lines on stdin. Python rather than
 * Node because a raw L2 socket needs no addon there, and scapy's sendp() opens a socket
 * per call (41 pps measured here), too slow and too jittery for VRRP timers.
 */
const SPEAKER_PY = String.raw`
import json, socket, sys, threading, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((sys.argv[1], 0))
jobs = {}
out = threading.Lock()
def say(obj):
    with out:
        sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()
def periodic(jid, frame, interval, ev):
    nxt = time.monotonic()
    while not ev.is_set():
        sock.send(frame)
        nxt += interval
        ev.wait(max(0.0, nxt - time.monotonic()))
for line in sys.stdin:
    m = json.loads(line)
    try:
        if m["cmd"] == "send":
            for f in m["frames"]:
                sock.send(bytes.fromhex(f))
        elif m["cmd"] == "start":
            ev = threading.Event(); jobs[m["id"]] = ev
            threading.Thread(target=periodic, args=(m["id"], bytes.fromhex(m["frame"]), m["intervalMs"] / 1000.0, ev), daemon=True).start()
        elif m["cmd"] == "stop":
            ev = jobs.pop(m["id"], None)
            if ev: ev.set()
        say({"ack": m["seq"], "t": time.time() * 1000})
    except Exception as e:
        say({"ack": m["seq"], "error": str(e)})
`;

export class FrameSpeaker {
  private seq = 0;
  private buffer = "";
  private readonly waiting = new Map<number, { resolve: (t: number) => void; reject: (e: Error) => void }>();
  private nextJob = 0;

  private constructor(private readonly proc: RemoteProcess) {
    proc.channel.on("data", (chunk: Buffer) => this.onData(chunk));
    void proc.done.then((r) => {
      for (const w of this.waiting.values()) w.reject(new Error(`frame speaker exited: ${r.stderr.trim()}`));
      this.waiting.clear();
    });
  }

  static async start(host: RemoteHost, ifname: string): Promise<FrameSpeaker> {
    const proc = await host.execStream(["python3", "-u", "-c", SPEAKER_PY, ifname], { collect: true });
    const speaker = new FrameSpeaker(proc);
    await speaker.command({ cmd: "send", frames: [] }); // round trip: the socket is bound
    return speaker;
  }

  private onData(chunk: Buffer): void {
    this.buffer += chunk.toString();
    let nl = this.buffer.indexOf("\n");
    while (nl >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      nl = this.buffer.indexOf("\n");
      let msg: { ack?: number; t?: number; error?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.ack === undefined) continue;
      const w = this.waiting.get(msg.ack);
      this.waiting.delete(msg.ack);
      if (msg.error) w?.reject(new Error(`frame speaker: ${msg.error}`));
      else w?.resolve(msg.t ?? Date.now());
    }
  }

  /** Resolves with the host's wall clock (ms) when the command was carried out. */
  private command(m: Record<string, unknown>): Promise<number> {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.proc.write(`${JSON.stringify({ ...m, seq })}\n`);
    });
  }

  send(...frames: Uint8Array[]): Promise<number> {
    return this.command({ cmd: "send", frames: frames.map((f) => Buffer.from(f).toString("hex")) });
  }

  /** Sends `frame` now and every `intervalMs` until the returned stop function is called. */
  async every(intervalMs: number, frame: Uint8Array): Promise<() => Promise<number>> {
    const id = `j${++this.nextJob}`;
    await this.command({ cmd: "start", id, frame: Buffer.from(frame).toString("hex"), intervalMs });
    return () => this.command({ cmd: "stop", id });
  }

  async close(): Promise<void> {
    this.proc.endInput();
    await Promise.race([this.proc.done, new Promise((r) => setTimeout(r, 2000))]);
    await this.proc.kill("KILL").catch(() => {});
  }
}
