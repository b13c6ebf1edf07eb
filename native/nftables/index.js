// ESM wrapper over the native binding (build/Release/tandem_nftables.node).
// Types and documentation: index.d.ts.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const binding = require("./build/Release/tandem_nftables.node");

export class NftContext {
  #native;
  constructor(options) {
    this.#native = new binding.Context(options ?? {});
  }
  run(script, options) {
    return this.#native.run(String(script), Boolean(options?.json));
  }
  runAsync(script, options) {
    return this.#native.runAsync(String(script), Boolean(options?.json));
  }
  get open() {
    return this.#native.isOpen();
  }
  close() {
    this.#native.close();
  }
}

export function openNftContext(options) {
  return new NftContext(options);
}

export class CounterReader {
  #native;
  constructor(options) {
    this.#native = new binding.CounterReader(options ?? {});
  }
  read(family, table, name) {
    return this.#native.read(String(family), String(table), String(name));
  }
  readAll(family, table) {
    return this.#native.readAll(String(family), String(table));
  }
  get open() {
    return this.#native.isOpen();
  }
  close() {
    this.#native.close();
  }
}

export function openCounterReader(options) {
  return new CounterReader(options);
}
