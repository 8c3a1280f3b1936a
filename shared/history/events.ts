/**
 * Account events: what a UserSession tells the system of record (Postgres) about one account, through its
 * transactional outbox and the `trade-events` Queue.
 *
 * The OrderBook's {@link TradeEventMessage}s say what happened at a book; only the UserSession knows what a
 * fill did to an account (fee, realized PnL at average cost, position after), so it publishes these events
 * beside the book's, on the same queue, told apart by `kind: "account"` (book messages have no `kind`) and
 * by `type` names that never collide with the book's (`account.fill`, not `fill`).
 *
 * - Every event carries a stable `id` (dedupe key) and the account's sequence number `seq` (1, 2, 3, …
 *   without gaps: the outbox assigns it in the same SQLite transaction as the change). Consumers use `seq`
 *   to keep the newest snapshot of an order when deliveries arrive out of order, and to know how far a
 *   user's history is complete (`account_streams.applied_through`).
 * - Imported history (the monolith importer) uses `seq: 0`: it belongs to no live stream.
 * - Money in micro-USD, prices in ticks, quantities in lots, all safe integers; `tickSize` / `lotSize` give
 *   the decimals.
 *
 * Pure: types, ids and a zod schema; no Workers, Node or Postgres APIs.
 */
import { z } from "zod";
import type { OrderRecord } from "../orders/lifecycle.ts";

export const ACCOUNT_EVENT_VERSION = 1;

/** An open position as the ledger sees it: lots and average-cost basis. */
export interface PositionBalance {
  symbol: string;
  qtyLots: number;
  costBasisMicros: number;
  tickSize: string;
  lotSize: string;
}

/** The ledger terms of an account at one moment (see docs/account-model.md, "The ledger"). */
export interface Balances {
  cashMicros: number;
  /** Contributed capital: starting cash plus the value of granted shares. */
  startingCashMicros: number;
  realizedPlMicros: number;
  feesMicros: number;
  /** Sorted by symbol. */
  positions: PositionBalance[];
}

/** One execution as it changed one account. */
export interface HistoryFill {
  /** The book's event id `${symbol}:${seq}` (Alpaca's activity id). */
  bookEventId: string;
  orderId: string;
  symbol: string;
  side: "buy" | "sell";
  priceTicks: number;
  qtyLots: number;
  tickSize: string;
  lotSize: string;
  notionalMicros: number;
  feeMicros: number;
  realizedPlMicros: number;
  /** −notional − fee (buy), +notional − fee (sell). */
  cashDeltaMicros: number;
  positionQtyLots: number;
  positionCostBasisMicros: number;
  liquidity: "maker" | "taker";
  /** When the book matched it (ms since epoch). */
  at: number;
}

export interface HistoryGrant {
  symbol: string;
  qtyLots: number;
  priceTicks: number;
  /** Cost basis added (= contributed capital), micro-USD. */
  valueMicros: number;
  tickSize: string;
  lotSize: string;
  positionQtyLots: number;
  positionCostBasisMicros: number;
}

interface AccountEventBase {
  kind: "account";
  v: typeof ACCOUNT_EVENT_VERSION;
  /** Stable event id, see {@link accountEventIds}. */
  id: string;
  userId: string;
  /** Position in the account's event stream (1, 2, …); 0 for imported history. */
  seq: number;
  /** When the UserSession committed the change (ms since epoch). */
  ts: number;
  /** The account's epoch (number of resets) at the event. */
  epoch: number;
}

export type AccountEventBody =
  | {
      /** The account's opening balances: a new account, or an existing one when its outbox was installed. */
      type: "account.opened";
      balances: Balances;
      /** True when the balances were carried over from an account that existed before the outbox. */
      carriedOver: boolean;
    }
  | {
      /** A snapshot of an order after a change (every state: pending_new … filled, canceled, rejected). */
      type: "account.order";
      order: OrderRecord;
    }
  | { type: "account.fill"; fill: HistoryFill; equityMicros: number | null }
  | { type: "account.grant"; grant: HistoryGrant; equityMicros: number | null }
  | {
      /** Back to the starting state: everything in `before` is closed, `after` opens the new epoch. */
      type: "account.reset";
      before: Balances;
      after: Balances;
    };

export type AccountEvent = AccountEventBase & AccountEventBody;
export type AccountEventType = AccountEvent["type"];

/**
 * Stable ids of account events. A fill's id derives from the book's event id and the order, so the same
 * execution can never be booked twice even by a buggy producer; the others are keyed by the account's
 * sequence number, which the outbox stores with the row (redelivery sends the same id).
 *
 * @example
 * accountEventIds.fill("BOLT:17", "6f0c…");   // "fill:BOLT:17:6f0c…"
 * accountEventIds.order("6f0c…", 42);         // "order:6f0c…:42"
 */
export const accountEventIds = {
  opened: (userId: string, seq: number) => `opened:${userId}:${seq}`,
  order: (orderId: string, seq: number) => `order:${orderId}:${seq}`,
  fill: (bookEventId: string, orderId: string) => `fill:${bookEventId}:${orderId}`,
  grant: (userId: string, seq: number) => `grant:${userId}:${seq}`,
  reset: (userId: string, seq: number) => `reset:${userId}:${seq}`,
} as const;

/** Whether a queue message body claims to be an account event (its schema is checked separately). */
export function isAccountEventBody(body: unknown): boolean {
  return typeof body === "object" && body !== null && (body as { kind?: unknown }).kind === "account";
}

// --- schema (the consumer validates every message; a message that fails is poison) ----------------------

const int = z.number().int();
const nonNegative = int.min(0);
const decimalString = z.string().regex(/^\d+(\.\d+)?$/);
const symbol = z.string().min(1).max(16);
const id = z.string().min(1).max(300);

const positionBalance = z.object({
  symbol,
  qtyLots: nonNegative,
  costBasisMicros: nonNegative,
  tickSize: decimalString,
  lotSize: decimalString,
});

const balances = z.object({
  cashMicros: int,
  startingCashMicros: int,
  realizedPlMicros: int,
  feesMicros: nonNegative,
  positions: z.array(positionBalance).max(10_000),
});

const nullableInt = int.nullable();
const nullableTime = nonNegative.nullable();

/** The fields of an order snapshot the history tables use; the rest is kept as the body. */
const orderRecord = z.looseObject({
  id,
  clientOrderId: z.string().min(1).max(300),
  account: z.string().min(1),
  symbol,
  side: z.enum(["buy", "sell"]),
  type: z.enum(["market", "limit", "stop", "stop_limit"]),
  tif: z.string().min(1).max(8),
  qtyLots: nonNegative,
  notionalMicros: nullableInt,
  limitTicks: nullableInt,
  stopTicks: nullableInt,
  filledQtyLots: nonNegative,
  filledValue: z.number().min(0),
  status: z.enum([
    "pending_new",
    "new",
    "partially_filled",
    "filled",
    "canceled",
    "expired",
    "replaced",
    "rejected",
  ]),
  reason: z.string().max(200).nullable(),
  createdAt: nonNegative,
  updatedAt: nonNegative,
  submittedAt: nonNegative,
  filledAt: nullableTime,
  canceledAt: nullableTime,
  expiredAt: nullableTime,
  failedAt: nullableTime,
  replacedAt: nullableTime,
  replacedBy: z.string().nullable(),
  replaces: z.string().nullable(),
  expiresAt: nullableTime,
});

const fill = z.object({
  bookEventId: id,
  orderId: id,
  symbol,
  side: z.enum(["buy", "sell"]),
  priceTicks: int.min(1),
  qtyLots: int.min(1),
  tickSize: decimalString,
  lotSize: decimalString,
  notionalMicros: nonNegative,
  feeMicros: nonNegative,
  realizedPlMicros: int,
  cashDeltaMicros: int,
  positionQtyLots: nonNegative,
  positionCostBasisMicros: nonNegative,
  liquidity: z.enum(["maker", "taker"]),
  at: nonNegative,
});

const grant = z.object({
  symbol,
  qtyLots: int.min(1),
  priceTicks: int.min(1),
  valueMicros: nonNegative,
  tickSize: decimalString,
  lotSize: decimalString,
  positionQtyLots: nonNegative,
  positionCostBasisMicros: nonNegative,
});

const base = {
  kind: z.literal("account"),
  v: z.literal(ACCOUNT_EVENT_VERSION),
  id,
  userId: z.guid(),
  seq: nonNegative,
  ts: nonNegative,
  epoch: nonNegative,
};

export const accountEventSchema = z.discriminatedUnion("type", [
  z.object({ ...base, type: z.literal("account.opened"), balances, carriedOver: z.boolean() }),
  z.object({ ...base, type: z.literal("account.order"), order: orderRecord }),
  z.object({ ...base, type: z.literal("account.fill"), fill, equityMicros: nullableInt }),
  z.object({ ...base, type: z.literal("account.grant"), grant, equityMicros: nullableInt }),
  z.object({ ...base, type: z.literal("account.reset"), before: balances, after: balances }),
]);

/** Parses a queue message body as an account event; `{ ok: false, error }` names what is wrong. */
export function parseAccountEvent(
  body: unknown,
): { ok: true; event: AccountEvent } | { ok: false; error: string } {
  const parsed = accountEventSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `${issue?.path.join(".") || "(body)"}: ${issue?.message ?? "invalid"}` };
  }
  return { ok: true, event: parsed.data as unknown as AccountEvent };
}
