/**
 * The data behind `GET /v1/analytics/me` (docs/analytics.md): a user's fills, the lots they received
 * without trading (grants, opening balances), their resets and daily equity rows, read from the user's
 * shard in **one statement** (one snapshot) together with the user's `applied_through` watermark. The
 * figures are computed by the pure `computeUserAnalytics`.
 *
 * Rows travel as compact JSON arrays (≈ 100 bytes per fill), so a user with 50,000 fills is ≈ 5 MB.
 */
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type { AnalyticsDay, AnalyticsEvent } from "../../shared/analytics/user.ts";

// biome-ignore lint/suspicious/noExplicitAny: any drizzle Postgres database (replica, primary, node-postgres)
type Db = PgDatabase<PgQueryResultHKT, any, any>;

export interface UserAnalyticsData {
  /** The user's `applied_through` in the same snapshot; null when Postgres has no history of the user. */
  through: number | null;
  events: AnalyticsEvent[];
  days: AnalyticsDay[];
}

type FillTuple = [
  number,
  number,
  string,
  string,
  "buy" | "sell",
  number,
  string,
  number,
  number,
  number,
  number,
];
type LedgerTuple = ["opened" | "grant" | "reset", number, number, string | null, number];
type DayTuple = [string, number | null, number];

/** The statement (exported so tests can EXPLAIN it). */
export function userAnalyticsQuery(userId: string) {
  return sql`
    SELECT
      (SELECT applied_through FROM account_streams WHERE user_id = ${userId}::uuid) AS through,
      (SELECT coalesce(json_agg(json_build_array(f.seq, (extract(epoch FROM f.at) * 1000)::bigint, f.order_id,
          f.symbol, f.side, f.qty_lots, f.lot_size::text, f.notional_micros, f.fee_micros, f.realized_pl_micros,
          f.position_qty_lots) ORDER BY f.seq), '[]'::json)
        FROM fills f WHERE f.user_id = ${userId}::uuid AND f.source = 'live') AS fills,
      (SELECT coalesce(json_agg(json_build_array(l.kind, l.seq, (extract(epoch FROM l.at) * 1000)::bigint,
          l.symbol, l.amount) ORDER BY l.seq, l.line), '[]'::json)
        FROM ledger_entries l
        WHERE l.user_id = ${userId}::uuid AND l.kind <> 'fill' AND l.seq > 0
          AND ((l.kind IN ('opened', 'grant') AND l.account = 'position' AND l.asset = l.symbol AND l.amount > 0)
            OR (l.kind = 'reset' AND l.line = 1))) AS ledger,
      (SELECT coalesce(json_agg(json_build_array(d.day::text, d.equity_micros, d.contributions_micros)
          ORDER BY d.day), '[]'::json)
        FROM account_daily d WHERE d.user_id = ${userId}::uuid) AS days`;
}

const parse = <T>(v: unknown): T => (typeof v === "string" ? (JSON.parse(v) as T) : (v as T));

export async function loadUserAnalytics(database: Db, userId: string): Promise<UserAnalyticsData> {
  const result = await database.execute(userAnalyticsQuery(userId.toLowerCase()));
  const rows = Array.isArray(result) ? result : ((result as { rows?: unknown[] }).rows ?? []);
  const row = (rows[0] ?? {}) as { through: unknown; fills: unknown; ledger: unknown; days: unknown };
  const events: AnalyticsEvent[] = [];
  for (const f of parse<FillTuple[]>(row.fills) ?? []) {
    events.push({
      kind: "fill",
      seq: Number(f[0]),
      at: Number(f[1]),
      orderId: f[2],
      symbol: f[3],
      side: f[4],
      qtyLots: Number(f[5]),
      lotSize: f[6],
      notionalMicros: Number(f[7]),
      feeMicros: Number(f[8]),
      realizedPlMicros: Number(f[9]),
      positionQtyLots: Number(f[10]),
    });
  }
  for (const [kind, seq, at, symbol, amount] of parse<LedgerTuple[]>(row.ledger) ?? []) {
    if (kind === "reset") events.push({ kind: "reset", seq: Number(seq), at: Number(at) });
    else if (symbol !== null) {
      events.push({ kind: "lots", seq: Number(seq), at: Number(at), symbol, qtyLots: Number(amount) });
    }
  }
  const days: AnalyticsDay[] = (parse<DayTuple[]>(row.days) ?? []).map(([day, equity, contributions]) => ({
    day,
    equityMicros: equity === null ? null : Number(equity),
    contributionsMicros: Number(contributions),
  }));
  return {
    through: row.through === null || row.through === undefined ? null : Number(row.through),
    events,
    days,
  };
}
