/**
 * The history writer: applies account events to a user shard, in one transaction per batch,
 * exactly once per event id however often, in whatever order and in whatever groupings they arrive.
 *
 * One call, inside the caller's transaction:
 * 1. dedupe the batch by id, and check every event's ledger lines balance (else the event is poison);
 * 2. lock the `account_streams` rows of the batch's users (sorted: no deadlocks between consumers);
 *    events at or below a user's `applied_through` are known duplicates;
 * 3. `INSERT … ON CONFLICT DO NOTHING RETURNING` into `processed_events`: only the ids it returns are new;
 * 4. write the new events set-wise: order snapshots (newest seq wins), fills, ledger lines, position
 *    snapshots (newest seq wins), per-day figures (sums, equity of the newest seq);
 * 5. advance each user's `applied_through` over the run of consecutive seqs now present.
 *
 * Every write is either keyed (ON CONFLICT DO NOTHING) or guarded by `seq`, and sums are only added for
 * ids step 3 returned, so a batch applied twice, shuffled, or split differently leaves the same rows.
 *
 * Each table gets one statement whose rows travel as a single jsonb parameter (workers/db/recordset.ts):
 * the tables' shapes are those of workers/db/schema/history.ts, spelled out below as recordset columns.
 *
 * The same function serves the queue consumer (Neon's driver) and the monolith importer (node-postgres).
 */
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type { AccountEvent, Balances } from "../../shared/history/events.ts";
import { type LedgerLine, ledgerLines, unbalancedAssets } from "../../shared/history/ledger.ts";
import { isOpen } from "../../shared/orders/lifecycle.ts";
import { columnList, recordset, rowsOf } from "../db/recordset.ts";

/** A drizzle database or transaction on a shard's primary, whatever the driver. */
// biome-ignore lint/suspicious/noExplicitAny: the writer runs on neon-serverless and node-postgres, whose schema generics differ
export type HistoryTx = PgDatabase<PgQueryResultHKT, any, any>;

/** An event that can never be applied (its postings do not balance); retrying cannot help. */
export class PoisonEventError extends Error {
  override name = "PoisonEventError";
  readonly eventId: string;

  constructor(eventId: string, message: string) {
    super(message);
    this.eventId = eventId;
  }
}

export interface ApplyReport {
  /** Ids applied by this call. */
  applied: string[];
  /** Ids that were already applied (or repeated within the batch). */
  duplicates: string[];
  /** Rows written, by table (for the log and the throughput figures). */
  rows: Record<"orders" | "fills" | "ledger" | "positions" | "daily", number>;
}

/** Rows per statement: bounds one parameter's size on a large import. */
const CHUNK = 2_000;

/** `col = excluded.col, …` for every given column. */
function fromExcluded(columns: readonly string[]): ReturnType<typeof sql.raw> {
  return sql.raw(columns.map((c) => `"${c}" = excluded."${c}"`).join(", "));
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Keyed rows that are written once: a row whose key is already there is left as it is. */
function insertKeyed(
  tx: HistoryTx,
  table: "fills" | "ledger_entries",
  columns: Record<string, string>,
  rows: object[],
): Promise<number> {
  return insertChunks(rows, (chunk) =>
    tx.execute(sql`INSERT INTO ${sql.raw(table)} (${columnList(columns)})
      SELECT * FROM ${recordset(chunk, columns)} ON CONFLICT DO NOTHING`),
  );
}

/** `user_id IN (…)` of a list of uuids, as one parameter. */
const uuidsIn = (ids: readonly string[]) =>
  sql`(SELECT value::uuid FROM jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`;

async function insertChunks<R>(rows: R[], insert: (chunk: R[]) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < rows.length; i += CHUNK) await insert(rows.slice(i, i + CHUNK));
  return rows.length;
}

const ledgerKind = (type: AccountEvent["type"]): "opened" | "fill" | "grant" | "reset" =>
  type === "account.opened"
    ? "opened"
    : type === "account.fill"
      ? "fill"
      : type === "account.grant"
        ? "grant"
        : "reset";

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

const bookValue = (b: Balances) => b.cashMicros + b.positions.reduce((s, p) => s + p.costBasisMicros, 0);

/**
 * Apply `input` (account events of users on this shard) in the caller's transaction. Throws
 * {@link PoisonEventError} for an event whose ledger lines do not balance, before writing anything.
 */
export async function applyAccountEvents(
  tx: HistoryTx,
  input: readonly AccountEvent[],
): Promise<ApplyReport> {
  const report: ApplyReport = {
    applied: [],
    duplicates: [],
    rows: { orders: 0, fills: 0, ledger: 0, positions: 0, daily: 0 },
  };
  const byId = new Map<string, AccountEvent>();
  for (const e of input) {
    if (byId.has(e.id)) report.duplicates.push(e.id);
    else byId.set(e.id, e);
  }
  const lines = new Map<string, LedgerLine[]>();
  for (const e of byId.values()) {
    const l = ledgerLines(e);
    const off = unbalancedAssets(l);
    if (off.length > 0)
      throw new PoisonEventError(e.id, `ledger lines of ${e.id} do not balance in ${off.join(", ")}`);
    lines.set(e.id, l);
  }
  if (byId.size === 0) return report;

  // 2. Lock the users' streams, in user order.
  const users = [
    ...new Set([...byId.values()].filter((e) => e.seq > 0).map((e) => e.userId.toLowerCase())),
  ].sort();
  const through = new Map<string, number>();
  if (users.length > 0) {
    await tx.execute(
      sql`INSERT INTO account_streams (user_id) SELECT * FROM ${uuidsIn(users)} u ON CONFLICT DO NOTHING`,
    );
    const locked = await tx.execute(sql`SELECT user_id, applied_through FROM account_streams
      WHERE user_id IN ${uuidsIn(users)} ORDER BY user_id FOR UPDATE`);
    for (const row of rowsOf<{ user_id: string; applied_through: string | number }>(locked)) {
      through.set(row.user_id, Number(row.applied_through));
    }
  }

  // 3. Dedupe against what is applied already.
  const candidates: AccountEvent[] = [];
  for (const e of byId.values()) {
    if (e.seq > 0 && e.seq <= (through.get(e.userId.toLowerCase()) ?? 0)) report.duplicates.push(e.id);
    else candidates.push(e);
  }
  const inserted = new Set<string>();
  await insertChunks(candidates, async (chunk) => {
    const rows = chunk.map((e) => ({
      event_id: e.id,
      user_id: e.userId,
      seq: e.seq > 0 ? e.seq : null,
      type: e.type,
    }));
    const result = await tx.execute(sql`INSERT INTO processed_events (${columnList(PROCESSED_COLUMNS)})
      SELECT * FROM ${recordset(rows, PROCESSED_COLUMNS)}
      ON CONFLICT DO NOTHING RETURNING event_id`);
    for (const r of rowsOf<{ event_id: string }>(result)) inserted.add(r.event_id);
  });
  const fresh: AccountEvent[] = [];
  for (const e of candidates) {
    if (inserted.has(e.id)) fresh.push(e);
    else report.duplicates.push(e.id);
  }
  report.applied = fresh.map((e) => e.id);

  // 4. The rows of the new events.
  await writeOrders(tx, fresh, report);
  await writeFills(tx, fresh, report);
  await writeLedger(tx, fresh, lines, report);
  await writePositions(tx, fresh, report);
  await writeDaily(tx, fresh, report);

  // 5. Advance each stream over the consecutive seqs now present (rows are locked, so no race).
  if (users.length > 0) {
    await tx.execute(sql`
      UPDATE account_streams s SET updated_at = now(), applied_through = CASE
        WHEN EXISTS (SELECT 1 FROM processed_events p WHERE p.user_id = s.user_id AND p.seq = s.applied_through + 1)
        THEN (SELECT min(p.seq) FROM processed_events p
              WHERE p.user_id = s.user_id AND p.seq > s.applied_through
                AND NOT EXISTS (SELECT 1 FROM processed_events n WHERE n.user_id = p.user_id AND n.seq = p.seq + 1))
        ELSE s.applied_through END
      WHERE s.user_id IN ${uuidsIn(users)}`);
  }
  return report;
}

const PROCESSED_COLUMNS = { event_id: "text", user_id: "uuid", seq: "bigint", type: "text" };

async function writeOrders(tx: HistoryTx, events: AccountEvent[], report: ApplyReport): Promise<void> {
  const latest = new Map<string, Extract<AccountEvent, { type: "account.order" }>>();
  for (const e of events) {
    if (e.type !== "account.order") continue;
    const prev = latest.get(e.order.id);
    if (!prev || prev.seq <= e.seq) latest.set(e.order.id, e);
  }
  const rows = [...latest.values()].map((e) => {
    const o = e.order;
    return {
      id: o.id,
      user_id: e.userId,
      client_order_id: o.clientOrderId,
      symbol: o.symbol,
      side: o.side,
      type: o.type,
      time_in_force: o.tif,
      status: o.status,
      open: isOpen(o),
      qty_lots: o.qtyLots,
      filled_qty_lots: o.filledQtyLots,
      notional_micros: o.notionalMicros,
      limit_ticks: o.limitTicks,
      stop_ticks: o.stopTicks,
      reason: o.reason,
      replaces: o.replaces,
      replaced_by: o.replacedBy,
      created_at: iso(o.createdAt),
      updated_at: iso(o.updatedAt),
      seq: e.seq,
      body: o,
      source: e.seq > 0 ? "live" : "import",
    };
  });
  report.rows.orders = await insertChunks(rows, (chunk) =>
    tx.execute(sql`INSERT INTO orders (${columnList(ORDER_COLUMNS)})
      SELECT * FROM ${recordset(chunk, ORDER_COLUMNS)}
      ON CONFLICT (id) DO UPDATE SET ${fromExcluded(Object.keys(ORDER_COLUMNS).filter((c) => c !== "id"))}
      WHERE orders.seq < excluded.seq`),
  );
}

const ORDER_COLUMNS = {
  id: "text",
  user_id: "uuid",
  client_order_id: "text",
  symbol: "text",
  side: "text",
  type: "text",
  time_in_force: "text",
  status: "text",
  open: "boolean",
  qty_lots: "bigint",
  filled_qty_lots: "bigint",
  notional_micros: "bigint",
  limit_ticks: "bigint",
  stop_ticks: "bigint",
  reason: "text",
  replaces: "text",
  replaced_by: "text",
  created_at: "timestamptz",
  updated_at: "timestamptz",
  seq: "bigint",
  body: "jsonb",
  source: "text",
};

async function writeFills(tx: HistoryTx, events: AccountEvent[], report: ApplyReport): Promise<void> {
  const rows = [];
  for (const e of events) {
    if (e.type !== "account.fill") continue;
    const f = e.fill;
    rows.push({
      id: e.id,
      user_id: e.userId,
      order_id: f.orderId,
      book_event_id: f.bookEventId,
      symbol: f.symbol,
      side: f.side,
      price_ticks: f.priceTicks,
      qty_lots: f.qtyLots,
      tick_size: f.tickSize,
      lot_size: f.lotSize,
      notional_micros: f.notionalMicros,
      fee_micros: f.feeMicros,
      realized_pl_micros: f.realizedPlMicros,
      cash_delta_micros: f.cashDeltaMicros,
      position_qty_lots: f.positionQtyLots,
      position_cost_basis_micros: f.positionCostBasisMicros,
      liquidity: f.liquidity,
      at: iso(f.at),
      seq: e.seq,
      source: e.seq > 0 ? "live" : "import",
    });
  }
  report.rows.fills = await insertKeyed(tx, "fills", FILL_COLUMNS, rows);
}

const FILL_COLUMNS = {
  id: "text",
  user_id: "uuid",
  order_id: "text",
  book_event_id: "text",
  symbol: "text",
  side: "text",
  price_ticks: "bigint",
  qty_lots: "bigint",
  tick_size: "numeric",
  lot_size: "numeric",
  notional_micros: "bigint",
  fee_micros: "bigint",
  realized_pl_micros: "bigint",
  cash_delta_micros: "bigint",
  position_qty_lots: "bigint",
  position_cost_basis_micros: "bigint",
  liquidity: "text",
  at: "timestamptz",
  seq: "bigint",
  source: "text",
};

async function writeLedger(
  tx: HistoryTx,
  events: AccountEvent[],
  lines: Map<string, LedgerLine[]>,
  report: ApplyReport,
): Promise<void> {
  const rows = [];
  for (const e of events) {
    const l = lines.get(e.id) ?? [];
    for (const [i, line] of l.entries()) {
      rows.push({
        event_id: e.id,
        line: i + 1,
        user_id: e.userId,
        seq: e.seq,
        at: iso(e.ts),
        kind: ledgerKind(e.type),
        account: line.account,
        symbol: line.symbol,
        asset: line.asset,
        amount: line.amount,
      });
    }
  }
  report.rows.ledger = await insertKeyed(tx, "ledger_entries", LEDGER_COLUMNS, rows);
}

const LEDGER_COLUMNS = {
  event_id: "text",
  line: "smallint",
  user_id: "uuid",
  seq: "bigint",
  at: "timestamptz",
  kind: "text",
  account: "text",
  symbol: "text",
  asset: "text",
  amount: "bigint",
};

async function writePositions(tx: HistoryTx, events: AccountEvent[], report: ApplyReport): Promise<void> {
  type Row = {
    user_id: string;
    symbol: string;
    qty_lots: number;
    cost_basis_micros: number;
    tick_size: string;
    lot_size: string;
    as_of_seq: number;
    updated_at: string;
  };
  const latest = new Map<string, Row>();
  const consider = (
    e: AccountEvent,
    p: { symbol: string; qtyLots: number; costBasisMicros: number; tickSize: string; lotSize: string },
  ) => {
    const key = `${e.userId}\u0000${p.symbol}`;
    const prev = latest.get(key);
    if (prev && prev.as_of_seq > e.seq) return;
    latest.set(key, {
      user_id: e.userId,
      symbol: p.symbol,
      qty_lots: p.qtyLots,
      cost_basis_micros: p.costBasisMicros,
      tick_size: p.tickSize,
      lot_size: p.lotSize,
      as_of_seq: e.seq,
      updated_at: iso(e.ts),
    });
  };
  for (const e of events) {
    if (e.seq === 0) continue; // imported history is closed: it says nothing about today's positions
    switch (e.type) {
      case "account.fill": {
        const f = e.fill;
        consider(e, { ...f, qtyLots: f.positionQtyLots, costBasisMicros: f.positionCostBasisMicros });
        break;
      }
      case "account.grant": {
        const g = e.grant;
        consider(e, { ...g, qtyLots: g.positionQtyLots, costBasisMicros: g.positionCostBasisMicros });
        break;
      }
      case "account.opened":
        for (const p of e.balances.positions) consider(e, p);
        break;
      case "account.reset":
        for (const p of e.before.positions) consider(e, { ...p, qtyLots: 0, costBasisMicros: 0 });
        for (const p of e.after.positions) consider(e, p);
        break;
      default:
        break;
    }
  }
  report.rows.positions = await insertChunks([...latest.values()], (chunk) =>
    tx.execute(sql`INSERT INTO positions_snapshot (${columnList(POSITION_COLUMNS)})
      SELECT * FROM ${recordset(chunk, POSITION_COLUMNS)}
      ON CONFLICT (user_id, symbol) DO UPDATE SET ${fromExcluded(Object.keys(POSITION_COLUMNS).slice(2))}
      WHERE positions_snapshot.as_of_seq < excluded.as_of_seq`),
  );
}

/** Key first (user_id, symbol), then the columns an update replaces. */
const POSITION_COLUMNS = {
  user_id: "uuid",
  symbol: "text",
  qty_lots: "bigint",
  cost_basis_micros: "bigint",
  tick_size: "numeric",
  lot_size: "numeric",
  as_of_seq: "bigint",
  updated_at: "timestamptz",
};

async function writeDaily(tx: HistoryTx, events: AccountEvent[], report: ApplyReport): Promise<void> {
  type Row = {
    userId: string;
    day: string;
    equityMicros: number | null;
    equitySeq: number;
    realizedPlMicros: number;
    feesMicros: number;
    notionalMicros: number;
    fillCount: number;
    contributionsMicros: number;
  };
  const days = new Map<string, Row>();
  for (const e of events) {
    if (e.type === "account.order") continue;
    const day = utcDay(e.ts);
    const key = `${e.userId}\u0000${day}`;
    let row = days.get(key);
    if (!row) {
      row = {
        userId: e.userId,
        day,
        equityMicros: null,
        equitySeq: 0,
        realizedPlMicros: 0,
        feesMicros: 0,
        notionalMicros: 0,
        fillCount: 0,
        contributionsMicros: 0,
      };
      days.set(key, row);
    }
    let equity: number | null = null;
    switch (e.type) {
      case "account.fill":
        row.realizedPlMicros += e.fill.realizedPlMicros;
        row.feesMicros += e.fill.feeMicros;
        row.notionalMicros += e.fill.notionalMicros;
        row.fillCount += 1;
        equity = e.equityMicros;
        break;
      case "account.grant":
        row.contributionsMicros += e.grant.valueMicros;
        equity = e.equityMicros;
        break;
      case "account.opened":
        row.contributionsMicros += e.balances.startingCashMicros;
        equity = bookValue(e.balances);
        break;
      case "account.reset":
        row.contributionsMicros += e.after.startingCashMicros - e.before.startingCashMicros;
        equity = bookValue(e.after);
        break;
    }
    if (equity !== null && e.seq > 0 && e.seq > row.equitySeq) {
      row.equityMicros = equity;
      row.equitySeq = e.seq;
    }
  }
  const rows = [...days.values()].map((r) => ({
    user_id: r.userId,
    day: r.day,
    equity_micros: r.equityMicros,
    equity_seq: r.equitySeq,
    realized_pl_micros: r.realizedPlMicros,
    fees_micros: r.feesMicros,
    notional_micros: r.notionalMicros,
    fill_count: r.fillCount,
    contributions_micros: r.contributionsMicros,
  }));
  report.rows.daily = await insertChunks(rows, (chunk) =>
    tx.execute(sql`INSERT INTO account_daily AS d (${columnList(DAILY_COLUMNS)})
      SELECT * FROM ${recordset(chunk, DAILY_COLUMNS)}
      ON CONFLICT (user_id, day) DO UPDATE SET
        realized_pl_micros = d.realized_pl_micros + excluded.realized_pl_micros,
        fees_micros = d.fees_micros + excluded.fees_micros,
        notional_micros = d.notional_micros + excluded.notional_micros,
        fill_count = d.fill_count + excluded.fill_count,
        contributions_micros = d.contributions_micros + excluded.contributions_micros,
        equity_micros = CASE WHEN excluded.equity_seq > d.equity_seq THEN excluded.equity_micros ELSE d.equity_micros END,
        equity_seq = greatest(d.equity_seq, excluded.equity_seq)`),
  );
}

const DAILY_COLUMNS = {
  user_id: "uuid",
  day: "date",
  equity_micros: "bigint",
  equity_seq: "bigint",
  realized_pl_micros: "bigint",
  fees_micros: "bigint",
  notional_micros: "bigint",
  fill_count: "integer",
  contributions_micros: "bigint",
};
