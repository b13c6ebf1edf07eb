export interface NftContextOptions {
  /** Network namespace (a name under /var/run/netns, or a path) whose netlink socket the context uses. Default: the caller's. */
  netns?: string;
}

export interface NftRunResult {
  /** nft_run_cmd_from_buffer's return: 0 when the whole script applied (one transaction). */
  code: number;
  /** What nft would print on stdout (JSON when `json` was asked). */
  output: string;
  /** What nft would print on stderr: the error with the script line and column. */
  error: string;
}

/** One persistent libnftables context (one netlink socket). Tables created with `flags owner` through it die with it. */
export class NftContext {
  constructor(options?: NftContextOptions);
  /** Runs an nft script (one transaction) or a list command; `json` asks for JSON output. Synchronous. */
  run(script: string, options?: { json?: boolean }): NftRunResult;
  /**
   * The same on libuv's thread pool (for listings that would stall the event loop). While it
   * is in flight, run(), runAsync() and close() on this context throw: give reads a context of their own.
   */
  runAsync(script: string, options?: { json?: boolean }): Promise<NftRunResult>;
  readonly open: boolean;
  /** Frees the context: its socket closes and its owner tables are removed by the kernel. */
  close(): void;
}

export function openNftContext(options?: NftContextOptions): NftContext;

/** One named counter's value. */
export interface NamedCounterValue {
  name: string;
  packets: number;
  bytes: number;
}

/**
 * Named counters read with libnftnl (NFT_MSG_GETOBJ) on a netlink socket of its own: one
 * round trip, no libnftables cache rebuild and no JSON, so it stays synchronous.
 */
export class CounterReader {
  constructor(options?: NftContextOptions);
  /** One named counter; throws (with `errno`, ENOENT when it does not exist). */
  read(family: string, table: string, name: string): NamedCounterValue;
  /** Every named counter of a table (one dump). */
  readAll(family: string, table: string): NamedCounterValue[];
  readonly open: boolean;
  close(): void;
}

export function openCounterReader(options?: NftContextOptions): CounterReader;
