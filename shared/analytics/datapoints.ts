/**
 * Workers Analytics Engine data points (issue: analytics): one per order, fill, login and API call, all in
 * one dataset (`prepx_events`, binding `ANALYTICS`), told apart by `blob1` (the kind). The layouts below are
 * the contract with the SQL API queries in docs/analytics.md: append new fields at the end, never reorder.
 *
 * Analytics Engine is for operations (fast, sampled, approximate: doubles are floats); the exact figures
 * are the Postgres rollups. Limits respected here: one index of ≤ 96 bytes, ≤ 20 blobs of ≤ 16 KB in
 * total, ≤ 20 doubles.
 *
 * Pure: builders return plain objects; `workers/analytics/engine.ts` writes them.
 */
import { lotsToQty, ticksToPrice } from "../engine/rules.ts";
import type { AccountEvent } from "../history/events.ts";

/** Structurally Workers' `AnalyticsEngineDataPoint` (kept here so shared code needs no Workers types). */
export interface DataPoint {
  indexes: string[];
  blobs: string[];
  doubles: number[];
}

export type DataPointKind = "order" | "fill" | "login" | "api_call";

/**
 * Field names per kind, in column order: `index1`, `blob1…`, `double1…`. docs/analytics.md shows them
 * as tables; a unit test checks every builder against them.
 */
export const DATA_POINT_LAYOUTS = {
  order: {
    index: "user_id",
    blobs: [
      "kind",
      "event",
      "symbol",
      "side",
      "type",
      "time_in_force",
      "status",
      "reason",
      "user_id",
      "order_id",
      "bot",
    ],
    doubles: ["qty", "limit_price", "stop_price", "notional", "filled_qty"],
  },
  fill: {
    index: "user_id",
    blobs: ["kind", "symbol", "side", "liquidity", "user_id", "order_id", "book_event_id", "bot"],
    doubles: ["qty", "price", "notional", "fee", "realized_pnl"],
  },
  login: {
    index: "user_id",
    blobs: ["kind", "outcome", "user_id", "country"],
    doubles: ["attempts"],
  },
  api_call: {
    index: "method_route",
    blobs: ["kind", "method", "route", "status", "error_code", "colo", "auth", "country"],
    doubles: ["duration_ms", "status_code"],
  },
} as const satisfies Record<
  DataPointKind,
  { index: string; blobs: readonly string[]; doubles: readonly string[] }
>;

export const MAX_INDEX_BYTES = 96;
export const MAX_BLOBS = 20;
export const MAX_DOUBLES = 20;
export const MAX_BLOB_BYTES = 16 * 1024;

/** Cuts a string to at most `bytes` UTF-8 bytes (on a character boundary). */
export function truncateUtf8(s: string, bytes: number): string {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short strings (the usual case) need no encoding.
  if (s.length * 3 <= bytes) return s;
  const encoded = new TextEncoder().encode(s);
  if (encoded.length <= bytes) return s;
  let end = bytes;
  // Step back over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((encoded[end] ?? 0) & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(encoded.slice(0, end));
}

const flag = (b: boolean) => (b ? "1" : "0");
const num = (s: string) => Number(s);

/** An order data point: `event` is `created` (first seen) or `rejected`. */
export function orderPoint(
  e: Extract<AccountEvent, { type: "account.order" }>,
  event: "created" | "rejected",
  bot: boolean,
  sizes: { tickSize: string; lotSize: string },
): DataPoint {
  const o = e.order;
  const u = sizes;
  return {
    indexes: [truncateUtf8(e.userId, MAX_INDEX_BYTES)],
    blobs: [
      "order",
      event,
      o.symbol,
      o.side,
      o.type,
      o.tif,
      o.status,
      o.reason ?? "",
      e.userId,
      o.id,
      flag(bot),
    ],
    doubles: [
      num(lotsToQty(u, o.qtyLots)),
      o.limitTicks === null ? 0 : num(ticksToPrice(u, o.limitTicks)),
      o.stopTicks === null ? 0 : num(ticksToPrice(u, o.stopTicks)),
      o.notionalMicros === null ? 0 : o.notionalMicros / 1e6,
      num(lotsToQty(u, o.filledQtyLots)),
    ],
  };
}

export function fillPoint(e: Extract<AccountEvent, { type: "account.fill" }>, bot: boolean): DataPoint {
  const f = e.fill;
  return {
    indexes: [truncateUtf8(e.userId, MAX_INDEX_BYTES)],
    blobs: ["fill", f.symbol, f.side, f.liquidity, e.userId, f.orderId, f.bookEventId, flag(bot)],
    doubles: [
      num(lotsToQty(f, f.qtyLots)),
      num(ticksToPrice(f, f.priceTicks)),
      f.notionalMicros / 1e6,
      f.feeMicros / 1e6,
      f.realizedPlMicros / 1e6,
    ],
  };
}

/** How a `POST /v1/auth/login` ended: 200, 401, 429 (per IP or per account), 400 / 422, anything else. */
export type LoginOutcome = "success" | "invalid_credentials" | "rate_limited" | "invalid_request" | "error";

export function loginPoint(p: { outcome: LoginOutcome; userId: string | null; country: string }): DataPoint {
  return {
    indexes: [p.userId ?? "anonymous"],
    blobs: ["login", p.outcome, p.userId ?? "", p.country],
    doubles: [1],
  };
}

export interface ApiCall {
  method: string;
  /** The route pattern (`/v2/orders/:order_id`), `(unmatched)` for 404s without a route. */
  route: string;
  status: number;
  durationMs: number;
  /** The error code of a 4xx / 5xx answer, else "". */
  errorCode: string;
  colo: string;
  /** "jwt", "api_key" or "" (anonymous). */
  auth: string;
  country: string;
}

export function apiCallPoint(c: ApiCall): DataPoint {
  return {
    indexes: [truncateUtf8(`${c.method} ${c.route}`, MAX_INDEX_BYTES)],
    blobs: [
      "api_call",
      c.method,
      truncateUtf8(c.route, 256),
      String(c.status),
      truncateUtf8(c.errorCode, 64),
      c.colo,
      c.auth,
      c.country,
    ],
    doubles: [c.durationMs, c.status],
  };
}
