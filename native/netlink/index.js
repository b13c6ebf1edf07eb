// ESM wrapper over the native binding (build/Release/tandem_netlink.node).
// Types and documentation: index.d.ts.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const binding = require("./build/Release/tandem_netlink.node");

// Entries come from the binding packed, 13 u32 per entry (src/conntrack.cc, PackFlow).
const WORDS = 13;
const NO_STATE = 0xffffffff;
const EVENT_TYPES = [undefined, "new", "update", "destroy"];

function ipv4(n) {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function decode(w, i) {
  const flow = {
    protocol: w[i] === 6 ? "tcp" : "udp",
    orig: { src: ipv4(w[i + 1]), dst: ipv4(w[i + 2]), sport: w[i + 3], dport: w[i + 4] },
    reply: { src: ipv4(w[i + 5]), dst: ipv4(w[i + 6]), sport: w[i + 7], dport: w[i + 8] },
    timeoutS: w[i + 10],
    status: w[i + 11],
    mark: w[i + 12],
  };
  if (w[i + 9] !== NO_STATE) flow.tcpState = w[i + 9];
  return flow;
}

function decodeFlows(w) {
  const out = new Array(w.length / WORDS);
  for (let i = 0, j = 0; i < w.length; i += WORDS, j++) out[j] = decode(w, i);
  return out;
}

function decodeMaybe(w) {
  const out = new Array(w.length / WORDS);
  for (let i = 0, j = 0; i < w.length; i += WORDS, j++) out[j] = w[i] === 0 ? null : decode(w, i);
  return out;
}

function decodeEvents(w) {
  const out = [];
  for (let i = 0; i < w.length; i += WORDS + 1) out.push({ type: EVENT_TYPES[w[i]], flow: decode(w, i + 1) });
  return out;
}

export class Conntrack {
  #native;
  constructor(options) {
    this.#native = new binding.Conntrack(options ?? {});
  }
  dump(options) {
    return decodeFlows(this.#native.dump(options ?? {}));
  }
  get(keys) {
    return decodeMaybe(this.#native.get(keys));
  }
  create(entries, options) {
    return this.#native.create(entries, options ?? {});
  }
  destroy(keys) {
    return this.#native.destroy(keys);
  }
  counters() {
    return this.#native.counters();
  }
  get open() {
    return this.#native.isOpen();
  }
  close() {
    this.#native.close();
  }
}

export class ConntrackEvents {
  #native;
  constructor(options, onEvents) {
    this.#native = new binding.ConntrackEvents(options ?? {}, (w) => onEvents(decodeEvents(w)));
  }
  pump() {
    return decodeEvents(this.#native.pump());
  }
  counters() {
    return this.#native.counters();
  }
  close() {
    this.#native.close();
  }
}

export class Link {
  #native;
  constructor(options) {
    this.#native = new binding.Link(options ?? {});
  }
  info(ifname) {
    return this.#native.info(ifname);
  }
  addresses(ifname) {
    return this.#native.addresses(ifname);
  }
  addAddress(ifname, address, prefixLen, options) {
    this.#native.addAddress(ifname, address, prefixLen, options ?? {});
  }
  deleteAddress(ifname, address, prefixLen) {
    return this.#native.deleteAddress(ifname, address, prefixLen);
  }
  rootQdiscs() {
    return this.#native.rootQdiscs();
  }
  sendFrames(ifname, frames) {
    return this.#native.sendFrames(ifname, frames);
  }
  get open() {
    return this.#native.isOpen();
  }
  close() {
    this.#native.close();
  }
}

export function setThreadScheduler(policy, priority) {
  binding.setThreadScheduler(policy, priority);
}

export function setThreadAffinity(cpus) {
  binding.setThreadAffinity(cpus);
}
