/**
 * History queries on a user's shard, in the shapes the UserSession answers: the caller renders
 * the rows with the same functions, so a history page is the same whichever source served it.
 *
 * Each query is **one statement** that returns the user's `applied_through` together with the rows
 * (`account_streams LEFT JOIN (page) ON true`), so the watermark and the page come from one snapshot: if
 * the watermark has reached the UserSession's latest seq, the page is complete. No stream row means no
 * history yet (the caller falls back to the UserSession). Run on the read replica (`select` of a
 * `withReplicas` database); see docs/history.md for the indexes they use.
 */
import { and, asc, desc, eq, gt, inArray, lt, type SQL, sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type { OrderRecord } from "../../shared/orders/lifecycle.ts";
import { accountDaily, accountStreams, fills, orders } from "../db/schema/history.ts";

// biome-ignore lint/suspicious/noExplicitAny: any drizzle Postgres database (withReplicas, a transaction, node-postgres)
type Db = PgDatabase<PgQueryResultHKT, any, any>;

export interface OrderPageQuery {
  status: "closed" | "all";
  limit: number;
  after?: number;
  until?: number;
  direction: "asc" | "desc";
  symbols?: string[];
}

export interface HistoryPage<T> {
  /** The user's `applied_through` in the same snapshot, or null when Postgres has no history of the user. */
  through: number | null;
  rows: T[];
}

/** The statement behind {@link ordersPage} (exported so tests can EXPLAIN it). */
export function ordersPageQuery(db: Db, userId: string, q: OrderPageQuery) {
  const conditions: (SQL | undefined)[] = [
    eq(orders.userId, userId),
    // Imported monolith history is for reporting: the UserSession never had it, so the API leaves it out.
    eq(orders.source, "live"),
    q.after !== undefined ? gt(orders.createdAt, new Date(q.after)) : undefined,
    q.until !== undefined ? lt(orders.createdAt, new Date(q.until)) : undefined,
    q.status === "closed" ? eq(orders.open, false) : undefined,
    q.symbols && q.symbols.length > 0 ? inArray(orders.symbol, q.symbols) : undefined,
  ];
  const order = q.direction === "asc" ? asc : desc;
  const page = db
    .select({ createdAt: orders.createdAt, id: orders.id, body: orders.body })
    .from(orders)
    .where(and(...conditions))
    .orderBy(order(orders.createdAt), order(orders.id))
    .limit(q.limit)
    .as("page");
  return db
    .select({ through: accountStreams.appliedThrough, body: page.body })
    .from(accountStreams)
    .leftJoin(page, sql`true`)
    .where(eq(accountStreams.userId, userId))
    .orderBy(order(page.createdAt), order(page.id));
}

/** A page of `GET /v2/orders` (closed or all) as order records. */
export async function ordersPage(
  db: Db,
  userId: string,
  q: OrderPageQuery,
): Promise<HistoryPage<OrderRecord>> {
  const rows = await ordersPageQuery(db, userId, q);
  return {
    through: rows[0]?.through ?? null,
    rows: rows.flatMap((r) => (r.body ? [r.body as OrderRecord] : [])),
  };
}

export interface FillPageQuery {
  after?: number;
  until?: number;
  direction: "asc" | "desc";
  pageSize: number;
  pageToken?: string;
}

export interface FillRow {
  bookEventId: string;
  orderId: string;
  symbol: string;
  side: string;
  priceTicks: number;
  qtyLots: number;
  at: Date;
  /** The order's latest snapshot (null if Postgres has none). */
  order: OrderRecord | null;
}

export function fillsPageQuery(db: Db, userId: string, q: FillPageQuery) {
  const order = q.direction === "asc" ? asc : desc;
  const conditions: (SQL | undefined)[] = [
    eq(fills.userId, userId),
    eq(fills.source, "live"),
    q.after !== undefined ? gt(fills.at, new Date(q.after)) : undefined,
    q.until !== undefined ? lt(fills.at, new Date(q.until)) : undefined,
    q.pageToken !== undefined
      ? q.direction === "asc"
        ? gt(fills.bookEventId, q.pageToken)
        : lt(fills.bookEventId, q.pageToken)
      : undefined,
  ];
  const page = db
    .select({
      bookEventId: fills.bookEventId,
      orderId: fills.orderId,
      symbol: fills.symbol,
      side: fills.side,
      priceTicks: fills.priceTicks,
      qtyLots: fills.qtyLots,
      at: fills.at,
      orderBody: sql<OrderRecord | null>`${orders.body}`.as("order_body"),
    })
    .from(fills)
    .leftJoin(orders, eq(orders.id, fills.orderId))
    .where(and(...conditions))
    .orderBy(order(fills.at), order(fills.bookEventId))
    .limit(q.pageSize)
    .as("page");
  return db
    .select({
      through: accountStreams.appliedThrough,
      bookEventId: page.bookEventId,
      orderId: page.orderId,
      symbol: page.symbol,
      side: page.side,
      priceTicks: page.priceTicks,
      qtyLots: page.qtyLots,
      at: page.at,
      orderBody: page.orderBody,
    })
    .from(accountStreams)
    .leftJoin(page, sql`true`)
    .where(eq(accountStreams.userId, userId))
    .orderBy(order(page.at), order(page.bookEventId));
}

/** A page of FILL activities. */
export async function fillsPage(db: Db, userId: string, q: FillPageQuery): Promise<HistoryPage<FillRow>> {
  const rows = await fillsPageQuery(db, userId, q);
  const out: FillRow[] = [];
  for (const r of rows) {
    if (r.bookEventId === null || r.orderId === null || r.symbol === null || r.side === null) continue;
    out.push({
      bookEventId: r.bookEventId,
      orderId: r.orderId,
      symbol: r.symbol,
      side: r.side,
      priceTicks: Number(r.priceTicks),
      qtyLots: Number(r.qtyLots),
      at: r.at instanceof Date ? r.at : new Date(String(r.at)),
      order: (typeof r.orderBody === "string" ? JSON.parse(r.orderBody) : r.orderBody) as OrderRecord | null,
    });
  }
  return { through: rows[0]?.through ?? null, rows: out };
}

export interface DailyPoint {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  equityMicros: number;
}

export function dailyEquityQuery(db: Db, userId: string, fromDay: string) {
  return db
    .select({ day: accountDaily.day, equityMicros: accountDaily.equityMicros })
    .from(accountDaily)
    .where(and(eq(accountDaily.userId, userId), sql`${accountDaily.day} >= ${fromDay}::date`))
    .orderBy(asc(accountDaily.day));
}

/** End-of-day equity per UTC day since `fromDay` (days without an equity figure are left out). */
export async function dailyEquity(db: Db, userId: string, fromDay: string): Promise<DailyPoint[]> {
  const rows = await dailyEquityQuery(db, userId, fromDay);
  return rows.flatMap((r) => (r.equityMicros === null ? [] : [{ day: r.day, equityMicros: r.equityMicros }]));
}
