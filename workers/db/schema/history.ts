import {
  bigint,
  boolean,
  date,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import type { OrderRecord } from "../../../shared/orders/lifecycle.ts";

/**
 * History tables of every user shard. Keep in step with migrations/shard/0002_history.sql.
 * Money in micro-USD, prices in ticks, quantities in lots: bigint (as JS numbers, safe integers).
 * See docs/history.md.
 */

const big = (name: string) => bigint(name, { mode: "number" });
const ms = (name: string) => timestamp(name, { withTimezone: true, precision: 3 });

/** Dedupe log of applied events (migration 0000, extended by 0002). */
export const processedEvents = pgTable("processed_events", {
  eventId: text("event_id").primaryKey(),
  processedAt: timestamp("processed_at", { withTimezone: true }).notNull().defaultNow(),
  userId: uuid("user_id"),
  seq: big("seq"),
  type: text("type"),
});

/** How far each user's history is complete: every event with seq <= appliedThrough is here. */
export const accountStreams = pgTable("account_streams", {
  userId: uuid("user_id").primaryKey(),
  appliedThrough: big("applied_through").notNull().default(0),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

export const orders = pgTable(
  "orders",
  {
    id: text("id").primaryKey(),
    userId: uuid("user_id").notNull(),
    clientOrderId: text("client_order_id").notNull(),
    symbol: text("symbol").notNull(),
    side: text("side").notNull(),
    type: text("type").notNull(),
    timeInForce: text("time_in_force").notNull(),
    status: text("status").notNull(),
    open: boolean("open").notNull(),
    qtyLots: big("qty_lots").notNull(),
    filledQtyLots: big("filled_qty_lots").notNull(),
    notionalMicros: big("notional_micros"),
    limitTicks: big("limit_ticks"),
    stopTicks: big("stop_ticks"),
    reason: text("reason"),
    replaces: text("replaces"),
    replacedBy: text("replaced_by"),
    createdAt: ms("created_at").notNull(),
    updatedAt: ms("updated_at").notNull(),
    /** Account event seq of this snapshot: a newer snapshot replaces an older one, never the reverse. */
    seq: big("seq").notNull(),
    /** The order as the UserSession keeps it; rendering it gives the very Alpaca order the session gives. */
    body: jsonb("body").$type<OrderRecord>().notNull(),
    source: text("source").$type<"live" | "import">().notNull().default("live"),
  },
  (t) => [index("orders_user_created_idx").on(t.userId, t.createdAt, t.id)],
);

export const fills = pgTable(
  "fills",
  {
    id: text("id").primaryKey(),
    userId: uuid("user_id").notNull(),
    orderId: text("order_id").notNull(),
    bookEventId: text("book_event_id").notNull(),
    symbol: text("symbol").notNull(),
    side: text("side").notNull(),
    priceTicks: big("price_ticks").notNull(),
    qtyLots: big("qty_lots").notNull(),
    tickSize: numeric("tick_size").notNull(),
    lotSize: numeric("lot_size").notNull(),
    notionalMicros: big("notional_micros").notNull(),
    feeMicros: big("fee_micros").notNull(),
    realizedPlMicros: big("realized_pl_micros").notNull(),
    cashDeltaMicros: big("cash_delta_micros").notNull(),
    positionQtyLots: big("position_qty_lots").notNull(),
    positionCostBasisMicros: big("position_cost_basis_micros").notNull(),
    liquidity: text("liquidity").notNull(),
    at: ms("at").notNull(),
    seq: big("seq").notNull(),
    source: text("source").$type<"live" | "import">().notNull().default("live"),
  },
  (t) => [
    index("fills_user_at_idx").on(t.userId, t.at, t.bookEventId),
    index("fills_order_idx").on(t.orderId),
  ],
);

export const ledgerEntries = pgTable(
  "ledger_entries",
  {
    eventId: text("event_id").notNull(),
    line: smallint("line").notNull(),
    userId: uuid("user_id").notNull(),
    seq: big("seq").notNull(),
    at: ms("at").notNull(),
    kind: text("kind").$type<"opened" | "fill" | "grant" | "reset">().notNull(),
    account: text("account").notNull(),
    symbol: text("symbol"),
    asset: text("asset").notNull(),
    amount: big("amount").notNull(),
  },
  (t) => [primaryKey({ columns: [t.eventId, t.line] }), index("ledger_entries_user_idx").on(t.userId, t.seq)],
);

export const positionsSnapshot = pgTable(
  "positions_snapshot",
  {
    userId: uuid("user_id").notNull(),
    symbol: text("symbol").notNull(),
    qtyLots: big("qty_lots").notNull(),
    costBasisMicros: big("cost_basis_micros").notNull(),
    tickSize: numeric("tick_size").notNull(),
    lotSize: numeric("lot_size").notNull(),
    asOfSeq: big("as_of_seq").notNull(),
    updatedAt: ms("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.symbol] })],
);

export const accountDaily = pgTable(
  "account_daily",
  {
    userId: uuid("user_id").notNull(),
    day: date("day", { mode: "string" }).notNull(),
    equityMicros: big("equity_micros"),
    equitySeq: big("equity_seq").notNull().default(0),
    realizedPlMicros: big("realized_pl_micros").notNull().default(0),
    feesMicros: big("fees_micros").notNull().default(0),
    notionalMicros: big("notional_micros").notNull().default(0),
    fillCount: integer("fill_count").notNull().default(0),
    contributionsMicros: big("contributions_micros").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.userId, t.day] })],
);
