// A random trading session between a few accounts, run on the pure account model (the same code the
// UserSession runs), producing the account events a UserSession outbox would publish. Used by the
// history consumer tests to feed the real Postgres writer with realistic, internally consistent events.
import {
  type Account,
  type AccountSymbolRules,
  applyFill,
  applyOrderClosed,
  createAccount,
  grantPosition,
  qtyAvailableLots,
  reserveForOrder,
  reset,
} from "../../shared/account/index.ts";
import { type AccountEvent, type AccountEventBody, accountEventIds } from "../../shared/history/events.ts";
import { balancesOf } from "../../shared/history/ledger.ts";
import { newOrderRecord, type OrderRecord } from "../../shared/orders/lifecycle.ts";

/** mulberry32: a small seeded PRNG, so a failing session can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYMBOLS: Record<string, number> = { ACME: 10_000, BOLT: 4_250, CRUX: 25_000 };

const rulesOf = (symbol: string): AccountSymbolRules => ({
  symbol,
  tickSize: "0.01",
  lotSize: "1",
  minQtyLots: 1,
  maxQtyLots: 1_000_000,
  minNotionalTicksLots: 0,
  fees: { notionalBps: "1.5", perUnit: "0.001" },
});

export interface SimSession {
  userIds: string[];
  /** Every event, in the order the accounts produced them. */
  events: AccountEvent[];
  accounts: Map<string, Account>;
}

export function simulateSession(opts: {
  /** The accounts that trade (at least two). */
  userIds: string[];
  steps: number;
  seed: number;
  start?: number;
}): SimSession {
  const rand = prng(opts.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  let clock = opts.start ?? Date.UTC(2026, 10, 20, 14, 30);
  const tick = () => (clock += int(1, 90) * 60_000);
  let bookSeq = 1_000;
  const userIds = opts.userIds;
  const accounts = new Map<string, Account>();
  const seqs = new Map<string, number>();
  const events: AccountEvent[] = [];

  const emit = (userId: string, body: AccountEventBody, idOf: (seq: number) => string) => {
    const seq = (seqs.get(userId) ?? 0) + 1;
    seqs.set(userId, seq);
    const account = accounts.get(userId) as Account;
    events.push({
      kind: "account",
      v: 1,
      id: idOf(seq),
      userId,
      seq,
      ts: clock,
      epoch: account.epoch,
      ...body,
    } as AccountEvent);
  };
  const orderEvent = (order: OrderRecord) =>
    emit(order.account, { type: "account.order", order: { ...order } }, (seq) =>
      accountEventIds.order(order.id, seq),
    );

  for (const userId of userIds) {
    const created = createAccount({ accountId: userId });
    if (!created.ok) throw new Error(created.message);
    accounts.set(userId, created.account);
    emit(
      userId,
      { type: "account.opened", balances: balancesOf(created.account), carriedOver: false },
      (seq) => accountEventIds.opened(userId, seq),
    );
  }

  const grant = (userId: string, symbol: string, qty: number) => {
    const before = accounts.get(userId) as Account;
    const price = SYMBOLS[symbol] as number;
    const r = grantPosition(before, rulesOf(symbol), qty, price);
    if (!r.ok) throw new Error(r.message);
    accounts.set(userId, r.account);
    const p = r.account.positions.get(symbol);
    emit(
      userId,
      {
        type: "account.grant",
        grant: {
          symbol,
          qtyLots: qty,
          priceTicks: price,
          valueMicros: r.account.startingCashMicros - before.startingCashMicros,
          tickSize: "0.01",
          lotSize: "1",
          positionQtyLots: p?.qtyLots ?? 0,
          positionCostBasisMicros: p?.costBasisMicros ?? 0,
        },
        equityMicros: null,
      },
      (seq) => accountEventIds.grant(userId, seq),
    );
  };
  for (const [i, userId] of userIds.entries()) {
    if (i % 2 === 0) for (const symbol of Object.keys(SYMBOLS)) grant(userId, symbol, int(20, 80));
  }

  const place = (userId: string, symbol: string, side: "buy" | "sell", qty: number, price: number) => {
    const orderId = crypto.randomUUID();
    const r = reserveForOrder(
      accounts.get(userId) as Account,
      {
        orderId,
        clientOrderId: `sim-${orderId}`,
        symbol,
        side,
        type: "limit",
        qtyLots: qty,
        limitPriceTicks: price,
      },
      { rules: rulesOf(symbol), referencePriceTicks: price },
    );
    if (!r.ok) return null;
    accounts.set(userId, r.account);
    const order = newOrderRecord({
      id: orderId,
      clientOrderId: `sim-${orderId}`,
      account: userId,
      symbol,
      side,
      type: "limit",
      tif: "gtc",
      qtyLots: qty,
      limitTicks: price,
      now: clock,
    });
    orderEvent(order);
    order.status = "new";
    order.updatedAt = clock;
    orderEvent(order);
    return order;
  };

  const fill = (
    order: OrderRecord,
    bookEventId: string,
    price: number,
    qty: number,
    liquidity: "maker" | "taker",
  ) => {
    const userId = order.account;
    const r = applyFill(accounts.get(userId) as Account, {
      fillId: bookEventId,
      orderId: order.id,
      priceTicks: price,
      qtyLots: qty,
    });
    if (!r.ok || !r.applied) throw new Error(`fill not applied: ${JSON.stringify(r)}`);
    accounts.set(userId, r.account);
    const e = r.effect;
    emit(
      userId,
      {
        type: "account.fill",
        fill: {
          bookEventId,
          orderId: order.id,
          symbol: e.symbol,
          side: e.side,
          priceTicks: e.priceTicks,
          qtyLots: e.qtyLots,
          tickSize: "0.01",
          lotSize: "1",
          notionalMicros: e.notionalMicros,
          feeMicros: e.feeMicros,
          realizedPlMicros: e.realizedPlMicros,
          cashDeltaMicros: e.cashDeltaMicros,
          positionQtyLots: e.positionQtyLots,
          positionCostBasisMicros: e.positionCostBasisMicros,
          liquidity,
          at: clock,
        },
        equityMicros:
          r.account.cashMicros + [...r.account.positions.values()].reduce((s, p) => s + p.costBasisMicros, 0),
      },
      () => accountEventIds.fill(bookEventId, order.id),
    );
    order.filledQtyLots += qty;
    order.filledValue += qty * price;
    order.status = order.filledQtyLots >= order.qtyLots ? "filled" : "partially_filled";
    if (order.status === "filled") order.filledAt = clock;
    order.updatedAt = clock;
    orderEvent(order);
  };

  for (let step = 0; step < opts.steps; step++) {
    tick();
    const action = rand();
    if (action < 0.05) {
      grant(pick(userIds), pick(Object.keys(SYMBOLS)), int(5, 30));
      continue;
    }
    if (action < 0.08) {
      const userId = pick(userIds);
      const before = accounts.get(userId) as Account;
      if (before.orders.size > 0) continue;
      const r = reset(before);
      if (!r.ok) throw new Error(r.message);
      accounts.set(userId, r.account);
      emit(
        userId,
        { type: "account.reset", before: balancesOf(before), after: balancesOf(r.account) },
        (seq) => accountEventIds.reset(userId, seq),
      );
      continue;
    }
    const symbol = pick(Object.keys(SYMBOLS));
    const sellers = userIds.filter((u) => qtyAvailableLots(accounts.get(u) as Account, symbol) > 0);
    if (sellers.length === 0) continue;
    const seller = pick(sellers);
    const buyer = pick(userIds.filter((u) => u !== seller));
    const price = (SYMBOLS[symbol] as number) + int(-50, 50);
    const qty = int(1, Math.min(25, qtyAvailableLots(accounts.get(seller) as Account, symbol)));
    const sell = place(seller, symbol, "sell", qty, price);
    if (!sell) continue;
    const buy = place(buyer, symbol, "buy", qty, price);
    if (!buy) {
      const closed = applyOrderClosed(accounts.get(seller) as Account, sell.id, 0);
      if (closed.ok) accounts.set(seller, closed.account);
      sell.status = "canceled";
      sell.canceledAt = clock;
      orderEvent(sell);
      continue;
    }
    // Fill all, or part and cancel the rest.
    const filled = rand() < 0.7 ? qty : int(1, qty);
    const bookEventId = `${symbol}:${bookSeq++}`;
    fill(sell, bookEventId, price, filled, "maker");
    fill(buy, bookEventId, price, filled, "taker");
    if (filled < qty) {
      for (const o of [sell, buy]) {
        const closed = applyOrderClosed(accounts.get(o.account) as Account, o.id, filled);
        if (!closed.ok) throw new Error(closed.message);
        accounts.set(o.account, closed.account);
        o.status = "canceled";
        o.canceledAt = clock;
        o.updatedAt = clock;
        orderEvent(o);
      }
    }
  }
  return { userIds, events, accounts };
}
