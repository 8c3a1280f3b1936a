-- Global database (prepx): market data (issue 9). Every trade of every listed symbol, once, and the OHLCV
-- bars built from them. Written by the bars processor of the trade-events consumer
-- (workers/consumers/bars.ts), read by the market-data API (workers/routes/market-data-api.ts).
-- Mirrors workers/db/schema/market.ts. Prices are ticks, quantities lots (integers); see docs/market-data.md.

-- One row per fill, keyed by its stable event id `${symbol}:${seq}`: the dedupe of at-least-once delivery.
CREATE TABLE market_trades (
  event_id     text    PRIMARY KEY,
  symbol       text    NOT NULL,
  -- Engine sequence number of the fill (orders trades within the symbol) and the book's fill id.
  seq          bigint  NOT NULL,
  fill_id      bigint  NOT NULL,
  ts_ms        bigint  NOT NULL,
  price_ticks  bigint  NOT NULL CHECK (price_ticks > 0),
  qty_lots     bigint  NOT NULL CHECK (qty_lots > 0),
  taker_side   text    NOT NULL CHECK (taker_side IN ('buy', 'sell')),
  inserted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX market_trades_symbol_ts_idx ON market_trades (symbol, ts_ms, seq);

-- One row per (symbol, timeframe, bucket). Sums are exact: volume in lots, notional in ticks × lots.
-- open / close are the trades with the lowest / highest seq in the bucket (open_seq / close_seq keep the
-- merge order-independent).
CREATE TABLE market_bars (
  symbol          text    NOT NULL,
  timeframe       text    NOT NULL CHECK (timeframe IN ('1m', '5m', '15m', '1h', '1d')),
  bucket_start_ms bigint  NOT NULL,
  open_ticks      bigint  NOT NULL,
  high_ticks      bigint  NOT NULL,
  low_ticks       bigint  NOT NULL,
  close_ticks     bigint  NOT NULL,
  open_seq        bigint  NOT NULL,
  close_seq       bigint  NOT NULL,
  volume_lots     numeric(39, 0) NOT NULL,
  trade_count     bigint  NOT NULL,
  notional        numeric(39, 0) NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (symbol, timeframe, bucket_start_ms)
);
