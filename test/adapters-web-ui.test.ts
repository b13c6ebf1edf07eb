import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCertification } from "../lib/certify/run.ts";
import { type Lab, upLab } from "../lib/lab/index.ts";
import { type AgentClient, launchAgent } from "../lib/remote/index.ts";
import {
  type RunningVirtualRouter,
  startInfoResponders,
  startVirtualRouter,
  virtualRouterConfig,
} from "../lib/roles/vrls/lab-harness.ts";
import { loadTopology } from "../lib/topology/load.ts";
import { sendUdpStream } from "../lib/traffic/udp.ts";
import { WebUiAdapter } from "../vendor-adapters/web-ui/index.ts";

/**
 * The web-ui adapter against the reference management page, for real: the VRLS reference
 * router on the Fig. 7 lab, the page served by the mgmt-web agent on router B's loopback,
 * reached through an SSH tunnel by Debian's chromium. What the browser reads must be what
 * the kernel holds, and what it saves must be what the device stores.
 */
const SHOTS = process.env.TANDEM_SCREENSHOTS ?? join(tmpdir(), "tandem-report-shots");
const TOKEN = "s3cret-token-for-the-lab";

describe("web-ui adapter on the reference management page", () => {
  const loaded = loadTopology("labs/vrls-fig7.yaml");
  let lab: Lab;
  let vr: RunningVirtualRouter | undefined;
  let agents: AgentClient[] = [];
  let mgmt: AgentClient;
  let web: WebUiAdapter;
  let configPath: string;

  beforeAll(async () => {
    lab = await upLab(loaded);
    agents = await startInfoResponders(lab, ["es1", "es2", "es3", "es4"]);
    vr = await startVirtualRouter(lab, virtualRouterConfig(loaded, "vr1"));
    await vr.waitForMaster();
    await Promise.all(
      ["es5", "es6"].map((h, i) =>
        sendUdpStream(lab.host(h).remote, {
          streamId: 90 + i,
          dstIp: "198.18.100.10",
          dstPort: 5999,
          pps: 200,
          count: 50,
        }),
      ),
    );
    await vr.waitAllocated(6);
    configPath = `/tmp/tandem-mgmt-${lab.prefix}-rb.json`;
    mgmt = await launchAgent(lab.host("rb").remote, "mgmt-web", {
      args: {
        port: 8088,
        token: TOKEN,
        vrid: 51,
        configPath,
        initial: { priority: 100, advertIntervalMs: 100, mode: "exactly-once", timerDelayMs: 60 },
      },
    });
    web = new WebUiAdapter({
      hosts: { rb: lab.host("rb") },
      primary: "rb",
      workDir: `/tmp/tandem-dut-${lab.prefix}`,
      options: { token: TOKEN, port: "8088" },
    });
  }, 180_000);

  afterAll(async () => {
    await web?.dispose();
    await mgmt?.stop().catch(() => undefined);
    await vr?.stop();
    await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
    await lab?.down();
  }, 60_000);

  it("refuses a wrong token", async () => {
    await expect(web.tryLogin("not-the-token")).rejects.toThrow(/login refused: wrong token/);
  });

  it("shows the status and the sharing table the kernel holds", async () => {
    const state = await web.readState();
    expect(state.running).toBe(true);
    const master = await vr!.master();
    const allocation = (await vr!.status(master!)).master?.allocation ?? {};
    const mine = Object.entries(allocation)
      .filter(([, m]) => m === "198.18.1.3")
      .map(([c]) => c)
      .sort();
    expect(mine.length).toBe(3);
    expect(state.counters["conditions forwarded"]).toBe(3);
    const rows = await web.sharingTable();
    expect(
      rows
        .filter((r) => r.disposition === "forward")
        .map((r) => r.condition)
        .sort(),
    ).toEqual(mine);
    await web.screenshot(join(SHOTS, "mgmt-sharing.png"), "/sharing");
    await web.screenshot(join(SHOTS, "mgmt-status.png"), "/");
  });

  it("configures the device through the form, and the device stores it", async () => {
    await web.deploy({ vrls: { priority: 150, advertIntervalMs: 200, mode: "timer", timerDelayMs: 80 } });
    const stored = await mgmt.call<{ config: Record<string, unknown>; version: number }>("config");
    expect(stored).toEqual({
      config: { priority: 150, advertIntervalMs: 200, mode: "timer", timerDelayMs: 80 },
      version: 1,
    });
    expect(JSON.parse(readFileSync(configPath, "utf8"))).toEqual(stored.config);
    expect(JSON.parse(await web.collectConfig())).toEqual({
      priority: "150",
      advertIntervalMs: "200",
      mode: "timer",
      timerDelayMs: "80",
    });
    await web.screenshot(join(SHOTS, "mgmt-config.png"), "/config");
    await expect(web.deploy({ vrls: { priority: 300 } })).rejects.toThrow(
      /priority: expected 1\.\.254, got 300/,
    );
    expect((await mgmt.call<{ version: number }>("config")).version).toBe(1);
  });
});

describe("tandem certify --dut web-ui", () => {
  it("refuses, saying why: the form's settings are not applied by any router", async () => {
    const certify = runCertification({
      dut: "web-ui",
      suite: "vrrp",
      out: join(tmpdir(), "tandem-webui-never"),
    });
    await expect(certify).rejects.toThrow(
      "--dut web-ui: not a device that certifies: it drives the reference's management page",
    );
    await expect(certify).rejects.toThrow("what the form stores is not applied by any router");
  });
});
