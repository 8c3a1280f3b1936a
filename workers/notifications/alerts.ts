/**
 * Price alerts in Postgres: the global `price_alerts` table (migrations/global/0004) — the user's
 * API (create, list, read, delete) and their evaluation against each batch of trades.
 *
 * Evaluation runs in **one transaction** on the global primary per trade-events batch:
 * 1. lock the candidate alerts: active alerts of the batch's symbols whose state the batch's price range can
 *    change (the SQL form of `isCandidate`), `FOR UPDATE`, so two consumers never evaluate one alert at once;
 * 2. run the symbol's trades through each (`evaluateAlert`, pure);
 * 3. send the notification jobs (`sendBatch`) — **before** the commit, so a crash in between re-evaluates
 *    the same trades from the same state and produces the same notification ids, which the notifications
 *    consumer delivers once;
 * 4. save the new states and commit.
 */
import { sql } from "drizzle-orm";
import { ticksToPrice } from "../../shared/engine/rules.ts";
import { type AlertState, evaluateAlert, type TradePrint } from "../../shared/notifications/alerts.ts";
import {
  NOTIFICATION_JOB_VERSION,
  type NotificationJob,
  notificationIds,
} from "../../shared/notifications/types.ts";
import type { GlobalDb, GlobalSchema, TxDb } from "../db/index.ts";
import { rowsOf } from "../db/recordset.ts";

export interface AlertRow {
  id: string;
  user_id: string;
  symbol: string;
  direction: "above" | "below";
  target_ticks: string | number;
  target_price: string;
  frequency: "once" | "repeating";
  status: "active" | "triggered";
  armed: boolean;
  last_seq: string | number;
  trigger_count: number;
  last_triggered_at: string | Date | null;
  last_trigger_price_ticks: string | number | null;
  created_at: string | Date;
}

const iso = (v: string | Date | null) => (v === null ? null : new Date(v).toISOString());

/** An alert as the API shows it. */
export function alertView(row: AlertRow, tickSize: string) {
  return {
    id: row.id,
    symbol: row.symbol,
    direction: row.direction,
    price: row.target_price,
    frequency: row.frequency,
    status: row.status,
    armed: row.armed,
    trigger_count: Number(row.trigger_count),
    last_triggered_at: iso(row.last_triggered_at),
    last_trigger_price:
      row.last_trigger_price_ticks === null
        ? null
        : ticksToPrice({ tickSize }, Number(row.last_trigger_price_ticks)),
    created_at: iso(row.created_at) as string,
  };
}

const COLUMNS = sql.raw(
  "id, user_id, symbol, direction, target_ticks, target_price, frequency, status, armed, last_seq, " +
    "trigger_count, last_triggered_at, last_trigger_price_ticks, created_at",
);

export async function createAlert(
  db: GlobalDb,
  a: {
    userId: string;
    symbol: string;
    direction: string;
    targetTicks: number;
    targetPrice: string;
    frequency: string;
  },
): Promise<AlertRow> {
  const result = await db.execute(sql`
    INSERT INTO price_alerts (id, user_id, symbol, direction, target_ticks, target_price, frequency)
    VALUES (${crypto.randomUUID()}, ${a.userId}, ${a.symbol}, ${a.direction}, ${a.targetTicks}, ${a.targetPrice},
      ${a.frequency})
    RETURNING ${COLUMNS}`);
  return rowsOf<AlertRow>(result)[0] as AlertRow;
}

export async function countActiveAlerts(db: GlobalDb, userId: string): Promise<number> {
  const result = await db.execute(
    sql`SELECT count(*) AS n FROM price_alerts WHERE user_id = ${userId} AND status = 'active'`,
  );
  return Number(rowsOf<{ n: string }>(result)[0]?.n ?? 0);
}

export async function listAlerts(
  db: GlobalDb,
  userId: string,
  status: "active" | "triggered" | "all",
): Promise<AlertRow[]> {
  const result = await db.execute(sql`
    SELECT ${COLUMNS} FROM price_alerts
    WHERE user_id = ${userId} AND (${status} = 'all' OR status = ${status})
    ORDER BY created_at DESC, id DESC LIMIT 500`);
  return rowsOf<AlertRow>(result);
}

export async function getAlert(db: GlobalDb, userId: string, id: string): Promise<AlertRow | undefined> {
  const result = await db.execute(
    sql`SELECT ${COLUMNS} FROM price_alerts WHERE id = ${id} AND user_id = ${userId}`,
  );
  return rowsOf<AlertRow>(result)[0];
}

export async function deleteAlert(db: GlobalDb, userId: string, id: string): Promise<boolean> {
  const result = await db.execute(
    sql`DELETE FROM price_alerts WHERE id = ${id} AND user_id = ${userId} RETURNING id`,
  );
  return rowsOf(result).length > 0;
}

/** One symbol's trades of a batch, with what the jobs need to render prices. */
export interface SymbolTrades {
  symbol: string;
  tickSize: string;
  trades: TradePrint[];
}

export interface AlertRunReport {
  candidates: number;
  fired: number;
  saved: number;
}

/**
 * Evaluates the batch's trades against the alerts they can change and sends the resulting jobs through
 * `send` inside the transaction (see the module comment). Idempotent per trade: alerts skip trades at or
 * before their `last_seq`.
 */
/** Each symbol's lowest and highest trade price in the batch. */
function rangesOf(bySymbol: readonly SymbolTrades[]) {
  return bySymbol
    .filter((s) => s.trades.length > 0)
    .map((s) => ({
      symbol: s.symbol,
      min_ticks: Math.min(...s.trades.map((t) => t.priceTicks)),
      max_ticks: Math.max(...s.trades.map((t) => t.priceTicks)),
    }));
}

/** The SQL form of isCandidate(): active alerts the range reaches (armed) or re-arms (disarmed). */
const candidatesFrom = (ranges: ReturnType<typeof rangesOf>) => sql`
    FROM jsonb_to_recordset(${JSON.stringify(ranges)}::jsonb) AS r(symbol text, min_ticks bigint, max_ticks bigint)
    JOIN price_alerts a ON a.symbol = r.symbol AND a.status = 'active' AND (
      (a.armed AND a.direction = 'above' AND a.target_ticks <= r.max_ticks) OR
      (a.armed AND a.direction = 'below' AND a.target_ticks >= r.min_ticks) OR
      (NOT a.armed AND a.direction = 'above' AND a.target_ticks > r.min_ticks) OR
      (NOT a.armed AND a.direction = 'below' AND a.target_ticks < r.max_ticks))`;

/**
 * Whether any alert can change, as one statement over HTTP: most batches touch no alert, and this keeps
 * them from opening a transaction (a WebSocket session) at all.
 */
export async function hasCandidateAlerts(db: GlobalDb, bySymbol: readonly SymbolTrades[]): Promise<boolean> {
  const ranges = rangesOf(bySymbol);
  if (ranges.length === 0) return false;
  const result = await db.execute(sql`SELECT EXISTS (SELECT 1 ${candidatesFrom(ranges)}) AS any`);
  return rowsOf<{ any: boolean }>(result)[0]?.any === true;
}

export async function runPriceAlerts(
  tx: TxDb<GlobalSchema>,
  bySymbol: readonly SymbolTrades[],
  send: (jobs: NotificationJob[]) => Promise<void>,
): Promise<AlertRunReport> {
  const ranges = rangesOf(bySymbol);
  if (ranges.length === 0) return { candidates: 0, fired: 0, saved: 0 };
  const result = await tx.execute(sql`
    SELECT a.id, a.user_id, a.symbol, a.direction, a.target_ticks, a.target_price, a.frequency, a.status, a.armed,
      a.last_seq, a.trigger_count, a.last_triggered_at, a.last_trigger_price_ticks, a.created_at
    ${candidatesFrom(ranges)}
    ORDER BY a.id
    FOR UPDATE OF a`);
  const rows = rowsOf<AlertRow>(result);
  const jobs: NotificationJob[] = [];
  const saves: Record<string, unknown>[] = [];
  for (const row of rows) {
    const trades = bySymbol.find((s) => s.symbol === row.symbol);
    if (!trades) continue;
    const state: AlertState = {
      id: row.id,
      direction: row.direction,
      targetTicks: Number(row.target_ticks),
      frequency: row.frequency,
      status: row.status,
      armed: row.armed,
      lastSeq: Number(row.last_seq),
      triggerCount: Number(row.trigger_count),
      lastTriggeredAt: row.last_triggered_at === null ? null : new Date(row.last_triggered_at).getTime(),
      lastTriggerPriceTicks:
        row.last_trigger_price_ticks === null ? null : Number(row.last_trigger_price_ticks),
    };
    const evaluation = evaluateAlert(state, trades.trades);
    for (const trade of evaluation.firings) {
      jobs.push({
        v: NOTIFICATION_JOB_VERSION,
        id: notificationIds.alert(row.id, trade.eventId),
        userId: row.user_id,
        type: "price_alert",
        vars: {
          symbol: row.symbol,
          direction: row.direction,
          target: row.target_price,
          price: ticksToPrice({ tickSize: trades.tickSize }, trade.priceTicks),
          at: String(trade.ts),
          alert_id: row.id,
          frequency: row.frequency,
        },
        at: trade.ts,
      });
    }
    if (evaluation.changed) {
      const s = evaluation.state;
      saves.push({
        id: s.id,
        status: s.status,
        armed: s.armed,
        last_seq: s.lastSeq,
        trigger_count: s.triggerCount,
        last_triggered_at: s.lastTriggeredAt === null ? null : new Date(s.lastTriggeredAt).toISOString(),
        last_trigger_price_ticks: s.lastTriggerPriceTicks,
      });
    }
  }
  await send(jobs);
  if (saves.length > 0) {
    await tx.execute(sql`
      UPDATE price_alerts a SET status = t.status, armed = t.armed, last_seq = t.last_seq,
        trigger_count = t.trigger_count, last_triggered_at = t.last_triggered_at,
        last_trigger_price_ticks = t.last_trigger_price_ticks, updated_at = now()
      FROM jsonb_to_recordset(${JSON.stringify(saves)}::jsonb) AS t(id uuid, status text, armed boolean,
        last_seq bigint, trigger_count integer, last_triggered_at timestamptz, last_trigger_price_ticks bigint)
      WHERE a.id = t.id`);
  }
  return { candidates: rows.length, fired: jobs.length, saved: saves.length };
}
