-- Global database (prepx): reference data shared by every user shard.
-- Tradable instruments. Prices and sizes are decimals here (the system of record);
-- the engine works in integer ticks and lots derived from tick_size and lot_size.
CREATE TABLE symbols (
  symbol text PRIMARY KEY,
  name text,
  tick_size numeric NOT NULL,
  lot_size numeric NOT NULL,
  min_qty numeric,
  max_qty numeric,
  min_notional numeric,
  price_band_bps integer NOT NULL DEFAULT 1000,
  reference_price numeric,
  status text NOT NULL DEFAULT 'active',
  created_at timestamptz DEFAULT now()
);
