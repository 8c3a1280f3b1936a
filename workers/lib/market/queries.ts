/**
 * Reads of the market-data tables (the read replica), and the book's live top of book, in PrepX units.
 * Rendering into Alpaca's shapes happens in shared/market/alpaca-data.ts.
 */
import { and, asc, desc, eq, gt, gte, inArray, lt, lte, or, sql } from "drizzle-orm";
import type { QuoteRecord, TradeRecord } from "../../../shared/market/alpaca-data.ts";
import type { Bar, Timeframe } from "../../../shared/market/bars.ts";
import { db } from "../../db/index.ts";
import { marketBars, marketTrades } from "../../db/schema/market.ts";
import type { Env } from "../../env.ts";

type BarRow = typeof marketBars.$inferSelect;
type TradeRow = typeof marketTrades.$inferSelect;

export function barOfRow(row: Pick<BarRow, keyof BarRow>): Bar {
  return {
    timeframe: row.timeframe as Timeframe,
    start: row.bucketStartMs,
    open: row.openTicks,
    high: row.highTicks,
    low: row.lowTicks,
    close: row.closeTicks,
    openSeq: row.openSeq,
    closeSeq: row.closeSeq,
    volume: BigInt(row.volumeLots),
    trades: row.tradeCount,
    notional: BigInt(row.notional),
  };
}

export function tradeOfRow(
  row: Pick<TradeRow, "seq" | "tsMs" | "priceTicks" | "qtyLots" | "takerSide">,
): TradeRecord {
  return {
    seq: row.seq,
    ts: row.tsMs,
    priceTicks: row.priceTicks,
    qtyLots: row.qtyLots,
    takerSide: row.takerSide === "sell" ? "sell" : "buy",
  };
}

export interface PageQuery {
  /** Inclusive range, ms. */
  start: number;
  end: number;
  limit: number;
  direction: "asc" | "desc";
}

/** Bars of one symbol and timeframe, one page (`limit + 1` rows are read to know if there is more). */
export async function readBars(
  env: Env,
  symbol: string,
  timeframe: Timeframe,
  page: PageQuery & { after?: number },
): Promise<{ bars: Bar[]; more: boolean }> {
  const b = marketBars;
  const cursor =
    page.after === undefined
      ? undefined
      : page.direction === "asc"
        ? gt(b.bucketStartMs, page.after)
        : lt(b.bucketStartMs, page.after);
  const rows = await db(env)
    .global.select()
    .from(b)
    .where(
      and(
        eq(b.symbol, symbol),
        eq(b.timeframe, timeframe),
        gte(b.bucketStartMs, page.start),
        lte(b.bucketStartMs, page.end),
        cursor,
      ),
    )
    .orderBy(page.direction === "asc" ? asc(b.bucketStartMs) : desc(b.bucketStartMs))
    .limit(page.limit + 1);
  return { bars: rows.slice(0, page.limit).map(barOfRow), more: rows.length > page.limit };
}

/** Trades of one symbol by time (then seq), one page; the cursor is the last (ts, seq) returned. */
export async function readTrades(
  env: Env,
  symbol: string,
  page: PageQuery & { after?: { ts: number; seq: number } },
): Promise<{ trades: TradeRecord[]; more: boolean }> {
  const t = marketTrades;
  const a = page.after;
  const cursor =
    a === undefined
      ? undefined
      : page.direction === "asc"
        ? or(gt(t.tsMs, a.ts), and(eq(t.tsMs, a.ts), gt(t.seq, a.seq)))
        : or(lt(t.tsMs, a.ts), and(eq(t.tsMs, a.ts), lt(t.seq, a.seq)));
  const rows = await db(env)
    .global.select()
    .from(t)
    .where(and(eq(t.symbol, symbol), gte(t.tsMs, page.start), lte(t.tsMs, page.end), cursor))
    .orderBy(...(page.direction === "asc" ? [asc(t.tsMs), asc(t.seq)] : [desc(t.tsMs), desc(t.seq)]))
    .limit(page.limit + 1);
  return { trades: rows.slice(0, page.limit).map(tradeOfRow), more: rows.length > page.limit };
}

export interface SymbolHistory {
  latestTrade: TradeRecord | null;
  minuteBar: Bar | null;
  dailyBar: Bar | null;
  prevDailyBar: Bar | null;
}

/** For each symbol: its latest trade, latest minute bar and the last two daily bars, in one query. */
export async function readSnapshots(
  env: Env,
  symbols: readonly string[],
): Promise<Map<string, SymbolHistory>> {
  const barColumns =
    sql.raw(`symbol, timeframe, bucket_start_ms, open_ticks, high_ticks, low_ticks, close_ticks,
    open_seq, close_seq, volume_lots::text AS volume_lots, trade_count, notional::text AS notional`);
  const result = await db(env).global.execute(sql`
    SELECT s.symbol,
      (SELECT row_to_json(t) FROM (SELECT seq, ts_ms, price_ticks, qty_lots, taker_side FROM market_trades
        WHERE symbol = s.symbol ORDER BY ts_ms DESC, seq DESC LIMIT 1) t) AS trade,
      (SELECT row_to_json(m) FROM (SELECT ${barColumns} FROM market_bars
        WHERE symbol = s.symbol AND timeframe = '1m' ORDER BY bucket_start_ms DESC LIMIT 1) m) AS minute,
      (SELECT json_agg(d ORDER BY d.bucket_start_ms DESC) FROM (SELECT ${barColumns} FROM market_bars
        WHERE symbol = s.symbol AND timeframe = '1d' ORDER BY bucket_start_ms DESC LIMIT 2) d) AS daily
    FROM jsonb_array_elements_text(${JSON.stringify(symbols)}::jsonb) AS s(symbol)
  `);
  type Raw = Record<string, unknown>;
  const rows = ((result as unknown as { rows?: Raw[] }).rows ?? []) as Raw[];
  const out = new Map<string, SymbolHistory>();
  for (const r of rows) {
    const trade = r.trade as Raw | null;
    const daily = (r.daily as Raw[] | null) ?? [];
    out.set(String(r.symbol), {
      latestTrade: trade
        ? {
            seq: Number(trade.seq),
            ts: Number(trade.ts_ms),
            priceTicks: Number(trade.price_ticks),
            qtyLots: Number(trade.qty_lots),
            takerSide: trade.taker_side === "sell" ? "sell" : "buy",
          }
        : null,
      minuteBar: r.minute ? barOfJson(r.minute as Raw) : null,
      dailyBar: daily[0] ? barOfJson(daily[0]) : null,
      prevDailyBar: daily[1] ? barOfJson(daily[1]) : null,
    });
  }
  return out;
}

function barOfJson(r: Record<string, unknown>): Bar {
  return {
    timeframe: String(r.timeframe) as Timeframe,
    start: Number(r.bucket_start_ms),
    open: Number(r.open_ticks),
    high: Number(r.high_ticks),
    low: Number(r.low_ticks),
    close: Number(r.close_ticks),
    openSeq: Number(r.open_seq),
    closeSeq: Number(r.close_seq),
    volume: BigInt(String(r.volume_lots)),
    trades: Number(r.trade_count),
    notional: BigInt(String(r.notional)),
  };
}

/** The book's best bid and ask right now (the origin of the latest-quote cache). */
export async function liveQuote(env: Env, symbol: string): Promise<QuoteRecord> {
  const status = await env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol)).quote();
  // Over RPC the [price, qty] tuples arrive typed as number[].
  const level = (l: number[] | null): [number, number] | null =>
    l && l.length === 2 ? [l[0] as number, l[1] as number] : null;
  return { ts: Date.now(), bid: level(status.bestBid), ask: level(status.bestAsk) };
}

/** 1-minute bars that started at `start` for the given symbols (the data stream's `b` messages). */
export async function readMinuteBars(
  env: Env,
  symbols: readonly string[] | "*",
  start: number,
): Promise<Map<string, Bar>> {
  const b = marketBars;
  const where =
    symbols === "*"
      ? and(eq(b.timeframe, "1m"), eq(b.bucketStartMs, start))
      : and(eq(b.timeframe, "1m"), eq(b.bucketStartMs, start), inArray(b.symbol, [...symbols]));
  const rows = await db(env).global.$primary.select().from(b).where(where);
  return new Map(rows.map((r) => [r.symbol, barOfRow(r)]));
}
