// Data-plane building blocks for the reference roles: nftables transactions and sets
// with per-element counters, the iptables NFQUEUE rule, and HoldQueue over NFQUEUE.
// docs/dataplane.md has the hooks, marks, queue numbers and measured rates.

export type { QueuedPacket, QueueOptions, QueueStats } from "tandem-nfqueue";
export { QUEUE_MARK_MASK, ROLE_QUEUES } from "./conventions.ts";
export {
  type ArrivalAction,
  type FlowObservation,
  type HoldBounds,
  HoldQueue,
  type HoldQueueOptions,
  type HoldQueueStats,
  type KeyCounters,
  type KeyMode,
  type MarkerReleaseResult,
  QueuedRecord,
  type ReleaseOptions,
  type ReleaseResult,
} from "./hold-queue.ts";
export {
  ensureQueueRule,
  IPTABLES_PRIORITY,
  IptablesError,
  type QueueChain,
  type QueueRule,
  type QueueTable,
  queueRuleArgs,
  removeQueueRule,
} from "./iptables-queue.ts";
export {
  type CounterValue,
  deleteTable,
  elementValueText,
  flushSet,
  InProcessNft,
  inProcessNft,
  listCounters,
  listMapsJson,
  listSet,
  listSetsJson,
  type MapElement,
  NftError,
  type NftFamily,
  type NftTarget,
  nftApply,
  parseMapsJson,
  parseSetJson,
  readCounter,
  replaceTable,
  type SetElement,
  type SetListing,
  type SetRef,
  syncSet,
  type TableRef,
  updateSet,
} from "./nft.ts";
export {
  type DecodeResult,
  type PacketSummary,
  packetIdentity,
  summarizePacket,
  type TcpFields,
} from "./packet.ts";
