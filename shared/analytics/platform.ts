/**
 * Platform analytics (`GET /admin/analytics`): the time grid of a report and the assembly of the report
 * from the rows the rollup queries return. Pure, so the series logic is unit-tested without a database.
 *
 * Sources (all in the global database, see docs/analytics.md):
 * - orders, rejections by reason, account fills and fees: `analytics_minute` (the analytics processor);
 * - fills (matches) and volume by symbol: the 1-minute `market_bars` (the bars processor);
 * - active users: `analytics_active_users` (distinct over any interval);
 * - API calls, errors and latency percentiles per route: `api_call_minute` / `api_error_minute`
 *   (the API-call recorder via Redis).
 */
import { MICRO_SCALE, parseStep } from "../decimal.ts";
import { formatLots, formatUsd } from "./format.ts";
import { type Histogram, percentiles } from "./latency.ts";

export const INTERVALS = {
  "1m": 60_000,
  "5m": 300_000,
  "15m": 900_000,
  "1h": 3_600_000,
  "1d": 86_400_000,
} as const;
export type Interval = keyof typeof INTERVALS;
/** Most points one report may have. */
export const MAX_POINTS = 1_440;
/** Longest window one report may cover. */
export const MAX_WINDOW_MS = 90 * 86_400_000;
/** Window when `from` is not given. */
export const DEFAULT_WINDOW_MS = 3_600_000;

export interface ReportRange {
  /** Start of the first bucket (aligned to the interval), ms. */
  from: number;
  /** End of the window (exclusive), ms: the end of the last bucket. */
  to: number;
  interval: Interval;
  intervalMs: number;
  /** Bucket starts. */
  buckets: number[];
}

export type RangeResult = { ok: true; range: ReportRange } | { ok: false; message: string };

const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** Parses an ISO 8601 date (`2026-11-20`, UTC midnight) or date-time with a zone; null when invalid. */
export function parseInstant(s: string): number | null {
  if (!ISO.test(s)) return null;
  const ms = Date.parse(s.length === 10 ? `${s}T00:00:00Z` : s);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * The report window for `from`, `to` (ISO 8601, optional) and `interval`: `to` defaults to now, `from` to
 * an hour before `to`; `from` is aligned down and `to` up to the interval (buckets are aligned to the
 * epoch, so UTC minutes, hours and days).
 */
export function reportRange(q: { from?: string; to?: string; interval?: string }, now: number): RangeResult {
  const interval = (q.interval ?? "1m") as Interval;
  const intervalMs = INTERVALS[interval];
  if (intervalMs === undefined)
    return { ok: false, message: `interval: one of ${Object.keys(INTERVALS).join(", ")}` };
  const to = q.to === undefined ? now : parseInstant(q.to);
  if (to === null) return { ok: false, message: "to: not an ISO 8601 date or date-time with a time zone" };
  const from = q.from === undefined ? to - DEFAULT_WINDOW_MS : parseInstant(q.from);
  if (from === null)
    return { ok: false, message: "from: not an ISO 8601 date or date-time with a time zone" };
  if (from >= to) return { ok: false, message: "from must be before to" };
  if (to - from > MAX_WINDOW_MS) return { ok: false, message: "the window may cover at most 90 days" };
  const start = Math.floor(from / intervalMs) * intervalMs;
  const end = Math.ceil(to / intervalMs) * intervalMs;
  const points = (end - start) / intervalMs;
  if (points > MAX_POINTS) {
    return { ok: false, message: `${points} points: at most ${MAX_POINTS}; use a larger interval` };
  }
  const buckets = Array.from({ length: points }, (_, i) => start + i * intervalMs);
  return { ok: true, range: { from: start, to: end, interval, intervalMs, buckets } };
}

// --- rows the queries return (bucket start `t` in ms; bigint sums arrive as strings) -----------------

export interface CounterRow {
  t: string | number;
  metric: string;
  dim: string;
  value: string | number;
}
export interface BarRow {
  t: string | number;
  symbol: string;
  fills: string | number;
  volume_lots: string | number;
  /** Σ price_ticks × qty_lots. */
  notional: string | number;
}
export interface ActiveRow {
  t: string | number;
  users: string | number;
  bots: string | number;
}
export interface LatencySeriesRow {
  t: string | number;
  bucket: number;
  calls: string | number;
  server_errors: string | number;
  client_errors: string | number;
}
export interface LatencyRouteRow {
  method: string;
  route: string;
  bucket: number;
  calls: string | number;
  server_errors: string | number;
  client_errors: string | number;
}
export interface ErrorRow {
  method: string;
  route: string;
  status: number;
  code: string;
  calls: string | number;
}

export interface PlatformRows {
  counters: CounterRow[];
  bars: BarRow[];
  active: ActiveRow[];
  activeTotal: { users: string | number; bots: string | number };
  latencySeries: LatencySeriesRow[];
  latencyRoutes: LatencyRouteRow[];
  errors: ErrorRow[];
}

/** Units of a symbol, for turning bar sums into shares and USD. */
export type SymbolUnitsOf = (symbol: string) => { tickSize: string; lotSize: string };

// --- the report ----------------------------------------------------------------------------------------

export interface PlatformReport {
  from: string;
  to: string;
  interval: Interval;
  interval_seconds: number;
  generated_at: string;
  buckets: string[];
  series: {
    orders: number[];
    rejections: number[];
    fills: number[];
    account_fills: number[];
    active_users: number[];
    active_bots: number[];
    notional: string[];
    fees: string[];
    api_calls: number[];
    api_server_errors: number[];
    api_client_errors: number[];
    api_p50_ms: (number | null)[];
    api_p95_ms: (number | null)[];
    api_p99_ms: (number | null)[];
  };
  totals: {
    orders: number;
    rejections: number;
    fills: number;
    account_fills: number;
    active_users: number;
    active_bots: number;
    notional: string;
    fees: string;
    api_calls: number;
    api_server_errors: number;
    api_client_errors: number;
  };
  volume_by_symbol: {
    symbol: string;
    fills: number;
    volume: string;
    notional: string;
    orders: number;
    series: { fills: number[]; notional: string[] };
  }[];
  rejection_reasons: { reason: string; count: number }[];
  /** Order requests the API refused (`POST /v2/orders`, `PATCH /v2/orders/:order_id` with 4xx), by code. */
  refused_orders: { code: string; status: number; count: number }[];
  /** Most frequent error answers, any route. */
  api_errors: { method: string; route: string; status: number; code: string; count: number }[];
  routes: {
    method: string;
    route: string;
    calls: number;
    server_errors: number;
    client_errors: number;
    p50_ms: number | null;
    p95_ms: number | null;
    p99_ms: number | null;
  }[];
}

/** Routes through which orders are submitted; their 4xx answers are refused orders. */
export const ORDER_ROUTES = new Set(["POST /v2/orders", "PATCH /v2/orders/:order_id"]);

const n = (v: string | number) => Number(v);
const big = (v: string | number) => BigInt(typeof v === "number" ? Math.trunc(v) : v.split(".")[0] || "0");

/** Σ price_ticks × qty_lots → micro-USD (exact; rounded down below a micro-dollar, never the case for listed symbols). */
export function barNotionalMicros(tickLots: bigint, units: { tickSize: string; lotSize: string }): bigint {
  const tick = parseStep(units.tickSize);
  const lot = parseStep(units.lotSize);
  if (!tick.ok || !lot.ok) return 0n;
  const value = tickLots * BigInt(tick.value.units) * BigInt(lot.value.units);
  const shift = MICRO_SCALE - tick.value.scale - lot.value.scale;
  return shift >= 0 ? value * 10n ** BigInt(shift) : value / 10n ** BigInt(-shift);
}

export function buildPlatformReport(
  range: ReportRange,
  rows: PlatformRows,
  unitsOf: SymbolUnitsOf,
  now: number,
): PlatformReport {
  const size = range.buckets.length;
  const indexOf = (t: number) => {
    const i = Math.floor((t - range.from) / range.intervalMs);
    return i >= 0 && i < size ? i : -1;
  };
  const zeros = () => new Array<number>(size).fill(0);
  const bigZeros = () => new Array<bigint>(size).fill(0n);

  const orders = zeros();
  const rejections = zeros();
  const accountFills = zeros();
  const fees = bigZeros();
  const reasons = new Map<string, number>();
  const ordersBySymbol = new Map<string, number>();
  for (const r of rows.counters) {
    const i = indexOf(n(r.t));
    if (i < 0) continue;
    if (r.metric === "orders") {
      orders[i] = (orders[i] ?? 0) + n(r.value);
      ordersBySymbol.set(r.dim, (ordersBySymbol.get(r.dim) ?? 0) + n(r.value));
    } else if (r.metric === "rejections") {
      rejections[i] = (rejections[i] ?? 0) + n(r.value);
      reasons.set(r.dim, (reasons.get(r.dim) ?? 0) + n(r.value));
    } else if (r.metric === "account_fills") {
      accountFills[i] = (accountFills[i] ?? 0) + n(r.value);
    } else if (r.metric === "fees") {
      fees[i] = (fees[i] ?? 0n) + big(r.value);
    }
  }

  const fills = zeros();
  const notional = bigZeros();
  const symbols = new Map<string, { fills: number[]; notional: bigint[]; lots: bigint }>();
  for (const r of rows.bars) {
    const i = indexOf(n(r.t));
    if (i < 0) continue;
    let s = symbols.get(r.symbol);
    if (!s) {
      s = { fills: zeros(), notional: bigZeros(), lots: 0n };
      symbols.set(r.symbol, s);
    }
    const usd = barNotionalMicros(big(r.notional), unitsOf(r.symbol));
    s.fills[i] = (s.fills[i] ?? 0) + n(r.fills);
    s.notional[i] = (s.notional[i] ?? 0n) + usd;
    s.lots += big(r.volume_lots);
    fills[i] = (fills[i] ?? 0) + n(r.fills);
    notional[i] = (notional[i] ?? 0n) + usd;
  }

  const activeUsers = zeros();
  const activeBots = zeros();
  for (const r of rows.active) {
    const i = indexOf(n(r.t));
    if (i < 0) continue;
    activeUsers[i] = n(r.users);
    activeBots[i] = n(r.bots);
  }

  const calls = zeros();
  const serverErrors = zeros();
  const clientErrors = zeros();
  const histograms: [number, number][][] = Array.from({ length: size }, () => []);
  for (const r of rows.latencySeries) {
    const i = indexOf(n(r.t));
    if (i < 0) continue;
    calls[i] = (calls[i] ?? 0) + n(r.calls);
    serverErrors[i] = (serverErrors[i] ?? 0) + n(r.server_errors);
    clientErrors[i] = (clientErrors[i] ?? 0) + n(r.client_errors);
    histograms[i]?.push([r.bucket, n(r.calls)]);
  }
  const pct = histograms.map((h) => percentiles(h));

  const routes = new Map<
    string,
    { method: string; route: string; calls: number; server: number; client: number; hist: [number, number][] }
  >();
  for (const r of rows.latencyRoutes) {
    const key = `${r.method} ${r.route}`;
    let route = routes.get(key);
    if (!route) {
      route = { method: r.method, route: r.route, calls: 0, server: 0, client: 0, hist: [] };
      routes.set(key, route);
    }
    route.calls += n(r.calls);
    route.server += n(r.server_errors);
    route.client += n(r.client_errors);
    route.hist.push([r.bucket, n(r.calls)]);
  }

  const refused = new Map<string, { code: string; status: number; count: number }>();
  const errors = new Map<
    string,
    { method: string; route: string; status: number; code: string; count: number }
  >();
  for (const r of rows.errors) {
    const key = `${r.method} ${r.route} ${r.status} ${r.code}`;
    const e = errors.get(key) ?? {
      method: r.method,
      route: r.route,
      status: r.status,
      code: r.code,
      count: 0,
    };
    e.count += n(r.calls);
    errors.set(key, e);
    if (ORDER_ROUTES.has(`${r.method} ${r.route}`) && r.status >= 400 && r.status < 500) {
      const k = `${r.status} ${r.code}`;
      const x = refused.get(k) ?? { code: r.code, status: r.status, count: 0 };
      x.count += n(r.calls);
      refused.set(k, x);
    }
  }

  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const bigSum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);
  const byCount = <T extends { count: number }>(a: T, b: T) => b.count - a.count;

  return {
    from: new Date(range.from).toISOString(),
    to: new Date(range.to).toISOString(),
    interval: range.interval,
    interval_seconds: range.intervalMs / 1000,
    generated_at: new Date(now).toISOString(),
    buckets: range.buckets.map((t) => new Date(t).toISOString()),
    series: {
      orders,
      rejections,
      fills,
      account_fills: accountFills,
      active_users: activeUsers,
      active_bots: activeBots,
      notional: notional.map(formatUsd),
      fees: fees.map(formatUsd),
      api_calls: calls,
      api_server_errors: serverErrors,
      api_client_errors: clientErrors,
      api_p50_ms: pct.map((p) => p.p50),
      api_p95_ms: pct.map((p) => p.p95),
      api_p99_ms: pct.map((p) => p.p99),
    },
    totals: {
      orders: sum(orders),
      rejections: sum(rejections),
      fills: sum(fills),
      account_fills: sum(accountFills),
      active_users: n(rows.activeTotal.users),
      active_bots: n(rows.activeTotal.bots),
      notional: formatUsd(bigSum(notional)),
      fees: formatUsd(bigSum(fees)),
      api_calls: sum(calls),
      api_server_errors: sum(serverErrors),
      api_client_errors: sum(clientErrors),
    },
    volume_by_symbol: [...symbols.entries()]
      .map(([symbol, s]) => ({
        symbol,
        fills: sum(s.fills),
        volume: formatLots(s.lots, unitsOf(symbol).lotSize),
        notional: formatUsd(bigSum(s.notional)),
        orders: ordersBySymbol.get(symbol) ?? 0,
        series: { fills: s.fills, notional: s.notional.map(formatUsd) },
        sortKey: bigSum(s.notional),
      }))
      .sort((a, b) =>
        b.sortKey > a.sortKey ? 1 : b.sortKey < a.sortKey ? -1 : a.symbol.localeCompare(b.symbol),
      )
      .map(({ sortKey: _sortKey, ...rest }) => rest),
    rejection_reasons: [...reasons.entries()].map(([reason, count]) => ({ reason, count })).sort(byCount),
    refused_orders: [...refused.values()].sort(byCount),
    api_errors: [...errors.values()].sort(byCount).slice(0, 20),
    routes: [...routes.values()]
      .map((r) => {
        const p = percentiles(r.hist as Histogram);
        return {
          method: r.method,
          route: r.route,
          calls: r.calls,
          server_errors: r.server,
          client_errors: r.client,
          p50_ms: p.p50,
          p95_ms: p.p95,
          p99_ms: p.p99,
        };
      })
      .sort((a, b) => b.calls - a.calls || a.route.localeCompare(b.route)),
  };
}
