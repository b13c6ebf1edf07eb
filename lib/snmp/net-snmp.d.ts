// The part of net-snmp 3.x (which ships no types) that lib/snmp uses.
declare module "net-snmp" {
  import type { EventEmitter } from "node:events";
  export interface Varbind {
    oid: string;
    type: number;
    value: unknown;
  }
  export interface SessionOptions {
    port?: number;
    retries?: number;
    timeout?: number;
    transport?: "udp4" | "udp6";
    version?: number;
    backwardsGetNexts?: boolean;
    dgramModule?: { createSocket(type: string): EventEmitter };
  }
  export interface Session {
    get(oids: string[], cb: (error: Error | null, varbinds: Varbind[]) => void): void;
    subtree(
      oid: string,
      maxRepetitions: number,
      feed: (varbinds: Varbind[]) => boolean | undefined,
      done: (error: Error | null) => void,
    ): void;
    close(): void;
    on(event: "error", cb: (error: Error) => void): void;
  }
  export const Version2c: number;
  export const ObjectType: Record<string, number>;
  export function createSession(target: string, community: string, options?: SessionOptions): Session;
  export function isVarbindError(varbind: Varbind): boolean;
  export function varbindError(varbind: Varbind): string;
  const snmp: {
    Version2c: number;
    ObjectType: Record<string, number>;
    createSession: typeof createSession;
    isVarbindError: typeof isVarbindError;
    varbindError: typeof varbindError;
  };
  export default snmp;
}
