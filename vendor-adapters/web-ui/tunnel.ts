import { createServer, type Server, type Socket } from "node:net";
import type { RemoteHost } from "../../lib/remote/index.ts";

/**
 * A loopback listener in the controller's namespace whose connections are carried over
 * the device host's SSH session to a TCP port on that host's loopback (`socat STDIO
 * TCP:127.0.0.1:PORT` on the far end), as `ssh -L` would. The browser talks to
 * 127.0.0.1:<local port>; the device's page never needs an address on a lab network.
 */
export interface Tunnel {
  url: string;
  close(): Promise<void>;
}

export async function openTunnel(remote: RemoteHost, remotePort: number): Promise<Tunnel> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    // Bytes the browser sends before the SSH channel is open wait here.
    const early: Buffer[] = [];
    let ended = false;
    const buffer = (d: Buffer) => early.push(d);
    socket.on("data", buffer);
    socket.on("end", () => {
      ended = true;
    });
    remote
      // onStdout, not the raw channel: the session layer strips its own pid marker line.
      .execStream(["socat", "STDIO", `TCP:127.0.0.1:${remotePort}`], { onStdout: (d) => socket.write(d) })
      .then((proc) => {
        socket.off("data", buffer);
        for (const d of early) proc.write(d);
        if (ended) proc.endInput();
        socket.on("data", (d: Buffer) => proc.write(d));
        socket.on("end", () => proc.endInput());
        socket.on("error", () => void proc.kill("KILL"));
        void proc.done.then(() => socket.end());
      })
      .catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
