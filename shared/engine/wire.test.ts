/**
 * Packed events must come back exactly as the engine made them, after a structured clone (what an RPC
 * does to a pack), and a pack that does not hold together must be refused, never half read.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MatchingEngine } from "./engine.ts";
import { CommandBuilder, type Recipe, RULES, recipeArb, VARIANTS } from "./test-support.ts";
import type { EngineEvent, EngineEventType } from "./types.ts";
import { packEvents, unpackEvents, WireFormatError, WireReader, WireWriter } from "./wire.ts";

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
  it("unpack, after a structured clone, to the same events field for field, in the same key order", () => {
    const seen = new Set<string>();
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
          for (const e of lists.flat()) seen.add(e.type);
        },
      ),
      { numRuns: 120 },
    );
    // The random sequences reach every kind of event, so each unpacking literal above was compared.
    expect([...seen].sort()).toEqual([...ALL_TYPES].sort());
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
});
