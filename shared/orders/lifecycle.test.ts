import { describe, expect, it } from "vitest";
import type { EngineEvent, FillEvent } from "../engine/types.ts";
import { assetIdFor, averagePrice, toAlpacaOrder, toTradeUpdate } from "./alpaca.ts";
import {
  applyEngineEvent,
  isOpen,
  leavesQty,
  newOrderRecord,
  type OrderRecord,
  orderIdsForAccount,
} from "./lifecycle.ts";

const rules = { tickSize: "0.01", lotSize: "1" };
const T0 = Date.UTC(2026, 10, 26, 15, 0, 0);

function buyLimit(id = "o-1"): OrderRecord {
  return newOrderRecord({
    id,
    clientOrderId: `c-${id}`,
    account: "alice",
    symbol: "ACME",
    side: "buy",
    type: "limit",
    tif: "gtc",
    qtyLots: 10,
    limitTicks: 10_000,
    now: T0,
  });
}

const base = { commandSeq: 1, ts: T0 + 5 };
const accepted = (seq: number, orderId = "o-1"): EngineEvent => ({
  ...base,
  seq,
  type: "accepted",
  orderId,
  account: "alice",
  side: "buy",
  orderType: "limit",
  tif: "gtc",
  qty: 10,
  limitPrice: 10_000,
  postOnly: false,
  stp: "cancel_newest",
});
const fill = (seq: number, qty: number, price: number, takerLeaves: number): FillEvent => ({
  ...base,
  seq,
  type: "fill",
  fillId: seq,
  price,
  qty,
  takerOrderId: "o-1",
  makerOrderId: "m-1",
  takerAccount: "alice",
  makerAccount: "bob",
  takerSide: "buy",
  takerLeavesQty: takerLeaves,
  makerLeavesQty: 0,
  takerStatus: takerLeaves === 0 ? "filled" : "partially_filled",
  makerStatus: "filled",
});

describe("order lifecycle", () => {
  it("moves from pending_new to new to partially_filled to filled, accumulating value", () => {
    let o = buyLimit();
    expect(o.status).toBe("pending_new");
    o = applyEngineEvent(o, accepted(1)).order;
    expect(o.status).toBe("new");
    const first = applyEngineEvent(o, fill(2, 4, 9_990, 6));
    expect(first.update).toMatchObject({
      event: "partial_fill",
      qtyLots: 4,
      priceTicks: 9_990,
      liquidity: "taker",
    });
    o = first.order;
    expect(o.status).toBe("partially_filled");
    expect(leavesQty(o)).toBe(6);
    const second = applyEngineEvent(o, fill(3, 6, 10_000, 0));
    o = second.order;
    expect(second.update?.event).toBe("fill");
    expect(o.status).toBe("filled");
    expect(o.filledQtyLots).toBe(10);
    expect(o.filledValue).toBe(4 * 9_990 + 6 * 10_000);
    expect(o.filledAt).toBe(T0 + 5);
    expect(isOpen(o)).toBe(false);
  });

  it("reaches the same state whatever order its events arrive in", () => {
    const events: EngineEvent[] = [accepted(1), fill(2, 4, 9_990, 6), fill(3, 6, 10_000, 0)];
    const orders = [
      [0, 1, 2],
      [2, 1, 0],
      [1, 0, 2],
    ].map((perm) => perm.reduce((o, i) => applyEngineEvent(o, events[i]!).order, buyLimit()));
    for (const o of orders) {
      expect(o).toMatchObject({
        status: "filled",
        filledQtyLots: 10,
        filledValue: 4 * 9_990 + 6 * 10_000,
        lastSeq: 3,
      });
    }
  });

  it("keeps a canceled order canceled when a fill from before the cancel arrives late", () => {
    let o = applyEngineEvent(buyLimit(), accepted(1)).order;
    const cancel: EngineEvent = {
      ...base,
      seq: 9,
      type: "canceled",
      orderId: "o-1",
      account: "alice",
      side: "buy",
      reason: "user",
      canceledQty: 6,
      filledQty: 4,
    };
    o = applyEngineEvent(o, cancel).order;
    const late = applyEngineEvent(o, fill(2, 4, 9_990, 6));
    expect(late.order.status).toBe("canceled");
    expect(late.order.filledQtyLots).toBe(4);
    expect(late.update?.event).toBe("partial_fill");
  });

  it("routes a fill to the taker's and the maker's own orders only", () => {
    const f = fill(2, 4, 9_990, 6);
    expect(orderIdsForAccount(f, "alice")).toEqual(["o-1"]);
    expect(orderIdsForAccount(f, "bob")).toEqual(["m-1"]);
    expect(orderIdsForAccount(f, "carol")).toEqual([]);
  });

  it("marks a rejected place as rejected with its reason, but a rejected cancel changes nothing", () => {
    const o = buyLimit();
    const rejectedCancel = applyEngineEvent(o, {
      ...base,
      seq: 4,
      type: "rejected",
      command: "cancel",
      reason: "order_not_open",
      orderId: "o-1",
      account: "alice",
    });
    expect(rejectedCancel.update).toBeNull();
    expect(rejectedCancel.order.status).toBe("pending_new");
    const rejectedPlace = applyEngineEvent(o, {
      ...base,
      seq: 5,
      type: "rejected",
      command: "place",
      reason: "price_out_of_band",
      orderId: "o-1",
      account: "alice",
    });
    expect(rejectedPlace.order.status).toBe("rejected");
    expect(rejectedPlace.order.reason).toBe("price_out_of_band");
    expect(rejectedPlace.update?.event).toBe("rejected");
  });

  it("closes the old order of a replace and brings the new one to life", () => {
    const old = applyEngineEvent(buyLimit("o-1"), accepted(1)).order;
    const fresh = newOrderRecord({
      ...old,
      id: "o-2",
      clientOrderId: "c-o-2",
      replaces: "o-1",
      now: T0 + 10,
    });
    const replaced: EngineEvent = {
      ...base,
      seq: 7,
      type: "replaced",
      orderId: "o-1",
      newOrderId: "o-2",
      account: "alice",
      side: "buy",
      qty: 8,
      limitPrice: 10_000,
      replacedQty: 10,
      filledQty: 0,
      priorityKept: true,
    };
    expect(orderIdsForAccount(replaced, "alice")).toEqual(["o-1", "o-2"]);
    const a = applyEngineEvent(old, replaced);
    expect(a.order.status).toBe("replaced");
    expect(a.order.replacedBy).toBe("o-2");
    expect(a.update?.event).toBe("replaced");
    const b = applyEngineEvent(fresh, replaced);
    expect(b.order.status).toBe("new");
    expect(b.update).toBeNull();
  });
});

describe("Alpaca rendering", () => {
  it("renders decimal strings, ISO times and nulls as Alpaca does", () => {
    let o = applyEngineEvent(buyLimit(), accepted(1)).order;
    o = applyEngineEvent(o, fill(2, 3, 9_999, 7)).order;
    const json = toAlpacaOrder(o, rules);
    expect(json).toMatchObject({
      id: "o-1",
      client_order_id: "c-o-1",
      symbol: "ACME",
      qty: "10",
      filled_qty: "3",
      filled_avg_price: "99.99",
      limit_price: "100.00",
      stop_price: null,
      status: "partially_filled",
      type: "limit",
      order_type: "limit",
      time_in_force: "gtc",
      side: "buy",
      notional: null,
      created_at: new Date(T0).toISOString(),
    });
    expect(json.asset_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("computes the average fill price exactly and rounds half up past four extra decimals", () => {
    expect(averagePrice(rules, 10_000 + 10_001, 2)).toBe("100.005");
    expect(averagePrice(rules, 10_000 * 2 + 10_001, 3)).toBe("100.003333");
    expect(averagePrice(rules, 2 * 10_001, 3)).toBe("66.673333");
    expect(averagePrice({ tickSize: "0.05" }, 3 * 2, 2)).toBe("0.15");
  });

  it("gives each symbol one stable asset id", () => {
    expect(assetIdFor("ACME")).toBe(assetIdFor("ACME"));
    expect(assetIdFor("ACME")).not.toBe(assetIdFor("BOLT"));
  });

  it("renders a fill as a trade_updates message with price, qty and the position after it", () => {
    const o = applyEngineEvent(applyEngineEvent(buyLimit(), accepted(1)).order, fill(2, 10, 10_000, 0));
    const msg = toTradeUpdate(o.update!, o.order, rules, 10);
    expect(msg).toMatchObject({
      event: "fill",
      price: "100.00",
      qty: "10",
      position_qty: "10",
      execution_id: "ACME-2",
    });
    expect(msg.order.status).toBe("filled");
  });
});
