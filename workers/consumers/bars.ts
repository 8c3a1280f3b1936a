/**
 * The bars processor of the trade-events consumer: every fill of a listed symbol into
 * `market_trades` (once, by event id) and into the OHLCV bars of every timeframe (`market_bars`).
 *
 * One SQL statement per batch, so it is atomic without a session: a data-modifying CTE inserts the trades
 * with `ON CONFLICT DO NOTHING RETURNING`, and only the trades it returns (the new ones) are aggregated and
 * merged into the bars. A batch delivered twice, split differently, or processed concurrently with
 * another therefore adds each trade to its bars exactly once:
 * - duplicates never reach the aggregation (the conflicting insert waits for the first and returns nothing);
 * - the merge is associative and commutative (sums, min / max, and open / close chosen by seq), and runs
 *   against the row as locked by the upsert, so concurrent batches serialise per bar.
 *
 * The pure counterpart of the merge is `mergeBars` in shared/market/bars.ts; the unit tests check it
 * against a brute-force computation, and the integration test checks these rows against the same.
 */
import { sql } from "drizzle-orm";
import type { TradeEventMessage } from "../../shared/book-events.ts";
import { TIMEFRAME_MS, TIMEFRAMES } from "../../shared/market/bars.ts";
import { findSymbol } from "../../shared/symbols.ts";
import { db } from "../db/index.ts";
import type { Env } from "../env.ts";
import { invalidateMarketData } from "../lib/market/cache.ts";
import type { ProcessorResult, TradeEventProcessor } from "./trade-events.ts";

export interface BarsReport {
  /** Fills in the batch (listed symbols, distinct ids). */
  fills: number;
  /** Of those, trades not seen before (added to the bars). */
  inserted: number;
  /** Bar rows written. */
  bars: number;
}

interface TradeRow {
  event_id: string;
  symbol: string;
  seq: number;
  fill_id: number;
  ts_ms: number;
  price_ticks: number;
  qty_lots: number;
  taker_side: string;
}

/** The fills of a batch as `market_trades` rows, one per event id, listed symbols only. */
export function tradeRows(messages: readonly TradeEventMessage[]): TradeRow[] {
  const rows = new Map<string, TradeRow>();
  for (const m of messages) {
    if (m.type !== "fill" || rows.has(m.id) || findSymbol(m.symbol) === undefined) continue;
    const e = m.event;
    rows.set(m.id, {
      event_id: m.id,
      symbol: m.symbol,
      seq: m.seq,
      fill_id: e.fillId,
      ts_ms: e.ts,
      price_ticks: e.price,
      qty_lots: e.qty,
      taker_side: e.takerSide,
    });
  }
  return [...rows.values()];
}

const FRAMES = sql.raw(TIMEFRAMES.map((tf) => `('${tf}', ${TIMEFRAME_MS[tf]}::bigint)`).join(", "));

/** Insert the new trades of `rows` and merge them into every timeframe's bars, in one statement. */
export async function writeTradesAndBars(env: Env, rows: readonly TradeRow[]): Promise<BarsReport> {
  if (rows.length === 0) return { fills: 0, inserted: 0, bars: 0 };
  const result = await db(env).global.execute<{ inserted: string | number; bars: string | number }>(sql`
    WITH input AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS t(
        event_id text, symbol text, seq bigint, fill_id bigint, ts_ms bigint,
        price_ticks bigint, qty_lots bigint, taker_side text)
    ), fresh AS (
      INSERT INTO market_trades (event_id, symbol, seq, fill_id, ts_ms, price_ticks, qty_lots, taker_side)
      SELECT event_id, symbol, seq, fill_id, ts_ms, price_ticks, qty_lots, taker_side FROM input
      ON CONFLICT (event_id) DO NOTHING
      RETURNING symbol, seq, ts_ms, price_ticks, qty_lots
    ), frames (timeframe, ms) AS (
      VALUES ${FRAMES}
    ), agg AS (
      SELECT f.symbol, fr.timeframe, f.ts_ms - (f.ts_ms % fr.ms) AS bucket_start_ms,
        (array_agg(f.price_ticks ORDER BY f.seq ASC))[1] AS open_ticks,
        max(f.price_ticks) AS high_ticks,
        min(f.price_ticks) AS low_ticks,
        (array_agg(f.price_ticks ORDER BY f.seq DESC))[1] AS close_ticks,
        min(f.seq) AS open_seq,
        max(f.seq) AS close_seq,
        sum(f.qty_lots::numeric) AS volume_lots,
        count(*) AS trade_count,
        sum(f.price_ticks::numeric * f.qty_lots::numeric) AS notional
      FROM fresh f CROSS JOIN frames fr
      GROUP BY f.symbol, fr.timeframe, f.ts_ms - (f.ts_ms % fr.ms)
    ), upserted AS (
      INSERT INTO market_bars AS b (symbol, timeframe, bucket_start_ms, open_ticks, high_ticks, low_ticks,
        close_ticks, open_seq, close_seq, volume_lots, trade_count, notional)
      SELECT symbol, timeframe, bucket_start_ms, open_ticks, high_ticks, low_ticks, close_ticks, open_seq,
        close_seq, volume_lots, trade_count, notional FROM agg
      ON CONFLICT (symbol, timeframe, bucket_start_ms) DO UPDATE SET
        open_ticks = CASE WHEN excluded.open_seq < b.open_seq THEN excluded.open_ticks ELSE b.open_ticks END,
        open_seq = LEAST(b.open_seq, excluded.open_seq),
        close_ticks = CASE WHEN excluded.close_seq > b.close_seq THEN excluded.close_ticks ELSE b.close_ticks END,
        close_seq = GREATEST(b.close_seq, excluded.close_seq),
        high_ticks = GREATEST(b.high_ticks, excluded.high_ticks),
        low_ticks = LEAST(b.low_ticks, excluded.low_ticks),
        volume_lots = b.volume_lots + excluded.volume_lots,
        trade_count = b.trade_count + excluded.trade_count,
        notional = b.notional + excluded.notional,
        updated_at = now()
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM fresh) AS inserted, (SELECT count(*) FROM upserted) AS bars
  `);
  const row = (result as unknown as { rows?: { inserted: string | number; bars: string | number }[] })
    .rows?.[0];
  return { fills: rows.length, inserted: Number(row?.inserted ?? 0), bars: Number(row?.bars ?? 0) };
}

/**
 * The processor the trade-events consumer runs for each batch (see workers/consumers/trade-events.ts):
 * idempotent per event id. The statement is all or nothing, so on failure every fill of the batch is
 * reported failed (retried); trades it had written would be duplicates on the retry and count once.
 * After a write with new trades, the cached snapshots of those symbols are invalidated.
 */
export const barsProcessor: TradeEventProcessor = {
  name: "bars",
  async process(env, events, ctx): Promise<ProcessorResult> {
    const messages = events.flatMap((e) => (e.kind === "book" ? [e.message] : []));
    const rows = tradeRows(messages);
    if (rows.length === 0) return { failed: new Map() };
    try {
      const report = await writeTradesAndBars(env, rows);
      if (report.inserted > 0) {
        const symbols = [...new Set(rows.map((r) => r.symbol))];
        ctx.waitUntil(invalidateMarketData(env, symbols, ["snapshot"]));
      }
      return { failed: new Map() };
    } catch (err) {
      return { failed: new Map(rows.map((r) => [r.event_id, err])) };
    }
  },
};
