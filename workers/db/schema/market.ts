import { bigint, index, numeric, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

/**
 * Market-data tables of the global database. Keep in step with
 * migrations/global/0003_market_data.sql. Prices in ticks, quantities in lots (bigint as JS numbers,
 * safe integers); exact sums as numeric (strings). See docs/market-data.md.
 */

const big = (name: string) => bigint(name, { mode: "number" });

/** Every trade of a listed symbol, once (keyed by the stable event id `${symbol}:${seq}`). */
export const marketTrades = pgTable(
  "market_trades",
  {
    eventId: text("event_id").primaryKey(),
    symbol: text("symbol").notNull(),
    seq: big("seq").notNull(),
    fillId: big("fill_id").notNull(),
    tsMs: big("ts_ms").notNull(),
    priceTicks: big("price_ticks").notNull(),
    qtyLots: big("qty_lots").notNull(),
    takerSide: text("taker_side").notNull(),
    insertedAt: timestamp("inserted_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("market_trades_symbol_ts_idx").on(t.symbol, t.tsMs, t.seq)],
);

/** OHLCV bars per symbol, timeframe and bucket. */
export const marketBars = pgTable(
  "market_bars",
  {
    symbol: text("symbol").notNull(),
    timeframe: text("timeframe").notNull(),
    bucketStartMs: big("bucket_start_ms").notNull(),
    openTicks: big("open_ticks").notNull(),
    highTicks: big("high_ticks").notNull(),
    lowTicks: big("low_ticks").notNull(),
    closeTicks: big("close_ticks").notNull(),
    openSeq: big("open_seq").notNull(),
    closeSeq: big("close_seq").notNull(),
    /** Σ lots, exact (a decimal string). */
    volumeLots: numeric("volume_lots", { precision: 39, scale: 0 }).notNull(),
    tradeCount: big("trade_count").notNull(),
    /** Σ price × qty in ticks × lots, exact (a decimal string). */
    notional: numeric("notional", { precision: 39, scale: 0 }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.symbol, t.timeframe, t.bucketStartMs] })],
);
