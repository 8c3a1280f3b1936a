/**
 * Platform analytics facts from account events (issue: analytics): what the `analytics` processor of the
 * trade-events consumer counts, each exactly once, into per-minute rows in the global database.
 *
 * A **fact** has a stable key; the consumer inserts the keys of a batch into `analytics_facts` with
 * `ON CONFLICT DO NOTHING RETURNING` and adds only the facts it returns to the counters, so redelivery,
 * reordering and concurrent consumers never count a fact twice. Every fact is fixed by its event alone
 * (its minute too), so the counters do not depend on delivery order.
 *
 * | key                 | from                                   | minute of      | adds                       |
 * |---------------------|----------------------------------------|----------------|----------------------------|
 * | `o:<order id>`      | any snapshot of an order               | `createdAt`    | `orders` / symbol: 1       |
 * | `r:<order id>`      | a snapshot with status `rejected`      | `failedAt`     | `rejections` / reason: 1   |
 * | `f:<event id>`      | `account.fill` (one per account side)  | the fill's `at`| `account_fills`, `fees` / symbol |
 *
 * Active users are (minute, user) pairs of users whose orders or fills changed in that minute, kept as
 * a set (`analytics_active_users`), so distinct counts over any interval are exact.
 *
 * Pure: no I/O.
 */
import type { AccountEvent } from "../history/events.ts";

export type FactMetric = "orders" | "rejections" | "account_fills" | "fees";

export interface FactCount {
  metric: FactMetric;
  /** Symbol (orders, fills, fees) or rejection reason. */
  dim: string;
  value: number;
}

export interface Fact {
  key: string;
  /** Start of the minute the fact belongs to, ms since the epoch. */
  minute: number;
  counts: FactCount[];
  /** The event the fact came from (for the Analytics Engine data point written once it is new). */
  event: AccountEvent;
}

export interface ActiveUser {
  minute: number;
  userId: string;
  bot: boolean;
}

export const MINUTE_MS = 60_000;
export const minuteOf = (ms: number): number => ms - (((ms % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);

/** Rejection reasons are short codes; anything longer or empty is cut or named. */
const reasonOf = (reason: string | null): string => (reason ? reason.slice(0, 64) : "unspecified");

/**
 * The facts and active users of a batch of account events, each key once (the first occurrence wins;
 * every occurrence of a key yields the same fact).
 */
export function analyticsFacts(
  events: readonly AccountEvent[],
  isBot: (userId: string) => boolean = () => false,
): { facts: Fact[]; activeUsers: ActiveUser[] } {
  const facts = new Map<string, Fact>();
  const active = new Map<string, ActiveUser>();
  const add = (fact: Fact) => {
    if (!facts.has(fact.key)) facts.set(fact.key, fact);
  };
  const touch = (userId: string, ms: number) => {
    const minute = minuteOf(ms);
    const id = userId.toLowerCase();
    const key = `${minute}:${id}`;
    if (!active.has(key)) active.set(key, { minute, userId: id, bot: isBot(id) });
  };
  for (const e of events) {
    if (e.type === "account.order") {
      const o = e.order;
      add({
        key: `o:${o.id}`,
        minute: minuteOf(o.createdAt),
        counts: [{ metric: "orders", dim: o.symbol, value: 1 }],
        event: e,
      });
      if (o.status === "rejected") {
        add({
          key: `r:${o.id}`,
          minute: minuteOf(o.failedAt ?? o.updatedAt),
          counts: [{ metric: "rejections", dim: reasonOf(o.reason), value: 1 }],
          event: e,
        });
      }
      touch(e.userId, e.ts);
    } else if (e.type === "account.fill") {
      const f = e.fill;
      add({
        key: `f:${e.id}`,
        minute: minuteOf(f.at),
        counts: [
          { metric: "account_fills", dim: f.symbol, value: 1 },
          { metric: "fees", dim: f.symbol, value: f.feeMicros },
        ],
        event: e,
      });
      touch(e.userId, e.ts);
    }
  }
  return { facts: [...facts.values()], activeUsers: [...active.values()] };
}
