// ESM wrapper over the native binding (build/Release/tandem_rawio.node).
// Types and documentation: index.d.ts.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const binding = require("./build/Release/tandem_rawio.node");

export class RawSockets {
  #native;
  #info;
  constructor(options, onBatch) {
    if (typeof onBatch !== "function")
      throw new TypeError("openRawSockets(options, onBatch): onBatch must be a function");
    this.#native = new binding.RawIo(options ?? {}, onBatch);
    this.#info = this.#native.info();
  }
  get interface() {
    return this.#info.interface;
  }
  get address() {
    return this.#info.address;
  }
  get ifindex() {
    return this.#info.ifindex;
  }
  sendIp(packet) {
    return this.#native.sendIp(packet);
  }
  sendFrame(frame) {
    return this.#native.sendFrame(frame);
  }
  pump() {
    this.#native.pump();
  }
  stats() {
    return this.#native.stats();
  }
  close() {
    this.#native.close();
  }
}

export function openRawSockets(options, onBatch) {
  return new RawSockets(options, onBatch);
}
