import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  desiredLadder,
  inventorySkew,
  type Ladder,
  type LadderInput,
  othersBest,
  planRequote,
  type QuoteAction,
  type QuoteConfig,
  type RestingQuote,
} from "./quoting.ts";

const config: QuoteConfig = {
  spreadTicks: 4,
  levels: 5,
  levelSpacingTicks: 2,
  levelSizeLots: 40,
  sizeStepLots: 10,
  targetInventoryLots: 800,
  skewTicksPerLevelSize: 1,
  maxSkewTicks: 5,
  maxInventoryLots: 1_600,
  minInventoryLots: 0,
};

const MICROS = 10_000; // tick 0.01 × lot 1

const baseInput: LadderInput = {
  centreTicks: 7_500,
  inventoryLots: 800,
  bidBudgetMicros: 45_000 * 1_000_000,
  askBudgetLots: 360,
  microsPerTickLot: MICROS,
  band: { low: 6_750, high: 8_250 },
  othersBestBid: null,
  othersBestAsk: null,
};

const configs = fc.record({
  spreadTicks: fc.integer({ min: 1, max: 20 }),
  levels: fc.integer({ min: 1, max: 8 }),
  levelSpacingTicks: fc.integer({ min: 1, max: 5 }),
  levelSizeLots: fc.integer({ min: 1, max: 500 }),
  sizeStepLots: fc.integer({ min: 0, max: 100 }),
  targetInventoryLots: fc.integer({ min: 0, max: 5_000 }),
  skewTicksPerLevelSize: fc.integer({ min: 0, max: 4 }),
  maxSkewTicks: fc.integer({ min: 0, max: 10 }),
  maxInventoryLots: fc.integer({ min: 1, max: 10_000 }),
  minInventoryLots: fc.constant(0),
});

const inputs = fc
  .record({
    centreTicks: fc.integer({ min: 1, max: 100_000 }),
    bbo: fc.option(
      fc.record({ bid: fc.integer({ min: 1, max: 100_000 }), ask: fc.integer({ min: 1, max: 100_000 }) }),
      { nil: null },
    ),
    inventoryLots: fc.integer({ min: 0, max: 10_000 }),
    bidBudgetMicros: fc.integer({ min: 0, max: 10 ** 12 }),
    askBudgetLots: fc.integer({ min: 0, max: 10_000 }),
    othersBestBid: fc.option(fc.integer({ min: 1, max: 100_000 }), { nil: null }),
    othersBestAsk: fc.option(fc.integer({ min: 1, max: 100_000 }), { nil: null }),
  })
  .map((r) => ({
    ...r,
    microsPerTickLot: MICROS,
    band: { low: Math.max(1, Math.floor(r.centreTicks * 0.9)), high: Math.ceil(r.centreTicks * 1.1) },
    // Others' book is never crossed by itself (the engine would have matched it).
    othersBestAsk:
      r.othersBestAsk !== null && r.othersBestBid !== null && r.othersBestAsk <= r.othersBestBid
        ? r.othersBestBid + 1
        : r.othersBestAsk,
  }));

function checkLadder(c: QuoteConfig, input: LadderInput, ladder: Ladder) {
  const bestBid = ladder.bids[0]?.price;
  const bestAsk = ladder.asks[0]?.price;
  if (bestBid !== undefined && bestAsk !== undefined)
    expect(bestAsk - bestBid).toBeGreaterThanOrEqual(c.spreadTicks);
  for (const b of ladder.bids) for (const a of ladder.asks) expect(b.price).toBeLessThan(a.price);
  for (const l of [...ladder.bids, ...ladder.asks]) {
    expect(l.price).toBeGreaterThanOrEqual(Math.max(1, input.band.low));
    expect(l.price).toBeLessThanOrEqual(input.band.high);
    expect(Number.isSafeInteger(l.qty) && l.qty > 0).toBe(true);
  }
  if (input.othersBestAsk !== null)
    for (const b of ladder.bids) expect(b.price).toBeLessThan(input.othersBestAsk);
  if (input.othersBestBid !== null)
    for (const a of ladder.asks) expect(a.price).toBeGreaterThan(input.othersBestBid);
  const bidCash = ladder.bids.reduce((s, l) => s + l.price * l.qty * input.microsPerTickLot, 0);
  expect(bidCash).toBeLessThanOrEqual(input.bidBudgetMicros);
  const askLots = ladder.asks.reduce((s, l) => s + l.qty, 0);
  expect(askLots).toBeLessThanOrEqual(
    Math.min(input.askBudgetLots, input.inventoryLots - c.minInventoryLots),
  );
  if (input.inventoryLots >= c.maxInventoryLots) expect(ladder.bids).toEqual([]);
  for (const side of [ladder.bids, ladder.asks]) {
    const prices = side.map((l) => l.price);
    expect(new Set(prices).size).toBe(prices.length);
  }
}

describe("the maker's desired ladder", () => {
  it("quotes the configured spread around the reference, deeper levels larger", () => {
    const ladder = desiredLadder(config, baseInput);
    expect(ladder.bids).toEqual([
      { price: 7_498, qty: 40 },
      { price: 7_496, qty: 50 },
      { price: 7_494, qty: 60 },
      { price: 7_492, qty: 70 },
      { price: 7_490, qty: 80 },
    ]);
    expect(ladder.asks.map((l) => l.price)).toEqual([7_502, 7_504, 7_506, 7_508, 7_510]);
    // 360 lots of ask budget: 40 + 50 + 60 + 70 + 80 = 300 fit.
    expect(ladder.asks.map((l) => l.qty)).toEqual([40, 50, 60, 70, 80]);
  });

  it("keeps its spread, the band, its budgets and stays behind everyone else (property)", () => {
    fc.assert(
      fc.property(configs, inputs, (c, input) => {
        checkLadder(c, input, desiredLadder(c, input));
      }),
      { numRuns: 2_000 },
    );
  });

  it("skews both sides down when long and up when short of its target", () => {
    const long = desiredLadder(config, { ...baseInput, inventoryLots: 800 + 3 * 40 });
    const short = desiredLadder(config, { ...baseInput, inventoryLots: 800 - 2 * 40 });
    expect(long.bids[0]?.price).toBe(7_498 - 3);
    expect(long.asks[0]?.price).toBe(7_502 - 3);
    expect(short.bids[0]?.price).toBe(7_498 + 2);
    expect(inventorySkew(config, 10_000)).toBe(config.maxSkewTicks);
  });

  it("quotes around a real best bid and offer, widened to its minimum spread", () => {
    expect(desiredLadder(config, { ...baseInput, bbo: { bid: 7_400, ask: 7_410 } }).bids[0]?.price).toBe(
      7_400,
    );
    const narrow = desiredLadder(config, { ...baseInput, bbo: { bid: 7_400, ask: 7_401 } });
    expect([narrow.bids[0]?.price, narrow.asks[0]?.price]).toEqual([7_399, 7_403]);
  });

  it("stops bidding at its maximum inventory and offering when it has nothing", () => {
    expect(desiredLadder(config, { ...baseInput, inventoryLots: 1_600 }).bids).toEqual([]);
    expect(desiredLadder(config, { ...baseInput, inventoryLots: 0 }).asks).toEqual([]);
  });
});

/** Apply actions to a model of the maker's resting orders, as the book would. */
function apply(current: RestingQuote[], actions: QuoteAction[]): RestingQuote[] {
  let book = current.map((q) => ({ ...q }));
  let n = 0;
  for (const a of actions) {
    if (a.kind === "cancel") book = book.filter((q) => q.orderId !== a.orderId);
    else if (a.kind === "replace") {
      const old = book.find((q) => q.orderId === a.orderId);
      expect(old).toBeDefined();
      book = book.filter((q) => q.orderId !== a.orderId);
      book.push({
        orderId: `r${n++}`,
        side: a.side,
        price: a.price,
        remainingLots: a.qty,
        createdAt: 1e9 + n,
      });
    } else {
      book.push({
        orderId: `p${n++}`,
        side: a.side,
        price: a.price,
        remainingLots: a.qty,
        createdAt: 1e9 + n,
      });
    }
  }
  return book;
}

function totals(book: RestingQuote[], side: "buy" | "sell") {
  const m = new Map<number, number>();
  for (const q of book) if (q.side === side) m.set(q.price, (m.get(q.price) ?? 0) + q.remainingLots);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

const resting = fc.array(
  fc.record({
    side: fc.constantFrom("buy" as const, "sell" as const),
    price: fc.integer({ min: 7_480, max: 7_520 }),
    remainingLots: fc.integer({ min: 1, max: 120 }),
    createdAt: fc.nat(1000),
  }),
  { maxLength: 15 },
);

describe("requote planning", () => {
  it("reaches exactly the desired ladder from any resting quotes (property)", () => {
    fc.assert(
      fc.property(resting, fc.integer({ min: 7_470, max: 7_530 }), (rows, centre) => {
        const current = rows.map((r, i) => ({ ...r, orderId: `o${i}` }));
        const ladder = desiredLadder(config, { ...baseInput, centreTicks: centre });
        const after = apply(current, planRequote(current, ladder, { bidsPaused: false, asksPaused: false }));
        expect(totals(after, "buy")).toEqual(
          ladder.bids.map((l) => [l.price, l.qty]).sort((a, b) => a[0]! - b[0]!),
        );
        expect(totals(after, "sell")).toEqual(
          ladder.asks.map((l) => [l.price, l.qty]).sort((a, b) => a[0]! - b[0]!),
        );
      }),
      { numRuns: 1_000 },
    );
  });

  it("adds no quantity to a side that is pausing to refill (property)", () => {
    fc.assert(
      fc.property(resting, fc.integer({ min: 7_470, max: 7_530 }), (rows, centre) => {
        const current = rows.map((r, i) => ({ ...r, orderId: `o${i}` }));
        const ladder = desiredLadder(config, { ...baseInput, centreTicks: centre });
        const actions = planRequote(current, ladder, { bidsPaused: true, asksPaused: true });
        expect(actions.some((a) => a.kind === "place")).toBe(false);
        const after = apply(current, actions);
        for (const side of ["buy", "sell"] as const) {
          const before = current.filter((q) => q.side === side).reduce((s, q) => s + q.remainingLots, 0);
          const now = after.filter((q) => q.side === side).reduce((s, q) => s + q.remainingLots, 0);
          expect(now).toBeLessThanOrEqual(before);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("does nothing when the book already holds the ladder", () => {
    const ladder = desiredLadder(config, baseInput);
    const current: RestingQuote[] = [
      ...ladder.bids.map((l, i) => ({
        orderId: `b${i}`,
        side: "buy" as const,
        price: l.price,
        remainingLots: l.qty,
        createdAt: i,
      })),
      ...ladder.asks.map((l, i) => ({
        orderId: `a${i}`,
        side: "sell" as const,
        price: l.price,
        remainingLots: l.qty,
        createdAt: i,
      })),
    ];
    expect(planRequote(current, ladder, { bidsPaused: false, asksPaused: false })).toEqual([]);
  });

  it("moves orders with replaces, asks first when the price rises", () => {
    const before = desiredLadder(config, baseInput);
    const current: RestingQuote[] = [
      ...before.bids.map((l, i) => ({
        orderId: `b${i}`,
        side: "buy" as const,
        price: l.price,
        remainingLots: l.qty,
        createdAt: i,
      })),
      ...before.asks.map((l, i) => ({
        orderId: `a${i}`,
        side: "sell" as const,
        price: l.price,
        remainingLots: l.qty,
        createdAt: i,
      })),
    ];
    const up = desiredLadder(config, { ...baseInput, centreTicks: 7_520 });
    const actions = planRequote(current, up, { bidsPaused: false, asksPaused: false });
    expect(actions.every((a) => a.kind === "replace")).toBe(true);
    const firstBid = actions.findIndex((a) => a.side === "buy");
    const lastAsk = actions.map((a) => a.side).lastIndexOf("sell");
    expect(lastAsk).toBeLessThan(firstBid);
  });

  it("trims a level by shrinking its newest order, keeping the oldest's priority", () => {
    const ladder: Ladder = { bids: [{ price: 100, qty: 50 }], asks: [], centre: 102, skew: 0 };
    const current: RestingQuote[] = [
      { orderId: "old", side: "buy", price: 100, remainingLots: 40, createdAt: 1 },
      { orderId: "new", side: "buy", price: 100, remainingLots: 30, createdAt: 2 },
    ];
    expect(planRequote(current, ladder, { bidsPaused: false, asksPaused: false })).toEqual([
      { kind: "replace", orderId: "new", side: "buy", price: 100, qty: 10 },
    ]);
  });

  it("finds everyone else's best price by taking its own lots out of the book", () => {
    const own: RestingQuote[] = [
      { orderId: "a", side: "buy", price: 100, remainingLots: 10, createdAt: 1 },
      { orderId: "b", side: "sell", price: 104, remainingLots: 5, createdAt: 1 },
    ];
    const book = {
      bids: [
        [100, 10],
        [99, 3],
      ] as [number, number][],
      asks: [
        [104, 7],
        [105, 1],
      ] as [number, number][],
    };
    expect(othersBest(book, own)).toEqual({ bid: 99, ask: 104 });
  });
});
