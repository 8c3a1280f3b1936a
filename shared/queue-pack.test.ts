import { serialize } from "node:v8";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { prng } from "../durable-objects/order-book/workload.ts";
import { type TradeEventMessage, tradeEventMessage } from "./book-events.ts";
import { MatchingEngine } from "./engine/engine.ts";
import { RULES } from "./engine/test-support.ts";
import type { EngineEvent } from "./engine/types.ts";
import { WireFormatError } from "./engine/wire.ts";
import {
  bookPackBytes,
  isBookEventPack,
  isEventPack,
  PACK_MAX_BYTES,
  PACK_MAX_EVENTS,
  packBodies,
  packBookEventMessages,
  packBookEvents,
  storableBody,
  unpack,
} from "./queue-pack.ts";

describe("queue packs", () => {
  it("keep every body once, in order, within the count and byte limits", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.string(), pad: fc.string({ maxLength: 3000 }) }), { maxLength: 400 }),
        (bodies) => {
          const packs = packBodies(bodies);
          expect(packs.flatMap((p) => unpack(p))).toEqual(bodies);
          for (const p of packs) {
            expect(isEventPack(p)).toBe(true);
            expect(p.bodies.length).toBeGreaterThan(0);
            expect(p.bodies.length).toBeLessThanOrEqual(PACK_MAX_EVENTS);
            if (p.bodies.length > 1)
              expect(JSON.stringify(p).length).toBeLessThanOrEqual(PACK_MAX_BYTES + 32);
          }
        },
      ),
    );
  });

  it("read a plain message as one body and only a well-formed envelope as a pack", () => {
    expect(unpack({ id: "ACME:1" })).toEqual([{ id: "ACME:1" }]);
    expect(unpack("text")).toEqual(["text"]);
    expect(isEventPack({ pack: 1, bodies: "x" })).toBe(false);
    expect(isEventPack({ pack: 2, bodies: [] })).toBe(false);
    expect(unpack({ pack: 1, bodies: [1, 2] })).toEqual([1, 2]);
  });
});

/** What one book publishes for a flow of orders: fills, a halt and a resume, a reference-price change. */
function bookEvents(idOf: (i: number) => string, account: (i: number) => string): EngineEvent[] {
  const engine = new MatchingEngine({
    ...RULES,
    maxQtyLots: 1_000,
    minNotionalTicksLots: 0,
    priceBandBps: 0,
  });
  const out: EngineEvent[] = [];
  const now = 1_750_000_000_000;
  const random = prng(7);
  for (let i = 0; i < 400; i++) {
    const side = random() < 0.5 ? "buy" : "sell";
    const offset = Math.floor(random() * 5) - 1;
    engine.process(
      {
        kind: "place",
        now,
        orderId: idOf(i),
        account: account(i),
        side,
        type: "limit",
        tif: "gtc",
        qty: 1 + Math.floor(random() * 50),
        limitPrice: side === "buy" ? 10_000 - offset : 10_000 + offset,
      },
      out,
    );
    if (i === 200) engine.process({ kind: "halt", now }, out);
    if (i === 201) engine.process({ kind: "resume", now }, out);
  }
  engine.process({ kind: "setReferencePrice", now, price: 10_001 }, out);
  return out.filter((e) => tradeEventMessage(SYMBOL, SIZES, e) !== null);
}

const SYMBOL = "ACME";
const SIZES = { tickSize: "0.01", lotSize: "1" };
const messagesOf = (events: EngineEvent[]) =>
  events.map((e) => tradeEventMessage(SYMBOL, SIZES, e) as TradeEventMessage);

describe("book event packs", () => {
  it("carry a book's queue messages, each once and in order, through a structured clone", () => {
    const events = bookEvents(
      (i) => `o-${i}`,
      (i) => `acct-${i % 7}`,
    );
    expect(events.filter((e) => e.type === "fill").length).toBeGreaterThan(150);
    expect(events.some((e) => e.type === "trading_status")).toBe(true);
    expect(events.some((e) => e.type === "reference_price")).toBe(true);
    const packs = packBookEventMessages(SYMBOL, SIZES, events);
    expect(packs.length).toBe(Math.ceil(events.length / PACK_MAX_EVENTS));
    // The Queue delivers a "v8" body as a structured clone of what was sent.
    const received = packs.map((p) => structuredClone(p));
    expect(received.every((p) => isBookEventPack(p) && !isEventPack(p))).toBe(true);
    const messages = received.flatMap((p) => unpack(p));
    expect(messages).toStrictEqual(messagesOf(events));
    expect(JSON.stringify(messages)).toBe(JSON.stringify(messagesOf(events)));
  });

  it("split by size: each pack stays under the byte limit, also with long ids of any script", () => {
    const long = (tag: string, i: number) => `${tag}-${i}-${"é€".repeat(60)}`.slice(0, 128);
    const events = bookEvents(
      (i) => long("o", i),
      (i) => long("a", i),
    );
    const full = packBookEventMessages(SYMBOL, SIZES, events);
    const small = packBookEventMessages(SYMBOL, SIZES, events, 30_000);
    expect(full.length).toBe(Math.ceil(events.length / PACK_MAX_EVENTS));
    expect(small.length).toBeGreaterThan(full.length);
    for (const [packs, limit] of [
      [full, PACK_MAX_BYTES],
      [small, 30_000],
    ] as const) {
      for (const p of packs) {
        expect(bookPackBytes(p)).toBeLessThanOrEqual(limit);
        // The estimate bounds V8's own serialisation of the pack.
        expect(serialize(p).byteLength).toBeLessThanOrEqual(bookPackBytes(p));
      }
      expect(packs.flatMap((p) => unpack(structuredClone(p)))).toStrictEqual(messagesOf(events));
    }
  });

  it("refuse, whole, a pack that does not hold together", () => {
    const events = bookEvents(
      (i) => `o-${i}`,
      (i) => `acct-${i % 7}`,
    ).slice(0, 10);
    const good = packBookEvents(SYMBOL, SIZES, events);
    const bad: unknown[] = [
      { ...good, events: { ...good.events, v: 2 } },
      { ...good, events: { ...good.events, n: good.events.n.slice(0, 20) } },
      { ...good, events: { ...good.events, n: Array.from(good.events.n) } },
      { ...good, symbol: 42 },
      { bookPack: 1 },
      // A book delta is market data, never a queue event.
      packBookEvents(SYMBOL, SIZES, [
        { type: "book", seq: 1, commandSeq: 1, ts: 1, bookSeq: 1, side: "buy", price: 1, qty: 1 },
      ]),
    ];
    for (const body of bad) expect(() => unpack(body)).toThrow(WireFormatError);
    expect(unpack(good)).toHaveLength(10);
  });

  it("are stored as the JSON pack of their messages, which the consumer reads again", () => {
    const events = bookEvents(
      (i) => `o-${i}`,
      (i) => `acct-${i % 7}`,
    ).slice(0, 30);
    const stored = JSON.parse(JSON.stringify(storableBody(packBookEvents(SYMBOL, SIZES, events))));
    expect(isEventPack(stored)).toBe(true);
    expect(unpack(stored)).toStrictEqual(JSON.parse(JSON.stringify(messagesOf(events))));
    // One that does not unpack keeps its numbers, as a plain array, for inspection.
    const broken = packBookEvents(SYMBOL, SIZES, events);
    const kept = storableBody({ ...broken, events: { ...broken.events, v: 9 } }) as {
      events: { n: unknown };
    };
    expect(kept.events.n).toEqual(Array.from(broken.events.n));
    expect(storableBody({ id: "x" })).toEqual({ id: "x" });
  });
});
