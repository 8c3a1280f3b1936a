/**
 * The engine's two outputs agree: random command sequences processed into an EventLog give, row for row,
 * the objects the engine gives an array, and the log's pack is the objects' pack number for number.
 *
 * The array form is built from the same rows (`event(i)`), so what the first property guards is the rest:
 * a log shared by batches of any size and cleared between them, `packLog` (`packRow`) against `packEvents`
 * (`packOne`), two separate listings of every event's fields, and `copyRow`. That the objects themselves
 * are right is the differential suite's job (differential.test.ts, against the reference engine).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MatchingEngine } from "./engine.ts";
import { EventLog } from "./event-log.ts";
import { commandsOf, RULES, recipeArb, VARIANTS } from "./test-support.ts";
import type { EngineCommand, EngineEvent } from "./types.ts";
import { packEvents, packLog, unpackEvents } from "./wire.ts";

describe("EventLog", () => {
  it("holds, row for row, the events the engine gives an array, and packs to the same pack", () => {
    let rows = 0;
    fc.assert(
      fc.property(
        fc.nat(VARIANTS.length - 1),
        fc.array(recipeArb, { minLength: 50, maxLength: 600 }),
        fc.integer({ min: 1, max: 40 }),
        (variant, recipes, batch) => {
          const { rules, opts } = VARIANTS[variant] as (typeof VARIANTS)[number];
          const commands = commandsOf(variant, recipes);
          const withArrays = new MatchingEngine(rules, opts);
          const withLog = new MatchingEngine(rules, opts);
          // A small log, so it grows; cleared between batches as a consumer would.
          const log = new EventLog(16);
          for (let from = 0; from < commands.length; from += batch) {
            const lists: EngineEvent[][] = [];
            const bounds = [0];
            log.clear();
            for (const cmd of commands.slice(from, from + batch)) {
              const out: EngineEvent[] = [];
              withArrays.process(cmd, out);
              lists.push(out);
              withLog.process(cmd, log);
              bounds.push(log.length);
            }
            const fromLog = lists.map((_, k) => log.events(bounds[k], bounds[k + 1]));
            expect(fromLog).toEqual(lists);
            // Same keys in the same order, `undefined` fields included.
            for (let k = 0; k < lists.length; k++) {
              const a = lists[k] as EngineEvent[];
              const b = fromLog[k] as EngineEvent[];
              for (let j = 0; j < a.length; j++)
                expect(Object.keys(b[j] as object)).toEqual(Object.keys(a[j] as object));
            }
            const fromRows = packLog(log, bounds);
            const fromObjects = packEvents(lists);
            expect(Array.from(fromRows.n)).toEqual(Array.from(fromObjects.n));
            expect(fromRows.s).toBe(fromObjects.s);
            expect(fromRows.d).toEqual(fromObjects.d);
            expect(unpackEvents(fromRows)).toEqual(lists);
            // A copy of some rows (the book keeps all but the L2 rows for its outbox) is those events.
            const kept = new EventLog(1);
            for (let i = 0; i < log.length; i++) if (log.type(i) !== "book") kept.copyRow(log, i);
            expect(kept.events()).toEqual(lists.flat().filter((e) => e.type !== "book"));
            rows += log.length;
          }
          expect(withLog.stateHash()).toBe(withArrays.stateHash());
        },
      ),
      { numRuns: 60 },
    );
    // The comparison must have covered real traffic, not empty batches.
    expect(rows).toBeGreaterThan(5_000);
  });

  it("reads a row's type, sequence numbers and book fields without building the event", () => {
    const engine = new MatchingEngine(RULES);
    const log = new EventLog();
    const now = 1_750_000_000_000;
    const cmd: EngineCommand = {
      kind: "place",
      now,
      orderId: "o1",
      account: "a",
      side: "buy",
      type: "limit",
      tif: "gtc",
      qty: 5,
      limitPrice: 10_000,
    };
    engine.process(cmd, log);
    expect(log.length).toBe(2);
    expect(log.type(0)).toBe("accepted");
    expect(log.type(1)).toBe("book");
    expect([log.seq(1), log.commandSeq(1), log.ts(1)]).toEqual([2, 1, now]);
    expect([log.bookSide(1), log.price(1), log.qty(1)]).toEqual(["buy", 10_000, 5]);
    expect(log.bookSide(0)).toBeUndefined();
    expect(log.price(0)).toBeNaN();
    expect(log.takerSide(1)).toBeUndefined();
    engine.process({ ...cmd, orderId: "o2", account: "b", side: "sell", qty: 2 }, log);
    const fill = log.events().findIndex((e) => e.type === "fill");
    expect([log.takerSide(fill), log.price(fill), log.qty(fill)]).toEqual(["sell", 10_000, 2]);
    log.clear();
    expect(() => log.type(log.length)).toThrow(RangeError);
    expect(log.length).toBe(0);
    expect(() => log.event(0)).toThrow(RangeError);
  });

  it("grows by doubling and keeps its rows", () => {
    const engine = new MatchingEngine(RULES);
    const log = new EventLog(16);
    expect(log.capacity).toBe(16);
    for (let k = 0; k < 17; k++) engine.process({ kind: "cancel", now: 1, orderId: `x${k}` }, log);
    expect(log.capacity).toBe(32);
    expect(log.events().map((e) => (e.type === "rejected" ? e.orderId : null))).toEqual(
      Array.from({ length: 17 }, (_, k) => `x${k}`),
    );
  });

  it("takes a bad command as a rejected row, like the array form", () => {
    const engine = new MatchingEngine(RULES);
    const log = new EventLog();
    engine.process({ kind: "cancel", now: 1, orderId: "nope" }, log);
    engine.process(null as unknown as EngineCommand, log);
    expect(log.events()).toMatchObject([
      { type: "rejected", command: "cancel", reason: "unknown_order", orderId: "nope" },
      { type: "rejected", command: "unknown", reason: "invalid_command", orderId: undefined },
    ]);
  });
});
