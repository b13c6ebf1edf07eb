import { describe, expect, it } from "vitest";
import { withLab } from "../lib/lab/index.ts";
import { waitUntil } from "../lib/remote/wait.ts";
import { ScapyBridge, type ScapyCapturedPacket } from "../lib/scapy-bridge/bridge.ts";
import {
  readVrrpv3Mib,
  SnmpReadError,
  type Vrrpv3MibSnapshot,
  vrrpv3Router,
} from "../lib/snmp/vrrpv3-mib.ts";
import { fromHex } from "../lib/wire/bytes.ts";
import { decodeEthernet, ETHERTYPE, encodeEthernet } from "../lib/wire/ethernet.ts";
import { encodeIpv4, IP_PROTOCOL } from "../lib/wire/ipv4.ts";
import { expectOk } from "../lib/wire/result.ts";
import { encodeVrrp } from "../lib/wire/vrrp.ts";
import { validateVrrpPacket } from "../lib/wire/vrrp-validate.ts";
import { KeepalivedAdapter } from "../vendor-adapters/keepalived/index.ts";

// Issue 16 item 6: keepalived's VRRPv3 MIB (RFC 6527) read over SNMP (snmpd as AgentX
// master in the DUT's namespace, keepalived -x), compared with the advertisements the
// tester captures on the hub, before, during and after a failover to the tester.

const DUT = "198.18.2.2";
const TESTER = "198.18.2.10";
const VRID = 7;

interface Advert {
  src: string;
  priority: number;
  addresses: string[];
}

function decodeAdverts(packets: ScapyCapturedPacket[]): Advert[] {
  return packets.map((p) => {
    const eth = expectOk(decodeEthernet(fromHex(p.hex)));
    expect(eth.etherType).toBe(ETHERTYPE.ipv4);
    const v = validateVrrpPacket(eth.payload, { version: 3, vrids: [VRID] });
    if (!v.ok) throw new Error(`advert rejected: ${v.reason} (${v.detail}) ${p.hex}`);
    return { src: v.ip.src, priority: v.vrrp.priority, addresses: v.vrrp.addresses };
  });
}

function testerAdvert(priority: number): Uint8Array {
  return encodeEthernet({
    dst: "01:00:5e:00:00:12",
    src: "02:00:00:00:02:0a",
    etherType: ETHERTYPE.ipv4,
    payload: encodeIpv4({
      src: TESTER,
      dst: "224.0.0.18",
      ttl: 255,
      tos: 0xc0,
      protocol: IP_PROTOCOL.vrrp,
      payload: encodeVrrp(
        {
          version: 3,
          type: 1,
          vrid: VRID,
          priority,
          maxAdverIntCs: 100,
          addresses: ["198.18.2.1"],
          extension: new Uint8Array(0),
        },
        { src: TESTER, dst: "224.0.0.18" },
      ),
    }),
  });
}

describe("VRRPv3 MIB over SNMP (RFC 6527) against keepalived", () => {
  it("keepalived's MIB state, priority and master address agree with the wire through a failover and back", async () => {
    await withLab("labs/vrrp-dut.yaml", async (lab) => {
      const ka = new KeepalivedAdapter({
        hosts: { dut: lab.host("dut") },
        primary: "dut",
        workDir: `/tmp/tandem-dut-${lab.prefix}`,
        options: { snmp: "on" },
      });
      const sniffer = await ScapyBridge.startRemote(lab.host("tester").remote);
      const sender = await ScapyBridge.startRemote(lab.host("tester").remote);
      let last: Vrrpv3MibSnapshot | undefined;
      const mib = async () => {
        last = await ka.readVrrpMib();
        return last;
      };
      const row = (s: Vrrpv3MibSnapshot) => s.routers.find((r) => r.vrid === VRID && r.family === 4);
      try {
        await ka.deploy({
          vrrp: [
            {
              interface: "eth0",
              vrid: VRID,
              priority: 100,
              advertIntervalMs: 1000,
              preempt: true,
              version: 3,
              virtualAddresses: ["198.18.2.1/24"],
            },
          ],
        });
        await ka.start();

        // 1. keepalived alone: master. The MIB says so, and the wire shows its adverts.
        const t0 = performance.now();
        const asMaster = await waitUntil(async () => row(await mib())?.status === "master" && last, {
          timeoutMs: 15_000,
          everyMs: 200,
          what: "the MIB to show VRID 7 master",
          last: () => last,
        });
        const masterAfterMs = performance.now() - t0;
        const m = vrrpv3Router(asMaster, VRID);
        expect(m).toMatchObject({
          status: "master",
          priority: 100,
          masterIpAddr: DUT,
          primaryIpAddr: DUT,
          addrCount: 1,
          advIntervalCs: 100,
        });
        const wireMaster = decodeAdverts(
          await sniffer.sniff({ iface: "eth0", filter: "ip proto 112", timeoutMs: 2500 }),
        );
        expect(wireMaster.length).toBeGreaterThanOrEqual(2);
        for (const a of wireMaster)
          expect(a).toEqual({ src: m.masterIpAddr, priority: m.priority, addresses: ["198.18.2.1"] });
        const transitionsBefore = m.statistics.masterTransitions ?? 0;
        expect(transitionsBefore).toBeGreaterThanOrEqual(1);
        expect(m.statistics.newMasterReason).toBe("masterNoResponse");

        // 2. Failover: the tester advertises priority 254; keepalived must yield. The MIB
        //    must show backup with the tester as master, and the wire only the tester's adverts.
        const { handle } = await sniffer.sniffStart({
          iface: "eth0",
          filter: "ip proto 112",
          timeoutMs: 8000,
        });
        const sending = sender.send("eth0", testerAdvert(254), { count: 30, intervalMs: 200 });
        const asBackup = await waitUntil(
          async () => {
            const r = row(await mib());
            return r?.status === "backup" && r.masterIpAddr === TESTER && last;
          },
          {
            timeoutMs: 5000,
            everyMs: 200,
            what: "the MIB to show VRID 7 backup with master 198.18.2.10",
            last: () => last,
          },
        );
        const b = vrrpv3Router(asBackup, VRID);
        expect(b).toMatchObject({
          status: "backup",
          priority: 100,
          masterIpAddr: TESTER,
          primaryIpAddr: DUT,
        });
        expect(b.statistics.rcvdAdvertisements ?? 0).toBeGreaterThan(m.statistics.rcvdAdvertisements ?? 0);
        await sending;
        const during = decodeAdverts(await sniffer.sniffWait(handle, { stop: true }));
        // The wire: the tester's adverts, and after the first of them no more from the DUT
        // (keepalived's last adverts may precede the tester's first).
        const firstTester = during.findIndex((a) => a.src === TESTER);
        expect(firstTester).toBeGreaterThanOrEqual(0);
        const dutAfter = during.slice(firstTester + 1).filter((a) => a.src === DUT);
        expect(dutAfter.length, JSON.stringify(during)).toBeLessThanOrEqual(1);
        expect(during.filter((a) => a.src === TESTER).every((a) => a.priority === 254)).toBe(true);
        // Still backup right after the tester's last advert, as the wire says.
        expect(vrrpv3Router(await mib(), VRID).status).toBe("backup");

        // 3. The tester falls silent: after Master_Down_Interval keepalived is master again,
        //    in the MIB (one more master transition) and on the wire.
        const back = await waitUntil(async () => row(await mib())?.status === "master" && last, {
          timeoutMs: 10_000,
          everyMs: 200,
          what: "the MIB to show VRID 7 master again",
          last: () => last,
        });
        const r = vrrpv3Router(back, VRID);
        expect(r).toMatchObject({ status: "master", masterIpAddr: DUT, priority: 100 });
        expect(r.statistics.masterTransitions).toBe(transitionsBefore + 1);
        const wireBack = decodeAdverts(
          await sniffer.sniff({ iface: "eth0", filter: "ip proto 112", timeoutMs: 2500 }),
        );
        expect(wireBack.length).toBeGreaterThanOrEqual(2);
        for (const a of wireBack) expect(a.src).toBe(DUT);
        console.log(
          `snmp-vrrp-mib: master in MIB after ${masterAfterMs.toFixed(0)} ms; transitions ${transitionsBefore} -> ${r.statistics.masterTransitions}; ` +
            `rcvdAdvertisements ${r.statistics.rcvdAdvertisements}; stats ${JSON.stringify(r.statistics)}; global ${JSON.stringify(back.global)}`,
        );

        // 4. A wrong community gets no answer: the error names the agent, port and OID.
        await expect(
          readVrrpv3Mib({ address: DUT, community: "wrong", via: lab.host("dut"), timeoutMs: 1000 }),
        ).rejects.toThrow(SnmpReadError);
        await expect(
          readVrrpv3Mib({ address: DUT, community: "wrong", via: lab.host("dut"), timeoutMs: 1000 }),
        ).rejects.toThrow(`SNMP ${DUT}:161 1.3.6.1.2.1.207.1.1.1.1: no answer within 1000 ms`);
      } finally {
        await sender.close();
        await sniffer.close();
        await ka.dispose();
      }
    });
  }, 120_000);
});
