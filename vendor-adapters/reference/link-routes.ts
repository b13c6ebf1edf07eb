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

  /** Records the link's non-kernel routes (IPv4 and IPv6), then sets it down. */
  async down(host: string, ifname: string): Promise<void> {
    const h = this.hostOf(host);
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
    const r = await h.exec(["ip", "link", "set", "dev", ifname, "down"]);
    if (r.code !== 0) throw new Error(`${host}: ip link set dev ${ifname} down: ${r.stderr.trim()}`);
    // Taken down twice before coming up: the first record has the routes (the second sees none).
    if (!this.links.some((l) => l.host === host && l.ifname === ifname))
      this.links.push({ host, ifname, routes });
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
