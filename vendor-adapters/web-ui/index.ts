import type { Browser, Page } from "playwright-core";
import { LabHost } from "../../lib/lab/lab.ts";
import { RemoteHost } from "../../lib/remote/index.ts";
import { launchChromium } from "../../lib/report/browser.ts";
import { primaryHost } from "../common.ts";
import type {
  AdapterHost,
  AdapterRegistration,
  Capability,
  DeviceConfig,
  DeviceIdentity,
  DeviceState,
  DeviceTarget,
  Fault,
  VendorAdapter,
} from "../types.ts";
import { openTunnel, type Tunnel } from "./tunnel.ts";

/**
 * Configures and reads a device through its web interface, in Debian's chromium driven
 * by playwright-core: log in with the token, fill the configuration form, read the status
 * and sharing tables. Options: `token`, `port` (the page's port on the device host's
 * loopback, reached through an SSH tunnel). Written against the reference management
 * page (lib/roles/mgmt-web); another device family needs its own selectors.
 */
export interface SharingRowSeen {
  condition: string;
  disposition: string;
  packets: number;
}

export class WebUiAdapter implements VendorAdapter {
  readonly name = "web-ui";
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>([
    "config-readback",
    "vrrp-state-readback",
  ]);
  private readonly host: AdapterHost;
  private browser: Browser | undefined;
  private page: Page | undefined;
  private tunnel: Tunnel | undefined;

  constructor(private readonly target: DeviceTarget) {
    this.host = primaryHost(target.hosts, target.primary);
  }

  /** Opens the tunnel and the browser and logs in (once). */
  private async session(): Promise<Page> {
    if (this.page) return this.page;
    const port = Number(this.target.options.port ?? 8088);
    // The page is reached through an SSH tunnel, so the host must be an SSH host.
    const remote =
      this.host instanceof LabHost
        ? this.host.remote
        : this.host instanceof RemoteHost
          ? this.host
          : undefined;
    if (!remote)
      throw new Error(`web-ui: host ${this.host.name} is not reached over SSH (no tunnel possible)`);
    this.tunnel = await openTunnel(remote, port);
    this.browser = await launchChromium();
    const page = await this.browser.newPage({ viewport: { width: 1000, height: 700 } });
    await this.login(page, this.target.options.token ?? "");
    this.page = page;
    return page;
  }

  /** Submits the login form; throws with the page's message when the token is refused. */
  async login(page: Page, token: string): Promise<void> {
    await page.goto(`${this.tunnel!.url}/login`);
    await page.fill("#token", token);
    await Promise.all([page.waitForLoadState("load"), page.click("#login button")]);
    if (await page.locator("#login-error").count()) {
      throw new Error(`web-ui: login refused: ${(await page.locator("#login-error").textContent())?.trim()}`);
    }
  }

  /** A fresh page that tries `token` (for tests of the protection). */
  async tryLogin(token: string): Promise<void> {
    await this.session();
    const page = await this.browser!.newPage();
    try {
      await this.login(page, token);
    } finally {
      await page.close();
    }
  }

  async goto(path: string): Promise<Page> {
    const page = await this.session();
    await page.goto(`${this.tunnel!.url}${path}`);
    return page;
  }

  async identity(): Promise<DeviceIdentity> {
    const page = await this.goto("/");
    return {
      vendor: "Tandem",
      product: (await page.title()) || "web-managed device",
      version: "web interface",
    };
  }

  /** Fills the configuration form from `config.vrls` (priority, advertIntervalMs, mode, timerDelayMs). */
  async deploy(config: DeviceConfig): Promise<void> {
    const wanted = (config.vrls ?? {}) as Record<string, string | number>;
    const page = await this.goto("/config");
    for (const field of ["priority", "advertIntervalMs", "timerDelayMs"]) {
      if (wanted[field] !== undefined) await page.fill(`#${field}`, String(wanted[field]));
    }
    if (wanted.mode !== undefined) await page.selectOption("#mode", String(wanted.mode));
    await Promise.all([page.waitForLoadState("load"), page.click("#save")]);
    if (await page.locator("#config-error").count()) {
      throw new Error(
        `web-ui: the device refused the configuration: ${(await page.locator("#config-error").textContent())?.trim()}`,
      );
    }
    if (!(await page.locator("#config-saved").count()))
      throw new Error("web-ui: no confirmation after saving");
  }

  async start(): Promise<void> {
    throw new Error("web-ui: the management page has no start control");
  }
  async stop(): Promise<void> {
    throw new Error("web-ui: the management page has no stop control");
  }

  async readState(): Promise<DeviceState> {
    const page = await this.goto("/");
    const cells = await page
      .locator("#status td")
      .evaluateAll((tds) =>
        tds.map((td) => [td.getAttribute("data-key") ?? "", td.textContent ?? ""] as const),
      );
    const counters: Record<string, number> = {};
    let running = false;
    for (const [k, v] of cells) {
      if (k === "data plane") running = v === "up";
      if (v !== "" && Number.isFinite(Number(v))) counters[k] = Number(v);
    }
    return { running, vrrp: [], counters };
  }

  async sharingTable(): Promise<SharingRowSeen[]> {
    const page = await this.goto("/sharing");
    return page.locator("#sharing tr[data-condition]").evaluateAll((rows) =>
      rows.map((r) => {
        const td = [...r.querySelectorAll("td")].map((c) => c.textContent ?? "");
        return { condition: td[0] ?? "", disposition: td[1] ?? "", packets: Number(td[2] ?? 0) };
      }),
    );
  }

  async screenshot(path: string, pagePath = "/"): Promise<void> {
    const page = await this.goto(pagePath);
    await page.screenshot({ path, fullPage: true });
  }

  async injectFault(_fault: Fault): Promise<void> {
    throw new Error("web-ui: faults are not injected through the web interface");
  }

  async collectLogs(): Promise<string> {
    return "";
  }

  async collectConfig(): Promise<string> {
    const page = await this.goto("/config");
    const values: Record<string, string> = {};
    for (const field of ["priority", "advertIntervalMs", "mode", "timerDelayMs"]) {
      values[field] = await page.locator(`#${field}`).inputValue();
    }
    return JSON.stringify(values, null, 2);
  }

  async dispose(): Promise<void> {
    await this.browser?.close().catch(() => undefined);
    await this.tunnel?.close();
    this.page = undefined;
    this.browser = undefined;
    this.tunnel = undefined;
  }
}

export const webUiRegistration: AdapterRegistration = {
  name: "web-ui",
  description: "a device configured through its web interface (Playwright + chromium); options token, port",
  suites: [],
  notCertifiable:
    "it drives the reference's management page (lib/roles/mgmt-web): it logs in, reads the status and sharing tables and fills the configuration form, but what the form stores is not applied by any router, so no suite can judge a device through it; use it to check a management page (test/adapters-web-ui.test.ts), and certify the router itself (reference, keepalived, frr, ssh-cli)",
  create: (target) => new WebUiAdapter(target),
};
