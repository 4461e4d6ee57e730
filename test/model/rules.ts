/**
 * Which namespaces, keys and TTLs a call may name: the argument rules of the
 * reference model (see reference-model.ts and the README's "Semantics").
 */

/** The namespace that `""` stands for. */
export const DEFAULT_NAMESPACE = "default";

/** A valid namespace name; `""` is not one, it means {@link DEFAULT_NAMESPACE}. */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The longest TTL (and grace) accepted: 100 years of 365 days, in ms. */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000;

/** Why the model refuses a call; every refusal is the gRPC status INVALID_ARGUMENT. */
export class InvalidArgument extends Error {
  override readonly name = "InvalidArgument";
  /** The gRPC status name the service must answer with. */
  readonly status = "INVALID_ARGUMENT" as const;
}

/** The namespace a call addresses: `""` is the default one; a name outside the pattern is refused. */
export function resolveNamespace(namespace: string): string {
  if (namespace === "") return DEFAULT_NAMESPACE;
  if (!NAMESPACE_PATTERN.test(namespace)) throw new InvalidArgument(`invalid namespace ${JSON.stringify(namespace)}`);
  return namespace;
}

/** True when `text` holds a UTF-16 surrogate that is not half of a pair. */
function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** In a `u` regex a surrogate pair is one code point, so only a lone half matches \p{Cs}. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Refuses an empty key, a key that is not well-formed Unicode (a lone
 * surrogate), and a key over `maxKeyBytes` UTF-8 bytes. Any other string is a
 * key of its own, compared exactly.
 */
export function checkKey(key: string, maxKeyBytes: number): void {
  if (key === "") throw new InvalidArgument("empty key");
  if (hasLoneSurrogate(key)) throw new InvalidArgument(`key ${JSON.stringify(key)} holds a lone surrogate`);
  if (Buffer.byteLength(key, "utf8") > maxKeyBytes) throw new InvalidArgument(`key of ${Buffer.byteLength(key, "utf8")} bytes is over ${maxKeyBytes}`);
}

/**
 * The whole ms a TTL (or grace) stands for: absent = 0; finite, from 0 to
 * {@link MAX_TTL_MS}, a fraction rounded up. Anything else is refused.
 */
export function resolveTtl(ttl: number | undefined, what = "ttl"): number {
  if (ttl === undefined) return 0;
  if (!Number.isFinite(ttl) || ttl < 0 || ttl > MAX_TTL_MS) throw new InvalidArgument(`${what} ${ttl} is not a finite number of ms from 0 to ${MAX_TTL_MS}`);
  return Math.ceil(ttl);
}

/** Most tags one value may carry; longest tag in UTF-8 bytes; most tags one invalidateTags names. */
export const MAX_TAGS_PER_ENTRY = 16;
export const MAX_TAG_BYTES = 128;
export const MAX_TAGS_PER_INVALIDATION = 64;

/**
 * The distinct tags of a call: absent = none; each 1 to {@link MAX_TAG_BYTES}
 * UTF-8 bytes of well-formed Unicode, at most `max` of them (duplicates
 * count). Anything else is refused.
 */
export function resolveTags(tags: readonly string[] | undefined, max: number): readonly string[] {
  if (tags === undefined) return [];
  if (tags.length > max) throw new InvalidArgument(`${tags.length} tags, over ${max}`);
  for (const tag of tags) {
    if (tag === "") throw new InvalidArgument("empty tag");
    if (hasLoneSurrogate(tag)) throw new InvalidArgument(`tag ${JSON.stringify(tag)} holds a lone surrogate`);
    if (Buffer.byteLength(tag, "utf8") > MAX_TAG_BYTES) throw new InvalidArgument(`tag of ${Buffer.byteLength(tag, "utf8")} bytes is over ${MAX_TAG_BYTES}`);
  }
  return [...new Set(tags)];
}
