import { describe, expect, it } from "vitest";
import type { AccountEvent } from "../history/events.ts";
import {
  apiCallPoint,
  DATA_POINT_LAYOUTS,
  type DataPoint,
  fillPoint,
  loginPoint,
  MAX_BLOB_BYTES,
  MAX_BLOBS,
  MAX_DOUBLES,
  MAX_INDEX_BYTES,
  orderPoint,
  truncateUtf8,
} from "./datapoints.ts";

const USER = "0b6c5a0e-1f2d-4c3b-8a7e-5d4c3b2a1f00";
const bytes = (s: string) => new TextEncoder().encode(s).length;

function withinLimits(p: DataPoint, layout: { blobs: readonly string[]; doubles: readonly string[] }) {
  expect(p.indexes).toHaveLength(1);
  expect(bytes(p.indexes[0] as string)).toBeLessThanOrEqual(MAX_INDEX_BYTES);
  expect(p.blobs).toHaveLength(layout.blobs.length);
  expect(p.doubles).toHaveLength(layout.doubles.length);
  expect(p.blobs.length).toBeLessThanOrEqual(MAX_BLOBS);
  expect(p.doubles.length).toBeLessThanOrEqual(MAX_DOUBLES);
  expect(p.blobs.reduce((n, b) => n + bytes(b), 0)).toBeLessThanOrEqual(MAX_BLOB_BYTES);
  for (const d of p.doubles) expect(Number.isFinite(d)).toBe(true);
}

/** The named fields of a point, by its documented layout. */
const named = (p: DataPoint, layout: { blobs: readonly string[]; doubles: readonly string[] }) =>
  Object.fromEntries([
    ...layout.blobs.map((name, i) => [name, p.blobs[i]]),
    ...layout.doubles.map((name, i) => [name, p.doubles[i]]),
  ]);

describe("Analytics Engine data points", () => {
  it("lay out an order as documented", () => {
    const e = {
      kind: "account",
      v: 1,
      id: "order:o1:2",
      userId: USER,
      seq: 2,
      ts: 1,
      epoch: 0,
      type: "account.order",
      order: {
        id: "o1",
        symbol: "ACME",
        side: "sell",
        type: "stop_limit",
        tif: "gtc",
        status: "rejected",
        reason: "price_band",
        qtyLots: 12,
        limitTicks: 9_950,
        stopTicks: 10_000,
        notionalMicros: null,
        filledQtyLots: 0,
      },
    } as unknown as Extract<AccountEvent, { type: "account.order" }>;
    const p = orderPoint(e, "rejected", false, { tickSize: "0.01", lotSize: "1" });
    withinLimits(p, DATA_POINT_LAYOUTS.order);
    expect(p.indexes).toEqual([USER]);
    expect(named(p, DATA_POINT_LAYOUTS.order)).toEqual({
      kind: "order",
      event: "rejected",
      symbol: "ACME",
      side: "sell",
      type: "stop_limit",
      time_in_force: "gtc",
      status: "rejected",
      reason: "price_band",
      user_id: USER,
      order_id: "o1",
      bot: "0",
      qty: 12,
      limit_price: 99.5,
      stop_price: 100,
      notional: 0,
      filled_qty: 0,
    });
  });

  it("lay out a fill, a login and an API call as documented", () => {
    const fill = {
      userId: USER,
      fill: {
        symbol: "BOLT",
        side: "buy",
        liquidity: "taker",
        orderId: "o2",
        bookEventId: "BOLT:9",
        qtyLots: 3,
        priceTicks: 4_250,
        tickSize: "0.01",
        lotSize: "1",
        notionalMicros: 127_500_000,
        feeMicros: 19_125,
        realizedPlMicros: -5,
      },
    } as unknown as Extract<AccountEvent, { type: "account.fill" }>;
    const f = fillPoint(fill, true);
    withinLimits(f, DATA_POINT_LAYOUTS.fill);
    expect(named(f, DATA_POINT_LAYOUTS.fill)).toEqual({
      kind: "fill",
      symbol: "BOLT",
      side: "buy",
      liquidity: "taker",
      user_id: USER,
      order_id: "o2",
      book_event_id: "BOLT:9",
      bot: "1",
      qty: 3,
      price: 42.5,
      notional: 127.5,
      fee: 0.019125,
      realized_pnl: -0.000005,
    });

    const login = loginPoint({ outcome: "invalid_credentials", userId: null, country: "DE" });
    withinLimits(login, DATA_POINT_LAYOUTS.login);
    expect(login.indexes).toEqual(["anonymous"]);
    expect(named(login, DATA_POINT_LAYOUTS.login)).toMatchObject({
      kind: "login",
      outcome: "invalid_credentials",
    });

    const call = apiCallPoint({
      method: "GET",
      route: `/v2/${"x".repeat(200)}`,
      status: 404,
      durationMs: 12,
      errorCode: "not_found",
      colo: "FRA",
      auth: "",
      country: "DE",
    });
    withinLimits(call, DATA_POINT_LAYOUTS.api_call);
    expect(named(call, DATA_POINT_LAYOUTS.api_call)).toMatchObject({
      kind: "api_call",
      method: "GET",
      status: "404",
      error_code: "not_found",
      duration_ms: 12,
    });
  });

  it("cut long strings on a character boundary", () => {
    expect(truncateUtf8("aé€", 4)).toBe("aé");
    expect(truncateUtf8("aé€", 6)).toBe("aé€");
    expect(bytes(truncateUtf8("€".repeat(40), MAX_INDEX_BYTES))).toBe(96);
  });
});
