/**
 * Reconciliation: does the Postgres ledger of a user add up to the live account in its
 * UserSession?
 *
 * 1. Ask the UserSession for its balances and the seq of its latest event (`ledgerBalances`).
 * 2. Read the user's `applied_through` on the shard's primary. If it is below that seq, Postgres has not
 *    received everything yet: `pending` (try again later; a user that stays pending has a stuck outbox or
 *    an event in the dead-letter queue).
 * 3. Otherwise sum the user's ledger lines with `seq <= that seq` (events at or below it are all there and
 *    never change, so the sum is exact whatever was applied since) and compare term by term: `ok` or
 *    `mismatch` with the differences.
 */
import { and, eq, lte, sql } from "drizzle-orm";
import {
  type BalanceDifference,
  balancesFromLedger,
  compareBalances,
  type LedgerSum,
} from "../../shared/history/ledger.ts";
import type { Databases } from "../db/index.ts";
import { accountStreams, ledgerEntries } from "../db/schema/history.ts";
import type { Env } from "../env.ts";

export interface ReconcileResult {
  user_id: string;
  shard: number;
  status: "ok" | "pending" | "mismatch" | "no_account";
  /** The UserSession's latest account event seq. */
  session_seq: number;
  /** How far Postgres holds the user's events without gaps (null: nothing yet). */
  applied_through: number | null;
  /** Outbox rows the UserSession has not published yet (failing: those that failed at least once). */
  outbox: { rows: number; failing: number };
  differences: BalanceDifference[];
}

export async function reconcileUser(env: Env, dbs: Databases, userId: string): Promise<ReconcileResult> {
  const stub = env.USER_SESSION.get(env.USER_SESSION.idFromName(userId));
  const live = await stub.ledgerBalances(userId);
  const shard = dbs.shardOf(userId);
  const primary = dbs.shard(shard).$primary;
  const [stream] = await primary
    .select({ through: accountStreams.appliedThrough })
    .from(accountStreams)
    .where(eq(accountStreams.userId, userId));
  const through = stream?.through ?? null;
  const base = {
    user_id: userId,
    shard,
    session_seq: live.seq,
    applied_through: through,
    outbox: live.outbox,
    differences: [] as BalanceDifference[],
  };
  if (live.balances === null) return { ...base, status: through === null ? "no_account" : "mismatch" };
  if (through === null || through < live.seq) return { ...base, status: "pending" };
  const sums: LedgerSum[] = await primary
    .select({
      account: ledgerEntries.account,
      symbol: ledgerEntries.symbol,
      asset: ledgerEntries.asset,
      amount: sql<string>`sum(${ledgerEntries.amount})`,
    })
    .from(ledgerEntries)
    .where(and(eq(ledgerEntries.userId, userId), lte(ledgerEntries.seq, live.seq)))
    .groupBy(ledgerEntries.account, ledgerEntries.symbol, ledgerEntries.asset);
  const differences = compareBalances(live.balances, balancesFromLedger(sums));
  return { ...base, status: differences.length === 0 ? "ok" : "mismatch", differences };
}
