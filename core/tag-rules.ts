import { loneSurrogateIndex, preview } from "./key-rules.js";

/**
 * The rules of tags, stated once for the client (which refuses bad ones
 * before sending) and the server (which refuses what reaches it anyway with
 * INVALID_ARGUMENT). A tag names a group of entries that one InvalidateTags
 * call makes unreadable, however many they are.
 */

/** Most tags one entry may carry. */
export const MAX_TAGS_PER_ENTRY = 16;
/** Longest tag, in UTF-8 bytes (the shortest is 1). */
export const MAX_TAG_BYTES = 128;
/** Most tags one InvalidateTags call may name. */
export const MAX_TAGS_PER_INVALIDATION = 64;

/** What is wrong with one tag, or undefined when it is valid. */
export function tagProblem(tag: string): string | undefined {
  if (tag.length === 0) return "a tag must not be empty";
  const index = loneSurrogateIndex(tag);
  if (index !== -1) return `tag ${preview(tag)} is not well-formed Unicode (lone surrogate at index ${index})`;
  if (tag.length * 3 > MAX_TAG_BYTES && Buffer.byteLength(tag, "utf8") > MAX_TAG_BYTES) {
    return `tag ${preview(tag)} is longer than ${MAX_TAG_BYTES} UTF-8 bytes`;
  }
  return undefined;
}

/** What is wrong with a list of at most `max` distinct tags (duplicates count once), or undefined when every tag is valid. */
export function tagsProblem(tags: readonly string[], max: number, what: string): string | undefined {
  if (tags.length > max) {
    const count = new Set(tags).size;
    if (count > max) return `${what} has ${count} distinct tags, over the limit of ${max}`;
  }
  for (const tag of tags) {
    const problem = tagProblem(tag);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** The distinct tags, in first-given order (no copy when there are none or one). */
export function distinctTags(tags: readonly string[]): readonly string[] {
  return tags.length < 2 ? tags : [...new Set(tags)];
}
