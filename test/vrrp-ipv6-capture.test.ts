import { describe, expect, it } from "vitest";
import { withLab } from "../lib/lab/index.ts";
import { ScapyBridge } from "../lib/scapy-bridge/bridge.ts";
import { parseTopologyText } from "../lib/topology/index.ts";
import {
  decodeEthernet,
  decodeIpv6,
  decodeNeighborDiscovery,
  ETHERTYPE,
  expectOk,
  fromHex,
  icmpv6ChecksumMatches,
  ndLinkLayerAddress,
  validateVrrp6Packet,
  vrrpIpv6SenderProblems,
} from "../lib/wire/index.ts";
import { frrRegistration } from "../vendor-adapters/frr/index.ts";
import { keepalivedRegistration } from "../vendor-adapters/keepalived/index.ts";
import type { VendorAdapter } from "../vendor-adapters/types.ts";

// Issue 16: real third-party VRRPv3-over-IPv6 advertisements. keepalived 2.2.7 and FRR 8.4
// (Debian) each run one IPv6 virtual router on a hub, through their Tandem adapters; a third
// host captures and lib/wire decodes, validates (RFC 9568 7.1) and checks the sender rules.

const TOPOLOGY = parseTopologyText(
  `
lab: vrrp6cap
segments:
  lan: { hub: true, subnet: 2001:db8:5::/64 }
hosts:
  ka:
    interfaces: { eth0: { segment: lan, addresses: [2001:db8:5::1/64], mac: "02:00:00:00:05:01" } }
  frr:
    interfaces: { eth0: { segment: lan, addresses: [2001:db8:5::2/64], mac: "02:00:00:00:05:02" } }
  obs:
    interfaces: { eth0: { segment: lan, addresses: [2001:db8:5::9/64], mac: "02:00:00:00:05:09" } }
`,
  "vrrp6cap.yaml",
);

describe("keepalived and FRR VRRPv3-over-IPv6 advertisements decoded by lib/wire", () => {
  it("both send valid RFC 9568 IPv6 adverts (checksum, hop limit, ff02::12, virtual MAC) and announce with unsolicited NAs", async () => {
    await withLab(TOPOLOGY, async (lab) => {
      const adapters: VendorAdapter[] = [];
      const sniffer = await ScapyBridge.startRemote(lab.host("obs").remote);
      try {
        for (const [host, reg, vrid, vip] of [
          ["ka", keepalivedRegistration, 51, "2001:db8:5::51"],
          ["frr", frrRegistration, 61, "2001:db8:5::61"],
        ] as const) {
          const adapter = reg.create({
            hosts: { [host]: lab.host(host) },
            primary: host,
            workDir: `/tmp/tandem-dut-${lab.prefix}-${host}`,
            options: {},
          });
          adapters.push(adapter);
          await adapter.deploy({
            vrrp: [
              {
                interface: "eth0",
                vrid,
                priority: 200,
                advertIntervalMs: 500,
                preempt: true,
                version: 3,
                virtualAddresses: [`fe80::${vrid}/64`, `${vip}/64`],
              },
            ],
          });
        }
        const capture = sniffer.sniff({
          iface: "eth0",
          filter: "ip6 proto 112 or (icmp6 and ip6[40] == 136)",
          timeoutMs: 6000,
        });
        capture.catch(() => {}); // awaited below; a failed start must not leave it unhandled
        for (const a of adapters) await a.start();
        const captured = await capture;
        const logs = async () => (await Promise.all(adapters.map((a) => a.collectLogs()))).join("\n----\n");
        const adverts = new Map<number, string[][]>();
        const nas: {
          src: string;
          target: string;
          mac?: string;
          router: boolean;
          override: boolean;
          solicited: boolean;
        }[] = [];
        for (const p of captured) {
          const eth = expectOk(decodeEthernet(fromHex(p.hex)));
          expect(eth.etherType).toBe(ETHERTYPE.ipv6);
          const ip = expectOk(decodeIpv6(eth.payload));
          if (ip.nextHeader === 58) {
            expect(icmpv6ChecksumMatches(ip.payload, ip.src, ip.dst)).toBe(true);
            const na = expectOk(decodeNeighborDiscovery(ip.payload));
            if (na.type !== 136) continue;
            nas.push({
              src: eth.src,
              target: na.target,
              mac: ndLinkLayerAddress(na, 2),
              router: na.router,
              override: na.override,
              solicited: na.solicited,
            });
            continue;
          }
          const v = validateVrrp6Packet(eth.payload, { version: 3, vrids: [51, 61] });
          if (!v.ok) throw new Error(`rejected: ${v.reason} (${v.detail}) ${p.hex}\n${await logs()}`);
          expect(eth.dst).toBe("33:33:00:00:00:12");
          expect(eth.src).toBe(`00:00:5e:00:02:${v.vrrp.vrid.toString(16)}`);
          expect(v.vrrp).toMatchObject({ type: 1, priority: 200, maxAdverIntCs: 50 });
          const list = adverts.get(v.vrrp.vrid) ?? [];
          list.push([...v.vrrp.addresses, "|", ...vrrpIpv6SenderProblems(v.ip, v.vrrp)]);
          adverts.set(v.vrrp.vrid, list);
        }
        const summary = {
          adverts: Object.fromEntries(
            [...adverts].map(([k, l]) => [k, [...new Set(l.map((x) => x.join(" ")))]]),
          ),
          nas: [...new Set(nas.map((n) => JSON.stringify(n)))],
        };
        console.log(JSON.stringify(summary, null, 1));
        expect(adverts.get(51)?.length ?? 0, await logs()).toBeGreaterThanOrEqual(3);
        expect(adverts.get(61)?.length ?? 0, await logs()).toBeGreaterThanOrEqual(3);
        // keepalived 2.2.7 follows RFC 9568's sender rules: link-local virtual address first,
        // link-local source, ff02::12, hop limit 255 (no sender problem in any advert).
        expect(summary.adverts[51]).toEqual(["fe80::51 2001:db8:5::51 |"]);
        // On takeover it announces every virtual address by unsolicited NA from the virtual
        // MAC: Override set, Solicited clear, target link-layer = virtual MAC. It leaves the
        // Router flag clear, where RFC 9568 6.4.2 says set (recorded: a change shows here).
        const kaNas = nas.filter((n) => n.src === "00:00:5e:00:02:33");
        expect(new Set(kaNas.map((n) => n.target))).toEqual(new Set(["fe80::51", "2001:db8:5::51"]));
        for (const n of kaNas)
          expect(n).toMatchObject({
            mac: "00:00:5e:00:02:33",
            override: true,
            solicited: false,
            router: false,
          });
        // FRR 8.4, configured with the link-local virtual address first, sends it first and
        // meets the sender rules; its unsolicited NAs set the Router flag as RFC 9568 6.4.2 asks.
        expect(summary.adverts[61]).toEqual(["fe80::61 2001:db8:5::61 |"]);
        const frrNas = nas.filter((n) => n.src === "00:00:5e:00:02:3d");
        expect(new Set(frrNas.map((n) => n.target))).toEqual(new Set(["fe80::61", "2001:db8:5::61"]));
        for (const n of frrNas)
          expect(n).toMatchObject({
            mac: "00:00:5e:00:02:3d",
            override: true,
            solicited: false,
            router: true,
          });
      } finally {
        await sniffer.close();
        for (const a of adapters) await a.dispose();
        for (const h of ["ka", "frr"])
          await lab.host(h).exec(["rm", "-rf", `/tmp/tandem-dut-${lab.prefix}-${h}`]);
      }
    });
  }, 120_000);
});
