/**
 * Where history reads come from: `GET /v2/orders` with closed statuses, account activities and
 * the daily portfolio history are served from Postgres through the shard's **read replica**, with
 * read-your-writes by construction:
 *
 * 1. in parallel, ask the user's UserSession for its latest account event seq (one small RPC) and run the
 *    page query on the replica, which returns the user's `applied_through` from the same snapshot;
 * 2. if `applied_through >= seq`, the replica holds every change the user has made (the consumer advances
 *    `applied_through` only over gap-free runs of seqs), so its page is the answer;
 * 3. otherwise (the consumer or the replica is behind, typically for a second or two after a trade), or if
 *    Postgres fails, the UserSession answers, as it always did.
 *
 * So a user never reads older history than they wrote, and busy accounts' history scans move off the
 * Durable Object once Postgres has caught up. The response header `X-PrepX-History-Source` says which
 * source answered (`postgres` or `session`).
 */
import type { Context } from "hono";
import type {
  ActivityQuery,
  FillActivity,
  OrderQuery,
  Outcome,
  PortfolioHistory,
  UserSession,
} from "../../durable-objects/user-session.ts";
import { formatMicros, parseMicros } from "../../shared/decimal.ts";
import { lotsToQty, ticksToPrice } from "../../shared/engine/rules.ts";
import type { AlpacaOrder } from "../../shared/orders/alpaca.ts";
import { toAlpacaOrder } from "../../shared/orders/alpaca.ts";
import { isOpen, type OrderRecord } from "../../shared/orders/lifecycle.ts";
import { findSymbol } from "../../shared/symbols.ts";
import type { AuthBindings } from "../auth/types.ts";
import { db } from "../db/index.ts";
import { ApiError } from "../errors.ts";
import { dailyEquity, fillsPage, ordersPage } from "./queries.ts";

export const HISTORY_SOURCE_HEADER = "X-PrepX-History-Source";

type SessionStub = DurableObjectStub<UserSession>;

const DEFAULT_UNITS = { tickSize: "0.01", lotSize: "1" } as const;
const unitsOf = (symbol: string) => findSymbol(symbol) ?? DEFAULT_UNITS;

function unwrap<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw new ApiError(outcome.status, outcome.code, outcome.message);
}

/**
 * Runs `fromPostgres` on the user's shard (replica) and returns its value when it is complete for the
 * UserSession's latest seq; otherwise (or on a Postgres error) null.
 */
async function caughtUp<T>(
  c: Context<AuthBindings>,
  userId: string,
  stub: SessionStub,
  fromPostgres: (
    shard: ReturnType<ReturnType<typeof db>["forUser"]>,
  ) => Promise<{ through: number | null; value: T }>,
): Promise<T | null> {
  const postgres = (async () => {
    const dbs = db(c.env, (p) => c.executionCtx.waitUntil(p));
    return fromPostgres(dbs.forUser(userId));
  })().catch((error: unknown) => {
    c.get("log").warn("history read from Postgres failed; the UserSession answers", {
      user_id: userId,
      error: error instanceof Error ? error.message : String(error),
    });
    return null;
  });
  const [cursor, page] = await Promise.all([stub.historyCursor(userId), postgres]);
  if (page === null || page.through === null || page.through < cursor.seq) return null;
  return page.value;
}

export async function historyOrders(
  c: Context<AuthBindings>,
  userId: string,
  stub: SessionStub,
  query: OrderQuery,
): Promise<AlpacaOrder[]> {
  if (query.status !== "open") {
    const status = query.status;
    const page = await caughtUp(c, userId, stub, async (shard) => {
      const p = await ordersPage(shard, userId, { ...query, status });
      return { through: p.through, value: p.rows };
    });
    if (page !== null) {
      c.header(HISTORY_SOURCE_HEADER, "postgres");
      return page.map((o) => toAlpacaOrder(o, unitsOf(o.symbol)));
    }
  }
  c.header(HISTORY_SOURCE_HEADER, "session");
  return unwrap(await stub.getOrders(userId, query));
}

export async function historyFillActivities(
  c: Context<AuthBindings>,
  userId: string,
  stub: SessionStub,
  query: ActivityQuery,
): Promise<FillActivity[]> {
  const page = await caughtUp(c, userId, stub, async (shard) => {
    const p = await fillsPage(shard, userId, query);
    return { through: p.through, value: p.rows };
  });
  if (page === null) {
    c.header(HISTORY_SOURCE_HEADER, "session");
    return unwrap(await stub.getFillActivities(userId, query));
  }
  c.header(HISTORY_SOURCE_HEADER, "postgres");
  // The same rendering as UserSession.getFillActivities, from the fill and its order's latest snapshot.
  return page.map((r) => {
    const units = unitsOf(r.symbol);
    const order: OrderRecord | null = r.order;
    const leaves = order ? Math.max(0, order.qtyLots - order.filledQtyLots) : 0;
    return {
      id: r.bookEventId,
      activity_type: "FILL" as const,
      transaction_time: r.at.toISOString(),
      type: order && order.filledQtyLots >= order.qtyLots ? ("fill" as const) : ("partial_fill" as const),
      price: ticksToPrice(units, r.priceTicks),
      qty: lotsToQty(units, r.qtyLots, true),
      side: r.side,
      symbol: r.symbol,
      leaves_qty: lotsToQty(units, order !== null && isOpen(order) ? leaves : 0, true),
      order_id: r.orderId,
      cum_qty: lotsToQty(units, order?.filledQtyLots ?? r.qtyLots, true),
      order_status: order?.status ?? "filled",
    };
  });
}

const PERIOD = /^(\d{1,3})([DWMA])$/;

/** The first UTC day of `period` (Alpaca's `1D`, `2W`, `3M`, `1A`), counted back from `now`. */
export function periodStart(period: string, now: number): string {
  const m = PERIOD.exec(period);
  const n = Number(m?.[1] ?? 1);
  const unit = m?.[2] ?? "M";
  const d = new Date(now);
  if (unit === "D") d.setUTCDate(d.getUTCDate() - n);
  else if (unit === "W") d.setUTCDate(d.getUTCDate() - 7 * n);
  else if (unit === "M") d.setUTCMonth(d.getUTCMonth() - n);
  else d.setUTCFullYear(d.getUTCFullYear() - n);
  return d.toISOString().slice(0, 10);
}

/**
 * `GET /v2/account/portfolio/history`. Intraday (the default, `1Min`): the UserSession's equity curve.
 * `timeframe=1D`: one point per day from `account_daily` (replica), closed by the UserSession's equity
 * now for today, so a fresh trade shows at once.
 */
export async function historyPortfolio(
  c: Context<AuthBindings>,
  userId: string,
  stub: SessionStub,
  query: { timeframe?: string; period?: string },
): Promise<PortfolioHistory> {
  if (query.timeframe !== "1D") {
    c.header(HISTORY_SOURCE_HEADER, "session");
    return unwrap(await stub.getPortfolioHistory(userId));
  }
  const now = Date.now();
  const fromDay = periodStart(query.period ?? "1M", now);
  const daily = (async () => {
    const dbs = db(c.env, (p) => c.executionCtx.waitUntil(p));
    return dailyEquity(dbs.forUser(userId), userId, fromDay);
  })().catch((error: unknown) => {
    c.get("log").warn("daily history from Postgres failed", {
      user_id: userId,
      error: error instanceof Error ? error.message : String(error),
    });
    return null;
  });
  const [live, days] = await Promise.all([stub.getPortfolioHistory(userId), daily]);
  const intraday = unwrap(live);
  c.header(HISTORY_SOURCE_HEADER, days === null ? "session" : "postgres");
  const base = parseMicros(intraday.base_value, { allowNegative: true });
  const baseMicros = base.ok ? base.value : 0;
  const today = new Date(now).toISOString().slice(0, 10);
  const points = (days ?? []).filter((d) => d.day !== today);
  const lastEquity = intraday.equity.at(-1);
  const nowEquity = lastEquity === undefined ? null : parseMicros(lastEquity, { allowNegative: true });
  if (nowEquity?.ok) points.push({ day: today, equityMicros: nowEquity.value });
  const fmt = (m: number) => formatMicros(m, { trimZeros: true });
  return {
    timestamp: points.map((p) => Math.floor(Date.parse(`${p.day}T00:00:00Z`) / 1000)),
    equity: points.map((p) => fmt(p.equityMicros)),
    profit_loss: points.map((p) => fmt(p.equityMicros - baseMicros)),
    profit_loss_pct: points.map((p) => ratio(p.equityMicros - baseMicros, baseMicros)),
    base_value: intraday.base_value,
    timeframe: "1D",
  };
}

/** numerator / denominator with 6 decimals, rounded half away from zero (as the UserSession does). */
function ratio(numerator: number, denominator: number): string {
  if (denominator === 0) return "0";
  const n = BigInt(numerator) * 1_000_000n;
  const d = BigInt(denominator);
  const q = (2n * (n < 0n ? -n : n) + d) / (2n * d);
  return formatMicros(Number(n < 0n ? -q : q), { trimZeros: true });
}
