import { MAX_TIMER_MS, systemClock, type Clock } from "../../core/clock.js";
import {
  CONTENT_TYPE_LENGTH_OFFSET,
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_RULES_BYTES,
  ENVELOPE_VERSION,
  EXPIRES_AT_OFFSET,
  FLAG_FRESH_UNTIL,
  FLAGS_OFFSET,
  FRESH_UNTIL_BYTES,
  isFresh,
  isLive,
} from "../../core/envelope.js";
import { CorruptValueError, InvalidArgumentError, TierUnavailableError } from "../../core/errors.js";
import type { CallScope, DurableTier, DurableWrite, LeaseAttempt, SharedLeases, TagEpochs } from "../engine/durable-tier.js";
import { silentLogger, type Logger } from "../logger.js";
import {
  checkRedisUrl,
  closeRedisClient,
  connectInBackground,
  createRedisClient,
  dataNodes,
  describeTarget,
  parseHostPort,
  urlWithPassword,
  type RedisClient,
  type RedisTarget,
} from "./redis-connection.js";
import { RedisGuard, replyCode, type BreakerState, type RedisGuardStats } from "./redis-guard.js";
import { WriteCoalescing } from "./write-coalescing.js";
import { dropLateCommands, issueIn } from "./late-commands.js";
import { withinMs } from "./within-ms.js";
import { checkEvictionPolicy, warnAboutEvictionPolicy, type EvictionPolicyVerdict } from "./eviction-policy-check.js";
import { checkKeyPrefix, leaseKey, namespacePattern, redisKey, tagEpochsKey } from "./redis-keys.js";

export type { BreakerState } from "./redis-guard.js";
import { RedisInvalidationChannel, type InvalidationSettings, type RemoteChangeHandler } from "./redis-invalidation.js";

/** Options every Redis deployment shares; see {@link RedisTierOptions}. */
export interface RedisTierCommonOptions {
  /** First part of every Redis key (no braces): `${keyPrefix}:{${namespace}}:${key}`. @default "tiercache" */
  keyPrefix?: string;
  /** Clock for expiry checks (tests inject a fake one). Deadlines always use the wall clock. @default systemClock */
  clock?: Clock;
  /** Time limit of one attempt of one operation, in ms (a shorter deadline wins). @default 500 */
  commandTimeoutMs?: number;
  /** Time limit of establishing a connection, and how long `connect` waits for the first one, in ms. @default 2000 */
  connectTimeoutMs?: number;
  /** Extra attempts after a transient failure, for idempotent operations only. @default 2 */
  retries?: number;
  /** Smallest backoff before a retry, in ms (decorrelated jitter grows it up to `retryMaxMs`). @default 20 */
  retryBaseMs?: number;
  /** Largest backoff before a retry, in ms. @default 200 */
  retryMaxMs?: number;
  /** The breaker opens when more than this percentage of attempts in the rolling window failed. @default 50 */
  breakerErrorThresholdPercentage?: number;
  /** Fewest attempts in the rolling window before the breaker may open. @default 10 */
  breakerVolumeThreshold?: number;
  /** How long the breaker stays open before letting one trial call through (half-open), in ms. @default 2000 */
  breakerResetTimeoutMs?: number;
  /** Length of the breaker's rolling statistics window, in ms. @default 10000 */
  breakerRollingWindowMs?: number;
  /** Keys per SCAN page (and per UNLINK) when clearing a namespace. @default 1000 */
  clearBatch?: number;
  /** ACL user for Cluster or Sentinel mode (a URL carries its own). */
  username?: string;
  /** Password for Cluster nodes, the Sentinel-managed master, or a `url` that carries none (giving it in both is refused). */
  password?: string;
  /** Password of the Sentinel processes. */
  sentinelPassword?: string;
  /** TLS to Cluster or Sentinel nodes (with a URL, use rediss://). @default false */
  tls?: boolean;
  /** Where connection and breaker events go. @default silentLogger */
  logger?: Logger;
  /** Called whenever the breaker changes state (after logging). */
  onBreakerStateChange?(state: BreakerState): void;
}

/** A single Redis server (or a proxy in front of one). */
export interface RedisUrlTarget {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  clusterNodes?: never;
  sentinels?: never;
  sentinelName?: never;
}

/** A Redis Cluster, discovered from seed nodes. */
export interface RedisClusterTarget {
  /** One or more seed nodes, "host:port" ("[::1]:7000" for IPv6). */
  clusterNodes: readonly string[];
  url?: never;
  sentinels?: never;
  sentinelName?: never;
}

/** A master managed by Redis Sentinel. */
export interface RedisSentinelTarget {
  /** One or more Sentinel processes, "host:port". */
  sentinels: readonly string[];
  /** The master's name in the Sentinel configuration. */
  sentinelName: string;
  url?: never;
  clusterNodes?: never;
}

/**
 * Options of {@link RedisTier.connect}: exactly one of `url`, `clusterNodes`
 * or `sentinels` (+ `sentinelName`), and any of the common options.
 */
export type RedisTierOptions = RedisTierCommonOptions & (RedisUrlTarget | RedisClusterTarget | RedisSentinelTarget);

/** {@link RedisTierOptions} with defaults applied and values checked. */
export interface ResolvedRedisTierOptions {
  readonly target: RedisTarget;
  readonly keyPrefix: string;
  readonly clock: Clock;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly retries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly breakerErrorThresholdPercentage: number;
  readonly breakerVolumeThreshold: number;
  readonly breakerResetTimeoutMs: number;
  readonly breakerRollingWindowMs: number;
  readonly clearBatch: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly sentinelPassword: string | undefined;
  readonly tls: boolean;
  readonly logger: Logger;
  readonly onBreakerStateChange: ((state: BreakerState) => void) | undefined;
}

/** Counters of a {@link RedisTier} since creation (see {@link RedisGuardStats}). */
export type RedisTierStats = RedisGuardStats;

/**
 * Applies defaults and rejects nonsense with an {@link InvalidArgumentError}
 * naming the option (never echoing a URL, which may hold a password).
 * Config validation may call it at start-up; {@link RedisTier.connect} does.
 */
export function resolveRedisTierOptions(options: RedisTierOptions): ResolvedRedisTierOptions {
  const given = [options.url, options.clusterNodes, options.sentinels].filter((v) => v !== undefined).length;
  if (given !== 1) throw new InvalidArgumentError("redis: give exactly one of url, clusterNodes or sentinels");
  let target: RedisTarget;
  if (options.url !== undefined) {
    checkRedisUrl(options.url);
    target = { kind: "standalone", url: urlWithPassword(options.url, options.password) };
  } else if (options.clusterNodes !== undefined) {
    if (options.clusterNodes.length === 0) throw new InvalidArgumentError("redis clusterNodes must list at least one node");
    target = { kind: "cluster", nodes: options.clusterNodes.map((n) => parseHostPort(n, "redis clusterNodes")) };
  } else {
    const sentinels = options.sentinels!;
    if (sentinels.length === 0) throw new InvalidArgumentError("redis sentinels must list at least one sentinel");
    if (!options.sentinelName) throw new InvalidArgumentError("redis sentinelName is required with sentinels");
    target = { kind: "sentinel", sentinels: sentinels.map((n) => parseHostPort(n, "redis sentinels")), name: options.sentinelName };
  }
  const keyPrefix = options.keyPrefix ?? "tiercache";
  checkKeyPrefix(keyPrefix);
  // Every duration here becomes a timer's delay: a longer one than MAX_TIMER_MS would fire after 1 ms.
  const retryBaseMs = integer("retryBaseMs", options.retryBaseMs, 20, 1, MAX_TIMER_MS);
  const resolved: ResolvedRedisTierOptions = {
    target,
    keyPrefix,
    clock: options.clock ?? systemClock,
    commandTimeoutMs: integer("commandTimeoutMs", options.commandTimeoutMs, 500, 1, MAX_TIMER_MS),
    connectTimeoutMs: integer("connectTimeoutMs", options.connectTimeoutMs, 2_000, 1, MAX_TIMER_MS),
    retries: integer("retries", options.retries, 2, 0),
    retryBaseMs,
    retryMaxMs: integer("retryMaxMs", options.retryMaxMs, 200, retryBaseMs, MAX_TIMER_MS),
    breakerErrorThresholdPercentage: integer("breakerErrorThresholdPercentage", options.breakerErrorThresholdPercentage, 50, 1, 100),
    breakerVolumeThreshold: integer("breakerVolumeThreshold", options.breakerVolumeThreshold, 10, 0),
    breakerResetTimeoutMs: integer("breakerResetTimeoutMs", options.breakerResetTimeoutMs, 2_000, 1, MAX_TIMER_MS),
    breakerRollingWindowMs: integer("breakerRollingWindowMs", options.breakerRollingWindowMs, 10_000, 10, MAX_TIMER_MS),
    clearBatch: integer("clearBatch", options.clearBatch, 1_000, 1),
    username: options.username,
    password: options.password,
    sentinelPassword: options.sentinelPassword,
    tls: options.tls ?? false,
    logger: options.logger ?? silentLogger,
    onBreakerStateChange: options.onBreakerStateChange,
  };
  return Object.freeze(resolved);
}

function integer(name: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`redis ${name} must be an integer in ${min}..${max === Number.MAX_SAFE_INTEGER ? "∞" : max}, got ${value}`);
  }
  return value;
}

/** The touch script: the client's TTL decision, made atomically next to the freshness check. */
interface TouchCommand {
  /** KEYS[1] key; ARGV: now (ms), the new expiresAt as 8 big-endian f64 bytes, PX ms (0 = persist, -1 = delete). Returns 1 when found fresh. */
  tiercacheTouch(key: string, now: number, expiresAt: Buffer, px: number): Promise<number>;
}

/**
 * Lua: whether an envelope (or its first ENVELOPE_RULES_BYTES) is fresh at
 * `now` by the rules of core/envelope.ts: not past expiresAt, nor past
 * freshUntil when it has one. False for anything that is not an envelope.
 */
const FRESH_HEAD_LUA = `
local function freshHead(head, now)
  if #head < ${ENVELOPE_HEADER_BYTES} or string.byte(head, 1) ~= ${ENVELOPE_VERSION} then return false end
  local expiresAt = struct.unpack('>d', string.sub(head, ${EXPIRES_AT_OFFSET + 1}, ${EXPIRES_AT_OFFSET + 8}))
  local fresh = expiresAt == 0 or expiresAt > now
  if fresh and bit.band(string.byte(head, ${FLAGS_OFFSET + 1}), ${FLAG_FRESH_UNTIL}) ~= 0 then
    local freshAt = ${ENVELOPE_HEADER_BYTES} + string.byte(head, ${CONTENT_TYPE_LENGTH_OFFSET + 1})
    if #head >= freshAt + ${FRESH_UNTIL_BYTES} then
      local freshUntil = struct.unpack('>d', string.sub(head, freshAt + 1, freshAt + ${FRESH_UNTIL_BYTES}))
      fresh = freshUntil == 0 or freshUntil > now
    end
  end
  return fresh
end
`;

/**
 * Lua: who holds a lease key: -1 when `token` does, the ms another holder
 * has left (at least 0), or nil when nobody does.
 */
const HELD_FOR_LUA = `
local function heldFor(lease, token)
  local holder = redis.call('GET', lease)
  if holder == token then return -1 end
  if not holder then return nil end
  local left = redis.call('PTTL', lease)
  if left < 0 then left = 0 end
  return left
end
`;

/**
 * KEYS[1] lease, KEYS[2] value; ARGV: token, ms, condition, now, seen
 * expiresAt. Condition "0": none; "1" (unless fresh): -2 (not taken) when the
 * value is fresh: it was written since the caller read it; "2" (eager
 * refresh): -2 when the stored value's expiresAt is not the seen one: it was
 * written since the caller's copy, so a refresh already happened. -1 when the
 * token holds the lease now (taken, or already its own); else the ms the
 * holder has left.
 */
export const LEASE_ACQUIRE_LUA = `
${FRESH_HEAD_LUA}
${HELD_FOR_LUA}
local held = heldFor(KEYS[1], ARGV[1])
if held then return held end
if ARGV[3] == '2' then
  local head = redis.call('GETRANGE', KEYS[2], 0, ${EXPIRES_AT_OFFSET + 7})
  if #head >= ${EXPIRES_AT_OFFSET + 8} and string.byte(head, 1) == ${ENVELOPE_VERSION} then
    local expiresAt = struct.unpack('>d', string.sub(head, ${EXPIRES_AT_OFFSET + 1}, ${EXPIRES_AT_OFFSET + 8}))
    if expiresAt ~= tonumber(ARGV[5]) then return -2 end
  end
end
if ARGV[3] == '1' and freshHead(redis.call('GETRANGE', KEYS[2], 0, ${ENVELOPE_RULES_BYTES - 1}), tonumber(ARGV[4])) then return -2 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return -1
`;

/**
 * GetOrLease's read and lease in one round trip. KEYS[1] lease, KEYS[2]
 * value; ARGV: token, ms, now. Replies {code, value or nil}: the value as GET
 * returns it, and -2 when it is fresh (the lease is not taken); else, as
 * the acquire script with condition "1", -1 when the token holds the lease
 * now, or the ms another holder has left.
 */
export const LEASE_READ_ACQUIRE_LUA = `
${FRESH_HEAD_LUA}
${HELD_FOR_LUA}
local value = redis.call('GET', KEYS[2])
local held = heldFor(KEYS[1], ARGV[1])
if held then return {held, value} end
if value and freshHead(value, tonumber(ARGV[3])) then return {-2, value} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {-1, value}
`;

/** KEYS[1] lease; ARGV: token. 1 when the token held the lease (now ended). */
export const LEASE_RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/**
 * KEYS[1] value, KEYS[2] lease; ARGV: token, envelope, PX ms (0 = no expiry,
 * -1 = already expired: remove), and optionally an invalidation channel and
 * message, published first, whatever the fence decides (announcing a write
 * that was refused costs a reader a miss, never a stale value). Writes and
 * ends the lease when the token holds it or nobody does (1); refuses when
 * another holder has it (0).
 */
export const LEASE_FENCED_SET_LUA = `
if ARGV[4] then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
local px = tonumber(ARGV[3])
if px == -1 then redis.call('UNLINK', KEYS[1])
elseif px == 0 then redis.call('SET', KEYS[1], ARGV[2])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', px) end
if holder then redis.call('DEL', KEYS[2]) end
return 1
`;

interface LeaseCommands {
  tiercacheLeaseAcquire(lease: string, key: string, token: string, ms: number, condition: string, now: number, seenExpiresAt: number): Promise<number>;
  tiercacheLeaseReadAcquireBuffer(lease: string, key: string, token: string, ms: number, now: number): Promise<[number, Buffer | null]>;
  tiercacheLeaseRelease(lease: string, token: string): Promise<number>;
  tiercacheLeaseSet(key: string, lease: string, token: string, envelope: Buffer, px: number, ...announce: [channel: string, message: string] | []): Promise<number>;
}

/**
 * Touch in one round trip, by the rules of core/envelope.ts (offsets and
 * flags come from its constants): read the envelope's prefix; if the value is
 * fresh by the caller's clock, overwrite expiresAt, and freshUntil when the
 * envelope has one (ending its grace), in place (SETRANGE, no copy of the
 * value), and move the Redis TTL to match. A stale or gone value is left alone.
 */
export const TOUCH_LUA = `
local head = redis.call('GETRANGE', KEYS[1], 0, ${ENVELOPE_RULES_BYTES - 1})
if #head < ${ENVELOPE_HEADER_BYTES} then return 0 end
if string.byte(head, 1) ~= ${ENVELOPE_VERSION} then return redis.error_reply('tiercache: unknown envelope version') end
local now = tonumber(ARGV[1])
local expiresAt = struct.unpack('>d', string.sub(head, ${EXPIRES_AT_OFFSET + 1}, ${EXPIRES_AT_OFFSET + 8}))
if expiresAt ~= 0 and expiresAt <= now then return 0 end
local freshAt = -1
if bit.band(string.byte(head, ${FLAGS_OFFSET + 1}), ${FLAG_FRESH_UNTIL}) ~= 0 then
  freshAt = ${ENVELOPE_HEADER_BYTES} + string.byte(head, ${CONTENT_TYPE_LENGTH_OFFSET + 1})
  if #head < freshAt + ${FRESH_UNTIL_BYTES} then return redis.error_reply('tiercache: envelope truncated inside freshUntil') end
  local freshUntil = struct.unpack('>d', string.sub(head, freshAt + 1, freshAt + ${FRESH_UNTIL_BYTES}))
  if freshUntil ~= 0 and freshUntil <= now then return 0 end
end
local px = tonumber(ARGV[3])
if px < 0 then
  redis.call('UNLINK', KEYS[1])
  return 1
end
redis.call('SETRANGE', KEYS[1], ${EXPIRES_AT_OFFSET}, ARGV[2])
if freshAt >= 0 then redis.call('SETRANGE', KEYS[1], freshAt, ARGV[2]) end
if px == 0 then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], px) end
return 1
`;

/** The invalidate-tags script. */
interface InvalidateTagsCommand {
  /** KEYS[1] the namespace's tag hash; ARGV the tags. Returns the new epoch. */
  tiercacheInvalidateTags(key: string, ...tags: string[]): Promise<number>;
}

/**
 * InvalidateTags in one round trip and one slot: bump the namespace's tag
 * counter (field "" of its hash; a tag is never empty) and give the new value
 * to every tag. The hash shares the namespace's hash tag, so it lives in the
 * slot of the namespace's values in Cluster mode too.
 */
export const INVALIDATE_TAGS_LUA = `
local epoch = redis.call('HINCRBY', KEYS[1], '', 1)
for i = 1, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], epoch) end
return epoch
`;

/** The TTL of a write: ms for PX, "none" for no expiry, "expired" when the expiry has passed. */
type Ttl = number | "none" | "expired";

/**
 * The Redis durable tier: standalone, Sentinel or Cluster through ioredis.
 *
 * Values are the engine's envelopes, stored as Redis strings under
 * `${keyPrefix}:{${namespace}}:${key}` (see redis-keys.ts for why the
 * namespace is a Cluster hash tag). The TTL is set atomically with the value
 * (SET … PX), so Redis reclaims expired entries itself; reads also check the
 * envelope's expiresAt against the tier's clock, so an entry is never served
 * past its expiry even with clock skew or an injected clock.
 *
 * Round trips: get = GET; getMany = one MGET; setMany = one MULTI/EXEC (all or
 * nothing: MSETs of the values without expiry, SET … PX of the others);
 * delete/deleteMany = one MULTI/EXEC of GETRANGE (the envelope's prefix, to
 * count only fresh keys) and one UNLINK; has = GETRANGE of the
 * prefix only; touch = one Lua script; GetOrLease's read and lease = one Lua
 * script (leases.readAndAcquire). Freshness follows core/envelope.ts.
 *
 * Clear of a namespace is SCAN MATCH `prefix:{ns}:*` + UNLINK in batches, on
 * every master in Cluster mode. A namespace epoch (a counter folded into every
 * key, bumped by clear) would make clear O(1), but it costs an extra read per
 * operation or an epoch cache that other server instances can hold stale (a
 * cleared value would stay readable through them), and it leaves the old keys
 * behind: keys without TTL would never go. Clear is rare; correctness and no
 * garbage win. Keys written while a clear runs may survive it.
 *
 * Every Redis command goes through one {@link RedisGuard} (breaker, per-attempt
 * timeout, retries of idempotent operations with decorrelated jitter); failures
 * reject with {@link TierUnavailableError}. Retried: get, getMany, has, set,
 * setMany, touch, clear (repeating them leaves the same state and result).
 * Not retried: delete and deleteMany, whose result (was it live?) would be
 * wrong after a first attempt that deleted but lost its reply.
 *
 * No command of an attempt is written to Redis after the guard stopped
 * waiting for that attempt (late-commands.ts): ioredis's own resends (Cluster
 * TRYAGAIN/MOVED/ASK, NOSCRIPT, queued and auto-pipelined commands) go out as
 * DBSIZE instead, so a write reported failed cannot land over a later one.
 */
export class RedisTier implements DurableTier {
  readonly name = "redis" as const;
  /** The resolved options. */
  readonly options: ResolvedRedisTierOptions;
  readonly #client: RedisClient;
  readonly #guard: RedisGuard;
  /** Writes each attempt's commands at once or in one write with the others of its turn (see {@link WriteCoalescing}). */
  readonly #writes: WriteCoalescing;
  readonly #clock: Clock;
  readonly #touch: TouchCommand;
  readonly #invalidateTags: InvalidateTagsCommand;
  #closed = false;
  /** The channel {@link invalidations} opened, which fenced writes announce their changes on. */
  #invalidationChannel: RedisInvalidationChannel | undefined;
  #evictionPolicy: EvictionPolicyVerdict | undefined;
  #policyCheck: Promise<void> | undefined;

  private constructor(options: ResolvedRedisTierOptions, client: RedisClient) {
    this.options = options;
    this.#client = client;
    dropLateCommands(client);
    this.#writes = new WriteCoalescing(client);
    client.on("ready", () => (this.#policyCheck = this.#checkEvictionPolicy()));
    this.#clock = options.clock;
    this.#guard = new RedisGuard(options);
    client.on("ready", () => void this.#confirmBack());
    client.defineCommand("tiercacheTouch", { numberOfKeys: 1, lua: TOUCH_LUA });
    this.#touch = client as unknown as TouchCommand;
    client.defineCommand("tiercacheInvalidateTags", { numberOfKeys: 1, lua: INVALIDATE_TAGS_LUA });
    this.#invalidateTags = client as unknown as InvalidateTagsCommand;
    client.defineCommand("tiercacheLeaseAcquire", { numberOfKeys: 2, lua: LEASE_ACQUIRE_LUA });
    client.defineCommand("tiercacheLeaseReadAcquire", { numberOfKeys: 2, lua: LEASE_READ_ACQUIRE_LUA });
    client.defineCommand("tiercacheLeaseRelease", { numberOfKeys: 1, lua: LEASE_RELEASE_LUA });
    client.defineCommand("tiercacheLeaseSet", { numberOfKeys: 2, lua: LEASE_FENCED_SET_LUA });
    const commands = client as unknown as LeaseCommands;
    const prefix = options.keyPrefix;
    this.leases = {
      acquire: async (namespace, key, token, durationMs, unlessFresh, scope, seenExpiresAt): Promise<LeaseAttempt> => {
        const lease = leaseKey(prefix, namespace, key);
        const id = this.#key(namespace, key);
        const condition = seenExpiresAt !== undefined ? "2" : unlessFresh ? "1" : "0";
        const left = await this.#exec("leaseAcquire", true, scope, () =>
          commands.tiercacheLeaseAcquire(lease, id, token, durationMs, condition, this.#clock(), seenExpiresAt ?? 0),
        );
        return leaseAttempt(left);
      },
      readAndAcquire: async (namespace, key, token, durationMs, scope) => {
        const lease = leaseKey(prefix, namespace, key);
        const id = this.#key(namespace, key);
        let reply: [number, Buffer | null];
        try {
          reply = await this.#exec("leaseReadAcquire", true, scope, () => commands.tiercacheLeaseReadAcquireBuffer(lease, id, token, durationMs, this.#clock()));
        } catch (err) {
          if (!refusedByRedis(err)) throw err;
          // Redis refuses writes (full under noeviction, a read-only replica…): it may still serve the read alone.
          return { envelope: await this.get(namespace, key, scope), attempt: { failed: err } };
        }
        const [left, envelope] = reply;
        return { envelope: this.#live(envelope) ? envelope : undefined, attempt: leaseAttempt(left) };
      },
      release: async (namespace, key, token) => {
        const lease = leaseKey(prefix, namespace, key);
        return (await this.#exec("leaseRelease", false, undefined, () => commands.tiercacheLeaseRelease(lease, token))) === 1;
      },
      setFenced: async (namespace, write, token, scope, change) => {
        const id = this.#key(namespace, write.key);
        const lease = leaseKey(prefix, namespace, write.key);
        const value = toBuffer(write.envelope);
        // The change's announcement rides in the script when the channel is idle: one command less per write.
        const announcement = change && this.#invalidationChannel?.announceWithWrite(change);
        const announce: [string, string] | [] = announcement ? [announcement.channel, announcement.text] : [];
        let attempts = 0;
        let stored: number;
        try {
          stored = await this.#exec("setFenced", true, scope, () => {
            attempts++;
            const ttl = this.#ttl(write.expiresAt);
            return commands.tiercacheLeaseSet(id, lease, token, value, ttl === "expired" ? -1 : ttl === "none" ? 0 : ttl, ...announce);
          });
        } catch (err) {
          announcement?.settle(false, attempts > 1);
          throw err;
        }
        announcement?.settle(true, attempts > 1);
        return stored === 1;
      },
    };
  }

  /** Leases in Redis, shared by every instance over it (see SharedLeases). */
  readonly leases: SharedLeases;

  /**
   * Creates the tier and starts connecting. Resolves once Redis answered, or
   * the first connection attempt failed, or `connectTimeoutMs` passed: it never
   * rejects or hangs because Redis is down (calls then fail with
   * TierUnavailableError until Redis answers; the client keeps reconnecting).
   *
   * @throws InvalidArgumentError for invalid options.
   */
  static async connect(options: RedisTierOptions): Promise<RedisTier> {
    const resolved = resolveRedisTierOptions(options);
    const client = createRedisClient(resolved);
    const tier = new RedisTier(resolved, client);
    if (!(await connectInBackground(client, resolved.connectTimeoutMs))) {
      resolved.logger.warn("redis not reachable at start; calls fail as unavailable until it answers", { redis: describeTarget(resolved.target) });
    }
    await tier.#policyCheck;
    return tier;
  }

  /**
   * Redis's eviction policy as last read (at start-up and on each reconnect),
   * or undefined before Redis first answered. Tags hold only when no
   * `allkeys-*` policy can evict the hash of tag epochs; a warning is logged
   * otherwise, and when the policy could not be read.
   */
  get evictionPolicy(): EvictionPolicyVerdict | undefined {
    return this.#evictionPolicy;
  }

  async #checkEvictionPolicy(): Promise<void> {
    const verdict = await checkEvictionPolicy(this.#client, this.options.connectTimeoutMs);
    this.#evictionPolicy = verdict;
    if (!this.#closed) warnAboutEvictionPolicy(verdict, this.options.logger, describeTarget(this.options.target));
  }

  /** The circuit breaker's state. */
  get breakerState(): BreakerState {
    return this.#guard.state;
  }

  /** Whether the data connection is up now (ioredis status "ready"); readiness checks it, no command is sent. */
  get reachable(): boolean {
    return this.#client.status === "ready";
  }

  /** Counters of guarded calls since creation (a snapshot). */
  stats(): RedisTierStats {
    return this.#guard.stats();
  }

  get(namespace: string, key: string, scope?: CallScope): Promise<Uint8Array | undefined> {
    let id: string;
    try {
      id = this.#key(namespace, key);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#exec("get", true, scope, () => this.#client.getBuffer(id)).then((envelope) => (this.#live(envelope) ? envelope : undefined));
  }

  async getMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const ids = keys.map((key) => this.#key(namespace, key));
    const envelopes = await this.#exec("getMany", true, scope, () => this.#client.mgetBuffer(ids));
    return envelopes.map((envelope) => (this.#live(envelope) ? envelope : undefined));
  }

  async set(namespace: string, write: DurableWrite, scope?: CallScope): Promise<void> {
    const id = this.#key(namespace, write.key);
    const value = toBuffer(write.envelope);
    await this.#exec("set", true, scope, async () => {
      const ttl = this.#ttl(write.expiresAt);
      if (ttl === "expired") await this.#client.unlink(id);
      else if (ttl === "none") await this.#client.set(id, value);
      else await this.#client.set(id, value, "PX", ttl);
    });
  }

  async setMany(namespace: string, writes: readonly DurableWrite[], scope?: CallScope): Promise<void> {
    if (writes.length === 0) return;
    // In one transaction only a key's last write shows, so the others are left out and the rest grouped:
    // the values without expiry go in MSETs of up to MSET_KEYS keys, which spares ioredis a command (and its reply) per entry.
    const last = new Map<string, DurableWrite>();
    for (const write of writes) last.set(write.key, write);
    const items = Array.from(last.values(), (write) => ({ id: this.#key(namespace, write.key), value: toBuffer(write.envelope), expiresAt: write.expiresAt }));
    await this.#exec("setMany", true, scope, async () => {
      const tx = this.#client.multi();
      const lasting: (string | Buffer)[] = [];
      for (const { id, value, expiresAt } of items) {
        const ttl = this.#ttl(expiresAt);
        if (ttl === "expired") tx.unlink(id);
        else if (ttl === "none") lasting.push(id, value);
        else tx.set(id, value, "PX", ttl);
      }
      for (let i = 0; i < lasting.length; i += 2 * MSET_KEYS) tx.mset(...lasting.slice(i, i + 2 * MSET_KEYS));
      execResults(await tx.exec());
    });
  }

  async delete(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return (await this.#remove("delete", namespace, [key], scope)) > 0;
  }

  async deleteMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<number> {
    return this.#remove("deleteMany", namespace, keys, scope);
  }

  async has(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    const id = this.#key(namespace, key);
    const prefix = await this.#exec("has", true, scope, () => this.#client.getrangeBuffer(id, 0, ENVELOPE_RULES_BYTES - 1));
    return prefix.length > 0 && isFresh(prefix, this.#clock());
  }

  async touch(namespace: string, key: string, expiresAt: number, scope?: CallScope): Promise<boolean> {
    const id = this.#key(namespace, key);
    if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
      throw new InvalidArgumentError(`expiresAt must be a non-negative integer of ms since epoch (0 = never), got ${expiresAt}`);
    }
    const bytes = Buffer.alloc(8);
    bytes.writeDoubleBE(expiresAt);
    const found = await this.#exec("touch", true, scope, () => {
      const ttl = this.#ttl(expiresAt);
      return this.#touch.tiercacheTouch(id, this.#clock(), bytes, ttl === "none" ? 0 : ttl === "expired" ? -1 : ttl);
    });
    return found === 1;
  }

  async clear(namespace: string, scope?: CallScope): Promise<void> {
    const pattern = namespacePattern(this.options.keyPrefix, namespace);
    const nodes = dataNodes(this.#client); // in Cluster mode, the masters known from the last slot refresh
    if (nodes.length === 0) throw new TierUnavailableError("redis clear failed: no cluster master known (not connected)");
    const batch = this.options.clearBatch;
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, found] = await this.#exec("clear", true, scope, () => node.scanBuffer(cursor, "MATCH", pattern, "COUNT", batch));
        cursor = next.toString();
        for (let i = 0; i < found.length; i += batch) {
          const chunk = found.slice(i, i + batch);
          await this.#exec("clear", true, scope, () => this.#client.unlink(...chunk));
        }
      } while (cursor !== "0");
    }
  }

  async tagEpochs(namespace: string, tags: readonly string[], scope?: CallScope): Promise<TagEpochs> {
    const id = tagEpochsKey(this.options.keyPrefix, namespace);
    const [counter, ...epochs] = await this.#exec("tagEpochs", true, scope, () => this.#client.hmget(id, "", ...tags));
    return { counter: epochOf(counter), epochs: epochs.map(epochOf) };
  }

  /** Retried: a repeated invalidation only hides what the first one hid, plus what was written in between (a miss, never a stale hit). */
  async invalidateTags(namespace: string, tags: readonly string[], scope?: CallScope): Promise<number> {
    const id = tagEpochsKey(this.options.keyPrefix, namespace);
    return this.#exec("invalidateTags", true, scope, () => this.#invalidateTags.tiercacheInvalidateTags(id, ...tags));
  }

  /**
   * The invalidation channel shared with the other server instances over this
   * Redis (see redis-invalidation.ts). It subscribes on a connection of its
   * own (a duplicate of this tier's, unless `settings.subscriber` is given)
   * and publishes in order on this tier's connection, outside the breaker,
   * so that a change is announced after the write it announces, even one
   * that timed out and is applied late, and even while the breaker is open.
   */
  invalidations(handler: RemoteChangeHandler, settings: InvalidationSettings = {}): RedisInvalidationChannel {
    const { commandTimeoutMs, connectTimeoutMs, retries, retryMaxMs, keyPrefix, logger } = this.options;
    const channel = (this.#invalidationChannel = new RedisInvalidationChannel(settings.subscriber ?? this.#client.duplicate(), (name, message) => this.#writes.run(() => this.#client.publish(name, message)), {
      keyPrefix,
      logger,
      handler,
      attemptTimeoutMs: commandTimeoutMs,
      settleMs: (retries + 1) * commandTimeoutMs + retries * retryMaxMs,
      startTimeoutMs: connectTimeoutMs,
      ...(settings.heartbeatMs !== undefined && { heartbeatMs: settings.heartbeatMs }),
    }));
    this.#client.on("ready", () => channel.connectionBack());
    return channel;
  }

  /** Closes the connection (QUIT, bounded by commandTimeoutMs) and stops the breaker. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#guard.close();
    // QUIT only over a connection that is up, and never for longer than a command may take; else drop it at once.
    if (this.reachable) await closeRedisClient(this.#client, this.options.commandTimeoutMs);
    else this.#client.disconnect();
  }

  /** Drops the connection at once, without QUIT (for a shutdown that ran out of time). */
  disconnect(): void {
    this.#closed = true;
    this.#guard.close();
    this.#client.disconnect();
  }

  /** Deletes keys in one transaction, counting those that held a fresh value (duplicates count once). */
  async #remove(name: string, namespace: string, keys: readonly string[], scope: CallScope | undefined): Promise<number> {
    const ids = [...new Set(keys.map((key) => this.#key(namespace, key)))];
    if (ids.length === 0) return 0;
    const headers = await this.#exec(name, false, scope, async () => {
      const tx = this.#client.multi();
      for (const id of ids) tx.getrangeBuffer(id, 0, ENVELOPE_RULES_BYTES - 1);
      tx.unlink(...ids);
      return execResults(await tx.exec()).slice(0, ids.length) as Buffer[];
    });
    return headers.filter((prefix) => prefix.length > 0 && this.#freshOrCorrupt(prefix)).length;
  }

  /**
   * After a (re)connection: while the breaker is not closed, one PING
   * answered within the command timeout closes it (the ready check alone
   * says less: ioredis skips it without the INFO permission).
   */
  async #confirmBack(): Promise<void> {
    if (this.#closed || this.#guard.state === "closed") return;
    try {
      await withinMs(this.#client.ping(), this.options.commandTimeoutMs);
    } catch {
      return;
    }
    this.#guard.connectionConfirmed();
  }

  #exec<T>(name: string, idempotent: boolean, scope: CallScope | undefined, run: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new TierUnavailableError("the redis tier is closed"));
    return this.#guard.exec({ name, idempotent, run: (attempt) => issueIn(attempt, () => this.#writes.run(run)) }, scope);
  }

  #key(namespace: string, key: string): string {
    return redisKey(this.options.keyPrefix, namespace, key);
  }

  /** Whether an envelope is present and not gone by the tier's clock (stale values are kept for GetOrLease); throws CorruptValueError for a bad header. */
  #live(envelope: Buffer | null): envelope is Buffer {
    return envelope !== null && isLive(envelope, this.#clock());
  }

  /** Whether an envelope prefix is fresh; a corrupt one counts as fresh (for counting what a delete removed). */
  #freshOrCorrupt(prefix: Buffer): boolean {
    try {
      return isFresh(prefix, this.#clock());
    } catch (err) {
      if (err instanceof CorruptValueError) return true;
      throw err;
    }
  }

  #ttl(expiresAt: number): Ttl {
    if (expiresAt === 0) return "none";
    const ms = Math.ceil(expiresAt - this.#clock());
    return ms > 0 ? ms : "expired";
  }
}

/** Replies of a Redis that refuses writes and still serves reads: full under noeviction, a read-only replica, too few replicas, a failing snapshot. */
const WRITE_REFUSALS = new Set(["OOM", "READONLY", "NOREPLICAS", "MISCONF"]);

/** Whether a guarded call failed because Redis refuses writes now (and may serve a read). */
function refusedByRedis(err: unknown): boolean {
  if (!(err instanceof TierUnavailableError)) return false;
  const code = replyCode(err.cause);
  return code !== undefined && WRITE_REFUSALS.has(code);
}

/** A lease script's reply: -1 taken, -2 refused for a fresh value, else the ms another holder has left. */
function leaseAttempt(reply: number): LeaseAttempt {
  if (reply === -1) return { acquired: true };
  return reply === -2 ? { acquired: false, heldForMs: 0, freshValue: true } : { acquired: false, heldForMs: reply };
}

/** A tag epoch as HMGET returns it (null = never invalidated). */
function epochOf(reply: string | null | undefined): number {
  if (reply === null || reply === undefined) return 0;
  const epoch = Number(reply);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new CorruptValueError(`tag epoch ${JSON.stringify(reply.slice(0, 40))} is not a counter`);
  return epoch;
}

/** A Buffer view of the bytes (no copy). */
function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Keys per MSET of a setMany: its arguments are spread into one call, which a very long list would overflow. */
const MSET_KEYS = 1000;

/** The replies of a MULTI/EXEC, throwing the first command error. */
function execResults(results: [error: Error | null, result: unknown][] | null): unknown[] {
  if (results === null) throw new Error("transaction aborted");
  return results.map(([error, result]) => {
    if (error) throw error;
    return result;
  });
}
