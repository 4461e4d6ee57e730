/**
 * The rules every namespace and key must follow, stated once for the client
 * (which refuses bad ones before sending) and the server (which refuses what
 * reaches it anyway). The longest key is the server's own limit
 * (`--max-key-bytes`) and is checked there only.
 */

/** The namespace used when a request names none (an empty namespace). */
export const DEFAULT_NAMESPACE = "default";

/** 1 to 64 characters of `[A-Za-z0-9._-]`, starting with a letter or digit. */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A UTF-16 surrogate that is not half of a pair (the `u` flag reads pairs as one code point). */
const LONE_SURROGATE = /\p{Cs}/u;

/** A short, quoted preview of `text` for messages. */
export function preview(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/** The index of the first lone surrogate in `text`, or -1 when it is well-formed UTF-16. */
export function loneSurrogateIndex(text: string): number {
  return LONE_SURROGATE.exec(text)?.index ?? -1;
}

/** True when `namespace` names a namespace: "" (the default) or a name matching {@link NAMESPACE_PATTERN}. */
export function isValidNamespace(namespace: string): boolean {
  return namespace === "" || NAMESPACE_PATTERN.test(namespace);
}

/** What is wrong with `namespace`, or undefined when it is valid ("" is valid: the default). */
export function namespaceProblem(namespace: string): string | undefined {
  if (isValidNamespace(namespace)) return undefined;
  return `invalid namespace ${preview(namespace)}: use 1 to 64 characters of [A-Za-z0-9._-], starting with a letter or digit`;
}

/** The namespace a request acts on: "" means {@link DEFAULT_NAMESPACE}. Does not check it. */
export function resolveNamespace(namespace: string): string {
  return namespace === "" ? DEFAULT_NAMESPACE : namespace;
}

/**
 * What is wrong with `key`, or undefined when it is acceptable (its length in
 * UTF-8 bytes aside): it must not be empty, and it must be well-formed UTF-16,
 * since a lone surrogate cannot be encoded in UTF-8 and would reach the
 * server as U+FFFD, so that different keys would collide.
 */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return "key must not be empty";
  const index = loneSurrogateIndex(key);
  if (index !== -1) return `key ${preview(key)} is not well-formed Unicode (lone surrogate at index ${index})`;
  return undefined;
}
