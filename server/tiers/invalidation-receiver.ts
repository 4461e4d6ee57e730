import type { Change } from "../engine/invalidation-bus.js";
import { firstSeq, type ChannelMessage } from "./invalidation-protocol.js";

/** Options of an {@link InvalidationReceiver}. */
export interface InvalidationReceiverOptions {
  /** This instance's sender id: its own messages prove the channel works both ways. */
  readonly selfId: string;
  /** This instance's heartbeat interval, in ms. */
  readonly heartbeatMs: number;
  /** Silence longer than this many heartbeats is a gap. @default 2 */
  readonly missedHeartbeats?: number;
  /** A sender silent for this long is forgotten (after which it counts as new). @default 600000 */
  readonly peerRetentionMs?: number;
}

/** What to do about a message or a check: flush first (with the reason) when set, then apply `changes`. */
export interface ReceiverVerdict {
  readonly flush: string | undefined;
  readonly changes: readonly Change[];
}

interface Peer {
  lastSeq: number;
  lastHeard: number;
  hb: number;
  settle: number;
  /** Marked silent: flushed for once, and again each heartbeat while it may still be writing. */
  silent: boolean;
}

const NOTHING: ReceiverVerdict = { flush: undefined, changes: [] };

/**
 * The receiving half of the invalidation channel, as a clock-driven state
 * machine (no I/O): it decides, for each message and on each periodic check,
 * whether the memory tier must be flushed.
 *
 * - A sender's numbers must follow on: a jump (changes never received), or
 *   a first message from an unknown sender that shows earlier changes, flushes.
 * - A known sender silent past `missedHeartbeats` of its heartbeats flushes,
 *   and keeps flushing once per heartbeat while a write it accepted may still
 *   take effect (its `settle` time, plus a heartbeat of margin); it fences its
 *   own writes once its announcements stop getting through.
 * - The subscription itself must be heard: every instance, this one
 *   included, sends at least a heartbeat, so when no message at all (not even
 *   this instance's own) arrived for `missedHeartbeats` heartbeats, the
 *   channel is out of touch (subscription broken or stalled, or Redis
 *   stalled). While out of touch, and while some other instance may be
 *   writing (one was heard within `peerRetentionMs` and did not say goodbye),
 *   it flushes once per heartbeat; a lone instance keeps its copies (nobody
 *   else writes). Back in touch, it flushes once (messages may have been
 *   missed meanwhile). An instance that cannot publish but still hears the
 *   others keeps its copies: they are kept coherent by what it hears.
 */
export class InvalidationReceiver {
  readonly #selfId: string;
  readonly #heartbeatMs: number;
  readonly #missed: number;
  readonly #retentionMs: number;
  readonly #peers = new Map<string, Peer>();
  readonly #startedAt: number;
  #lastEcho: number | undefined;
  #lastHeard: number | undefined;
  #outOfTouch = false;
  #lastFlush = -Infinity;

  constructor(options: InvalidationReceiverOptions, now: number) {
    this.#selfId = options.selfId;
    this.#heartbeatMs = options.heartbeatMs;
    this.#missed = options.missedHeartbeats ?? 2;
    this.#retentionMs = options.peerRetentionMs ?? 600_000;
    this.#startedAt = now;
  }

  /** Silence after which this instance counts as out of touch, in ms. */
  get silenceBoundMs(): number {
    return this.#missed * this.#heartbeatMs;
  }

  /** True while some message (this instance's own or another's) arrived within the silence bound. */
  inTouch(now: number): boolean {
    return this.#lastHeard !== undefined && now - this.#lastHeard <= this.silenceBoundMs;
  }

  /** When this instance's own message last came back (undefined: never). */
  get lastEcho(): number | undefined {
    return this.#lastEcho;
  }

  /** Other instances heard within the retention time (that did not say goodbye). */
  get peers(): number {
    return this.#peers.size;
  }

  /** Records that the caller flushed (for any reason), so that periodic flushes are paced from it. */
  flushed(now: number): void {
    this.#lastFlush = now;
  }

  /** One of this instance's own messages came back on the channel. */
  receiveEcho(now: number): ReceiverVerdict {
    const back = this.#heard(now);
    this.#lastEcho = now;
    return back;
  }

  /** A message arrived on the channel. */
  receive(message: ChannelMessage, now: number): ReceiverVerdict {
    if (message.from === this.#selfId) return this.receiveEcho(now);
    const back = this.#heard(now);
    const peer = this.#peers.get(message.from);
    const first = firstSeq(message);
    let flush: string | undefined;
    let changes = message.changes;
    if (!peer) {
      if (first > 1) flush = `instance ${message.from} is new to this one and has changes it never received`;
    } else {
      if (first > peer.lastSeq + 1) flush = `changes ${peer.lastSeq + 1}..${first - 1} of instance ${message.from} never arrived`;
      if (peer.lastSeq >= first) changes = message.changes.slice(Math.min(message.changes.length, peer.lastSeq - first + 1));
    }
    if (message.bye) this.#peers.delete(message.from);
    else {
      const lastSeq = Math.max(peer?.lastSeq ?? 0, message.seq);
      this.#peers.set(message.from, { lastSeq, lastHeard: now, hb: message.hb, settle: message.settle, silent: false });
    }
    flush ??= back.flush;
    return flush === undefined && changes.length === 0 ? NOTHING : { flush, changes };
  }

  /** Notes that the subscription delivered something; a flush when it had been out of touch. */
  #heard(now: number): ReceiverVerdict {
    this.#lastHeard = now;
    if (!this.#outOfTouch) return NOTHING;
    this.#outOfTouch = false;
    return { flush: "the channel is heard again (messages may have been missed meanwhile)", changes: [] };
  }

  /** The periodic check (the channel runs it every tenth of a heartbeat): whether to flush now, and why. */
  check(now: number): string | undefined {
    let reason: string | undefined;
    const since = this.#lastHeard ?? this.#startedAt;
    if (now - since > this.silenceBoundMs) {
      // An instance that never heard the channel (not even its own messages) cannot know it is alone.
      const othersMayWrite = this.#peers.size > 0 || this.#lastHeard === undefined;
      if (!this.#outOfTouch) {
        this.#outOfTouch = true;
        if (othersMayWrite) reason = "nothing heard on the channel (subscription broken or stalled, or Redis stalled)";
      } else if (othersMayWrite && now - this.#lastFlush >= this.#heartbeatMs) {
        reason = "still out of touch";
      }
    }
    for (const [id, peer] of this.#peers) {
      const silentFor = now - peer.lastHeard;
      if (silentFor > this.#retentionMs && !this.#outOfTouch) {
        this.#peers.delete(id);
        continue;
      }
      const bound = this.#missed * peer.hb;
      if (silentFor <= bound) continue;
      if (!peer.silent) {
        peer.silent = true;
        reason ??= `instance ${id} went silent`;
      } else if (silentFor <= bound + peer.settle + peer.hb && now - this.#lastFlush >= peer.hb) {
        reason ??= `instance ${id} is silent and may still be finishing writes`;
      }
    }
    return reason;
  }
}
