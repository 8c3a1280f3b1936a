import { describe, expect, it } from "vitest";
import { MatchingEngine } from "./engine.ts";
import { MAX_PRICE_TICKS } from "./limits.ts";
import {
  lotsToQty,
  notionalMicros,
  priceToTicks,
  qtyToLots,
  ticksToPrice,
  validateSymbolRules,
} from "./rules.ts";
import type {
  EngineCommand,
  EngineEvent,
  EngineOptions,
  EngineSnapshot,
  FillEvent,
  PlaceCommand,
  SymbolRules,
} from "./types.ts";

const RULES: SymbolRules = {
  symbol: "AAPL",
  tickSize: "0.01",
  lotSize: "1",
  minQtyLots: 1,
  maxQtyLots: 10_000,
  minNotionalTicksLots: 0,
  priceBandBps: 0,
};

const T0 = 1_750_000_000_000;

function engine(rules: Partial<SymbolRules> = {}, opts?: EngineOptions): MatchingEngine {
  return new MatchingEngine({ ...RULES, ...rules }, opts);
}

function run(e: MatchingEngine, cmd: EngineCommand): EngineEvent[] {
  const out: EngineEvent[] = [];
  e.process(cmd, out);
  return out;
}

type PlaceArgs = Partial<Omit<PlaceCommand, "kind">> & Pick<PlaceCommand, "orderId">;

function place(e: MatchingEngine, args: PlaceArgs): EngineEvent[] {
  return run(e, {
    kind: "place",
    now: T0,
    account: "alice",
    side: "buy",
    type: "limit",
    tif: "gtc",
    qty: 10,
    ...args,
  } as PlaceCommand);
}

function types(events: EngineEvent[]): string[] {
  return events.map((e) =>
    e.type === "rejected" ? `rejected:${e.reason}` : e.type === "canceled" ? `canceled:${e.reason}` : e.type,
  );
}

function fills(events: EngineEvent[]): FillEvent[] {
  return events.filter((e): e is FillEvent => e.type === "fill");
}

function rejectReason(events: EngineEvent[]): string | undefined {
  const r = events.find((e) => e.type === "rejected");
  return r?.type === "rejected" ? r.reason : undefined;
}

describe("placing and resting", () => {
  it("accepts a limit order, rests it and publishes the new level total", () => {
    const e = engine();
    const out = place(e, { orderId: "b1", side: "buy", qty: 5, limitPrice: 10_000 });
    expect(out).toEqual([
      {
        type: "accepted",
        seq: 1,
        commandSeq: 1,
        ts: T0,
        orderId: "b1",
        account: "alice",
        side: "buy",
        orderType: "limit",
        tif: "gtc",
        qty: 5,
        limitPrice: 10_000,
        postOnly: false,
        stp: "cancel_newest",
      },
      { type: "book", seq: 2, commandSeq: 1, ts: T0, bookSeq: 1, side: "buy", price: 10_000, qty: 5 },
    ]);
    expect(e.topOfBook()).toEqual({ bid: [10_000, 5], ask: null, bookSeq: 1 });
    expect(e.getOrder("b1")).toMatchObject({ leavesQty: 5, filledQty: 0, status: "new" });
    expect(e.openOrderCount).toBe(1);
  });

  it("aggregates depth per price level, best first", () => {
    const e = engine();
    place(e, { orderId: "b1", limitPrice: 100, qty: 1 });
    place(e, { orderId: "b2", limitPrice: 101, qty: 2 });
    place(e, { orderId: "b3", limitPrice: 101, qty: 3 });
    place(e, { orderId: "s1", side: "sell", limitPrice: 103, qty: 4 });
    place(e, { orderId: "s2", side: "sell", limitPrice: 102, qty: 5 });
    expect(e.depth(10)).toEqual({
      bids: [
        [101, 5],
        [100, 1],
      ],
      asks: [
        [102, 5],
        [103, 4],
      ],
      bookSeq: 5,
    });
    expect(e.depth(1)).toEqual({ bids: [[101, 5]], asks: [[102, 5]], bookSeq: 5 });
  });
});

describe("matching by price-time priority", () => {
  it("fills the better price first, then the older order at the same price, at the maker's price", () => {
    const e = engine();
    place(e, { orderId: "s-old", account: "m1", side: "sell", limitPrice: 101, qty: 3 });
    place(e, { orderId: "s-new", account: "m2", side: "sell", limitPrice: 101, qty: 3 });
    place(e, { orderId: "s-best", account: "m3", side: "sell", limitPrice: 100, qty: 2 });
    const out = place(e, { orderId: "t", account: "taker", side: "buy", limitPrice: 105, qty: 6 });
    expect(fills(out).map((f) => [f.makerOrderId, f.price, f.qty])).toEqual([
      ["s-best", 100, 2],
      ["s-old", 101, 3],
      ["s-new", 101, 1],
    ]);
    expect(types(out)).toEqual(["accepted", "fill", "book", "fill", "fill", "book"]);
    expect(out[2]).toMatchObject({ type: "book", side: "sell", price: 100, qty: 0 });
    expect(out[5]).toMatchObject({ type: "book", side: "sell", price: 101, qty: 2 });
    expect(e.lastTradePrice).toBe(101);
  });

  it("describes each fill for both sides: ids, accounts, leaves and status", () => {
    const e = engine();
    place(e, { orderId: "m", account: "maker", side: "sell", limitPrice: 100, qty: 5 });
    const [fill] = fills(place(e, { orderId: "t", account: "taker", side: "buy", limitPrice: 100, qty: 2 }));
    expect(fill).toMatchObject({
      fillId: 1,
      price: 100,
      qty: 2,
      takerOrderId: "t",
      makerOrderId: "m",
      takerAccount: "taker",
      makerAccount: "maker",
      takerSide: "buy",
      takerLeavesQty: 0,
      makerLeavesQty: 3,
      takerStatus: "filled",
      makerStatus: "partially_filled",
    });
    const [second] = fills(
      place(e, { orderId: "t2", account: "taker", side: "buy", limitPrice: 100, qty: 9 }),
    );
    expect(second).toMatchObject({
      fillId: 2,
      qty: 3,
      makerStatus: "filled",
      takerStatus: "partially_filled",
    });
    expect(e.getOrder("t2")).toMatchObject({ leavesQty: 6, filledQty: 3, status: "partially_filled" });
  });

  it("never fills a limit order at a price worse than its limit", () => {
    const e = engine();
    place(e, { orderId: "s1", account: "m", side: "sell", limitPrice: 100, qty: 1 });
    place(e, { orderId: "s2", account: "m", side: "sell", limitPrice: 102, qty: 5 });
    const out = place(e, { orderId: "b", side: "buy", limitPrice: 101, qty: 3 });
    expect(fills(out).map((f) => f.price)).toEqual([100]);
    expect(e.topOfBook()).toMatchObject({ bid: [101, 2], ask: [102, 5] });
  });
});

describe("market, IOC and FOK orders", () => {
  it("cancels a market order that finds no liquidity", () => {
    const e = engine();
    const out = place(e, { orderId: "m", type: "market", tif: "day", qty: 5 });
    expect(types(out)).toEqual(["accepted", "canceled:market_no_liquidity"]);
    expect(out[1]).toMatchObject({ canceledQty: 5, filledQty: 0 });
    expect(e.openOrderCount).toBe(0);
  });

  it("fills what a market order can and cancels the rest", () => {
    const e = engine();
    place(e, { orderId: "s", account: "m", side: "sell", limitPrice: 100, qty: 3 });
    const out = place(e, { orderId: "m", type: "market", tif: "gtc", qty: 5 });
    expect(types(out)).toEqual(["accepted", "fill", "book", "canceled:market_no_liquidity"]);
    expect(out[3]).toMatchObject({ canceledQty: 2, filledQty: 3 });
  });

  it("never rests an IOC order", () => {
    const e = engine();
    place(e, { orderId: "s", account: "m", side: "sell", limitPrice: 100, qty: 3 });
    const out = place(e, { orderId: "ioc", tif: "ioc", limitPrice: 100, qty: 5 });
    expect(types(out)).toEqual(["accepted", "fill", "book", "canceled:ioc_remainder"]);
    expect(e.getOrder("ioc")).toBeUndefined();
    expect(e.topOfBook().bid).toBeNull();
  });

  it("rejects a FOK order it cannot fill in full, leaving the book untouched", () => {
    const e = engine();
    place(e, { orderId: "s1", account: "m", side: "sell", limitPrice: 100, qty: 3 });
    place(e, { orderId: "s2", account: "m", side: "sell", limitPrice: 101, qty: 3 });
    const hash = e.stateHash();
    const out = place(e, { orderId: "f", tif: "fok", limitPrice: 100, qty: 4 });
    expect(rejectReason(out)).toBe("fok_unfillable");
    expect(out).toHaveLength(1);
    const after = e.snapshot();
    expect(after.asks.map((o) => o.leaves)).toEqual([3, 3]);
    expect(e.stateHash()).not.toBe(hash); // only the sequence counters moved
  });

  it("fills a FOK order in full across levels", () => {
    const e = engine();
    place(e, { orderId: "s1", account: "m", side: "sell", limitPrice: 100, qty: 3 });
    place(e, { orderId: "s2", account: "m", side: "sell", limitPrice: 101, qty: 3 });
    const out = place(e, { orderId: "f", tif: "fok", limitPrice: 101, qty: 5 });
    expect(fills(out).reduce((sum, f) => sum + f.qty, 0)).toBe(5);
    expect(types(out)).not.toContain("canceled:ioc_remainder");
  });
});

describe("post-only", () => {
  it("rejects a post-only order that would take liquidity (it is never re-priced)", () => {
    const e = engine();
    place(e, { orderId: "s", account: "m", side: "sell", limitPrice: 100, qty: 3 });
    expect(rejectReason(place(e, { orderId: "p", limitPrice: 100, postOnly: true }))).toBe(
      "post_only_would_take",
    );
    expect(types(place(e, { orderId: "p2", limitPrice: 99, postOnly: true }))).toEqual(["accepted", "book"]);
  });

  it("allows post-only only on day / gtc limit orders", () => {
    const e = engine();
    expect(rejectReason(place(e, { orderId: "a", tif: "ioc", limitPrice: 99, postOnly: true }))).toBe(
      "post_only_invalid",
    );
    expect(rejectReason(place(e, { orderId: "b", type: "market", postOnly: true }))).toBe(
      "post_only_invalid",
    );
  });

  it("rejects a replace that would make a post-only order take, keeping the order", () => {
    const e = engine();
    place(e, { orderId: "s", account: "m", side: "sell", limitPrice: 100, qty: 3 });
    place(e, { orderId: "p", limitPrice: 98, postOnly: true });
    const out = run(e, { kind: "replace", now: T0, orderId: "p", newOrderId: "p2", limitPrice: 100 });
    expect(rejectReason(out)).toBe("post_only_would_take");
    expect(e.getOrder("p")).toMatchObject({ limitPrice: 98 });
  });
});

describe("stop orders", () => {
  it("triggers a stop on the last trade price and then trades as a market order", () => {
    const e = engine();
    place(e, { orderId: "ask1", account: "m", side: "sell", limitPrice: 100, qty: 1 });
    place(e, { orderId: "ask2", account: "m", side: "sell", limitPrice: 105, qty: 10 });
    const armed = place(e, { orderId: "stop", account: "s", type: "stop", stopPrice: 100, qty: 4 });
    expect(types(armed)).toEqual(["accepted"]);
    expect(e.getOrder("stop")).toMatchObject({ status: "pending_trigger" });
    expect(e.depth(5).bids).toEqual([]); // stops are not in the L2 book
    const out = place(e, { orderId: "t", account: "t", limitPrice: 100, qty: 1 });
    expect(types(out)).toEqual(["accepted", "fill", "book", "triggered", "fill", "book"]);
    expect(out[3]).toMatchObject({ orderId: "stop", stopPrice: 100, lastTradePrice: 100, orderType: "stop" });
    expect(out[4]).toMatchObject({ takerOrderId: "stop", price: 105, qty: 4, takerLeavesQty: 0 });
  });

  it("rests a triggered stop-limit order at its limit price", () => {
    const e = engine();
    place(e, { orderId: "ask", account: "m", side: "sell", limitPrice: 100, qty: 1 });
    place(e, { orderId: "sl", account: "s", type: "stop_limit", stopPrice: 100, limitPrice: 99, qty: 2 });
    place(e, { orderId: "t", account: "t", limitPrice: 100, qty: 1 });
    expect(e.getOrder("sl")).toMatchObject({ triggered: true, status: "new", limitPrice: 99 });
    expect(e.topOfBook().bid).toEqual([99, 2]);
  });

  it("triggers sell stops when the price falls to them, highest stop first", () => {
    const e = engine();
    place(e, { orderId: "bid", account: "m", side: "buy", limitPrice: 90, qty: 100 });
    place(e, { orderId: "low", account: "s", side: "sell", type: "stop", stopPrice: 95, qty: 1 });
    place(e, { orderId: "high", account: "s", side: "sell", type: "stop", stopPrice: 97, qty: 1 });
    const out = place(e, { orderId: "t", account: "t", side: "sell", limitPrice: 90, qty: 1 });
    const triggered = out
      .filter((ev) => ev.type === "triggered")
      .map((ev) => ev.type === "triggered" && ev.orderId);
    expect(triggered).toEqual(["high", "low"]);
  });

  it("triggers at once a stop whose price the last trade has already reached", () => {
    const e = engine();
    place(e, { orderId: "ask", account: "m", side: "sell", limitPrice: 100, qty: 5 });
    place(e, { orderId: "t", account: "t", limitPrice: 100, qty: 1 });
    const out = place(e, { orderId: "stop", account: "s", type: "stop", stopPrice: 99, qty: 1 });
    expect(types(out)).toEqual(["accepted", "triggered", "fill", "book"]);
  });

  it("cancels a triggered FOK stop it cannot fill in full", () => {
    const e = engine();
    place(e, { orderId: "ask", account: "m", side: "sell", limitPrice: 100, qty: 2 });
    place(e, { orderId: "stop", account: "s", type: "stop", tif: "fok", stopPrice: 100, qty: 5 });
    const out = place(e, { orderId: "t", account: "t", limitPrice: 100, qty: 1 });
    expect(types(out)).toEqual(["accepted", "fill", "book", "triggered", "canceled:fok_unfillable"]);
  });
});

describe("replace (amend)", () => {
  function bookWithTwoBids(): MatchingEngine {
    const e = engine();
    place(e, { orderId: "first", account: "a", limitPrice: 100, qty: 5 });
    place(e, { orderId: "second", account: "b", limitPrice: 100, qty: 5 });
    return e;
  }
  const sell = (e: MatchingEngine, qty: number) =>
    fills(place(e, { orderId: `sell-${qty}-${e.seq}`, account: "z", side: "sell", limitPrice: 100, qty }));

  it("keeps time priority when only the quantity goes down, under the new id", () => {
    const e = bookWithTwoBids();
    const out = run(e, { kind: "replace", now: T0, orderId: "first", newOrderId: "first-v2", qty: 3 });
    expect(types(out)).toEqual(["replaced", "book"]);
    expect(out[0]).toMatchObject({
      orderId: "first",
      newOrderId: "first-v2",
      qty: 3,
      replacedQty: 5,
      priorityKept: true,
    });
    expect(out[1]).toMatchObject({ price: 100, qty: 8 });
    expect(sell(e, 1)[0]?.makerOrderId).toBe("first-v2");
  });

  it("loses time priority when the quantity goes up", () => {
    const e = bookWithTwoBids();
    const out = run(e, { kind: "replace", now: T0, orderId: "first", newOrderId: "first-v2", qty: 6 });
    expect(out[0]).toMatchObject({ priorityKept: false });
    expect(sell(e, 1)[0]?.makerOrderId).toBe("second");
  });

  it("loses time priority when the price changes, and matches if the new price crosses", () => {
    const e = bookWithTwoBids();
    place(e, { orderId: "ask", account: "m", side: "sell", limitPrice: 101, qty: 2 });
    const out = run(e, {
      kind: "replace",
      now: T0,
      orderId: "second",
      newOrderId: "second-v2",
      limitPrice: 101,
    });
    expect(types(out)).toEqual(["replaced", "book", "fill", "book", "book"]);
    expect(out[2]).toMatchObject({ takerOrderId: "second-v2", makerOrderId: "ask", qty: 2 });
    expect(e.getOrder("second-v2")).toMatchObject({ leavesQty: 3, limitPrice: 101 });
  });

  it("closes the old id: it cannot be canceled or reused afterwards", () => {
    const e = bookWithTwoBids();
    run(e, { kind: "replace", now: T0, orderId: "first", newOrderId: "first-v2", qty: 2 });
    expect(rejectReason(run(e, { kind: "cancel", now: T0, orderId: "first" }))).toBe("order_not_open");
    expect(rejectReason(place(e, { orderId: "first", limitPrice: 90 }))).toBe("duplicate_order_id");
    expect(e.closedOrderStatus("first")).toBe("replaced");
    expect(types(run(e, { kind: "cancel", now: T0, orderId: "first-v2" }))).toEqual([
      "canceled:user",
      "book",
    ]);
  });

  it("rejects replaces that name nothing to change, a taken new id, or another account's order", () => {
    const e = bookWithTwoBids();
    expect(rejectReason(run(e, { kind: "replace", now: T0, orderId: "first", newOrderId: "x" }))).toBe(
      "nothing_to_replace",
    );
    expect(
      rejectReason(run(e, { kind: "replace", now: T0, orderId: "first", newOrderId: "second", qty: 1 })),
    ).toBe("duplicate_order_id");
    expect(
      rejectReason(
        run(e, { kind: "replace", now: T0, orderId: "first", newOrderId: "y", account: "b", qty: 1 }),
      ),
    ).toBe("not_owner");
    expect(rejectReason(run(e, { kind: "replace", now: T0, orderId: "nope", newOrderId: "z", qty: 1 }))).toBe(
      "unknown_order",
    );
  });

  it("moves an untriggered stop and keeps its fills with the old order", () => {
    const e = engine();
    place(e, { orderId: "ask", account: "m", side: "sell", limitPrice: 100, qty: 10 });
    place(e, { orderId: "bid", account: "a", limitPrice: 90, qty: 10 });
    place(e, { orderId: "stop", account: "s", type: "stop", stopPrice: 101, qty: 2 });
    const out = run(e, { kind: "replace", now: T0, orderId: "stop", newOrderId: "stop2", stopPrice: 102 });
    expect(out[0]).toMatchObject({ type: "replaced", stopPrice: 102, priorityKept: false });
    expect(e.getOrder("stop2")).toMatchObject({ stopPrice: 102, status: "pending_trigger" });
    expect(
      rejectReason(run(e, { kind: "replace", now: T0, orderId: "bid", newOrderId: "b2", stopPrice: 5 })),
    ).toBe("unexpected_stop_price");
  });
});

describe("self-trade prevention", () => {
  function withOwnAsk(): MatchingEngine {
    const e = engine();
    place(e, { orderId: "own-ask", account: "me", side: "sell", limitPrice: 100, qty: 5 });
    place(e, { orderId: "other-ask", account: "other", side: "sell", limitPrice: 100, qty: 5 });
    return e;
  }

  it("cancel_newest cancels the incoming order and leaves the resting one", () => {
    const e = withOwnAsk();
    const out = place(e, { orderId: "t", account: "me", limitPrice: 100, qty: 3, stp: "cancel_newest" });
    expect(types(out)).toEqual(["accepted", "canceled:stp"]);
    expect(e.getOrder("own-ask")).toBeDefined();
  });

  it("cancel_oldest cancels the resting order and keeps matching", () => {
    const e = withOwnAsk();
    const out = place(e, { orderId: "t", account: "me", limitPrice: 100, qty: 3, stp: "cancel_oldest" });
    expect(types(out)).toEqual(["accepted", "canceled:stp", "fill", "book"]);
    expect(out[1]).toMatchObject({ orderId: "own-ask", canceledQty: 5 });
    expect(out[2]).toMatchObject({ makerOrderId: "other-ask", qty: 3 });
    expect(out[3]).toMatchObject({ qty: 2 });
  });

  it("cancel_both cancels both orders", () => {
    const e = withOwnAsk();
    const out = place(e, { orderId: "t", account: "me", limitPrice: 100, qty: 3, stp: "cancel_both" });
    expect(types(out)).toEqual(["accepted", "canceled:stp", "book", "canceled:stp"]);
    expect(e.getOrder("t")).toBeUndefined();
    expect(e.getOrder("own-ask")).toBeUndefined();
    expect(e.getOrder("other-ask")).toBeDefined();
  });

  it("uses the engine default mode when the order names none", () => {
    const e = engine({}, { defaultStp: "cancel_oldest" });
    place(e, { orderId: "own", account: "me", side: "sell", limitPrice: 100, qty: 1 });
    const out = place(e, { orderId: "t", account: "me", limitPrice: 100, qty: 1 });
    expect(out[0]).toMatchObject({ stp: "cancel_oldest" });
    expect(types(out)).toEqual(["accepted", "canceled:stp", "book", "book"]);
  });
});

describe("symbol rules and bad commands", () => {
  const e = engine(
    { minQtyLots: 2, maxQtyLots: 100, minNotionalTicksLots: 3_000, priceBandBps: 1_000 },
    { referencePrice: 1_000 },
  );
  const cases: [string, PlaceArgs, string][] = [
    ["zero quantity", { orderId: "q0", qty: 0, limitPrice: 1_000 }, "invalid_qty"],
    ["negative quantity", { orderId: "q1", qty: -5, limitPrice: 1_000 }, "invalid_qty"],
    ["a fraction of a lot", { orderId: "q2", qty: 2.5, limitPrice: 1_000 }, "qty_not_lot_multiple"],
    ["below the minimum quantity", { orderId: "q3", qty: 1, limitPrice: 1_000 }, "qty_below_min"],
    ["above the maximum quantity", { orderId: "q4", qty: 101, limitPrice: 1_000 }, "qty_above_max"],
    ["a price between ticks", { orderId: "p1", limitPrice: 1_000.5 }, "off_tick"],
    ["a zero price", { orderId: "p2", limitPrice: 0 }, "invalid_price"],
    ["a price beyond the engine range", { orderId: "p3", limitPrice: MAX_PRICE_TICKS + 1 }, "invalid_price"],
    ["a price above the band", { orderId: "p4", limitPrice: 1_101 }, "price_out_of_band"],
    ["a price below the band", { orderId: "p5", limitPrice: 899 }, "price_out_of_band"],
    [
      "a notional under the minimum",
      { orderId: "n1", qty: 2, limitPrice: 1_000, side: "sell" },
      "min_notional",
    ],
    ["a limit order without a price", { orderId: "l1" }, "missing_limit_price"],
    [
      "a market order with a price",
      { orderId: "l2", type: "market", limitPrice: 1_000 },
      "unexpected_limit_price",
    ],
    ["a stop order without a stop price", { orderId: "l3", type: "stop" }, "missing_stop_price"],
    ["an unknown side", { orderId: "e1", side: "up" as never, limitPrice: 1_000 }, "invalid_side"],
    [
      "an unknown order type",
      { orderId: "e2", type: "iceberg" as never, limitPrice: 1_000 },
      "invalid_order_type",
    ],
    ["an unknown time in force", { orderId: "e3", tif: "gtd" as never, limitPrice: 1_000 }, "invalid_tif"],
    ["an unknown STP mode", { orderId: "e4", stp: "nope" as never, limitPrice: 1_000 }, "invalid_stp"],
    ["an expiry in the past", { orderId: "e5", limitPrice: 1_000, expiresAt: T0 - 1 }, "invalid_expiry"],
    ["an empty order id", { orderId: "", limitPrice: 1_000 }, "invalid_order_id"],
    ["a fractional time", { orderId: "e6", limitPrice: 1_000, now: 1.5 }, "invalid_time"],
  ];
  for (const [what, args, reason] of cases) {
    it(`rejects ${what} with "${reason}"`, () => {
      const out = place(e, { qty: 10, ...args });
      expect(out).toHaveLength(1);
      expect(out[0]).toMatchObject({ type: "rejected", command: "place", reason });
    });
  }

  it("accepts prices on the edge of the band and follows the reference price", () => {
    const b = engine({ priceBandBps: 1_000 }, { referencePrice: 1_000 });
    expect(types(place(b, { orderId: "edge", limitPrice: 1_100 }))).toEqual(["accepted", "book"]);
    expect(rejectReason(place(b, { orderId: "far", limitPrice: 1_300 }))).toBe("price_out_of_band");
    expect(types(run(b, { kind: "setReferencePrice", now: T0, price: 1_200 }))).toEqual(["reference_price"]);
    expect(types(place(b, { orderId: "far2", limitPrice: 1_300 }))).toEqual(["accepted", "book"]);
    expect(b.referencePrice).toBe(1_200);
  });

  it("rejects new orders while halted, still allows cancels, and trades again after resume", () => {
    const h = engine();
    place(h, { orderId: "resting", limitPrice: 100 });
    expect(run(h, { kind: "halt", now: T0 })[0]).toMatchObject({ type: "trading_status", halted: true });
    expect(rejectReason(place(h, { orderId: "new", limitPrice: 100 }))).toBe("halted");
    expect(
      rejectReason(run(h, { kind: "replace", now: T0, orderId: "resting", newOrderId: "r2", qty: 1 })),
    ).toBe("halted");
    expect(types(run(h, { kind: "cancel", now: T0, orderId: "resting" }))).toEqual(["canceled:user", "book"]);
    run(h, { kind: "resume", now: T0 });
    expect(h.halted).toBe(false);
    expect(types(place(h, { orderId: "new", limitPrice: 100 }))).toEqual(["accepted", "book"]);
  });

  it("rejects cancels of unknown orders, of other accounts' orders and duplicate ids", () => {
    const c = engine();
    place(c, { orderId: "mine", account: "alice", limitPrice: 100 });
    expect(rejectReason(run(c, { kind: "cancel", now: T0, orderId: "ghost" }))).toBe("unknown_order");
    expect(rejectReason(run(c, { kind: "cancel", now: T0, orderId: "mine", account: "bob" }))).toBe(
      "not_owner",
    );
    expect(rejectReason(place(c, { orderId: "mine", limitPrice: 90 }))).toBe("duplicate_order_id");
  });

  it("turns any malformed command into a rejected event instead of throwing", () => {
    const c = engine();
    const garbage: unknown[] = [
      null,
      undefined,
      42,
      "place",
      {},
      { kind: "place" },
      { kind: "teleport", now: T0 },
    ];
    for (const cmd of garbage) {
      const out = run(c, cmd as EngineCommand);
      expect(out).toHaveLength(1);
      expect(out[0]?.type).toBe("rejected");
    }
  });
});

describe("time-based expiry", () => {
  it("expires day orders at tick(now >= expiresAt), earliest first, and not before", () => {
    const e = engine();
    place(e, { orderId: "late", tif: "day", limitPrice: 100, expiresAt: T0 + 2_000 });
    place(e, { orderId: "early", tif: "day", limitPrice: 99, expiresAt: T0 + 1_000 });
    place(e, { orderId: "stop", tif: "day", type: "stop", stopPrice: 200, expiresAt: T0 + 1_000 });
    place(e, { orderId: "gtc", limitPrice: 98 });
    expect(e.nextExpiryAt).toBe(T0 + 1_000);
    expect(run(e, { kind: "tick", now: T0 + 999 })).toEqual([]);
    const out = run(e, { kind: "tick", now: T0 + 5_000 });
    expect(
      out.filter((ev) => ev.type === "expired").map((ev) => ev.type === "expired" && ev.orderId),
    ).toEqual(["early", "stop", "late"]);
    expect(types(out)).toEqual(["expired", "book", "expired", "expired", "book"]);
    expect(e.openOrderCount).toBe(1);
    expect(e.nextExpiryAt).toBeNull();
    expect(e.closedOrderStatus("early")).toBe("expired");
  });
});

describe("sequence numbers", () => {
  it("numbers every event and every book delta strictly increasingly across commands", () => {
    const e = engine();
    const all: EngineEvent[] = [];
    all.push(...place(e, { orderId: "a", account: "m", side: "sell", limitPrice: 100, qty: 2 }));
    all.push(...place(e, { orderId: "b", account: "t", limitPrice: 100, qty: 5 }));
    all.push(...run(e, { kind: "cancel", now: T0, orderId: "nope" }));
    all.push(...run(e, { kind: "cancel", now: T0, orderId: "b" }));
    expect(all.map((ev) => ev.seq)).toEqual(all.map((_, i) => i + 1));
    const bookSeqs = all.flatMap((ev) => (ev.type === "book" ? [ev.bookSeq] : []));
    expect(bookSeqs).toEqual([1, 2, 3, 4]);
    expect(all.map((ev) => ev.commandSeq)).toEqual([1, 1, 2, 2, 2, 2, 3, 4, 4]);
    expect(e.seq).toBe(all.length);
    expect(e.commandSeq).toBe(4);
  });
});

describe("snapshot and restore", () => {
  it("restores a book whose queues, counters and further behaviour are identical", () => {
    const e = engine({}, { closedOrderMemory: 3 });
    place(e, { orderId: "b1", account: "a", limitPrice: 99, qty: 4, tif: "day", expiresAt: T0 + 10 });
    place(e, { orderId: "b2", account: "b", limitPrice: 99, qty: 4 });
    place(e, { orderId: "s1", account: "c", side: "sell", limitPrice: 101, qty: 4 });
    place(e, { orderId: "st", account: "d", side: "sell", type: "stop", stopPrice: 95, qty: 1 });
    place(e, { orderId: "x", account: "e", side: "sell", limitPrice: 99, qty: 1 });
    const snap = JSON.parse(JSON.stringify(e.snapshot())) as EngineSnapshot;
    const copy = MatchingEngine.restore(snap);
    expect(copy.stateHash()).toBe(e.stateHash());
    expect(copy.depth(10)).toEqual(e.depth(10));
    const next: EngineCommand[] = [
      { kind: "tick", now: T0 + 20 },
      {
        kind: "place",
        now: T0 + 21,
        orderId: "y",
        account: "f",
        side: "sell",
        type: "market",
        tif: "ioc",
        qty: 5,
      },
      { kind: "cancel", now: T0 + 22, orderId: "x" },
    ];
    for (const cmd of next) expect(run(copy, cmd)).toEqual(run(e, cmd));
    expect(copy.stateHash()).toBe(e.stateHash());
  });

  it("still restores snapshots that hold the recently closed ids as one list", () => {
    const e = engine({}, { closedOrderMemory: 2 });
    for (const id of ["a", "b", "c"]) {
      place(e, { orderId: id, limitPrice: 100 });
      run(e, { kind: "cancel", now: T0, orderId: id });
    }
    const { closedPrevious, closedCurrent, ...rest } = e.snapshot();
    const legacy = { ...rest, closed: [...closedPrevious, ...closedCurrent] } as unknown as EngineSnapshot;
    const copy = MatchingEngine.restore(legacy);
    expect(copy.closedOrderStatus("c")).toBe("canceled");
    expect(copy.closedOrderStatus("b")).toBe("canceled");
    expect(rejectReason(run(copy, { kind: "cancel", now: T0, orderId: "c" }))).toBe("order_not_open");
  });

  it("gives different hashes to different states", () => {
    const a = engine();
    const b = engine();
    place(a, { orderId: "o", limitPrice: 100 });
    place(b, { orderId: "o", limitPrice: 101 });
    expect(a.stateHash()).not.toBe(b.stateHash());
  });
});

describe("order ids", () => {
  it("treats ids that differ only in the middle as distinct, and switches to hashing every character", () => {
    // Same length and last 8 characters: the sampled id hash gives all of them the same value.
    const id = (n: number) => `ord-${String(n).padStart(10, "0")}-000000000000`;
    const e = engine({}, { closedOrderMemory: 50 });
    expect(e.idHashing).toBe("sampled");
    for (let n = 0; n < 200; n++) {
      const out = place(e, { orderId: id(n), account: `a${n}`, limitPrice: 100 - (n % 7), qty: 1 });
      expect(types(out)).toEqual(["accepted", "book"]);
    }
    expect(e.idHashing).toBe("full");
    expect(e.openOrderCount).toBe(200);
    for (let n = 0; n < 200; n += 2) run(e, { kind: "cancel", now: T0, orderId: id(n) });
    expect(e.getOrder(id(1))?.orderId).toBe(id(1));
    expect(e.getOrder(id(2))).toBeUndefined();
    expect(e.closedOrderStatus(id(2))).toBe("canceled");
    expect(rejectReason(place(e, { orderId: id(3), limitPrice: 100 }))).toBe("duplicate_order_id");
    expect(rejectReason(place(e, { orderId: id(198), limitPrice: 100 }))).toBe("duplicate_order_id");
    expect(types(place(e, { orderId: id(1_000), limitPrice: 100 }))).toEqual(["accepted", "book"]);
    // Hashes are not state: a restored copy (sampled hashes again) agrees on everything.
    const copy = MatchingEngine.restore(JSON.parse(JSON.stringify(e.snapshot())) as EngineSnapshot);
    expect(copy.idHashing).toBe("sampled");
    expect(copy.stateHash()).toBe(e.stateHash());
    const cancel: EngineCommand = { kind: "cancel", now: T0, orderId: id(5) };
    expect(run(copy, cancel)).toEqual(run(e, cancel));
  });

  it("keeps sampled hashes for UUIDs", () => {
    const e = engine();
    for (let n = 0; n < 2_000; n++) {
      const uuid = `${(Math.imul(n, 0x9e3779b1) >>> 0).toString(16).padStart(8, "0")}-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
      place(e, { orderId: uuid, limitPrice: 100 - (n % 9), qty: 1 });
    }
    expect(e.openOrderCount).toBe(2_000);
    expect(e.idHashing).toBe("sampled");
  });
});

describe("symbol rule helpers", () => {
  it("converts decimal prices and quantities to ticks and lots and back", () => {
    const rules = { tickSize: "0.05", lotSize: "0.001" };
    expect(priceToTicks(rules, "150.25")).toEqual({ ok: true, value: 3005 });
    expect(priceToTicks(rules, "150.26")).toEqual({ ok: false, reason: "off_tick" });
    expect(priceToTicks(rules, "abc")).toEqual({ ok: false, reason: "invalid_price" });
    expect(priceToTicks(rules, "0")).toEqual({ ok: false, reason: "invalid_price" });
    expect(ticksToPrice(rules, 3005)).toBe("150.25");
    expect(qtyToLots(rules, "1.5")).toEqual({ ok: true, value: 1500 });
    expect(qtyToLots(rules, "1.0005")).toEqual({ ok: false, reason: "qty_not_lot_multiple" });
    expect(lotsToQty(rules, 1500)).toBe("1.500");
    expect(lotsToQty(rules, 1500, true)).toBe("1.5");
  });

  it("computes exact notionals in micro-units", () => {
    expect(notionalMicros({ tickSize: "0.01", lotSize: "1" }, 15_025, 3)).toEqual({
      ok: true,
      value: 450_750_000,
    });
    expect(notionalMicros({ tickSize: "0.0001", lotSize: "0.001" }, 1, 1)).toEqual({
      ok: false,
      reason: "too_many_decimals",
    });
    expect(notionalMicros({ tickSize: "0.0001", lotSize: "0.01" }, 1, 1)).toEqual({ ok: true, value: 1 });
  });

  it("validates symbol rules and refuses to build an engine on bad ones", () => {
    expect(validateSymbolRules(RULES)).toEqual({ ok: true });
    expect(validateSymbolRules({ ...RULES, tickSize: "0" }).ok).toBe(false);
    expect(validateSymbolRules({ ...RULES, maxQtyLots: 0 }).ok).toBe(false);
    expect(() => new MatchingEngine({ ...RULES, lotSize: "-1" })).toThrow(RangeError);
  });
});
