/**
 * Storage of a UserSession: the account snapshot, the account's orders (every state, for Alpaca's order
 * queries and client order id idempotency), its fills (activities), the inbox of book events (dedupe by
 * event id) and the equity curve.
 * @internal
 */
import type { Migration } from "../sql.ts";

/** The book-event inbox: one row per stable event id, so redelivered events are recognised. */
export const BOOK_EVENTS_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "book_events: OrderBook events about this account, one row per event id",
    up: `CREATE TABLE book_events (
      event_id TEXT PRIMARY KEY,
      symbol TEXT NOT NULL,
      seq INTEGER NOT NULL,
      type TEXT NOT NULL,
      body TEXT NOT NULL,
      received_at INTEGER NOT NULL
    )`,
  },
];

export const ACCOUNT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "account snapshot, orders, fills, equity curve",
    up: `
      CREATE TABLE account (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        user_id TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        client_order_id TEXT NOT NULL UNIQUE,
        symbol TEXT NOT NULL,
        status TEXT NOT NULL,
        open INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX orders_by_created ON orders (created_at, id);
      CREATE INDEX orders_open ON orders (open, created_at);
      CREATE TABLE fills (
        event_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        price_ticks INTEGER NOT NULL,
        qty_lots INTEGER NOT NULL,
        notional_micros INTEGER NOT NULL,
        fee_micros INTEGER NOT NULL,
        realized_pl_micros INTEGER NOT NULL,
        cash_delta_micros INTEGER NOT NULL,
        position_qty_lots INTEGER NOT NULL,
        liquidity TEXT NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE INDEX fills_by_time ON fills (at, event_id);
      CREATE TABLE equity_points (
        ts INTEGER PRIMARY KEY,
        equity_micros INTEGER NOT NULL,
        realized_pl_micros INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: "orders waiting for their book's answer, indexed (the alarm looks for them on every run)",
    up: `
      -- Without it every alarm scanned the whole orders table twice; a market maker's session holds
      -- hundreds of thousands of orders. Partial: only the few pending_new rows are in it.
      CREATE INDEX orders_pending ON orders (created_at) WHERE status = 'pending_new';
    `,
  },
];
