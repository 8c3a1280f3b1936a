/**
 * The `analytics` processor of the trade-events consumer (docs/analytics.md): per-minute platform counters
 * in the global database, and an Analytics Engine data point per order and fill.
 *
 * From the batch's account events (shared/analytics/facts.ts): orders (by symbol, at their creation minute),
 * rejections (by reason), account fills and fees (by symbol), and the (minute, user) pairs of active users.
 * Fills and volume per symbol are not counted again here: the bars processor's 1-minute `market_bars` hold
 * them, once per match.
 *
 * **One statement per batch** on the global primary (like the bars processor), so it is atomic without a
 * session: a data-modifying CTE inserts the fact keys with `ON CONFLICT DO NOTHING RETURNING`, and only the
 * returned (new) facts are summed into `analytics_minute`; active users are a keyed set. Redelivery,
 * reordering, different batch splits and concurrent consumers therefore count every fact exactly once.
 *
 * Data points are written after the statement commits, for new facts only: at most once per order / fill
 * (a crash between the commit and the write loses the point; Analytics Engine is sampled anyway).
 */
import { sql } from "drizzle-orm";
import { isBotId } from "../../durable-objects/market-maker/bots.ts";
import { fillPoint, orderPoint } from "../../shared/analytics/datapoints.ts";
import { analyticsFacts, type Fact } from "../../shared/analytics/facts.ts";
import type { AccountEvent } from "../../shared/history/events.ts";
import { findSymbol } from "../../shared/symbols.ts";
import { writeDataPoint } from "../analytics/engine.ts";
import { db } from "../db/index.ts";
import type { Env } from "../env.ts";
import { errorText } from "./errors.ts";
import type { ProcessorResult, TradeEventProcessor } from "./trade-events.ts";

export interface AnalyticsWriteReport {
  facts: number;
  /** Keys of the facts this call counted (the others were counted before). */
  fresh: Set<string>;
  counters: number;
  activeUsers: number;
}

/** Counts the new facts and active users in one statement; returns the keys that were new. */
export async function writeAnalytics(
  env: Env,
  facts: readonly Fact[],
  activeUsers: readonly { minute: number; userId: string; bot: boolean }[],
): Promise<AnalyticsWriteReport> {
  const factRows = facts.flatMap((f) =>
    f.counts.map((c) => ({ key: f.key, minute_ms: f.minute, metric: c.metric, dim: c.dim, value: c.value })),
  );
  const userRows = activeUsers.map((u) => ({ minute_ms: u.minute, user_id: u.userId, bot: u.bot }));
  const result = await db(env).global.execute<{
    fresh: string[] | null;
    counters: string;
    users: string;
  }>(sql`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(factRows)}::jsonb)
        AS t(key text, minute_ms bigint, metric text, dim text, value bigint)
    ), fresh AS (
      INSERT INTO analytics_facts (key, minute)
      SELECT DISTINCT key, to_timestamp(minute_ms / 1000) FROM input
      ON CONFLICT (key) DO NOTHING
      RETURNING key
    ), sums AS (
      SELECT i.metric, to_timestamp(i.minute_ms / 1000) AS minute, i.dim, sum(i.value)::bigint AS value
      FROM input i JOIN fresh f ON f.key = i.key
      GROUP BY i.metric, i.minute_ms, i.dim
    ), counted AS (
      INSERT INTO analytics_minute AS m (metric, minute, dim, value)
      SELECT metric, minute, dim, value FROM sums
      ON CONFLICT (metric, minute, dim) DO UPDATE SET value = m.value + excluded.value
      RETURNING 1
    ), users AS (
      INSERT INTO analytics_active_users (minute, user_id, bot)
      SELECT to_timestamp(minute_ms / 1000), user_id, bot
      FROM jsonb_to_recordset(${JSON.stringify(userRows)}::jsonb) AS t(minute_ms bigint, user_id uuid, bot boolean)
      ON CONFLICT (minute, user_id) DO NOTHING
      RETURNING 1
    )
    SELECT (SELECT array_agg(key) FROM fresh) AS fresh, (SELECT count(*) FROM counted) AS counters,
      (SELECT count(*) FROM users) AS users`);
  const row = (result as unknown as { rows?: { fresh: string[] | null; counters: string; users: string }[] })
    .rows?.[0];
  return {
    facts: facts.length,
    fresh: new Set(row?.fresh ?? []),
    counters: Number(row?.counters ?? 0),
    activeUsers: Number(row?.users ?? 0),
  };
}

const DEFAULT_SIZES = { tickSize: "0.01", lotSize: "1" };

/** The data point of a newly counted fact. */
function pointOf(fact: Fact) {
  const e: AccountEvent = fact.event;
  const bot = isBotId(e.userId);
  if (e.type === "account.fill") return fillPoint(e, bot);
  if (e.type === "account.order") {
    const sizes = findSymbol(e.order.symbol) ?? DEFAULT_SIZES;
    return orderPoint(e, fact.key.startsWith("r:") ? "rejected" : "created", bot, sizes);
  }
  return null;
}

export const analyticsProcessor: TradeEventProcessor = {
  name: "analytics",
  async process(env, events): Promise<ProcessorResult> {
    const accountEvents: AccountEvent[] = [];
    for (const e of events) if (e.kind === "account") accountEvents.push(e.event);
    const { facts, activeUsers } = analyticsFacts(accountEvents, isBotId);
    if (facts.length === 0 && activeUsers.length === 0) return { failed: new Map() };
    let report: AnalyticsWriteReport;
    try {
      report = await writeAnalytics(env, facts, activeUsers);
    } catch (error) {
      console.error(
        JSON.stringify({ level: "error", msg: "analytics batch failed", error: errorText(error) }),
      );
      // All or nothing: retry every event that carried a fact or an active user; counted facts stay counted.
      const failed = new Map<string, unknown>();
      for (const e of accountEvents)
        if (e.type === "account.order" || e.type === "account.fill") failed.set(e.id, error);
      return { failed };
    }
    for (const fact of facts) {
      if (!report.fresh.has(fact.key)) continue;
      const point = pointOf(fact);
      if (point) writeDataPoint(env, point);
    }
    return { failed: new Map() };
  },
};
