/**
 * tiercache/client: the typed TypeScript client of the tiercache service.
 * @module
 */
export {
  CacheClient,
  CLIENT_FLOW_CONTROL_WINDOW_BYTES,
  type CacheClientOptions,
  type TlsOptions,
  type CachedOptions,
  type CallOptions,
  type SetOptions,
  type StreamOptions,
  type CacheEntry,
  type EntriesInput,
  type NamespaceStats,
  type TierStats,
  type ServerStats,
  type StatsReport,
  type BreakerState,
  type TierName,
  type ManyLoader,
  type BackgroundErrorInfo,
  type WrapStats,
} from "./cache-client.js";
export {
  jsonSerializer,
  CONTENT_TYPE_JSON,
  CONTENT_TYPE_TAGGED_JSON,
  CONTENT_TYPE_BINARY,
  CONTENT_TYPE_TEXT,
  UnserializableError,
  type Serializer,
} from "./serializer.js";
export { RpcError, Status, statusName } from "../core/rpc-error.js";
export { CorruptValueError } from "../core/errors.js";
export { MAX_TAGS_PER_ENTRY, MAX_TAG_BYTES, MAX_TAGS_PER_INVALIDATION } from "../core/tag-rules.js";
export { LoaderTimeoutError, type Loader, type WrapOptions, type WrapTask } from "./wrap.js";
export { wrapContext, type WrapContext } from "./wrap-context.js";
export type { LocalTierOptions } from "./local-tier.js";
export type { CoherenceOptions } from "./coherence.js";
export { keyFromArguments } from "./cache-key.js";
