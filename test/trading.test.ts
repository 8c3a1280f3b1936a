// Traders trade with each other through the real HTTP / WebSocket surface of `wrangler dev`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  adminToken as adminLogin,
  api,
  freshIp,
  type JsonSocket,
  newTrader,
  openSocket,
  type Trader,
} from "./client.ts";

type Order = { id: string; status: string; client_order_id: string } & Record<string, unknown>;
type Account = Record<string, string>;
type Position = Record<string, string>;

// This file trades BOLT only and cancels what it leaves open, so other files' books are untouched.
const SYMBOL = "BOLT";
let alice: Trader;
let bob: Trader;
let adminToken: string;

async function admin(method: string, path: string, body?: unknown) {
  return api(method, path, { token: adminToken, body, ip: freshIp() });
}

beforeAll(async () => {
  adminToken = await adminLogin();
  [alice, bob] = await Promise.all([newTrader("alice"), newTrader("bob")]);
  // A long-only market has no shares until someone is given some: Bob gets inventory, as a market maker would.
  const grant = await admin("POST", `/admin/users/${bob.id}/grants`, {
    symbol: SYMBOL,
    qty: "100",
    price: "42.50",
  });
  expect(grant.status).toBe(200);
});

afterAll(async () => {
  await Promise.all([alice?.call("DELETE", "/v2/orders"), bob?.call("DELETE", "/v2/orders")]);
});

const limit = (
  side: "buy" | "sell",
  qty: string,
  price: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  symbol: SYMBOL,
  side,
  type: "limit",
  time_in_force: "gtc",
  qty,
  limit_price: price,
  ...extra,
});

describe("accounts", () => {
  it("start with 100,000 of paper cash", async () => {
    const res = await alice.call<Account>("GET", "/v2/account");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      cash: "100000",
      buying_power: "100000",
      equity: "100000",
      currency: "USD",
    });
  });

  it("show granted shares as a position at the grant price", async () => {
    const res = await bob.call<Position[]>("GET", "/v2/positions");
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      expect.objectContaining({ symbol: SYMBOL, qty: "100", avg_entry_price: "42.5" }),
    ]);
  });
});

describe("two traders trading with each other", () => {
  let aliceStream: JsonSocket;
  let bobStream: JsonSocket;

  beforeAll(async () => {
    // Alice authenticates with a message, as Alpaca's SDKs do; Bob with a header on the upgrade.
    aliceStream = await openSocket("/stream");
    aliceStream.send({ action: "authenticate", data: { oauth_token: alice.token } });
    await aliceStream.next((m) => m.stream === "authorization");
    aliceStream.send({ action: "listen", data: { streams: ["trade_updates"] } });
    await aliceStream.next((m) => m.stream === "listening");
    bobStream = await openSocket("/stream", { Authorization: `Bearer ${bob.token}` });
    bobStream.send({ action: "listen", data: { streams: ["trade_updates"] } });
    await bobStream.next((m) => m.stream === "listening");
  });

  afterAll(async () => {
    await Promise.all([aliceStream?.close(), bobStream?.close()]);
  });

  it("fills a buy against a resting sell, and both see it", async () => {
    const sell = await bob.call<Order>("POST", "/v2/orders", limit("sell", "10", "43.00"));
    expect(sell.status).toBe(200);
    expect(sell.body.status).toBe("new");
    const buy = await alice.call<Order>("POST", "/v2/orders", limit("buy", "10", "43.00"));
    expect(buy.status).toBe(200);
    expect(buy.body).toMatchObject({ status: "filled", filled_qty: "10", filled_avg_price: "43.00" });

    const aliceFill = await aliceStream.next((m) => (m.data as { event?: string })?.event === "fill");
    expect(aliceFill.data).toMatchObject({ event: "fill", price: "43.00", qty: "10", position_qty: "10" });
    const bobFill = await bobStream.next((m) => (m.data as { event?: string })?.event === "fill");
    expect(bobFill.data).toMatchObject({ event: "fill", price: "43.00", qty: "10", position_qty: "90" });

    const soldOrder = await bob.call<Order>("GET", `/v2/orders/${sell.body.id}`);
    expect(soldOrder.body).toMatchObject({ status: "filled", filled_qty: "10" });
  });

  it("moves cash and positions exactly", async () => {
    const a = await alice.call<Account>("GET", "/v2/account");
    expect(a.body).toMatchObject({ cash: "99570", buying_power: "99570" });
    const b = await bob.call<Account>("GET", "/v2/account");
    expect(b.body).toMatchObject({ cash: "100430", realized_pl: "5" });
    const pos = await alice.call<Position>("GET", `/v2/positions/${SYMBOL}`);
    expect(pos.body).toMatchObject({ symbol: SYMBOL, qty: "10", avg_entry_price: "43", cost_basis: "430" });
    const fills = await alice.call<{ order_id: string; qty: string; price: string }[]>(
      "GET",
      "/v2/account/activities/FILL",
    );
    expect(fills.body).toEqual([
      expect.objectContaining({ qty: "10", price: "43.00", side: "buy", symbol: SYMBOL }),
    ]);
  });

  it("fills a market buy at the resting price and releases the unused reservation", async () => {
    await bob.call<Order>("POST", "/v2/orders", limit("sell", "5", "44.00"));
    const buy = await alice.call<Order>("POST", "/v2/orders", {
      symbol: SYMBOL,
      side: "buy",
      type: "market",
      time_in_force: "day",
      qty: "5",
    });
    expect(buy.body).toMatchObject({
      status: "filled",
      filled_qty: "5",
      filled_avg_price: "44.00",
      type: "market",
    });
    const a = await alice.call<Account>("GET", "/v2/account");
    expect(a.body).toMatchObject({ cash: "99350", buying_power: "99350" });
  });
});

describe("order management", () => {
  it("returns the original order for a retried client_order_id and places nothing more", async () => {
    const body = limit("buy", "1", "40.00", { client_order_id: `retry-${Date.now()}` });
    const [first, second] = await Promise.all([
      alice.call<Order>("POST", "/v2/orders", body),
      alice.call<Order>("POST", "/v2/orders", body),
    ]);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    const open = await alice.call<Order[]>("GET", "/v2/orders?status=open");
    expect(open.body.filter((o) => o.client_order_id === body.client_order_id)).toHaveLength(1);
    const byClient = await alice.call<Order>(
      "GET",
      `/v2/orders:by_client_order_id?client_order_id=${encodeURIComponent(body.client_order_id as string)}`,
    );
    expect(byClient.body.id).toBe(first.body.id);
  });

  it("cancels an order and gives its buying power back", async () => {
    const before = await alice.call<Account>("GET", "/v2/account");
    const order = await alice.call<Order>("POST", "/v2/orders", limit("buy", "10", "40.10"));
    const reserved = await alice.call<Account>("GET", "/v2/account");
    expect(Number(before.body.buying_power) - Number(reserved.body.buying_power)).toBe(401);
    const del = await alice.call("DELETE", `/v2/orders/${order.body.id}`);
    expect(del.status).toBe(204);
    const after = await alice.call<Order>("GET", `/v2/orders/${order.body.id}`);
    expect(after.body.status).toBe("canceled");
    const restored = await alice.call<Account>("GET", "/v2/account");
    expect(restored.body.buying_power).toBe(before.body.buying_power);
    const again = await alice.call<{ code: string }>("DELETE", `/v2/orders/${order.body.id}`);
    expect(again.status).toBe(422);
  });

  it("replaces an order with a new one that takes over", async () => {
    const order = await alice.call<Order>("POST", "/v2/orders", limit("buy", "5", "40.20"));
    const replaced = await alice.call<Order>("PATCH", `/v2/orders/${order.body.id}`, { qty: "3" });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({
      qty: "3",
      limit_price: "40.20",
      replaces: order.body.id,
      status: "new",
    });
    const old = await alice.call<Order>("GET", `/v2/orders/${order.body.id}`);
    expect(old.body).toMatchObject({ status: "replaced", replaced_by: replaced.body.id });
  });

  it("rejects a buy beyond buying power with 403", async () => {
    const res = await alice.call<{ code: string; message: string }>(
      "POST",
      "/v2/orders",
      limit("buy", "100000", "43.00"),
    );
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("insufficient_buying_power");
  });

  it("rejects a price outside the symbol's band with 422 and keeps the rejected order on record", async () => {
    const res = await alice.call<{ code: string; message: string }>(
      "POST",
      "/v2/orders",
      limit("buy", "1", "30.00"),
    );
    expect(res.status).toBe(422);
    expect(res.body.code).toBe("price_out_of_band");
    const closed = await alice.call<Order[]>("GET", "/v2/orders?status=closed");
    expect(closed.body.find((o) => o.limit_price === "30.00")).toMatchObject({
      status: "rejected",
      reason: "price_out_of_band",
    });
  });

  it("rejects a sell of shares the account does not have with 403", async () => {
    const res = await alice.call<{ code: string }>("POST", "/v2/orders", limit("sell", "1000", "50.00"));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("insufficient_position");
  });

  it.each([
    [{ ...limit("buy", "abc", "43.00") }, 422, "invalid_qty"],
    [{ ...limit("buy", "1.5", "43.00") }, 422, "qty_not_lot_multiple"],
    [{ ...limit("buy", "1", "43.001") }, 422, "off_tick"],
    [{ ...limit("buy", "1", "43.00"), symbol: "NOPE" }, 422, "unknown_symbol"],
    [
      { symbol: SYMBOL, side: "buy", type: "limit", time_in_force: "gtc", qty: "1" },
      422,
      "missing_limit_price",
    ],
    [{ ...limit("buy", "1", "43.00"), side: "hold" }, 422, "validation_failed"],
    [{ ...limit("buy", "1", "43.00"), qty: undefined }, 422, "invalid_qty"],
  ])("answers a bad order %j with %i %s", async (body, status, code) => {
    const res = await alice.call<{ code: string; message: string }>("POST", "/v2/orders", body);
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(res.body.message).toEqual(expect.any(String));
  });

  it("answers malformed JSON with 400", async () => {
    const res = await api<{ code: string }>("POST", "/v2/orders", {
      token: alice.token,
      ip: alice.ip,
      body: "{nope",
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("invalid_json");
  });
});

describe("one user can never touch another user's orders", () => {
  let aliceOrder: Order;

  beforeAll(async () => {
    aliceOrder = (await alice.call<Order>("POST", "/v2/orders", limit("buy", "1", "40.30"))).body;
  });

  it.each([
    ["GET", () => `/v2/orders/${aliceOrder.id}`],
    ["DELETE", () => `/v2/orders/${aliceOrder.id}`],
    ["PATCH", () => `/v2/orders/${aliceOrder.id}`],
    ["GET", () => `/v2/orders:by_client_order_id?client_order_id=${aliceOrder.client_order_id}`],
  ])("%s on another user's order answers 404", async (method, path) => {
    const res = await bob.call<{ code: string }>(
      method,
      path(),
      method === "PATCH" ? { qty: "2" } : undefined,
    );
    expect(res.status).toBe(404);
    const mine = await alice.call<Order>("GET", `/v2/orders/${aliceOrder.id}`);
    expect(mine.body.status).toBe("new");
  });

  it("does not list another user's orders", async () => {
    const res = await bob.call<Order[]>("GET", "/v2/orders?status=all&limit=500");
    expect(res.body.map((o) => o.id)).not.toContain(aliceOrder.id);
  });

  it("requires authentication", async () => {
    const res = await api<{ code: string }>("GET", "/v2/orders");
    expect(res.status).toBe(401);
  });
});
