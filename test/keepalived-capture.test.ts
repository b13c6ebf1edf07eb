import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { withLab } from "../lib/lab/index.ts";
import { ScapyBridge } from "../lib/scapy-bridge/bridge.ts";
import { fromHex } from "../lib/wire/bytes.ts";
import { decodeEthernet, ETHERTYPE, encodeEthernet } from "../lib/wire/ethernet.ts";
import { encodeIpv4, IP_PROTOCOL } from "../lib/wire/ipv4.ts";
import { expectOk } from "../lib/wire/result.ts";
import { detectVrrpChecksumMode, encodeVrrp, vrrpPasswordAuthData } from "../lib/wire/vrrp.ts";
import { validateVrrpPacket } from "../lib/wire/vrrp-validate.ts";

// Real third-party packets: keepalived 2.2.7 (Debian) runs a VRRPv3 and a VRRPv2 instance
// in a lab namespace; its advertisements are captured on another host and decoded by lib/wire.

const dir = mkdtempSync(join(tmpdir(), "tandem-keepalived-"));
const topology = join(dir, "keepalived-lab.yaml");
writeFileSync(
  topology,
  [
    "lab: keepalived",
    "segments:",
    "  lan: { hub: true, subnet: 198.18.0.0/24 }",
    "hosts:",
    "  ka:",
    "    interfaces: { eth0: { segment: lan, addresses: [198.18.0.1/24], mac: '02:00:00:00:00:0a' } }",
    "  obs:",
    "    interfaces: { eth0: { segment: lan, addresses: [198.18.0.2/24], mac: '02:00:00:00:00:0b' } }",
    "",
  ].join("\n"),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keepalivedConfig(): string {
  return `
global_defs {
  router_id tandem_wire_test
  vrrp_garp_master_delay 1
  script_user root
  enable_script_security
}
vrrp_instance V3 {
  version 3
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 0.5
  virtual_ipaddress {
    198.18.0.100/24
    198.18.0.101/24
  }
}
vrrp_instance V2 {
  version 2
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority 100
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass tandem1
  }
  virtual_ipaddress {
    198.18.0.102/24
  }
}
`;
}

describe("keepalived advertisements decoded by lib/wire", () => {
  it("accepts keepalived's VRRPv3 and VRRPv2 adverts with the right fields and checksums; keepalived yields to a TypeScript-built advert", async () => {
    await withLab(topology, async (lab) => {
      const state = `/run/tandem/${lab.prefix}`;
      const ka = lab.host("ka");
      const conf = join(state, "keepalived.conf");
      await ka.remote.execOrThrow(["mkdir", "-p", state]);
      await ka.remote.execOrThrow(["sh", "-c", `cat > ${conf}`], { input: keepalivedConfig() });
      const logs: string[] = [];
      const keepalived = await ka.remote.execStream(
        [
          "keepalived",
          "-n",
          "-l",
          "-D",
          "-P",
          "-f",
          conf,
          "-p",
          join(state, "keepalived.pid"),
          "-r",
          join(state, "keepalived-vrrp.pid"),
          "-i",
          "tandem",
        ],
        { onStdout: (c) => logs.push(c.toString()), onStderr: (c) => logs.push(c.toString()) },
      );
      const sniffer = await ScapyBridge.startRemote(lab.host("obs").remote);
      try {
        // Master_Down_Interval (3 x 1 s + skew) before the v2 instance takes over, then adverts.
        const captured = await sniffer.sniff({ iface: "eth0", filter: "ip proto 112", timeoutMs: 7000 });
        const v3: ReturnType<typeof validateVrrpPacket>[] = [];
        const v2: ReturnType<typeof validateVrrpPacket>[] = [];
        for (const p of captured) {
          const eth = expectOk(decodeEthernet(fromHex(p.hex)));
          expect(eth.etherType).toBe(ETHERTYPE.ipv4);
          expect(eth.dst).toBe("01:00:5e:00:00:12");
          const v = validateVrrpPacket(eth.payload, {
            version: (eth.payload[20]! >> 4) as 2 | 3,
            vrids: [51, 52],
            authType: 1,
            authData: vrrpPasswordAuthData("tandem1"),
            adverIntSeconds: 1,
          });
          if (!v.ok) throw new Error(`keepalived packet rejected: ${v.reason} (${v.detail}) ${p.hex}`);
          // keepalived sends from the interface MAC unless use_vmac is configured.
          expect(eth.src).toBe("02:00:00:00:00:0a");
          (v.vrrp.version === 3 ? v3 : v2).push(v);
        }
        expect(
          v3.length,
          `v3 adverts in ${captured.length} packets; keepalived log:\n${logs.join("")}`,
        ).toBeGreaterThanOrEqual(4);
        expect(v2.length).toBeGreaterThanOrEqual(2);
        for (const v of v3) {
          if (!v.ok || v.vrrp.version !== 3) throw new Error("unreachable");
          expect(v.vrrp).toMatchObject({ type: 1, vrid: 51, priority: 150, maxAdverIntCs: 50, count: 2 });
          expect(v.vrrp.addresses).toEqual(["198.18.0.100", "198.18.0.101"]);
          expect(v.ip).toMatchObject({ src: "198.18.0.1", dst: "224.0.0.18", ttl: 255, checksumValid: true });
          expect(detectVrrpChecksumMode(v.ip.payload, v.ip.src, v.ip.dst)).toBe("rfc");
        }
        for (const v of v2) {
          if (!v.ok || v.vrrp.version !== 2) throw new Error("unreachable");
          expect(v.vrrp).toMatchObject({
            type: 1,
            vrid: 52,
            priority: 100,
            authType: 1,
            adverIntSeconds: 1,
            count: 1,
          });
          expect(v.vrrp.addresses).toEqual(["198.18.0.102"]);
        }
        // The same packets fail validation for the reasons a misconfigured router would see.
        const sample = expectOk(
          decodeEthernet(fromHex(captured.find((p) => p.hex.includes("0202"))?.hex ?? captured[0]!.hex)),
        );
        const v2Sample = v2[0]!;
        if (!v2Sample.ok) throw new Error("unreachable");
        const v2Bytes = encodeIpv4({ ...v2Sample.ip });
        const reason = (r: ReturnType<typeof validateVrrpPacket>) => (r.ok ? "accepted" : r.reason);
        expect(
          reason(
            validateVrrpPacket(v2Bytes, {
              version: 2,
              vrids: [52],
              authType: 1,
              authData: vrrpPasswordAuthData("wrong"),
            }),
          ),
        ).toBe("auth-mismatch");
        expect(
          reason(
            validateVrrpPacket(v2Bytes, {
              version: 2,
              vrids: [52],
              authType: 1,
              authData: vrrpPasswordAuthData("tandem1"),
              adverIntSeconds: 2,
            }),
          ),
        ).toBe("interval-mismatch");
        expect(reason(validateVrrpPacket(sample.payload, { version: 3, vrids: [99] }))).not.toBe("accepted");

        // Interop the other way: a TypeScript-built VRRPv3 advert with priority 254 makes keepalived back off.
        const advert = encodeEthernet({
          dst: "01:00:5e:00:00:12",
          src: "02:00:00:00:00:0b",
          etherType: ETHERTYPE.ipv4,
          payload: encodeIpv4({
            src: "198.18.0.2",
            dst: "224.0.0.18",
            ttl: 255,
            tos: 0xc0,
            protocol: IP_PROTOCOL.vrrp,
            payload: encodeVrrp(
              {
                version: 3,
                type: 1,
                vrid: 51,
                priority: 254,
                maxAdverIntCs: 50,
                addresses: ["198.18.0.100", "198.18.0.101"],
                extension: new Uint8Array(0),
              },
              { src: "198.18.0.2", dst: "224.0.0.18" },
            ),
          }),
        });
        const sender = await ScapyBridge.startRemote(lab.host("obs").remote);
        try {
          await sender.send("eth0", advert, { count: 10, intervalMs: 200 });
          const after = await sniffer.sniff({
            iface: "eth0",
            filter: "ip proto 112 and src host 198.18.0.1",
            timeoutMs: 1500,
          });
          const vrids = after.map((p) => fromHex(p.hex)[14 + 20 + 1]);
          expect(vrids).not.toContain(51); // keepalived stopped advertising VRID 51: it is backup now
          expect(vrids).toContain(52); // and still masters VRID 52
        } finally {
          await sender.close();
        }
        expect(logs.join("")).toMatch(
          /V3\) (Master received advert from 198\.18\.0\.2 with higher priority 254|Entering BACKUP STATE)/,
        );
      } finally {
        await sniffer.close();
        await keepalived.kill("TERM");
        await keepalived.done;
      }
    });
  }, 120_000);
});
