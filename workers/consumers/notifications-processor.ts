/**
 * The `notifications` processor of the trade-events consumer: derives notification jobs from
 * the batch and sends them to the `notifications` Queue, where workers/consumers/notifications.ts delivers
 * them. Three sources, run in parallel:
 *
 * - **Orders** — each `account.order` snapshot of a registered user that reached filled, partially filled,
 *   canceled or rejected becomes a job whose id names the order, state and filled quantity (jobs.ts), so a
 *   redelivered or duplicated event produces the same id.
 * - **Buying power** — for users in the batch who set a warning level, the current buying power is read from
 *   their UserSession (account events carry cash movements, not buying power, which also depends on what
 *   open orders reserve). Falling below the level is the n-th crossing: job id `bp:<user>:<n>`, saved
 *   after the job is sent, guarded by the crossing count, so a retry or a concurrent consumer cannot make a
 *   second one. It re-arms when buying power is back at or above the level.
 * - **Price alerts** — the book's fill prints of the batch, per symbol, against the alerts they can change
 *   (alerts.ts: one transaction on the global database).
 *
 * Market bots (the simulated market's accounts) are left out: nobody reads their notifications.
 * A failure in a source reports only that source's events as failed: the trade-events consumer retries
 * them, and everything here is idempotent per event id.
 */

import { sql } from "drizzle-orm";
import { isBotId } from "../../durable-objects/market-maker/bots.ts";
import { formatMicros, parseMicros } from "../../shared/decimal.ts";
import type { AccountEvent } from "../../shared/history/events.ts";
import type { TradePrint } from "../../shared/notifications/alerts.ts";
import {
  NOTIFICATION_JOB_VERSION,
  type NotificationJob,
  notificationIds,
} from "../../shared/notifications/types.ts";
import { db } from "../db/index.ts";
import { rowsOf } from "../db/recordset.ts";
import type { Env } from "../env.ts";
import { hasCandidateAlerts, runPriceAlerts, type SymbolTrades } from "../notifications/alerts.ts";
import { enqueueJobs, orderJob } from "../notifications/jobs.ts";
import { saveBuyingPowerStates } from "../notifications/store.ts";
import { errorText } from "./errors.ts";
import type { ProcessorResult, TradeEvent, TradeEventProcessor } from "./trade-events.ts";

export interface NotificationsProcessorDeps {
  /** Current buying power of a user (micro-USD), from their UserSession. */
  buyingPower(env: Env, userId: string): Promise<number | null>;
  /** Sends jobs to the notifications Queue. */
  enqueue(env: Env, jobs: NotificationJob[]): Promise<void>;
  now(): number;
}

const DEFAULT_DEPS: NotificationsProcessorDeps = {
  async buyingPower(env, userId) {
    const stub = env.USER_SESSION.get(env.USER_SESSION.idFromName(userId));
    const outcome = await stub.getAccount(userId);
    if (!outcome.ok) throw new Error(`account of ${userId}: ${outcome.code}`);
    const parsed = parseMicros((outcome.value as { buying_power: string }).buying_power, {
      allowNegative: true,
    });
    return parsed.ok ? parsed.value : null;
  },
  enqueue: (env, jobs) => enqueueJobs(env, jobs),
  now: () => Date.now(),
};

export interface NotificationsProcessorReport {
  orderJobs: number;
  buyingPowerJobs: number;
  alertJobs: number;
}

export function createNotificationsProcessor(
  overrides: Partial<NotificationsProcessorDeps> = {},
  observe?: (report: NotificationsProcessorReport) => void,
): TradeEventProcessor {
  const deps: NotificationsProcessorDeps = { ...DEFAULT_DEPS, ...overrides };
  return {
    name: "notifications",
    async process(env, events, ctx): Promise<ProcessorResult> {
      const failed = new Map<string, unknown>();
      if (!env.NOTIFICATIONS && deps.enqueue === DEFAULT_DEPS.enqueue) return { failed };
      const report: NotificationsProcessorReport = { orderJobs: 0, buyingPowerJobs: 0, alertJobs: 0 };
      const fail = (ids: Iterable<string>, error: unknown, source: string) => {
        for (const id of ids) failed.set(id, error);
        console.warn(
          JSON.stringify({ level: "warn", msg: `notifications: ${source} failed`, error: errorText(error) }),
        );
      };
      const accountEvents: AccountEvent[] = [];
      for (const e of events)
        if (e.kind === "account" && !isBotId(e.event.userId)) accountEvents.push(e.event);

      await Promise.all([
        orders(env, accountEvents, deps, report).catch((error) =>
          fail(
            accountEvents.filter((e) => e.type === "account.order").map((e) => e.id),
            error,
            "order jobs",
          ),
        ),
        buyingPower(env, accountEvents, deps, ctx, report, (ids, error) => fail(ids, error, "buying power")),
        priceAlerts(env, events, deps, ctx, report).catch((error) =>
          fail(
            events.flatMap((e) => (e.kind === "book" && e.message.type === "fill" ? [e.id] : [])),
            error,
            "price alerts",
          ),
        ),
      ]);
      observe?.(report);
      return { failed };
    },
  };
}

async function orders(
  env: Env,
  events: readonly AccountEvent[],
  deps: NotificationsProcessorDeps,
  report: NotificationsProcessorReport,
): Promise<void> {
  const jobs = new Map<string, NotificationJob>();
  for (const e of events) {
    const job = orderJob(e);
    if (job) jobs.set(job.id, job);
  }
  if (jobs.size === 0) return;
  await deps.enqueue(env, [...jobs.values()]);
  report.orderJobs += jobs.size;
}

async function buyingPower(
  env: Env,
  events: readonly AccountEvent[],
  deps: NotificationsProcessorDeps,
  ctx: { waitUntil(p: Promise<unknown>): void },
  report: NotificationsProcessorReport,
  fail: (ids: string[], error: unknown) => void,
): Promise<void> {
  const eventsOf = new Map<string, string[]>();
  for (const e of events) {
    if (e.type === "account.opened") continue;
    eventsOf.set(e.userId, [...(eventsOf.get(e.userId) ?? []), e.id]);
  }
  if (eventsOf.size === 0) return;
  let dbs: ReturnType<typeof db>;
  const byShard = new Map<number, string[]>();
  try {
    dbs = db(env, (p) => ctx.waitUntil(p));
    for (const userId of eventsOf.keys()) {
      const shard = dbs.shardOf(userId);
      byShard.set(shard, [...(byShard.get(shard) ?? []), userId]);
    }
  } catch (error) {
    fail([...eventsOf.values()].flat(), error);
    return;
  }
  await Promise.all(
    [...byShard].map(async ([shard, userIds]) => {
      try {
        const shardDb = dbs.shard(shard);
        const result = await shardDb.execute(sql`
          SELECT user_id, bp_threshold_micros, bp_below, bp_crossings FROM notification_preferences
          WHERE bp_threshold_micros IS NOT NULL
            AND user_id IN (SELECT value::uuid FROM jsonb_array_elements_text(${JSON.stringify(userIds)}::jsonb))`);
        const watched = rowsOf<{
          user_id: string;
          bp_threshold_micros: string | number;
          bp_below: boolean;
          bp_crossings: number;
        }>(result);
        if (watched.length === 0) return;
        const now = deps.now();
        const jobs: NotificationJob[] = [];
        const states: { user_id: string; below: boolean; crossings: number; expected: number }[] = [];
        await Promise.all(
          watched.map(async (w) => {
            const bp = await deps.buyingPower(env, w.user_id);
            if (bp === null) return;
            const threshold = Number(w.bp_threshold_micros);
            const crossings = Number(w.bp_crossings);
            if (bp < threshold && !w.bp_below) {
              jobs.push({
                v: NOTIFICATION_JOB_VERSION,
                id: notificationIds.buyingPower(w.user_id, crossings + 1),
                userId: w.user_id,
                type: "buying_power_low",
                vars: {
                  buying_power: formatMicros(bp, { trimZeros: true }),
                  threshold: formatMicros(threshold, { trimZeros: true }),
                  at: String(now),
                },
                at: now,
              });
              states.push({ user_id: w.user_id, below: true, crossings: crossings + 1, expected: crossings });
            } else if (bp >= threshold && w.bp_below) {
              states.push({ user_id: w.user_id, below: false, crossings, expected: crossings });
            }
          }),
        );
        await deps.enqueue(env, jobs);
        await saveBuyingPowerStates(shardDb, states);
        report.buyingPowerJobs += jobs.length;
      } catch (error) {
        fail(
          userIds.flatMap((u) => eventsOf.get(u) ?? []),
          error,
        );
      }
    }),
  );
}

async function priceAlerts(
  env: Env,
  events: readonly TradeEvent[],
  deps: NotificationsProcessorDeps,
  ctx: { waitUntil(p: Promise<unknown>): void },
  report: NotificationsProcessorReport,
): Promise<void> {
  const bySymbol = new Map<string, SymbolTrades>();
  for (const e of events) {
    if (e.kind !== "book" || e.message.type !== "fill") continue;
    const m = e.message;
    let s = bySymbol.get(m.symbol);
    if (!s) {
      s = { symbol: m.symbol, tickSize: m.tickSize, trades: [] };
      bySymbol.set(m.symbol, s);
    }
    const print: TradePrint = { eventId: m.id, seq: m.seq, priceTicks: m.event.price, ts: m.event.ts };
    s.trades.push(print);
  }
  if (bySymbol.size === 0) return;
  const dbs = db(env, (p) => ctx.waitUntil(p));
  const trades = [...bySymbol.values()];
  if (!(await hasCandidateAlerts(dbs.global, trades))) return;
  const result = await dbs.globalTransaction((tx) =>
    runPriceAlerts(tx, trades, (jobs) => deps.enqueue(env, jobs)),
  );
  report.alertJobs += result.fired;
}

export const notificationsProcessor = createNotificationsProcessor();
