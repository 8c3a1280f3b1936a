/**
 * Packed events must come back exactly as the engine made them, after a structured clone (what an RPC
 * does to a pack), and a pack that does not hold together must be refused, never half read.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MatchingEngine } from "./engine.ts";
import { CommandBuilder, type Recipe, RULES, recipeArb, VARIANTS } from "./test-support.ts";
import type { EngineCommand, EngineEvent, EngineEventType } from "./types.ts";
import {
  type Packed,
  packEvents,
  packFromBytes,
  packToBytes,
  unpackEvents,
  WireFormatError,
  WireReader,
  WireWriter,
} from "./wire.ts";

const ALL_TYPES: readonly EngineEventType[] = [
  "accepted",
  "rejected",
  "fill",
  "canceled",
  "expired",
  "replaced",
  "triggered",
  "book",
  "trading_status",
  "reference_price",
];

/** The events of each command of a random sequence through a real engine. */
function eventLists(variant: number, recipes: Recipe[]): EngineEvent[][] {
  const { rules, opts, ids } = VARIANTS[variant] as (typeof VARIANTS)[number];
  const engine = new MatchingEngine(rules, opts);
  const builder = new CommandBuilder(ids);
  return recipes.map((r) => {
    const out: EngineEvent[] = [];
    engine.process(builder.build(r), out);
    builder.observe(out);
    return out;
  });
}

describe("packed engine events", () => {
  it("unpack every kind of event, after a structured clone, to the same fields in the same key order", () => {
    const engine = new MatchingEngine(RULES, { referencePrice: 1_000 });
    const lists: EngineEvent[][] = [];
    const run = (cmd: EngineCommand) => {
      const out: EngineEvent[] = [];
      engine.process(cmd, out);
      lists.push(out);
    };
    const place = (orderId: string, account: string, side: "buy" | "sell", qty: number, extra: object) =>
      run({
        kind: "place",
        now: 1,
        orderId,
        account,
        side,
        type: "limit",
        tif: "gtc",
        qty,
        ...extra,
      } as EngineCommand);
    place("m1", "maker", "sell", 5, { limitPrice: 1_000, expiresAt: 50, postOnly: true, stp: "cancel_both" });
    place("m2", "maker", "sell", 5, { limitPrice: 1_010 });
    run({
      kind: "place",
      now: 2,
      orderId: "s1",
      account: "stopper",
      side: "buy",
      type: "stop",
      tif: "gtc",
      qty: 1,
      stopPrice: 1_000,
    });
    place("t1", "taker", "buy", 2, { limitPrice: 1_000 });
    run({ kind: "replace", now: 3, orderId: "m2", newOrderId: "m3", account: "maker", qty: 4 });
    run({ kind: "cancel", now: 4, orderId: "m3", account: "maker" });
    run({ kind: "cancel", now: 4, orderId: "nope", account: "maker" });
    run({ kind: "tick", now: 60 });
    run({ kind: "halt", now: 61 });
    run({ kind: "resume", now: 62 });
    run({ kind: "setReferencePrice", now: 63, price: 1_005 });
    const kinds = new Set(lists.flat().map((e) => e.type));
    expect([...kinds].sort()).toEqual([...ALL_TYPES].sort());
    const back = unpackEvents(structuredClone(packEvents(lists)));
    expect(back).toStrictEqual(lists);
    expect(JSON.stringify(back)).toBe(JSON.stringify(lists));
  });

  it("unpack random sequences' events, in batches of any size, to the same events", () => {
    fc.assert(
      fc.property(
        fc.nat(VARIANTS.length - 1),
        fc.array(recipeArb, { minLength: 1, maxLength: 400 }),
        fc.nat(20),
        (variant, recipes, chunk) => {
          const lists = eventLists(variant, recipes);
          // Batches of any size, empty ones included.
          for (let i = 0; i <= lists.length; i += chunk + 1) {
            const batch = lists.slice(i, i + chunk);
            const back = unpackEvents(structuredClone(packEvents(batch)));
            expect(back).toStrictEqual(batch);
            expect(JSON.stringify(back)).toBe(JSON.stringify(batch));
          }
        },
      ),
      { numRuns: 120 },
    );
  });

  it("carry any id text, and absent optional fields, unchanged", () => {
    const engine = new MatchingEngine(RULES);
    const out: EngineEvent[] = [];
    const ids = ["", "é", "🦊-order", "a".repeat(129), "\u0000x", "x\uD800"];
    for (const orderId of ids) {
      engine.process({ kind: "cancel", now: 1, orderId }, out);
      engine.process(
        { kind: "replace", now: 1, orderId: "missing", newOrderId: orderId, account: orderId },
        out,
      );
    }
    engine.process({ kind: "cancel", now: 1, orderId: 42 } as never, out);
    const back = unpackEvents(structuredClone(packEvents([out, []])));
    expect(back).toStrictEqual([out, []]);
  });

  it("refuse a pack that does not hold together", () => {
    const engine = new MatchingEngine(RULES);
    const out: EngineEvent[] = [];
    engine.process(
      {
        kind: "place",
        now: 1,
        orderId: "o1",
        account: "a",
        side: "buy",
        type: "limit",
        tif: "gtc",
        qty: 1,
        limitPrice: 100,
      },
      out,
    );
    const good = packEvents([out]);
    expect(unpackEvents(good)).toStrictEqual([out]);
    const bad: unknown[] = [
      null,
      "pack",
      { ...good, v: 2 },
      { ...good, n: Array.from(good.n) },
      { ...good, n: good.n.slice(0, -1) },
      { ...good, n: Float64Array.of(...good.n, 0) },
      { ...good, s: good.s.slice(1) },
      { ...good, s: `${good.s}x` },
      { ...good, d: [] },
      { ...good, d: [1] },
      { v: 1, n: Float64Array.of(1, 1, 99), s: "", d: [] },
      { v: 1, n: Float64Array.of(1e9), s: "", d: [] },
      { v: 1, n: Float64Array.of(1.5), s: "", d: [] },
      { v: 1, n: Float64Array.of(-1), s: "", d: [] },
    ];
    for (const pack of bad) expect(() => unpackEvents(pack as typeof good)).toThrow(WireFormatError);
  });
});

describe("values of any type", () => {
  it("come back as written", () => {
    const values = [undefined, 0, -1.5, Number.MAX_SAFE_INTEGER, "", "id-1", "acct", true, false, null];
    const w = new WireWriter(2 * 2 * values.length);
    for (const v of values) {
      w.value(v, false);
      w.value(v, true);
    }
    // Objects and functions are not JSON field values the book keeps: they are written as null.
    const r = new WireReader(structuredClone(w.finish()));
    for (const v of values) {
      expect(r.value()).toBe(v);
      expect(r.value()).toBe(v);
    }
    expect(r.done).toBe(true);
  });

  it("keeps two packs written at the same time apart, and refuses a pack larger than its writer's size", () => {
    const a = new WireWriter(4);
    const b = new WireWriter(4);
    a.num(1);
    b.num(2);
    a.id("first");
    b.id("second");
    const [pa, pb] = [a.finish(), b.finish()];
    const ra = new WireReader(pa);
    const rb = new WireReader(pb);
    expect([ra.num(), ra.id(), rb.num(), rb.id()]).toEqual([1, "first", 2, "second"]);
    // The spare array is lent again after both finished: a new pack does not see the old numbers.
    const c = new WireWriter(1);
    c.num(3);
    expect(Array.from(c.finish().n)).toEqual([3]);
    // A writer whose size was too small: its numbers would be dropped past the array's end.
    const holder = new WireWriter(1);
    const small = new WireWriter(1);
    small.num(1);
    small.num(2);
    expect(() => small.finish()).toThrow(RangeError);
    holder.finish();
  });
});

describe("packs as bytes", () => {
  /** Whether two packs hold the same numbers (NaN and -0 included), strings and words. */
  function expectSamePack(back: Packed, pack: Packed): void {
    expect(back.v).toBe(pack.v);
    expect(back.n.length).toBe(pack.n.length);
    expect(Array.from(back.n, (x, i) => Object.is(x, pack.n[i])).every(Boolean)).toBe(true);
    expect(back.s).toBe(pack.s);
    expect(back.d).toStrictEqual(pack.d);
  }

  it("give back random sequences' events exactly", () => {
    fc.assert(
      fc.property(
        fc.nat(VARIANTS.length - 1),
        fc.array(recipeArb, { maxLength: 300 }),
        (variant, recipes) => {
          const lists = eventLists(variant, recipes);
          const pack = packEvents(lists);
          const bytes = packToBytes(pack);
          expectSamePack(packFromBytes(bytes), pack);
          expect(unpackEvents(packFromBytes(bytes))).toStrictEqual(lists);
          // Mostly small whole numbers: far fewer bytes than the float64s they came from.
          if (pack.n.length > 100) expect(bytes.length).toBeLessThan(pack.n.length * 3 + 3 * pack.s.length);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("give back any number and any text, lone surrogates included", () => {
    const anyText = fc.string({ unit: "binary", maxLength: 40 });
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.double(),
            fc.integer(),
            fc.maxSafeInteger(),
            fc.constantFrom(2 ** 50, -(2 ** 50), 2 ** 50 + 1, -0, Number.NaN),
          ),
        ),
        fc.array(anyText, { maxLength: 8 }),
        fc.array(fc.oneof(anyText, fc.constant("\uFEFFbom")), { maxLength: 8 }),
        (numbers, ids, words) => {
          const pack: Packed = { v: 1, n: Float64Array.from(numbers), s: ids.join(""), d: words };
          expectSamePack(packFromBytes(packToBytes(pack)), pack);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuse bytes that do not hold a pack, whatever they are", () => {
    const good = packToBytes({
      v: 1,
      n: Float64Array.of(1, -2, 0.5, 2 ** 40),
      s: "id-é",
      d: ["acct", "x\uD800"],
    });
    const cuts = Array.from({ length: good.length }, (_, k) => good.slice(0, k));
    const bad = [
      ...cuts,
      Uint8Array.of(...good, 0),
      Uint8Array.of(2, ...good.slice(1)),
      Uint8Array.of(1, 1, 5, 0, 0),
    ];
    for (const bytes of bad) expect(() => packFromBytes(bytes)).toThrow(WireFormatError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          packFromBytes(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(WireFormatError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
