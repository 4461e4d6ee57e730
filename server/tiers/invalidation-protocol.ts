import type { Change, ChangeKind } from "../engine/invalidation-bus.js";

/**
 * Wire format of the invalidation channel, version 1 (JSON, one message per
 * PUBLISH). Every server instance is a sender with a random id; it numbers
 * its changes 1, 2, 3… at the moment the engine reports them, so a change
 * that is never delivered (dropped from a full queue, lost with a broken
 * connection) leaves a visible jump in the numbers.
 *
 * A message carries the consecutive changes `seq - changes.length + 1 ..
 * seq`; a heartbeat carries none and says "my last number is `seq`". A
 * receiver that sees a number it did not get, or a known sender silent for
 * longer than its heartbeat bound, flushes (see invalidation-receiver.ts).
 */
export interface ChannelMessage {
  readonly v: 1;
  /** The sender's id (random per server process). */
  readonly from: string;
  /** The sender's last number when it sent this; the changes, if any, end at it. */
  readonly seq: number;
  /** Consecutive changes ending at `seq`; empty for a heartbeat. */
  readonly changes: readonly Change[];
  /** The sender's heartbeat interval, in ms: it sends something at least this often. */
  readonly hb: number;
  /**
   * The sender's longest write, in ms (every attempt and backoff): after its
   * announcements stop getting through, it refuses new writes within two
   * heartbeats, and a write it had already begun may take effect up to this
   * much later.
   */
  readonly settle: number;
  /** The sender is shutting down: nothing more comes from it. */
  readonly bye?: true;
}

const KINDS: readonly ChangeKind[] = ["set", "delete", "touch", "clear", "tags"];

/** The JSON text of a message: `v` and `from` come first (see {@link isFrom}). */
export function encodeMessage(message: ChannelMessage): string {
  return JSON.stringify({ v: message.v, from: message.from, seq: message.seq, changes: message.changes, hb: message.hb, settle: message.settle, ...(message.bye && { bye: true }) });
}

/**
 * Whether `text`, as {@link encodeMessage} writes it, comes from `sender`,
 * read without parsing it: an instance hears its own messages back, and they
 * may list thousands of keys it has no use for.
 */
export function isFrom(text: string, sender: string): boolean {
  return text.startsWith(`{"v":1,"from":${JSON.stringify(sender)},`);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function parseChange(value: unknown): Change | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const c = value as Partial<Record<keyof Change, unknown>>;
  if (!KINDS.includes(c.kind as ChangeKind) || typeof c.namespace !== "string" || !Array.isArray(c.keys)) return undefined;
  if (!c.keys.every((key): key is string => typeof key === "string")) return undefined;
  return { kind: c.kind as ChangeKind, namespace: c.namespace, keys: c.keys };
}

/** The message in `text`, or undefined when it is not a well-formed version 1 message. */
export function parseMessage(text: string): ChannelMessage | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const m = raw as Partial<Record<keyof ChannelMessage, unknown>>;
  if (m.v !== 1 || typeof m.from !== "string" || m.from === "" || !isCount(m.seq) || !isCount(m.hb) || m.hb === 0 || !isCount(m.settle)) return undefined;
  if (!Array.isArray(m.changes) || m.changes.length > m.seq) return undefined;
  const changes: Change[] = [];
  for (const item of m.changes) {
    const change = parseChange(item);
    if (!change) return undefined;
    changes.push(change);
  }
  if (m.bye !== undefined && m.bye !== true) return undefined;
  return { v: 1, from: m.from, seq: m.seq, changes, hb: m.hb, settle: m.settle, ...(m.bye && { bye: true as const }) };
}

/** The number of the first change a message carries (`seq + 1` for a heartbeat: it carries none). */
export function firstSeq(message: ChannelMessage): number {
  return message.seq - message.changes.length + 1;
}
