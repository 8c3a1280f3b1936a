-- Every user shard (prepx_shard_<n>): the trading history of its users, the system of record (issue 8).
-- Written by the trade-events queue consumer (workers/consumers/history.ts) from the account events of each
-- user's UserSession outbox; see docs/history.md. Mirrors workers/db/schema/history.ts.
-- Money in micro-USD, prices in ticks, quantities in lots: bigint, never floating point. Ids that the API
-- orders by are COLLATE "C" so Postgres sorts them byte by byte, as the UserSession's SQLite does.

-- processed_events (0000) becomes the log of applied account events: the dedupe key is event_id; user_id
-- and seq (the account's event sequence) let the consumer tell how far each user's history is complete.
ALTER TABLE processed_events
  ADD COLUMN user_id uuid,
  ADD COLUMN seq bigint,
  ADD COLUMN type text;
CREATE UNIQUE INDEX processed_events_stream_idx ON processed_events (user_id, seq) WHERE seq IS NOT NULL;

-- One row per user: every event with seq <= applied_through is in this database (no gaps). A history read
-- is served from here only when applied_through has reached the UserSession's latest seq.
CREATE TABLE account_streams (
  user_id          uuid PRIMARY KEY,
  applied_through  bigint NOT NULL DEFAULT 0,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Orders in every state: the latest snapshot the UserSession published (highest seq wins).
CREATE TABLE orders (
  id               text COLLATE "C" PRIMARY KEY,
  user_id          uuid NOT NULL,
  client_order_id  text NOT NULL,
  symbol           text NOT NULL,
  side             text NOT NULL CHECK (side IN ('buy', 'sell')),
  type             text NOT NULL,
  time_in_force    text NOT NULL,
  status           text NOT NULL,
  open             boolean NOT NULL,
  qty_lots         bigint NOT NULL,
  filled_qty_lots  bigint NOT NULL,
  notional_micros  bigint,
  limit_ticks      bigint,
  stop_ticks       bigint,
  reason           text,
  replaces         text,
  replaced_by      text,
  created_at       timestamptz(3) NOT NULL,
  updated_at       timestamptz(3) NOT NULL,
  seq              bigint NOT NULL,
  body             jsonb NOT NULL,
  source           text NOT NULL DEFAULT 'live' CHECK (source IN ('live', 'import'))
);
-- GET /v2/orders?status=all and ?status=closed, newest (or oldest) first.
CREATE INDEX orders_user_created_idx ON orders (user_id, created_at, id);
CREATE INDEX orders_user_closed_idx ON orders (user_id, created_at, id) WHERE NOT open;

-- Executions as they changed the account (one row per fill and order).
CREATE TABLE fills (
  id                          text COLLATE "C" PRIMARY KEY,
  user_id                     uuid NOT NULL,
  order_id                    text COLLATE "C" NOT NULL,
  book_event_id               text COLLATE "C" NOT NULL,
  symbol                      text NOT NULL,
  side                        text NOT NULL CHECK (side IN ('buy', 'sell')),
  price_ticks                 bigint NOT NULL CHECK (price_ticks > 0),
  qty_lots                    bigint NOT NULL CHECK (qty_lots > 0),
  tick_size                   numeric NOT NULL,
  lot_size                    numeric NOT NULL,
  notional_micros             bigint NOT NULL,
  fee_micros                  bigint NOT NULL,
  realized_pl_micros          bigint NOT NULL,
  cash_delta_micros           bigint NOT NULL,
  position_qty_lots           bigint NOT NULL,
  position_cost_basis_micros  bigint NOT NULL,
  liquidity                   text NOT NULL,
  at                          timestamptz(3) NOT NULL,
  seq                         bigint NOT NULL,
  source                      text NOT NULL DEFAULT 'live' CHECK (source IN ('live', 'import'))
);
-- GET /v2/account/activities: a user's fills by time, paged by the book event id.
CREATE INDEX fills_user_at_idx ON fills (user_id, at, book_event_id);
CREATE INDEX fills_order_idx ON fills (order_id);

-- Double-entry ledger (shared/history/ledger.ts): the lines of one event sum to zero per asset.
CREATE TABLE ledger_entries (
  event_id  text COLLATE "C" NOT NULL,
  line      smallint NOT NULL,
  user_id   uuid NOT NULL,
  seq       bigint NOT NULL,
  at        timestamptz(3) NOT NULL,
  kind      text NOT NULL CHECK (kind IN ('opened', 'fill', 'grant', 'reset')),
  account   text NOT NULL CHECK (account IN ('cash', 'position', 'fees', 'realized_pnl', 'capital', 'market')),
  symbol    text,
  asset     text NOT NULL,
  amount    bigint NOT NULL CHECK (amount <> 0),
  PRIMARY KEY (event_id, line)
);
-- Balances of a user (reconciliation): an index-only scan over the user's lines up to a seq.
CREATE INDEX ledger_entries_user_idx ON ledger_entries (user_id, seq) INCLUDE (account, symbol, asset, amount);

-- Latest known position per user and symbol (0 lots once closed), newest seq wins.
CREATE TABLE positions_snapshot (
  user_id            uuid NOT NULL,
  symbol             text NOT NULL,
  qty_lots           bigint NOT NULL,
  cost_basis_micros  bigint NOT NULL,
  tick_size          numeric NOT NULL,
  lot_size           numeric NOT NULL,
  as_of_seq          bigint NOT NULL,
  updated_at         timestamptz(3) NOT NULL,
  PRIMARY KEY (user_id, symbol)
);

-- Per user and UTC day: equity after the day's last event (marked at the prices the account knew), and
-- the day's realized PnL, fees, traded notional, fills and contributed capital.
CREATE TABLE account_daily (
  user_id               uuid NOT NULL,
  day                   date NOT NULL,
  equity_micros         bigint,
  equity_seq            bigint NOT NULL DEFAULT 0,
  realized_pl_micros    bigint NOT NULL DEFAULT 0,
  fees_micros           bigint NOT NULL DEFAULT 0,
  notional_micros       bigint NOT NULL DEFAULT 0,
  fill_count            integer NOT NULL DEFAULT 0,
  contributions_micros  bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, day)
);
