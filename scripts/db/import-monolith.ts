/**
 * Importer of users and trading sessions exported from the old monolith. Idempotent: running
 * it again with the same file changes nothing; a file that grew is imported incrementally.
 *
 * Format (`prepx-monolith-export`, version 1; documented in docs/history.md):
 *
 * ```json
 * { "format": "prepx-monolith-export", "version": 1, "exported_at": "2026-10-31T23:00:00Z",
 *   "users": [{
 *     "id": "0b6c…uuid", "email": "ann@example.com", "display_name": "Ann", "role": "trader",
 *     "created_at": "2025-02-01T10:00:00Z", "password_hash": "pbkdf2-sha256$100000$…" | null,
 *     "sessions": [{
 *       "id": "s-17", "started_at": "…", "ended_at": "…", "starting_cash": "100000.00",
 *       "orders": [{ "id": "o-1", "client_order_id": "c-1", "symbol": "ACME", "side": "buy",
 *                    "type": "limit", "time_in_force": "day", "qty": "10", "limit_price": "100.00",
 *                    "stop_price": null, "status": "filled", "created_at": "…", "updated_at": "…" }],
 *       "fills": [{ "id": "f-1", "order_id": "o-1", "price": "100.00", "qty": "10", "fee": "0.15",
 *                   "at": "…" }] }] }] }
 * ```
 *
 * Each user: the `users` row on the user's shard (by the shard map) and the email in the global
 * directory; a user whose email belongs to someone else is reported and skipped. Each session is replayed
 * with the account model's average-cost arithmetic into account events (`seq: 0`, ids
 * `import:<user>:<session>:…`) and written by the same writer as the queue consumer, in one transaction per
 * user: orders, fills, ledger lines, per-day figures, deduplicated by event id. A session is closed
 * history: it opens with its starting cash and ends with closing entries, so it nets to zero in the
 * ledger and the live account (the UserSession) is not affected.
 */
import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { z } from "zod";
import { releasedBasis } from "../../shared/account/position.ts";
import { parseMicros } from "../../shared/decimal.ts";
import { notionalMicros, priceToTicks, qtyToLots } from "../../shared/engine/rules.ts";
import type { AccountEvent, Balances } from "../../shared/history/events.ts";
import type { OrderRecord } from "../../shared/orders/lifecycle.ts";
import { applyAccountEvents } from "../../workers/consumers/history.ts";
import { parseShardMap, shardOf } from "../../workers/db/shards.ts";
import { Pool, withClient } from "../stack/pg.ts";
import type { Logger } from "../stack/util.ts";

export const EXPORT_FORMAT = "prepx-monolith-export";

const decimal = z.string().regex(/^\d+(\.\d+)?$/, "a non-negative decimal string");
const time = z.string().refine((s) => !Number.isNaN(Date.parse(s)), "an ISO 8601 time");

const orderSchema = z.object({
  id: z.string().min(1).max(128),
  client_order_id: z.string().min(1).max(128).optional(),
  symbol: z.string().regex(/^[A-Z][A-Z0-9.-]{0,15}$/),
  side: z.enum(["buy", "sell"]),
  type: z.enum(["market", "limit", "stop", "stop_limit"]),
  time_in_force: z.enum(["day", "gtc", "ioc", "fok"]),
  qty: decimal,
  limit_price: decimal.nullable().optional(),
  stop_price: decimal.nullable().optional(),
  status: z.enum(["filled", "partially_filled", "canceled", "expired", "rejected", "replaced", "new"]),
  created_at: time,
  updated_at: time.optional(),
});

const fillSchema = z.object({
  id: z.string().min(1).max(128),
  order_id: z.string().min(1).max(128),
  price: decimal,
  qty: decimal,
  fee: decimal.default("0"),
  at: time,
});

const sessionSchema = z.object({
  id: z.string().min(1).max(64),
  started_at: time,
  ended_at: time.optional(),
  starting_cash: decimal,
  orders: z.array(orderSchema).default([]),
  fills: z.array(fillSchema).default([]),
});

const userSchema = z.object({
  id: z.guid(),
  email: z.email().transform((e) => e.toLowerCase()),
  display_name: z.string().min(1).max(100),
  role: z.enum(["trader", "admin"]).default("trader"),
  created_at: time,
  password_hash: z.string().nullable().optional(),
  sessions: z.array(sessionSchema).default([]),
});

export const exportSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  version: z.literal(1),
  exported_at: time,
  users: z.array(userSchema),
});

export type MonolithExport = z.input<typeof exportSchema>;
type ExportUser = z.output<typeof userSchema>;
type ExportSession = z.output<typeof sessionSchema>;

/** A password hash that never verifies: imported users without one must get a new password. */
export const LOCKED_PASSWORD_HASH = "imported$locked";

export interface SymbolUnitsRow {
  symbol: string;
  tickSize: string;
  lotSize: string;
}

export interface ImportReport {
  users: { created: number; existing: number; skipped: { id: string; reason: string }[] };
  sessions: number;
  events: { applied: number; duplicates: number };
}

/** A UUID-shaped id (version 8, "custom") derived from `text`: stable across runs. */
export function stableUuid(text: string): string {
  const h = createHash("sha256").update(text).digest("hex");
  const variant = ((Number.parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const ms = (iso: string) => Date.parse(iso);

/**
 * The account events of one session (seq 0). Throws with the session and fill named when the session
 * does not add up (an unknown order or symbol, a sell of more than was held).
 */
export function sessionEvents(
  user: ExportUser,
  session: ExportSession,
  units: ReadonlyMap<string, SymbolUnitsRow>,
): AccountEvent[] {
  const where = `user ${user.id} session ${session.id}`;
  const prefix = `import:${user.id}:${session.id}`;
  const starting = parseMicros(session.starting_cash);
  if (!starting.ok) throw new Error(`${where}: starting_cash ${session.starting_cash} is not an amount`);
  const events: AccountEvent[] = [];
  const head = (id: string, ts: number) => ({
    kind: "account" as const,
    v: 1 as const,
    id,
    userId: user.id,
    seq: 0,
    ts,
    epoch: 0,
  });
  const opened: Balances = {
    cashMicros: starting.value,
    startingCashMicros: starting.value,
    realizedPlMicros: 0,
    feesMicros: 0,
    positions: [],
  };
  events.push({
    ...head(`${prefix}:opened`, ms(session.started_at)),
    type: "account.opened",
    balances: opened,
    carriedOver: false,
  });

  const orders = new Map<string, OrderRecord>();
  for (const o of session.orders) {
    const u = units.get(o.symbol);
    if (!u) throw new Error(`${where}: order ${o.id}: unknown symbol ${o.symbol}`);
    const lots = qtyToLots(u, o.qty);
    if (!lots.ok) throw new Error(`${where}: order ${o.id}: qty ${o.qty} is not a whole number of lots`);
    const ticks = (p: string | null | undefined) => {
      if (p === null || p === undefined) return null;
      const t = priceToTicks(u, p);
      if (!t.ok) throw new Error(`${where}: order ${o.id}: price ${p} is not on the tick grid`);
      return t.value;
    };
    const created = ms(o.created_at);
    const updated = ms(o.updated_at ?? o.created_at);
    orders.set(o.id, {
      id: stableUuid(`prepx-import:${user.id}:${o.id}`),
      clientOrderId: o.client_order_id ?? `import-${o.id}`,
      account: user.id,
      symbol: o.symbol,
      side: o.side,
      type: o.type,
      tif: o.time_in_force,
      qtyLots: lots.value,
      notionalMicros: null,
      limitTicks: ticks(o.limit_price),
      stopTicks: ticks(o.stop_price),
      filledQtyLots: 0,
      filledValue: 0,
      status: o.status,
      reason: null,
      createdAt: created,
      updatedAt: updated,
      submittedAt: created,
      filledAt: null,
      canceledAt: o.status === "canceled" ? updated : null,
      expiredAt: o.status === "expired" ? updated : null,
      failedAt: o.status === "rejected" ? updated : null,
      replacedAt: o.status === "replaced" ? updated : null,
      replacedBy: null,
      replaces: null,
      expiresAt: null,
      lastSeq: 0,
    });
  }

  let cash = starting.value;
  let realized = 0;
  let fees = 0;
  const positions = new Map<string, { qty: number; basis: number; u: SymbolUnitsRow }>();
  const fills = [...session.fills].sort((a, b) => ms(a.at) - ms(b.at) || (a.id < b.id ? -1 : 1));
  for (const f of fills) {
    const exportOrder = session.orders.find((o) => o.id === f.order_id);
    const order = orders.get(f.order_id);
    if (!exportOrder || !order) throw new Error(`${where}: fill ${f.id}: no order ${f.order_id}`);
    const u = units.get(order.symbol) as SymbolUnitsRow;
    const price = priceToTicks(u, f.price);
    const qty = qtyToLots(u, f.qty);
    const fee = parseMicros(f.fee);
    if (!price.ok || !qty.ok || !fee.ok)
      throw new Error(`${where}: fill ${f.id}: price, qty or fee is not valid`);
    const value = notionalMicros(u, price.value, qty.value);
    if (!value.ok) throw new Error(`${where}: fill ${f.id}: notional is not a whole number of micro-USD`);
    const notional = value.value;
    const p = positions.get(order.symbol) ?? { qty: 0, basis: 0, u };
    let realizedHere = 0;
    if (order.side === "buy") {
      p.qty += qty.value;
      p.basis += notional;
      cash -= notional + fee.value;
    } else {
      if (qty.value > p.qty)
        throw new Error(`${where}: fill ${f.id} sells ${f.qty} ${order.symbol} but holds less`);
      const released = releasedBasis(p.basis, p.qty, qty.value);
      realizedHere = notional - released;
      p.qty -= qty.value;
      p.basis -= released;
      cash += notional - fee.value;
    }
    positions.set(order.symbol, p);
    realized += realizedHere;
    fees += fee.value;
    order.filledQtyLots += qty.value;
    order.filledValue += price.value * qty.value;
    order.filledAt = ms(f.at);
    events.push({
      ...head(`${prefix}:fill:${f.id}`, ms(f.at)),
      type: "account.fill",
      fill: {
        bookEventId: `${order.symbol}:import-${f.id}`,
        orderId: order.id,
        symbol: order.symbol,
        side: order.side,
        priceTicks: price.value,
        qtyLots: qty.value,
        tickSize: u.tickSize,
        lotSize: u.lotSize,
        notionalMicros: notional,
        feeMicros: fee.value,
        realizedPlMicros: realizedHere,
        cashDeltaMicros: order.side === "buy" ? -(notional + fee.value) : notional - fee.value,
        positionQtyLots: p.qty,
        positionCostBasisMicros: p.basis,
        liquidity: "taker",
        at: ms(f.at),
      },
      equityMicros: null,
    });
  }
  for (const order of orders.values()) {
    events.push({ ...head(`${prefix}:order:${order.id}`, order.updatedAt), type: "account.order", order });
  }
  // Close the session: everything it held goes back, so it nets to zero in the ledger.
  const before: Balances = {
    cashMicros: cash,
    startingCashMicros: starting.value,
    realizedPlMicros: realized,
    feesMicros: fees,
    positions: [...positions]
      .filter(([, p]) => p.qty > 0 || p.basis > 0)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([symbol, p]) => ({
        symbol,
        qtyLots: p.qty,
        costBasisMicros: p.basis,
        tickSize: p.u.tickSize,
        lotSize: p.u.lotSize,
      })),
  };
  const empty: Balances = {
    cashMicros: 0,
    startingCashMicros: 0,
    realizedPlMicros: 0,
    feesMicros: 0,
    positions: [],
  };
  const end = ms(session.ended_at ?? session.fills.at(-1)?.at ?? session.started_at);
  events.push({ ...head(`${prefix}:closed`, end), type: "account.reset", before, after: empty });
  return events;
}

export interface ImportOptions {
  globalUrl: string;
  shardUrls: string[];
  /** The optional SHARD_MAP override (as the worker sees it). */
  shardMap?: string;
  log?: Logger;
}

/** Imports `data` (parsed and validated here). */
export async function importMonolith(data: unknown, opts: ImportOptions): Promise<ImportReport> {
  const log = opts.log ?? (() => {});
  const parsed = exportSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`not a ${EXPORT_FORMAT} v1 file: ${issue?.path.join(".")}: ${issue?.message}`);
  }
  const map = parseShardMap(opts.shardMap, opts.shardUrls.length);
  const report: ImportReport = {
    users: { created: 0, existing: 0, skipped: [] },
    sessions: 0,
    events: { applied: 0, duplicates: 0 },
  };
  const units = await withClient(opts.globalUrl, async (g) => {
    const { rows } = await g.query<{ symbol: string; tick_size: string; lot_size: string }>(
      "SELECT symbol, tick_size::text, lot_size::text FROM symbols",
    );
    return new Map(
      rows.map((r) => [r.symbol, { symbol: r.symbol, tickSize: r.tick_size, lotSize: r.lot_size }]),
    );
  });
  const pools = opts.shardUrls.map((url) => new Pool({ connectionString: url, max: 1 }));
  try {
    await withClient(opts.globalUrl, async (global) => {
      for (const user of parsed.data.users) {
        const shard = shardOf(user.id, map);
        // Replay first: a session that does not add up stops this user before anything is written.
        let events: AccountEvent[];
        try {
          events = user.sessions.flatMap((s) => sessionEvents(user, s, units));
        } catch (err) {
          report.users.skipped.push({ id: user.id, reason: (err as Error).message });
          continue;
        }
        const { rows: owner } = await global.query<{ user_id: string }>(
          "SELECT user_id FROM email_directory WHERE email = $1",
          [user.email],
        );
        if (owner[0] && owner[0].user_id !== user.id) {
          report.users.skipped.push({ id: user.id, reason: `email ${user.email} belongs to another user` });
          continue;
        }
        const pool = pools[shard];
        if (!pool) throw new Error(`no shard URL for shard ${shard}`);
        const applied = await drizzle({ client: pool as never }).transaction(async (tx) => {
          const inserted = await tx.execute(
            // Shard row first, then the email claim (as registration does).
            sqlUser(user),
          );
          const r = await applyAccountEvents(tx, events);
          return { created: (inserted.rowCount ?? 0) > 0, r };
        });
        await global.query(
          "INSERT INTO email_directory (email, user_id, shard) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING",
          [user.email, user.id, shard],
        );
        if (applied.created) report.users.created++;
        else report.users.existing++;
        report.sessions += user.sessions.length;
        report.events.applied += applied.r.applied.length;
        report.events.duplicates += applied.r.duplicates.length;
        log(
          `import: ${user.email} → shard ${shard}: ${applied.r.applied.length} events new, ${applied.r.duplicates.length} known`,
        );
      }
    });
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
  return report;
}

function sqlUser(user: ExportUser) {
  return sql`INSERT INTO users (id, email, display_name, password_hash, role, created_at)
    VALUES (${user.id}, ${user.email}, ${user.display_name}, ${user.password_hash ?? LOCKED_PASSWORD_HASH},
      ${user.role}, ${new Date(user.created_at).toISOString()})
    ON CONFLICT (id) DO NOTHING`;
}
