import { InvalidArgumentError } from "../../core/errors.js";

/**
 * Key layout of the Redis tier: `${prefix}:{${namespace}}:${key}`.
 *
 * The namespace sits inside a Redis Cluster hash tag (`{…}`), so every key of
 * one namespace hashes to the same slot. Redis Cluster refuses multi-key
 * commands (MGET, UNLINK of several keys), MULTI/EXEC transactions and Lua
 * scripts whose keys span slots (CROSSSLOT); with the tag, getMany is one MGET,
 * setMany one MULTI/EXEC and deleteMany one transaction in Cluster exactly as
 * on a standalone server. The cost: one namespace lives on one shard, so a
 * single very large or very hot namespace does not spread over the cluster
 * (many namespaces do, slot by slot).
 *
 * Standalone and Sentinel deployments ignore the braces; the layout is the
 * same everywhere, so data can move between them.
 */

/** Characters SCAN MATCH treats as glob syntax. */
const GLOB = /[*?[\]\\]/g;

/** Checks a key prefix: non-empty and free of braces (which would move the hash tag). */
export function checkKeyPrefix(prefix: string): void {
  if (prefix.length === 0) throw new InvalidArgumentError("redis keyPrefix must not be empty");
  if (/[{}]/.test(prefix)) throw new InvalidArgumentError("redis keyPrefix must not contain '{' or '}' (it would change the Cluster hash tag)");
}

/**
 * The part of every key of `namespace`: `${prefix}:{${namespace}}:`.
 *
 * @throws InvalidArgumentError for an empty namespace (Redis hashes `{}` as if
 *   there were no tag) or one containing `}` (it would end the tag early and
 *   let two namespaces share keys).
 */
export function namespacePrefix(prefix: string, namespace: string): string {
  if (namespace.length === 0 || namespace.includes("}")) {
    throw new InvalidArgumentError("namespace must be non-empty and must not contain '}' for the Redis tier");
  }
  return `${prefix}:{${namespace}}:`;
}

/** The Redis key of `key` in `namespace`. */
export function redisKey(prefix: string, namespace: string, key: string): string {
  return namespacePrefix(prefix, namespace) + key;
}

/**
 * The hash of a namespace's tag epochs: `${prefix}:{${namespace}}#tags`. It
 * shares the namespace's hash tag (same Cluster slot as its values) and is
 * outside `${prefix}:{${namespace}}:*`, so no key collides with it and Clear
 * leaves it (epochs only ever grow).
 */
export function tagEpochsKey(prefix: string, namespace: string): string {
  return `${namespacePrefix(prefix, namespace).slice(0, -1)}#tags`;
}

/** A SCAN MATCH pattern matching exactly the keys of `namespace`. */
export function namespacePattern(prefix: string, namespace: string): string {
  return `${namespacePrefix(prefix, namespace).replace(GLOB, "\\$&")}*`;
}

/**
 * The Redis key of the lease on `key` (see SharedLeases): `${prefix}:lease:{${namespace}}:${key}`.
 * Same hash tag as the value (one slot, so one Lua script may touch both);
 * outside the namespace's SCAN pattern, so Clear leaves leases alone (they lapse).
 */
export function leaseKey(prefix: string, namespace: string, key: string): string {
  namespacePrefix(prefix, namespace);
  return `${prefix}:lease:{${namespace}}:${key}`;
}
