/**
 * keepalived (Debian's 2.2.x) as a standard VRRPv3 member of a virtual router, for the
 * interop test and the failover bench: same VRID, virtual address and advertisement
 * interval as the reference, no load-sharing extension (keepalived drops types 2-8).
 * Its state changes are written by a notify script to a file we read back. Everything
 * lives in the lab's state directory; only our own keepalived is ever killed (by pid).
 */
import type { Lab } from "../../lab/index.ts";
import { stateDir } from "../../lab/prefix.ts";
import { heldWithin } from "../../remote/wait.ts";
import type { VirtualRouterConfig } from "./config.ts";

export interface KeepalivedMember {
  host: string;
  /** Latest state keepalived reported (MASTER, BACKUP, FAULT, STOP) and when (ms since epoch). */
  state(): Promise<{ state: string; at: number } | undefined>;
  transitions(): Promise<{ state: string; at: number }[]>;
  /** SIGKILL (a crash: no priority-0 advertisement). */
  kill(): Promise<void>;
  /** SIGTERM (keepalived resigns with priority 0). */
  stop(): Promise<void>;
  log(): string;
}

export async function startKeepalived(
  lab: Lab,
  vr: VirtualRouterConfig,
  host: string,
): Promise<KeepalivedMember> {
  const member = vr.members.find((m) => m.host === host);
  if (!member) throw new Error(`${host} is not a member of ${vr.name}`);
  const dir = `${stateDir(lab.prefix)}/keepalived-${host}`;
  const remote = lab.host(host).remote;
  const stateFile = `${dir}/state.log`;
  const notify = `${dir}/notify.sh`;
  const conf = `global_defs {
  router_id tandem_${host}
  script_user root
  enable_script_security
  vrrp_garp_master_delay 0
  vrrp_garp_master_repeat 1
}
vrrp_instance ${vr.name} {
  version 3
  state BACKUP
  interface ${vr.spec.interface}
  # RFC 5798: the virtual MAC (keepalived puts it on a macvlan, as the reference does).
  use_vmac vrrp${vr.spec.vrid}
  virtual_router_id ${vr.spec.vrid}
  priority ${member.priority}
  advert_int ${vr.spec.advertIntervalMs / 1000}
  ${vr.spec.preempt ? "" : "nopreempt"}
  notify ${notify}
  virtual_ipaddress {
    ${vr.virtualAddress}/${vr.prefixLength}
  }
}
`;
  await remote.execOrThrow(["mkdir", "-p", dir]);
  // Stale pid files are dangerous here: pids wrap fast on a busy machine, and keepalived
  // refuses to start when the old pid now belongs to some other live process.
  await remote.execOrThrow(["rm", "-f", stateFile, `${dir}/keepalived.pid`, `${dir}/vrrp.pid`]);
  await remote.execOrThrow(["sh", "-c", `cat > ${dir}/keepalived.conf`], { input: conf });
  await remote.execOrThrow(["sh", "-c", `cat > ${notify} && chmod 755 ${notify}`], {
    input: `#!/bin/sh\necho "$3 $(date +%s%3N)" >> ${stateFile}\n`,
  });
  const pidFile = `${dir}/keepalived.pid`;
  const vrrpPid = `${dir}/vrrp.pid`;
  // Daemonized (it forks and the command returns): a retried SSH channel can never leave a
  // second, unmanaged copy behind; a second start just finds the first ("already running").
  const start = await remote.exec(
    // setsid: its own session at once, so the SSH session's process-group cleanup never hits it.
    ["setsid", "-f", "keepalived", "-D", "-P", "-f", `${dir}/keepalived.conf`, "-p", pidFile, "-r", vrrpPid],
    { timeoutMs: 10_000 },
  );
  const alive = await heldWithin(
    async () =>
      (await remote.exec(["sh", "-c", `kill -0 $(cat ${vrrpPid} 2>/dev/null) 2>/dev/null`])).code === 0,
    { timeoutMs: 1000, what: `keepalived's VRRP process on ${host}` },
  );
  if (!alive) {
    throw new Error(`keepalived did not start on ${host} (exit ${start.code}): ${start.stderr.trim()}`);
  }
  const logs = [`start exit ${start.code}: ${start.stdout}${start.stderr}`];
  const readTransitions = async () => {
    const r = await remote.exec(["cat", stateFile]);
    return r.stdout
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => {
        const [state, at] = l.trim().split(" ");
        return { state: state ?? "", at: Number(at) };
      });
  };
  const signal = async (sig: string) => {
    await remote.exec([
      "sh",
      "-c",
      // Only our own keepalived, by the pids it wrote; the files go with it (pids are reused).
      `for f in ${vrrpPid} ${pidFile}; do [ -f $f ] && kill -${sig} $(cat $f) 2>/dev/null; done; ${sig === "KILL" ? `rm -f ${vrrpPid} ${pidFile};` : ""} true`,
    ]);
  };
  return {
    host,
    transitions: readTransitions,
    state: async () => (await readTransitions()).at(-1),
    kill: () => signal("KILL"),
    stop: () => signal("TERM"),
    log: () => logs.join(""),
  };
}
