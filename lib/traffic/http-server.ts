import { createServer, type Server } from "node:http";

/**
 * The Web server program of servers 5a-5c: keep-alive requests (`GET /tick?c=ID&s=SEQ`,
 * answered with "ID SEQ SERVER") and long downloads (`GET /download?bytes=N&rate=BPS`,
 * a byte stream whose byte i is i mod 251, so the client can check every byte arrived
 * once and in order). Both keep TCP connections alive across VIP moves.
 */
export interface WebServerStats {
  requests: number;
  downloads: number;
  bytesSent: number;
  openConnections: number;
  /** Distinct peer addresses seen: the clients (embodiment 1) or the balancers' internal addresses (2). */
  peers: Record<string, number>;
}

export function streamByte(i: number): number {
  return i % 251;
}

export function startWebServer(options: { port: number; host?: string; name: string }): Promise<{
  server: Server;
  stats: () => WebServerStats;
  close: () => Promise<void>;
}> {
  const s: WebServerStats = { requests: 0, downloads: 0, bytesSent: 0, openConnections: 0, peers: {} };
  const server = createServer({ keepAlive: true, keepAliveTimeout: 600_000 }, (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const peer = req.socket.remoteAddress ?? "?";
    s.peers[peer] = (s.peers[peer] ?? 0) + 1;
    if (url.pathname === "/tick") {
      s.requests++;
      const body = `${url.searchParams.get("c") ?? "-"} ${url.searchParams.get("s") ?? "-"} ${options.name}\n`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
      res.end(body);
      s.bytesSent += body.length;
      return;
    }
    if (url.pathname === "/download") {
      s.downloads++;
      const total = Number(url.searchParams.get("bytes") ?? "1000000");
      const rate = Number(url.searchParams.get("rate") ?? "100000");
      const chunk = Math.max(1, Math.min(16384, Math.floor(rate / 20)));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total });
      let sent = 0;
      const tick = () => {
        if (res.destroyed) return;
        const n = Math.min(chunk, total - sent);
        const buf = Buffer.allocUnsafe(n);
        for (let i = 0; i < n; i++) buf[i] = streamByte(sent + i);
        sent += n;
        s.bytesSent += n;
        if (sent >= total) res.end(buf);
        else {
          res.write(buf);
          setTimeout(tick, 50);
        }
      };
      tick();
      return;
    }
    res.writeHead(404).end();
  });
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  server.on("connection", (sock) => {
    s.openConnections++;
    sock.on("close", () => s.openConnections--);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () =>
      resolve({
        server,
        stats: () => ({ ...s, peers: { ...s.peers } }),
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    );
  });
}
