import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { bytes } from "../config-values.js";

/**
 * The tokens file: which bearer token may do what, where.
 *
 * ```json
 * [{ "token": "…", "namespaces": ["sessions", "team-a.*"], "rights": ["read", "write"],
 *    "maxNamespaces": 20, "maxBytes": "256MiB" }]
 * ```
 *
 * `maxNamespaces` and `maxBytes` (optional) are the token's quota: how many
 * namespaces its writes may start, and how many bytes of the memory budget
 * those namespaces may hold together.
 *
 * Tokens are hashed (SHA-256) as soon as they are read; only the hashes are
 * kept. No error message ever quotes a token or the file's text.
 */

/** What a token may do: read = Get/Has/GetMany/StreamGet/Watch, write = Set/Delete/Touch/…, admin = Clear/Stats. */
export type Right = "read" | "write" | "admin";

/** Every right, in order. */
export const RIGHTS: readonly Right[] = ["read", "write", "admin"];

/** One token's grant, as kept in memory: the token's SHA-256, never the token. */
export interface AccessGrant {
  /** SHA-256 of the token's UTF-8 bytes. */
  readonly digest: Buffer;
  /** Namespace patterns: an exact name, `prefix*`, or `*` for every namespace. */
  readonly namespaces: readonly string[];
  readonly rights: ReadonlySet<Right>;
  /** Position in the tokens list (1-based), to name the grant in logs without naming the token. */
  readonly index: number;
  /** The token's quota, when it has one. */
  readonly quota?: TokenQuota;
}

/** What one token's writes may hold on the server. */
export interface TokenQuota {
  /** Most namespaces its writes may start (and hold at once). */
  readonly maxNamespaces: number;
  /** Most bytes of the memory budget those namespaces may hold together. */
  readonly maxBytes: number;
}

/** One entry of the tokens file, as written. */
export interface TokenEntry {
  token: string;
  namespaces: string[];
  rights: Right[];
  maxNamespaces?: number;
  /** Bytes, or a size such as "64MiB". */
  maxBytes?: number | string;
}

/** Shortest token accepted: anything shorter is too easy to guess. */
export const MIN_TOKEN_LENGTH = 16;
const MAX_TOKEN_LENGTH = 4096;
/** Visible ASCII only: a token travels in an HTTP/2 header. */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;
/** `*`, a namespace name, or a namespace-name prefix followed by `*`. */
const NAMESPACE_PATTERN = /^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63}|[A-Za-z0-9][A-Za-z0-9._-]{0,62}\*)$/;
const FIELDS = new Set(["token", "namespaces", "rights", "maxNamespaces", "maxBytes"]);

/** SHA-256 of a token. */
export function tokenDigest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === "string");
}

function checkEntry(entry: unknown, index: number): TokenEntry {
  const where = `token entry #${index}`;
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new Error(`${where} is not an object`);
  for (const field of Object.keys(entry)) {
    if (!FIELDS.has(field)) throw new Error(`${where} has an unknown field ${JSON.stringify(field.slice(0, 40))} (use token, namespaces, rights, maxNamespaces, maxBytes)`);
  }
  const { token, namespaces, rights } = entry as Record<string, unknown>;
  if (typeof token !== "string" || token.length < MIN_TOKEN_LENGTH || token.length > MAX_TOKEN_LENGTH || !TOKEN_CHARS.test(token)) {
    throw new Error(`${where}: "token" must be ${MIN_TOKEN_LENGTH} to ${MAX_TOKEN_LENGTH} visible ASCII characters`);
  }
  if (!isStringList(namespaces)) throw new Error(`${where}: "namespaces" must be a non-empty list of names, "prefix*" patterns or "*"`);
  const bad = namespaces.find((pattern) => !NAMESPACE_PATTERN.test(pattern));
  if (bad !== undefined) {
    throw new Error(`${where}: namespace pattern ${JSON.stringify(bad.slice(0, 70))} is not a namespace name, "prefix*" or "*"`);
  }
  if (!isStringList(rights) || !rights.every((right) => (RIGHTS as readonly string[]).includes(right))) {
    throw new Error(`${where}: "rights" must be a non-empty list of "read", "write", "admin"`);
  }
  const { maxNamespaces, maxBytes } = entry as Record<string, unknown>;
  if (maxNamespaces !== undefined && (!Number.isSafeInteger(maxNamespaces) || (maxNamespaces as number) < 1)) {
    throw new Error(`${where}: "maxNamespaces" must be a positive integer`);
  }
  const quotaBytes = maxBytes === undefined ? undefined : typeof maxBytes === "string" ? bytes(1024)(maxBytes) : Number.isSafeInteger(maxBytes) && (maxBytes as number) >= 1024 ? (maxBytes as number) : undefined;
  if (maxBytes !== undefined && quotaBytes === undefined) throw new Error(`${where}: "maxBytes" must be a size of at least 1 KiB, such as 65536 or "64MiB"`);
  return {
    token,
    namespaces,
    rights: rights as Right[],
    ...(maxNamespaces !== undefined && { maxNamespaces: maxNamespaces as number }),
    ...(quotaBytes !== undefined && { maxBytes: quotaBytes }),
  };
}

/** Hashes checked entries into grants; throws when two entries carry the same token. */
export function grantsOf(entries: readonly TokenEntry[]): AccessGrant[] {
  const grants: AccessGrant[] = [];
  for (const [i, entry] of entries.entries()) {
    const digest = tokenDigest(entry.token);
    const twin = grants.find((grant) => grant.digest.equals(digest));
    if (twin) throw new Error(`token entry #${i + 1} repeats the token of entry #${twin.index}`);
    const quota =
      entry.maxNamespaces === undefined && entry.maxBytes === undefined
        ? undefined
        : { maxNamespaces: entry.maxNamespaces ?? Number.MAX_SAFE_INTEGER, maxBytes: Number(entry.maxBytes ?? Number.MAX_SAFE_INTEGER) };
    grants.push({ digest, namespaces: [...new Set(entry.namespaces)], rights: new Set(entry.rights), index: i + 1, ...(quota && { quota }) });
  }
  return grants;
}

/**
 * Parses the tokens JSON (an array of {@link TokenEntry}) into grants.
 * Throws an Error that says what is wrong without quoting the text.
 */
export function parseTokens(json: string): AccessGrant[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    // JSON.parse's own message quotes the text around the error: it may hold a token.
    throw new Error("the tokens are not valid JSON (expected [{\"token\": …, \"namespaces\": […], \"rights\": […]}])");
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new Error("the tokens must be a non-empty JSON array of {token, namespaces, rights}");
  return grantsOf(parsed.map((entry, i) => checkEntry(entry, i + 1)));
}

/**
 * The `--tokens-file` / `TIERCACHE_TOKENS` option: the JSON itself when it
 * starts with `[`, otherwise the path of a file holding it (`@path` too).
 */
export function tokensOption(raw: string): AccessGrant[] {
  const text = raw.trim();
  if (text.startsWith("[")) return parseTokens(text);
  const path = text.startsWith("@") ? text.slice(1) : text;
  let contents: string;
  try {
    contents = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read the tokens file ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  try {
    return parseTokens(contents);
  } catch (err) {
    throw new Error(`tokens file ${JSON.stringify(path)}: ${(err as Error).message}`);
  }
}
