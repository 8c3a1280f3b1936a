/**
 * Update intervals of the book stream (`GET /v2/stream/book/:symbol?interval_ms=N`).
 *
 * A subscriber that names no interval gets every commit's messages as they happen (at most one frame per
 * `StreamLimits.coalesceMs`). One that names an interval gets the very same messages, with the same `seq`,
 * gathered into at most one frame per interval: a screen that redraws ten times a second needs no more,
 * and every frame the book does not write is one socket write less on its thread (the book's largest
 * cost with many subscribers: docs/capacity.md). Nothing is merged or dropped, so the gap rule of the
 * protocol holds unchanged and a client applies a slow frame exactly as it applies a fast one.
 *
 * Each socket carries its interval as a hibernation tag, so the book finds a group's sockets with
 * `getWebSockets(tag)` after a wake without reading every socket's attachment.
 * @internal
 */

/** The intervals a subscriber may ask for, in milliseconds. */
export const STREAM_INTERVALS_MS = [100, 250, 500, 1000] as const;

/** Tag of the sockets that take every commit's messages (no interval asked). */
export const REALTIME_TAG = "interval:realtime";

/** Tag of the sockets of one interval. */
export function intervalTag(ms: number): string {
  return `interval:${ms}`;
}

/**
 * The `interval_ms` query parameter: 0 when absent (real time), the interval when it is one of
 * {@link STREAM_INTERVALS_MS}, null otherwise.
 */
export function parseInterval(raw: string | null): number | null {
  if (raw === null) return 0;
  return STREAM_INTERVALS_MS.find((ms) => String(ms) === raw) ?? null;
}

/**
 * A group's frame goes out before its interval has passed once its messages reach this many characters,
 * so a very busy book never builds a frame of many megabytes (or one past the runtime's message limit).
 */
export const INTERVAL_FRAME_MAX_CHARS = 512 * 1024;

/** One frame of JSON message texts: the message itself when there is one, else a JSON array of them. */
export function frameOf(messages: readonly string[]): string {
  return messages.length === 1 ? (messages[0] as string) : `[${messages.join(",")}]`;
}

interface Group {
  /** Sockets of the interval when last counted (on accept, on wake, at each send). */
  sockets: number;
  /** Message lists (as the book flushed them) waiting for the next frame, in seq order. */
  pending: (readonly string[])[];
  chars: number;
  lastSentAt: number;
}

/** The messages each interval's subscribers have yet to receive, and when their next frame is due. */
export class IntervalFrames {
  private readonly groups = new Map<number, Group>(
    STREAM_INTERVALS_MS.map((ms) => [ms, { sockets: 0, pending: [], chars: 0, lastSentAt: 0 }]),
  );

  /** Record how many sockets an interval has. A group without sockets keeps no messages. */
  setSockets(interval: number, sockets: number): void {
    const group = this.group(interval);
    group.sockets = sockets;
    if (sockets === 0) {
      group.pending = [];
      group.chars = 0;
    }
  }

  /** A socket of `interval` joined. */
  joined(interval: number): void {
    this.group(interval).sockets++;
  }

  /** Sockets of every interval, as last counted. */
  get sockets(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.sockets;
    return n;
  }

  /** Messages the book just flushed (the list is kept, not copied: the caller must not change it). */
  add(messages: readonly string[], chars: number): void {
    if (messages.length === 0) return;
    for (const g of this.groups.values()) {
      if (g.sockets === 0) continue;
      g.pending.push(messages);
      g.chars += chars;
    }
  }

  /** Intervals whose frame is due at `now` (every one with messages waiting when `all`). */
  due(now: number, all = false): number[] {
    const out: number[] = [];
    for (const [ms, g] of this.groups) {
      if (g.pending.length === 0) continue;
      if (all || now >= g.lastSentAt + ms || g.chars >= INTERVAL_FRAME_MAX_CHARS) out.push(ms);
    }
    return out;
  }

  /** The frame of `interval`'s waiting messages, which are then gone; its next frame is due an interval later. */
  take(interval: number, now: number): string | null {
    const g = this.group(interval);
    if (g.pending.length === 0) return null;
    const frame = frameOf(g.pending.length === 1 ? (g.pending[0] as readonly string[]) : g.pending.flat());
    g.pending = [];
    g.chars = 0;
    g.lastSentAt = now;
    return frame;
  }

  /** When the earliest waiting frame is due, or null when nothing waits. */
  nextDueAt(): number | null {
    let at: number | null = null;
    for (const [ms, g] of this.groups) {
      if (g.pending.length === 0) continue;
      const due = g.lastSentAt + ms;
      at = at === null ? due : Math.min(at, due);
    }
    return at;
  }

  private group(interval: number): Group {
    const g = this.groups.get(interval);
    if (g === undefined) throw new RangeError(`not a stream interval: ${interval}`);
    return g;
  }
}
