import { keyProblem, namespaceProblem, resolveNamespace } from "../core/key-rules.js";
import { RpcError, Status } from "../core/rpc-error.js";
import { distinctTags, tagsProblem } from "../core/tag-rules.js";
import { wholeDurationMs } from "../core/ttl-rules.js";

function invalid(details: string): RpcError {
  return new RpcError(Status.INVALID_ARGUMENT, details);
}

/**
 * Returns `key`, or throws RpcError INVALID_ARGUMENT when the server could not
 * store it as given (empty, not a string, or not well-formed Unicode).
 */
export function checkedKey(key: string): string {
  if (typeof key !== "string") throw invalid(`key must be a string, got ${typeof key}`);
  const problem = keyProblem(key);
  if (problem !== undefined) throw invalid(problem);
  return key;
}

/** Checks every key of `keys`; returns them as an array. */
export function checkedKeys(keys: Iterable<string>): string[] {
  const list = [...keys];
  for (const key of list) checkedKey(key);
  return list;
}

/** Tags to send (a copy, duplicates dropped): at most `max` tags of 1 to 128 UTF-8 bytes, or throws RpcError INVALID_ARGUMENT. */
export function checkedTags(tags: readonly string[], max: number, what: string): string[] {
  if (!Array.isArray(tags)) throw invalid(`tags must be an array of strings`);
  for (const tag of tags) if (typeof tag !== "string") throw invalid(`a tag must be a string, got ${typeof tag}`);
  const problem = tagsProblem(tags, max, what);
  if (problem !== undefined) throw invalid(problem);
  return [...distinctTags(tags)];
}

/** The namespace to send ("" becomes "default"), or throws RpcError INVALID_ARGUMENT. */
export function checkedNamespace(namespace: string): string {
  if (typeof namespace !== "string") throw invalid(`namespace must be a string, got ${typeof namespace}`);
  const problem = namespaceProblem(namespace);
  if (problem !== undefined) throw invalid(problem);
  return resolveNamespace(namespace);
}

/**
 * A duration option (`ttl`, `grace`, `negativeTtl`) in whole ms: absent is 0,
 * a fraction rounds up; negative, NaN, infinite or over 100 years throws
 * RpcError INVALID_ARGUMENT.
 */
export function checkedDuration(name: string, ms: number | undefined): number {
  if (ms === undefined) return 0;
  const checked = wholeDurationMs(name, ms);
  if ("problem" in checked) throw invalid(checked.problem);
  return checked.ms;
}
