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
 * The same function serves the queue consumer (Neon's driver) and the monolith importer (node-postgres).
 */
import { asc, inArray, type SQL, sql } from "drizzle-orm";
import type { PgColumn, PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type { AccountEvent, Balances } from "../../shared/history/events.ts";
import { type LedgerLine, ledgerLines, unbalancedAssets } from "../../shared/history/ledger.ts";
import { isOpen } from "../../shared/orders/lifecycle.ts";
import {
  accountDaily,
  accountStreams,
  fills,
  ledgerEntries,
  orders,
  positionsSnapshot,
  processedEvents,
} from "../db/schema/history.ts";

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

/** Rows per INSERT statement (keeps every statement well under Postgres' 65,535 parameters). */
const CHUNK = 500;

const excluded = (column: PgColumn): SQL => sql.raw(`excluded."${column.name}"`);

/** `SET col = excluded.col` for every given column. */
function fromExcluded(columns: Record<string, PgColumn>): Record<string, SQL> {
  const set: Record<string, SQL> = {};
  for (const [key, column] of Object.entries(columns)) set[key] = excluded(column);
  return set;
}

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
    await tx
      .insert(accountStreams)
      .values(users.map((userId) => ({ userId })))
      .onConflictDoNothing();
    const locked = await tx
      .select({ userId: accountStreams.userId, appliedThrough: accountStreams.appliedThrough })
      .from(accountStreams)
      .where(inArray(accountStreams.userId, users))
      .orderBy(asc(accountStreams.userId))
      .for("update");
    for (const row of locked) through.set(row.userId, row.appliedThrough);
  }

  // 3. Dedupe against what is applied already.
  const candidates: AccountEvent[] = [];
  for (const e of byId.values()) {
    if (e.seq > 0 && e.seq <= (through.get(e.userId.toLowerCase()) ?? 0)) report.duplicates.push(e.id);
    else candidates.push(e);
  }
  const inserted = new Set<string>();
  await insertChunks(candidates, async (chunk) => {
    const rows = await tx
      .insert(processedEvents)
      .values(
        chunk.map((e) => ({ eventId: e.id, userId: e.userId, seq: e.seq > 0 ? e.seq : null, type: e.type })),
      )
      .onConflictDoNothing()
      .returning({ eventId: processedEvents.eventId });
    for (const r of rows) inserted.add(r.eventId);
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
      WHERE s.user_id IN (${sql.join(
        users.map((u) => sql`${u}::uuid`),
        sql`, `,
      )})`);
  }
  return report;
}

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
      userId: e.userId,
      clientOrderId: o.clientOrderId,
      symbol: o.symbol,
      side: o.side,
      type: o.type,
      timeInForce: o.tif,
      status: o.status,
      open: isOpen(o),
      qtyLots: o.qtyLots,
      filledQtyLots: o.filledQtyLots,
      notionalMicros: o.notionalMicros,
      limitTicks: o.limitTicks,
      stopTicks: o.stopTicks,
      reason: o.reason,
      replaces: o.replaces,
      replacedBy: o.replacedBy,
      createdAt: new Date(o.createdAt),
      updatedAt: new Date(o.updatedAt),
      seq: e.seq,
      body: o,
      source: e.seq > 0 ? ("live" as const) : ("import" as const),
    };
  });
  report.rows.orders = await insertChunks(rows, (chunk) =>
    tx
      .insert(orders)
      .values(chunk)
      .onConflictDoUpdate({
        target: orders.id,
        set: fromExcluded(pick(orders as unknown as Record<string, PgColumn>, ORDER_COLUMNS)),
        setWhere: sql`${orders.seq} < excluded.seq`,
      }),
  );
}

const ORDER_COLUMNS = [
  "userId",
  "clientOrderId",
  "symbol",
  "side",
  "type",
  "timeInForce",
  "status",
  "open",
  "qtyLots",
  "filledQtyLots",
  "notionalMicros",
  "limitTicks",
  "stopTicks",
  "reason",
  "replaces",
  "replacedBy",
  "createdAt",
  "updatedAt",
  "seq",
  "body",
  "source",
] as const;

function pick(columns: Record<string, PgColumn>, keys: readonly string[]): Record<string, PgColumn> {
  const out: Record<string, PgColumn> = {};
  for (const k of keys) {
    const c = columns[k];
    if (c) out[k] = c;
  }
  return out;
}

async function writeFills(tx: HistoryTx, events: AccountEvent[], report: ApplyReport): Promise<void> {
  const rows = [];
  for (const e of events) {
    if (e.type !== "account.fill") continue;
    const f = e.fill;
    rows.push({
      id: e.id,
      userId: e.userId,
      orderId: f.orderId,
      bookEventId: f.bookEventId,
      symbol: f.symbol,
      side: f.side,
      priceTicks: f.priceTicks,
      qtyLots: f.qtyLots,
      tickSize: f.tickSize,
      lotSize: f.lotSize,
      notionalMicros: f.notionalMicros,
      feeMicros: f.feeMicros,
      realizedPlMicros: f.realizedPlMicros,
      cashDeltaMicros: f.cashDeltaMicros,
      positionQtyLots: f.positionQtyLots,
      positionCostBasisMicros: f.positionCostBasisMicros,
      liquidity: f.liquidity,
      at: new Date(f.at),
      seq: e.seq,
      source: e.seq > 0 ? ("live" as const) : ("import" as const),
    });
  }
  report.rows.fills = await insertChunks(rows, (chunk) =>
    tx.insert(fills).values(chunk).onConflictDoNothing(),
  );
}

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
        eventId: e.id,
        line: i + 1,
        userId: e.userId,
        seq: e.seq,
        at: new Date(e.ts),
        kind: ledgerKind(e.type),
        account: line.account,
        symbol: line.symbol,
        asset: line.asset,
        amount: line.amount,
      });
    }
  }
  report.rows.ledger = await insertChunks(rows, (chunk) =>
    tx.insert(ledgerEntries).values(chunk).onConflictDoNothing(),
  );
}

async function writePositions(tx: HistoryTx, events: AccountEvent[], report: ApplyReport): Promise<void> {
  type Row = typeof positionsSnapshot.$inferInsert;
  const latest = new Map<string, Row>();
  const consider = (
    e: AccountEvent,
    p: { symbol: string; qtyLots: number; costBasisMicros: number; tickSize: string; lotSize: string },
  ) => {
    const key = `${e.userId}\u0000${p.symbol}`;
    const prev = latest.get(key);
    if (prev && prev.asOfSeq > e.seq) return;
    latest.set(key, {
      userId: e.userId,
      symbol: p.symbol,
      qtyLots: p.qtyLots,
      costBasisMicros: p.costBasisMicros,
      tickSize: p.tickSize,
      lotSize: p.lotSize,
      asOfSeq: e.seq,
      updatedAt: new Date(e.ts),
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
    tx
      .insert(positionsSnapshot)
      .values(chunk)
      .onConflictDoUpdate({
        target: [positionsSnapshot.userId, positionsSnapshot.symbol],
        set: fromExcluded(
          pick(positionsSnapshot as unknown as Record<string, PgColumn>, [
            "qtyLots",
            "costBasisMicros",
            "tickSize",
            "lotSize",
            "asOfSeq",
            "updatedAt",
          ]),
        ),
        setWhere: sql`${positionsSnapshot.asOfSeq} < excluded.as_of_seq`,
      }),
  );
}

async function writeDaily(tx: HistoryTx, events: AccountEvent[], report: ApplyReport): Promise<void> {
  type Row = Required<
    Pick<
      typeof accountDaily.$inferInsert,
      | "userId"
      | "day"
      | "equityMicros"
      | "equitySeq"
      | "realizedPlMicros"
      | "feesMicros"
      | "notionalMicros"
      | "fillCount"
      | "contributionsMicros"
    >
  >;
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
  const d = accountDaily;
  report.rows.daily = await insertChunks([...days.values()], (chunk) =>
    tx
      .insert(accountDaily)
      .values(chunk)
      .onConflictDoUpdate({
        target: [d.userId, d.day],
        set: {
          realizedPlMicros: sql`${d.realizedPlMicros} + excluded.realized_pl_micros`,
          feesMicros: sql`${d.feesMicros} + excluded.fees_micros`,
          notionalMicros: sql`${d.notionalMicros} + excluded.notional_micros`,
          fillCount: sql`${d.fillCount} + excluded.fill_count`,
          contributionsMicros: sql`${d.contributionsMicros} + excluded.contributions_micros`,
          equityMicros: sql`CASE WHEN excluded.equity_seq > ${d.equitySeq} THEN excluded.equity_micros ELSE ${d.equityMicros} END`,
          equitySeq: sql`greatest(${d.equitySeq}, excluded.equity_seq)`,
        },
      }),
  );
}
