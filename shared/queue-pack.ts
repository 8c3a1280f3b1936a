/**
 * Several event bodies in one Queue message.
 *
 * Every event on the `trade-events` Queue keeps its own stable id (`${symbol}:${seq}` for book events,
 * the account event ids for UserSession events), and consumers dedupe on those ids. What a message is
 * only decides how events travel: a Queue message has a fixed cost on both ends (a `sendBatch` slot,
 * serialisation, an ack), and a busy book produces a few events per order, so producers put up to
 * {@link PACK_MAX_EVENTS} events in one message. A pack is retried, acknowledged or dead-lettered as a
 * whole message; its events are processed one by one, idempotently, as if they had come alone.
 *
 * A message body is one of:
 * - one event (what older producers sent, still accepted);
 * - `{"pack":1,"bodies":[...]}`: event bodies as JSON (UserSessions' account events);
 * - a {@link BookEventPack}: one OrderBook's engine events packed with shared/engine/wire.ts and sent with
 *   `contentType: "v8"`. A hot book publishes every fill, and serialising each fill's message as JSON cost
 *   its thread about a tenth of its time (docs/adr/0008-packed-batches.md); a pack clones as a byte copy,
 *   and the consumer, which runs elsewhere, builds the {@link TradeEventMessage}s.
 */
import { type TradeEventMessage, tradeEventMessage } from "./book-events.ts";
import type { EngineEvent } from "./engine/types.ts";
import { type PackedEvents, packEvents, unpackEvents, WireFormatError } from "./engine/wire.ts";

export interface EventPack {
  pack: 1;
  bodies: unknown[];
}

/** Events per pack: 100 × a few hundred bytes stays far below the Queues limit of 128 KB per message. */
export const PACK_MAX_EVENTS = 100;
/** Serialised bytes per pack at most (JSON length; bodies are ASCII JSON in practice). */
export const PACK_MAX_BYTES = 100_000;

export function isEventPack(body: unknown): body is EventPack {
  return (
    typeof body === "object" &&
    body !== null &&
    (body as { pack?: unknown }).pack === 1 &&
    Array.isArray((body as { bodies?: unknown }).bodies)
  );
}

/**
 * One OrderBook's events for the queue (fills, trading-status and reference-price changes), packed.
 * Queue messages outlive a deployment (they wait up to the queue's retention), so a consumer must keep
 * reading every pack version a producer of the last days may have sent (`events.v`).
 */
export interface BookEventPack {
  bookPack: 1;
  symbol: string;
  tickSize: string;
  lotSize: string;
  events: PackedEvents;
}

export function isBookEventPack(body: unknown): body is BookEventPack {
  return typeof body === "object" && body !== null && (body as { bookPack?: unknown }).bookPack === 1;
}

/** `events` (all of `symbol`, each one the queue publishes: see `tradeEventMessage`) as one pack. */
export function packBookEvents(
  symbol: string,
  sizes: { tickSize: string; lotSize: string },
  events: readonly EngineEvent[],
): BookEventPack {
  return {
    bookPack: 1,
    symbol,
    tickSize: sizes.tickSize,
    lotSize: sizes.lotSize,
    events: packEvents([events]),
  };
}

/**
 * `events` in packs of at most {@link PACK_MAX_EVENTS} events and `maxBytes` bytes, in order. The bytes
 * are counted as V8 serialises a pack: 8 per number, at most 2 per character. (100 fills between
 * 128-character ids of distinct accounts come to ~90 KB.)
 */
export function packBookEventMessages(
  symbol: string,
  sizes: { tickSize: string; lotSize: string },
  events: readonly EngineEvent[],
  maxBytes = PACK_MAX_BYTES,
): BookEventPack[] {
  const packs: BookEventPack[] = [];
  const add = (part: readonly EngineEvent[]) => {
    const pack = packBookEvents(symbol, sizes, part);
    if (part.length > 1 && bookPackBytes(pack) > maxBytes) {
      const half = part.length >> 1;
      add(part.slice(0, half));
      add(part.slice(half));
    } else packs.push(pack);
  };
  for (let i = 0; i < events.length; i += PACK_MAX_EVENTS) add(events.slice(i, i + PACK_MAX_EVENTS));
  return packs;
}

/** An upper bound of a book event pack's serialised size in bytes. */
export function bookPackBytes(pack: BookEventPack): number {
  let chars = pack.symbol.length + pack.tickSize.length + pack.lotSize.length + pack.events.s.length;
  for (const w of pack.events.d) chars += w.length + 4;
  return pack.events.n.byteLength + 2 * chars + 64;
}

/**
 * The messages of a {@link BookEventPack}, as the book would have sent them one by one. Throws
 * {@link WireFormatError} when the pack does not hold together or holds an event the book never publishes.
 */
export function unpackBookEvents(pack: BookEventPack): TradeEventMessage[] {
  const { symbol, tickSize, lotSize } = pack;
  if (typeof symbol !== "string" || typeof tickSize !== "string" || typeof lotSize !== "string") {
    throw new WireFormatError("a book event pack names its symbol, tick size and lot size");
  }
  const sizes = { tickSize, lotSize };
  const messages: TradeEventMessage[] = [];
  for (const list of unpackEvents(pack.events)) {
    for (const event of list) {
      const message = tradeEventMessage(symbol, sizes, event);
      if (message === null) throw new WireFormatError(`a ${event.type} event is not a queue event`);
      messages.push(message);
    }
  }
  return messages;
}

/**
 * The event bodies a message carries: the pack's, or the message itself. Throws {@link WireFormatError}
 * for a book event pack that does not hold together (the whole message is poison).
 */
export function unpack(body: unknown): unknown[] {
  if (isBookEventPack(body)) return unpackBookEvents(body);
  return isEventPack(body) ? body.bodies : [body];
}

/**
 * `body` in a form JSON carries and the consumer takes again (dead letters are stored as JSON, and an
 * operator replays them): a book event pack becomes the JSON pack of its messages, or, when it does not
 * unpack, keeps its numbers as a plain array for inspection.
 */
export function storableBody(body: unknown): unknown {
  if (!isBookEventPack(body)) return body;
  try {
    return { pack: 1, bodies: unpackBookEvents(body) } satisfies EventPack;
  } catch {
    const events = body.events as Partial<PackedEvents> | null;
    if (typeof events !== "object" || events === null || !(events.n instanceof Float64Array)) return body;
    return { ...body, events: { ...events, n: Array.from(events.n) } };
  }
}

/**
 * Group `bodies` (in order) into packs of at most {@link PACK_MAX_EVENTS} events and about
 * {@link PACK_MAX_BYTES} bytes. `sizeOf` gives a body's serialised size when the caller already knows it.
 */
export function packBodies(
  bodies: readonly unknown[],
  sizeOf: (body: unknown, index: number) => number = (b) => JSON.stringify(b).length,
): EventPack[] {
  // One byte per body for the comma that separates it in the pack's JSON.
  return groupBySize(bodies, sizeOf, PACK_MAX_BYTES, { maxCount: PACK_MAX_EVENTS, overhead: 1 }).map(
    (group) => ({ pack: 1, bodies: group }),
  );
}

/**
 * `items` in order, in groups of at most `maxCount` items whose sizes (plus `overhead` each) stay within
 * `maxBytes`; an item bigger than `maxBytes` gets a group of its own.
 */
export function groupBySize<T>(
  items: readonly T[],
  sizeOf: (item: T, index: number) => number,
  maxBytes: number,
  { maxCount = Number.POSITIVE_INFINITY, overhead = 0 } = {},
): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  items.forEach((item, i) => {
    const size = sizeOf(item, i);
    if (current.length > 0 && (current.length >= maxCount || bytes + size > maxBytes)) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size + overhead;
  });
  if (current.length > 0) groups.push(current);
  return groups;
}
