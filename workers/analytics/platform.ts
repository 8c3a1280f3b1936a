/**
 * The queries behind `GET /admin/analytics` (docs/analytics.md): six aggregate statements on the global
 * primary, in parallel over Neon's HTTP endpoint, each grouped by report bucket in SQL so the row count
 * depends on the number of points, not on the traffic. The report itself is assembled by the pure
 * `buildPlatformReport`.
 */
import { type SQL, sql } from "drizzle-orm";
import {
  buildPlatformReport,
  type PlatformReport,
  type PlatformRows,
  type ReportRange,
} from "../../shared/analytics/platform.ts";
import { findSymbol } from "../../shared/symbols.ts";
import { db } from "../db/index.ts";
import type { Env } from "../env.ts";

const rowsOf = <R>(result: unknown): R[] =>
  Array.isArray(result) ? (result as R[]) : ((result as { rows?: R[] }).rows ?? []);

const DEFAULT_UNITS = { tickSize: "0.01", lotSize: "1" };

export async function platformReport(
  env: Env,
  range: ReportRange,
  now = Date.now(),
): Promise<PlatformReport> {
  const global = db(env).global;
  const run = async <R>(q: SQL) => rowsOf<R>(await global.execute(q));
  const iv = sql`${range.intervalMs}::bigint`;
  const fromTs = sql`to_timestamp(${range.from / 1000}::double precision)`;
  const toTs = sql`to_timestamp(${range.to / 1000}::double precision)`;
  const inRange = sql`minute >= ${fromTs} AND minute < ${toTs}`;
  const bucketOfMinute = sql`(floor(extract(epoch FROM minute) * 1000 / ${iv}) * ${iv})::bigint`;

  const [counters, bars, active, activeTotal, latencySeries, latencyRoutes, errors] = await Promise.all([
    run<PlatformRows["counters"][number]>(sql`
      SELECT ${bucketOfMinute} AS t, metric, dim, sum(value)::text AS value
      FROM analytics_minute
      WHERE metric IN ('orders', 'rejections', 'account_fills', 'fees') AND ${inRange}
      GROUP BY 1, 2, 3`),
    run<PlatformRows["bars"][number]>(sql`
      SELECT (bucket_start_ms / ${iv}) * ${iv} AS t, symbol, sum(trade_count)::text AS fills,
        sum(volume_lots)::text AS volume_lots, sum(notional)::text AS notional
      FROM market_bars
      WHERE timeframe = '1m' AND bucket_start_ms >= ${range.from}::bigint AND bucket_start_ms < ${range.to}::bigint
      GROUP BY 1, 2`),
    run<PlatformRows["active"][number]>(sql`
      SELECT t, count(DISTINCT user_id) FILTER (WHERE NOT bot) AS users,
        count(DISTINCT user_id) FILTER (WHERE bot) AS bots
      FROM (SELECT ${bucketOfMinute} AS t, user_id, bot FROM analytics_active_users WHERE ${inRange}) a
      GROUP BY t`),
    run<PlatformRows["activeTotal"]>(sql`
      SELECT count(DISTINCT user_id) FILTER (WHERE NOT bot) AS users,
        count(DISTINCT user_id) FILTER (WHERE bot) AS bots
      FROM analytics_active_users WHERE ${inRange}`),
    run<PlatformRows["latencySeries"][number]>(sql`
      SELECT ${bucketOfMinute} AS t, bucket, sum(calls)::text AS calls,
        coalesce(sum(calls) FILTER (WHERE status >= 500), 0)::text AS server_errors,
        coalesce(sum(calls) FILTER (WHERE status >= 400 AND status < 500), 0)::text AS client_errors
      FROM api_call_minute WHERE ${inRange}
      GROUP BY 1, 2`),
    run<PlatformRows["latencyRoutes"][number]>(sql`
      SELECT method, route, bucket, sum(calls)::text AS calls,
        coalesce(sum(calls) FILTER (WHERE status >= 500), 0)::text AS server_errors,
        coalesce(sum(calls) FILTER (WHERE status >= 400 AND status < 500), 0)::text AS client_errors
      FROM api_call_minute WHERE ${inRange}
      GROUP BY 1, 2, 3`),
    run<PlatformRows["errors"][number]>(sql`
      SELECT method, route, status, code, sum(calls)::text AS calls
      FROM api_error_minute WHERE ${inRange}
      GROUP BY 1, 2, 3, 4`),
  ]);

  return buildPlatformReport(
    range,
    {
      counters,
      bars,
      active,
      activeTotal: activeTotal[0] ?? { users: 0, bots: 0 },
      latencySeries,
      latencyRoutes,
      errors,
    },
    (symbol) => findSymbol(symbol) ?? DEFAULT_UNITS,
    now,
  );
}
