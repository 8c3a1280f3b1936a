// Alpaca's official SDK, pointed at PrepX by changing only the base URL and keys, places, lists,
// replaces and cancels orders and receives trade_updates.
import { streaming, trading } from "@alpacahq/alpaca-trade-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminToken as adminLogin, api, baseUrl, freshIp, newTrader, type Trader } from "./client.ts";

// This file trades CRUX only and cancels what it leaves open.
const SYMBOL = "CRUX";
let trader: Trader;
let maker: Trader;
let keys: { keyId: string; secret: string };
let orders: trading.OrdersApi;
let stream: streaming.TradingStream;
const updates: streaming.TradeUpdate[] = [];

beforeAll(async () => {
  const admin = await adminLogin();
  [trader, maker] = await Promise.all([newTrader("sdk"), newTrader("sdk-maker")]);
  await api("POST", `/admin/users/${maker.id}/grants`, {
    token: admin,
    ip: freshIp(),
    body: { symbol: SYMBOL, qty: "50", price: "250.00" },
  });
  const key = await trader.call<{ key_id: string; secret_key: string }>("POST", "/v1/api-keys", {
    name: "sdk test",
  });
  expect(key.status).toBe(201);
  keys = { keyId: key.body.key_id, secret: key.body.secret_key };
  orders = new trading.OrdersApi(
    new trading.Configuration({ basePath: baseUrl, keyId: keys.keyId, secret: keys.secret }),
  );
  stream = new streaming.TradingStream({
    url: `${baseUrl.replace(/^http/, "ws")}/stream`,
    credentials: keys,
    reconnect: false,
  });
  stream.onTradeUpdate((u) => updates.push(u));
  const listening = new Promise<void>((resolve) => stream.on(streaming.EVENT.SUBSCRIPTION, () => resolve()));
  stream.subscribeTradeUpdates();
  stream.connect();
  await listening;
});

afterAll(async () => {
  stream?.disconnect();
  await Promise.all([trader?.call("DELETE", "/v2/orders"), maker?.call("DELETE", "/v2/orders")]);
});

async function waitFor<T>(fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("Alpaca's official SDK against PrepX", () => {
  it("places, lists, replaces and cancels an order, and streams its updates", async () => {
    const placed = await orders.postOrder({
      postOrderRequest: {
        symbol: SYMBOL,
        qty: "2",
        side: "buy",
        type: "limit",
        timeInForce: "gtc",
        limitPrice: "240.00",
        clientOrderId: `sdk-${Date.now()}`,
      },
    });
    expect(placed).toMatchObject({ symbol: SYMBOL, status: "new", qty: "2", limitPrice: "240.00" });

    const open = await orders.getAllOrders({ status: "open" });
    expect(open.map((o) => o.id)).toContain(placed.id);

    const replaced = await orders.patchOrderByOrderId({
      orderId: placed.id!,
      patchOrderRequest: { qty: "1", limitPrice: "241.00" },
    });
    expect(replaced).toMatchObject({ qty: "1", limitPrice: "241.00", replaces: placed.id });

    await orders.deleteOrderByOrderID({ orderId: replaced.id! });
    const canceled = await orders.getOrderByOrderID({ orderId: replaced.id! });
    expect(canceled.status).toBe("canceled");

    const events = await waitFor(() => {
      const mine = updates
        .filter((u) => u.order.id === placed.id || u.order.id === replaced.id)
        .map((u) => u.event);
      return mine.includes("canceled") ? mine : undefined;
    });
    expect(events).toEqual(expect.arrayContaining(["new", "replaced", "canceled"]));
  });

  it("receives a fill with its price, quantity and position", async () => {
    await maker.call("POST", "/v2/orders", {
      symbol: SYMBOL,
      side: "sell",
      type: "limit",
      time_in_force: "gtc",
      qty: "3",
      limit_price: "251.00",
    });
    const bought = await orders.postOrder({
      postOrderRequest: { symbol: SYMBOL, qty: "3", side: "buy", type: "market", timeInForce: "day" },
    });
    expect(bought.status).toBe("filled");
    const fill = await waitFor(() => updates.find((u) => u.order.id === bought.id && u.event === "fill"));
    expect(fill).toMatchObject({ price: "251.00", qty: "3", positionQty: "3" });
  });

  it("surfaces PrepX errors as the SDK's typed errors", async () => {
    await expect(
      orders.postOrder({
        postOrderRequest: {
          symbol: SYMBOL,
          qty: "100000",
          side: "buy",
          type: "limit",
          timeInForce: "gtc",
          limitPrice: "250.00",
        },
      }),
    ).rejects.toMatchObject({ status: 403 });
  });
});
