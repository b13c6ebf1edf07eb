import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/**
 * A small management web page a reference role can mount: status, sharing table and a
 * configuration form, behind a token (login form -> HttpOnly session cookie; or
 * `Authorization: Bearer TOKEN`). It listens on the host's loopback only: it is reached
 * through an SSH tunnel, like a router's management interface behind a jump host, so no
 * lab network carries it. node:http directly: three pages and a form need no framework.
 */
export interface SharingRow {
  condition: string;
  disposition: string;
  packets: number;
  bytes: number;
}

export interface ManagedConfig {
  priority: number;
  advertIntervalMs: number;
  mode: "timer" | "sequence-number" | "exactly-once";
  timerDelayMs: number;
}

export interface MgmtPageSource {
  title: string;
  status(): Promise<Record<string, string | number | boolean>>;
  sharingTable(): Promise<SharingRow[]>;
  getConfig(): ManagedConfig;
  /** Validates and stores; returns an error message or undefined. */
  setConfig(next: ManagedConfig): Promise<string | undefined>;
}

const esc = (s: unknown) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}
nav a{margin-right:1em}.msg{padding:.4em;background:#eef}.err{padding:.4em;background:#fee}</style></head>
<body><h1>${esc(title)}</h1><nav><a href="/">status</a><a href="/sharing">sharing table</a><a href="/config">configuration</a></nav>${body}</body></html>`;
}

function readBody(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.on("data", (c: Buffer) => {
      data += c.toString();
      if (data.length > 65_536) req.destroy(new Error("form too large"));
    });
    req.on("end", () => resolve(new URLSearchParams(data)));
    req.on("error", reject);
  });
}

function tokenMatches(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieToken(req: IncomingMessage): string | undefined {
  const m = /(?:^|;\s*)tandem_mgmt=([^;]+)/.exec(req.headers.cookie ?? "");
  return m?.[1] ? decodeURIComponent(m[1]) : undefined;
}

export function parseConfigForm(form: URLSearchParams): ManagedConfig | string {
  const num = (k: string) => Number(form.get(k));
  const cfg = {
    priority: num("priority"),
    advertIntervalMs: num("advertIntervalMs"),
    mode: form.get("mode") as ManagedConfig["mode"],
    timerDelayMs: num("timerDelayMs"),
  };
  if (!Number.isInteger(cfg.priority) || cfg.priority < 1 || cfg.priority > 254)
    return `priority: expected 1..254, got ${form.get("priority")}`;
  if (!Number.isInteger(cfg.advertIntervalMs) || cfg.advertIntervalMs < 10 || cfg.advertIntervalMs % 10 !== 0)
    return `advertIntervalMs: expected a multiple of 10 ms, got ${form.get("advertIntervalMs")}`;
  if (!["timer", "sequence-number", "exactly-once"].includes(cfg.mode))
    return `mode: unknown mode ${form.get("mode")}`;
  if (!Number.isInteger(cfg.timerDelayMs) || cfg.timerDelayMs < 0)
    return `timerDelayMs: expected >= 0, got ${form.get("timerDelayMs")}`;
  return cfg;
}

export function startMgmtPage(
  source: MgmtPageSource,
  options: { port: number; token: string },
): Promise<Server> {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const html = (status: number, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "text/html; charset=utf-8", ...headers });
      res.end(page(source.title, body));
    };
    if (url.pathname === "/login") {
      if (req.method === "POST") {
        const form = await readBody(req);
        if (tokenMatches(form.get("token") ?? undefined, options.token)) {
          res.writeHead(303, {
            location: "/",
            "set-cookie": `tandem_mgmt=${encodeURIComponent(options.token)}; HttpOnly; SameSite=Strict; Path=/`,
          });
          res.end();
        } else html(401, `<p class="err" id="login-error">wrong token</p>${loginForm()}`);
        return;
      }
      html(200, loginForm());
      return;
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (!tokenMatches(cookieToken(req) ?? bearer, options.token)) {
      html(401, `<p class="err">login required</p>${loginForm()}`);
      return;
    }
    if (url.pathname === "/") {
      const st = await source.status();
      html(
        200,
        `<table id="status">${Object.entries(st)
          .map(([k, v]) => `<tr><th>${esc(k)}</th><td data-key="${esc(k)}">${esc(v)}</td></tr>`)
          .join("")}</table>`,
      );
    } else if (url.pathname === "/sharing") {
      const rows = await source.sharingTable();
      html(
        200,
        `<table id="sharing"><tr><th>condition</th><th>disposition</th><th>packets</th><th>bytes</th></tr>${rows
          .map(
            (r) =>
              `<tr data-condition="${esc(r.condition)}"><td>${esc(r.condition)}</td><td>${esc(r.disposition)}</td><td>${r.packets}</td><td>${r.bytes}</td></tr>`,
          )
          .join("")}</table><p>${rows.length} condition(s)</p>`,
      );
    } else if (url.pathname === "/config" && req.method === "POST") {
      const parsed = parseConfigForm(await readBody(req));
      const error = typeof parsed === "string" ? parsed : await source.setConfig(parsed);
      html(
        error ? 400 : 200,
        `${error ? `<p class="err" id="config-error">${esc(error)}</p>` : `<p class="msg" id="config-saved">configuration saved</p>`}${configForm(source.getConfig())}`,
      );
    } else if (url.pathname === "/config") {
      html(200, configForm(source.getConfig()));
    } else if (url.pathname === "/config.json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(source.getConfig()));
    } else html(404, "<p>not found</p>");
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`error: ${e.message}`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", () => resolve(server));
  });
}

function loginForm(): string {
  return `<form method="post" action="/login" id="login"><label>token <input type="password" name="token" id="token"></label> <button type="submit">log in</button></form>`;
}

function configForm(c: ManagedConfig): string {
  const modes = ["exactly-once", "sequence-number", "timer"]
    .map((m) => `<option value="${m}"${m === c.mode ? " selected" : ""}>${m}</option>`)
    .join("");
  return `<form method="post" action="/config" id="config">
<p><label>priority <input name="priority" id="priority" value="${c.priority}"></label></p>
<p><label>advertisement interval (ms) <input name="advertIntervalMs" id="advertIntervalMs" value="${c.advertIntervalMs}"></label></p>
<p><label>operation mode <select name="mode" id="mode">${modes}</select></label></p>
<p><label>timer delay (ms) <input name="timerDelayMs" id="timerDelayMs" value="${c.timerDelayMs}"></label></p>
<p><button type="submit" id="save">save</button></p></form>`;
}
