import type { ExecResult } from "../../lib/remote/command.ts";

/** What the helper needs of a lab host: run a command (argv form). */
export interface RouteHost {
  exec(command: readonly string[]): Promise<ExecResult>;
}

interface DownedLink {
  host: string;
  ifname: string;
  /** `ip route` argument lists (family flag first, without `dev`) of the non-kernel routes. */
  routes: string[][];
}

/**
 * Links the reference adapter took down, with the routes through them. The kernel drops a
 * link's routes when it goes down, and `ip link set up` brings back only the connected ones
 * (proto kernel): a static or default route would be gone for good, on a physical host even
 * after the lab run. So every link the adapter takes down has its other routes recorded
 * first and put back (`ip route replace`) when the adapter brings it up again.
 */
export class DownedLinks {
  private readonly links: DownedLink[] = [];

  constructor(private readonly hostOf: (name: string) => RouteHost) {}

  /**
   * Records the non-kernel routes (IPv4 and IPv6) of links about to go down, so that up()
   * puts them back. Call it before whatever takes them down; a link recorded twice before
   * coming up keeps its first record (the second would find no routes).
   */
  async record(host: string, ifnames: readonly string[]): Promise<void> {
    const h = this.hostOf(host);
    for (const ifname of ifnames) {
      if (this.links.some((l) => l.host === host && l.ifname === ifname)) continue;
      const routes: string[][] = [];
      for (const family of ["-4", "-6"]) {
        const shown = await h.exec(["ip", family, "route", "show", "dev", ifname]);
        if (shown.code !== 0)
          throw new Error(`${host}: ip ${family} route show dev ${ifname}: ${shown.stderr.trim()}`);
        for (const line of shown.stdout.split("\n").map((l) => l.trim())) {
          if (!line || /\bproto kernel\b/.test(line)) continue;
          routes.push([family, ...line.split(/\s+/)]);
        }
      }
      this.links.push({ host, ifname, routes });
    }
  }

  /** Records the link's routes, then sets it down. */
  async down(host: string, ifname: string): Promise<void> {
    await this.record(host, [ifname]);
    const r = await this.hostOf(host).exec(["ip", "link", "set", "dev", ifname, "down"]);
    if (r.code !== 0) throw new Error(`${host}: ip link set dev ${ifname} down: ${r.stderr.trim()}`);
  }

  /** Sets the link up and puts back the routes recorded when it went down (if this adapter downed it). */
  async up(host: string, ifname: string): Promise<void> {
    const h = this.hostOf(host);
    const r = await h.exec(["ip", "link", "set", "dev", ifname, "up"]);
    if (r.code !== 0) throw new Error(`${host}: ip link set dev ${ifname} up: ${r.stderr.trim()}`);
    const i = this.links.findIndex((l) => l.host === host && l.ifname === ifname);
    if (i < 0) return;
    const [link] = this.links.splice(i, 1);
    for (const [family, ...route] of link!.routes) {
      const put = await h.exec(["ip", family!, "route", "replace", ...route, "dev", ifname]);
      if (put.code !== 0)
        throw new Error(
          `${host}: could not restore route "${route.join(" ")}" on ${ifname} after link up: ${put.stderr.trim()}`,
        );
    }
  }

  /** Every link downed on `host` (all hosts when omitted) up again with its routes. */
  async upAll(host?: string): Promise<void> {
    for (const l of this.links.filter((x) => host === undefined || x.host === host))
      await this.up(l.host, l.ifname);
  }
}
