/**
 * Analytics endpoints (docs/analytics.md):
 * - `GET /v1/analytics/me`: the caller's trading figures, from their shard (read replica, read-your-writes
 *   by the same watermark as the history reads);
 * - `GET /admin/analytics`: platform figures over a time window (admin);
 * - `GET /admin/dashboard`: the reporting page that draws them (`adminDashboard`, mounted before the
 *   `/admin/*` admin check: the page holds no data and signs in itself, see workers/analytics/dashboard.ts).
 *
 * Query problems on these routes are `400 invalid_query` (a malformed query string, not an entity the
 * server could not process).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { INTERVALS, reportRange } from "../../shared/analytics/platform.ts";
import { renderUserAnalytics } from "../../shared/analytics/render.ts";
import { computeUserAnalytics } from "../../shared/analytics/user.ts";
import { flushApiCallsToPostgres, flushBufferToRedis } from "../analytics/api-calls.ts";
import { dashboardCsp, dashboardHtml } from "../analytics/dashboard.ts";
import { platformReport } from "../analytics/platform.ts";
import { loadUserAnalytics, type UserAnalyticsData } from "../analytics/user.ts";
import { requireAdmin, requireTrader } from "../auth/middleware.ts";
import { AUTH_SECURITY, ErrorSchema, errorResponses } from "../auth/openapi.ts";
import { db } from "../db/index.ts";
import type { Env, Logger } from "../env.ts";
import { ApiError } from "../errors.ts";
import { HISTORY_SOURCE_HEADER } from "../history/reads.ts";
import { createRouter } from "../openapi.ts";

const TAG = "Analytics";

/** A failed query-string schema is a 400 here (the project default, 422, is for bodies). */
function badQuery(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): never {
  const issues = error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
  const first = issues[0];
  throw new ApiError(
    400,
    "invalid_query",
    first ? `${first.path || "query"}: ${first.message}` : "bad query",
    {
      details: issues,
    },
  );
}

const Money = z.string().openapi({ description: "USD, exact decimal string", example: "1234.56" });
const Ratio = z.string().nullable();

const TradeFigures = {
  trades: z.number().int().openapi({ description: "Fills of the user (one execution per side)" }),
  buys: z.number().int(),
  sells: z.number().int(),
  turnover: Money.openapi({ description: "Traded notional, buys and sells" }),
  realized_pnl: Money.openapi({ description: "Σ realized PnL of the fills (average cost, before fees)" }),
  fees: Money,
  net_pnl: Money.openapi({ description: "realized_pnl − fees" }),
  closing_trades: z.number().int().openapi({ description: "Orders with a fill that reduced a position" }),
  winning_trades: z.number().int().openapi({ description: "Closing trades with realized PnL > 0" }),
  win_rate: Ratio.openapi({ description: "winning ÷ closing trades, 4 decimals; null without closes" }),
  avg_holding_seconds: Ratio.openapi({
    description: "Average time a lot was held (FIFO, lot-weighted), seconds with 3 decimals",
  }),
};

const UserAnalyticsSchema = z
  .object({
    user_id: z.string(),
    as_of: z.object({
      applied_through: z.number().int().openapi({ description: "Account events included (the watermark)" }),
      latest_seq: z.number().int().openapi({ description: "The account's latest event" }),
      complete: z.boolean().openapi({ description: "Every account event is included" }),
    }),
    currency: z.literal("USD"),
    summary: z.object({
      ...TradeFigures,
      max_drawdown: Money.openapi({ description: "Largest fall of the PnL curve from a peak (daily)" }),
      max_drawdown_ratio: Ratio.openapi({ description: "Largest fall of the daily return index, fraction" }),
      sharpe: Ratio.openapi({ description: "mean ÷ stdev of daily returns × √252, 4 decimals" }),
      return_days: z.number().int(),
      equity_since: z.string().nullable().openapi({ description: "First day of the equity curve (UTC)" }),
    }),
    most_traded: z.array(z.string()).openapi({ description: "Up to five symbols, most trades first" }),
    by_symbol: z.array(
      z.object({
        symbol: z.string(),
        volume: z.string().openapi({ description: "Shares traded" }),
        ...TradeFigures,
      }),
    ),
    by_day: z.array(
      z.object({
        day: z.string(),
        trades: z.number().int(),
        turnover: Money,
        realized_pnl: Money,
        fees: Money,
        net_pnl: Money,
        equity: Money.nullable(),
        return: Ratio.openapi({ description: "The day's return, 6 decimals" }),
      }),
    ),
  })
  .openapi("UserAnalytics");

export const analyticsRouter = createRouter();

const userRoute = createRoute({
  method: "get",
  path: "/v1/analytics/me",
  tags: [TAG],
  summary: "The caller's trading analytics",
  description:
    "Realized PnL by symbol and by day, win rate, average holding time, turnover, max drawdown, a " +
    "Sharpe-like ratio of daily returns and the most traded symbols, from the caller's history in Postgres. " +
    "`as_of.complete` is false while the latest trades are still on their way to Postgres (a second or two). " +
    "Definitions: docs/analytics.md.",
  security: AUTH_SECURITY,
  middleware: [requireTrader] as const,
  responses: {
    200: { description: "The figures", content: { "application/json": { schema: UserAnalyticsSchema } } },
    ...errorResponses(401, 429, 503),
  },
});

analyticsRouter.openapi(userRoute, async (c) => {
  const userId = c.var.principal.userId;
  const stub = c.env.USER_SESSION.get(c.env.USER_SESSION.idFromName(userId));
  const shard = db(c.env, (p) => c.executionCtx.waitUntil(p)).forUser(userId);
  const log = c.get("log");
  const attempt = (database: typeof shard.$primary, where: string) =>
    loadUserAnalytics(database, userId).catch((error: unknown) => {
      log.warn("analytics read failed", {
        where,
        error: error instanceof Error ? error.message : String(error),
      });
      return null;
    });
  const [cursor, replica] = await Promise.all([
    stub.historyCursor(userId),
    attempt(shard.$replicas[0] ?? shard.$primary, "replica"),
  ]);
  let data: UserAnalyticsData | null = replica;
  // The replica may lag the primary by a moment: when it misses events, ask the primary once.
  if (data === null || (data.through ?? 0) < cursor.seq) {
    const primary = await attempt(shard.$primary, "primary");
    if (primary !== null && (data === null || (primary.through ?? 0) > (data.through ?? 0))) data = primary;
  }
  if (data === null)
    throw new ApiError(503, "analytics_unavailable", "analytics are temporarily unavailable");
  const through = data.through ?? 0;
  c.header(HISTORY_SOURCE_HEADER, "postgres");
  return c.json(
    {
      user_id: userId,
      as_of: { applied_through: through, latest_seq: cursor.seq, complete: through >= cursor.seq },
      ...renderUserAnalytics(computeUserAnalytics(data.events, data.days)),
    },
    200,
  );
});

// --- platform ----------------------------------------------------------------------------------------------

const Counts = z.array(z.number());
const Moneys = z.array(z.string());
const Millis = z.array(z.number().nullable());

const PlatformSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    interval: z.enum(Object.keys(INTERVALS) as [keyof typeof INTERVALS, ...(keyof typeof INTERVALS)[]]),
    interval_seconds: z.number(),
    generated_at: z.string(),
    buckets: z
      .array(z.string())
      .openapi({ description: "Start of each interval (UTC); series align with it" }),
    series: z.object({
      orders: Counts,
      rejections: Counts,
      fills: Counts.openapi({ description: "Matches (one per trade, not per side)" }),
      account_fills: Counts.openapi({
        description: "Fills as accounts see them (two per trade between users)",
      }),
      active_users: Counts,
      active_bots: Counts,
      notional: Moneys,
      fees: Moneys,
      api_calls: Counts,
      api_server_errors: Counts,
      api_client_errors: Counts,
      api_p50_ms: Millis,
      api_p95_ms: Millis,
      api_p99_ms: Millis,
    }),
    totals: z.object({
      orders: z.number(),
      rejections: z.number(),
      fills: z.number(),
      account_fills: z.number(),
      active_users: z.number().openapi({ description: "Distinct users over the whole window" }),
      active_bots: z.number(),
      notional: z.string(),
      fees: z.string(),
      api_calls: z.number(),
      api_server_errors: z.number(),
      api_client_errors: z.number(),
    }),
    volume_by_symbol: z.array(
      z.object({
        symbol: z.string(),
        fills: z.number(),
        volume: z.string(),
        notional: z.string(),
        orders: z.number(),
        series: z.object({ fills: Counts, notional: Moneys }),
      }),
    ),
    rejection_reasons: z.array(z.object({ reason: z.string(), count: z.number() })),
    refused_orders: z.array(z.object({ code: z.string(), status: z.number(), count: z.number() })),
    api_errors: z.array(
      z.object({
        method: z.string(),
        route: z.string(),
        status: z.number(),
        code: z.string(),
        count: z.number(),
      }),
    ),
    routes: z.array(
      z.object({
        method: z.string(),
        route: z.string(),
        calls: z.number(),
        server_errors: z.number(),
        client_errors: z.number(),
        p50_ms: z.number().nullable(),
        p95_ms: z.number().nullable(),
        p99_ms: z.number().nullable(),
      }),
    ),
  })
  .openapi("PlatformAnalytics");

const Instant = (what: string) =>
  z
    .string()
    .max(40)
    .optional()
    .openapi({
      description: `${what}: ISO 8601 date (UTC midnight) or date-time with a time zone`,
      example: "2026-11-20T14:00:00Z",
    });

const platformRoute = createRoute({
  method: "get",
  path: "/admin/analytics",
  tags: [TAG, "Admin"],
  summary: "Platform analytics over a time window (admin)",
  description:
    "Time series per interval (aligned to UTC): orders, fills, rejections, active users, traded notional, " +
    "API calls and latency percentiles; window totals; volume by symbol; rejection reasons; refused " +
    "order requests; latency percentiles per route. Default window: the last hour by minute. At most " +
    "1,440 points and 90 days. Latency percentiles are upper bounds of log-scale buckets (≤ 19 % high).",
  security: AUTH_SECURITY,
  middleware: [requireAdmin] as const,
  request: {
    query: z.object({
      from: Instant("Start of the window"),
      to: Instant("End of the window (default now)"),
      interval: z
        .enum(Object.keys(INTERVALS) as [string, ...string[]])
        .optional()
        .openapi({ example: "5m" }),
    }),
  },
  responses: {
    200: { description: "The report", content: { "application/json": { schema: PlatformSchema } } },
    400: {
      description: "Bad `from`, `to` or `interval` (`invalid_query`)",
      content: { "application/json": { schema: ErrorSchema } },
    },
    ...errorResponses(401, 403, 503),
  },
});

analyticsRouter.openapi(
  platformRoute,
  async (c) => {
    const q = c.req.valid("query");
    const now = Date.now();
    const range = reportRange(q, now);
    if (!range.ok) throw new ApiError(400, "invalid_query", range.message);
    await freshApiCounters(c.env, c.get("log"));
    let report: Awaited<ReturnType<typeof platformReport>>;
    try {
      report = await platformReport(c.env, range.range, now);
    } catch (error) {
      c.get("log").error("platform analytics failed", {
        error: error instanceof Error ? error.message : String(error),
      });
      throw new ApiError(503, "analytics_unavailable", "analytics are temporarily unavailable");
    }
    c.header("Cache-Control", "no-store");
    return c.json(report, 200);
  },
  (result) => {
    if (!result.success) badQuery(result.error);
  },
);

/** Brings the API-call counters up to date before a report: this isolate's buffer, then Redis → Postgres. */
async function freshApiCounters(env: Env, log: Logger): Promise<void> {
  try {
    await flushBufferToRedis(env);
    await flushApiCallsToPostgres(env);
  } catch (error) {
    // The report still answers, with the counters as of the last successful flush.
    log.warn("api-call counters not flushed", {
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

// --- the dashboard page --------------------------------------------------------------------------------------

export const adminDashboard = createRouter();

adminDashboard.openapi(
  createRoute({
    method: "get",
    path: "/admin/dashboard",
    tags: [TAG, "Admin"],
    summary: "Platform analytics dashboard (HTML)",
    description:
      "A self-contained page that signs in with an admin's email and password (`POST /v1/auth/login`, tokens " +
      "kept in sessionStorage) and charts `GET /admin/analytics`, refreshed every few seconds. The page holds no " +
      "data, so it is served without credentials; the figures require an admin.",
    security: [],
    responses: { 200: { description: "The page", content: { "text/html": { schema: z.string() } } } },
  }),
  (c) => {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const nonce = btoa(String.fromCharCode(...bytes));
    c.header("Content-Security-Policy", dashboardCsp(nonce));
    c.header("Cache-Control", "no-store");
    c.header("Referrer-Policy", "no-referrer");
    return c.html(dashboardHtml(nonce), 200);
  },
);
