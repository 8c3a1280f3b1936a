import { DurableObject } from "cloudflare:workers";
import { grantPosition } from "../shared/account/grant.ts";
import {
  type Account,
  type AccountView,
  accountView,
  applyFill,
  applyOrderClosed,
  createAccount,
  fromSnapshot,
  type OrderRequest,
  type PositionView,
  type PriceMarks,
  qtyAvailableLots,
  releaseReservation,
  reserveForOrder,
  reset as resetAccountState,
  toSnapshot,
} from "../shared/account/index.ts";
import { type AccountBookEvent, bookEventId, isAccountEvent } from "../shared/book-events.ts";
import { formatMicros, parseMicros } from "../shared/decimal.ts";
import { lotsToQty, ticksToPrice } from "../shared/engine/rules.ts";
import type { EngineEvent } from "../shared/engine/types.ts";
import { type PackedEvents, unpackEvents } from "../shared/engine/wire.ts";
import { accountEventIds } from "../shared/history/events.ts";
import { balancesOf } from "../shared/history/ledger.ts";
import {
  type AlpacaOrder,
  type AlpacaTradeUpdate,
  toAlpacaOrder,
  toTradeUpdate,
} from "../shared/orders/alpaca.ts";
import {
  applyEngineEvent,
  isOpen,
  newOrderRecord,
  type OrderRecord,
  type OrderUpdate,
  orderIdsForAccount,
} from "../shared/orders/lifecycle.ts";
import { findSymbol, type SymbolSpec, symbolRules } from "../shared/symbols.ts";
import type { Env } from "../workers/env.ts";
import { type BookCommand, packCommands } from "./order-book/commands.ts";
import { migrate, type Sql, sqlOf } from "./sql.ts";
import {
  bookPlaceCommand,
  type ParsedOrder,
  type PlaceOrderRequest,
  parsePlaceRequest,
  type ReplaceOrderRequest,
} from "./user-session/orders.ts";
import {
  ACCOUNT_OUTBOX_COMPONENT,
  ACCOUNT_OUTBOX_MIGRATIONS,
  AccountOutbox,
  AlarmClock,
  queueTransport,
} from "./user-session/outbox.ts";
import { type ApiFailure, fail, type Outcome, ok } from "./user-session/outcome.ts";
import { Recent } from "./user-session/recent.ts";
import { ACCOUNT_MIGRATIONS, BOOK_EVENTS_MIGRATIONS } from "./user-session/schema.ts";
import { type InAppNotification, TradeStream } from "./user-session/stream.ts";

export type { PlaceOrderRequest, ReplaceOrderRequest } from "./user-session/orders.ts";
export type { ApiFailure, Outcome } from "./user-session/outcome.ts";

/** `GET /v2/orders` filters, already validated by the edge. */
export interface OrderQuery {
  status: "open" | "closed" | "all";
  limit: number;
  after?: number;
  until?: number;
  direction: "asc" | "desc";
  symbols?: string[];
}

export interface ActivityQuery {
  after?: number;
  until?: number;
  direction: "asc" | "desc";
  pageSize: number;
  pageToken?: string;
}

/** One FILL activity as Alpaca's `GET /v2/account/activities` returns it. */
export interface FillActivity {
  id: string;
  activity_type: "FILL";
  transaction_time: string;
  type: "fill" | "partial_fill";
  price: string;
  qty: string;
  side: string;
  symbol: string;
  leaves_qty: string;
  order_id: string;
  cum_qty: string;
  order_status: string;
}

export interface PortfolioHistory {
  timestamp: number[];
  equity: string[];
  profit_loss: string[];
  profit_loss_pct: string[];
  base_value: string;
  timeframe: string;
}

/** Header through which the edge names the authenticated owner of a forwarded stream socket. */
export const STREAM_USER_HEADER = "x-prepx-user-id";

/** How long an order may stay `pending_new` (its book did not answer) before the alarm settles it. */
const PENDING_SETTLE_MS = 30_000;
/** Equity points closer together than this overwrite each other. */
const EQUITY_POINT_SPACING_MS = 60_000;
/** Units of a symbol that is no longer in the catalog (as `render` assumes). */
const DEFAULT_UNITS = { tickSize: "0.01", lotSize: "1" } as const;

interface Quote {
  bid: number | null;
  ask: number | null;
  last: number | null;
  reference: number | null;
}

const NO_QUOTE: Quote = { bid: null, ask: null, last: null, reference: null };

/** An order checked and reserved for, not yet written or sent (see `prepareOrder`). */
interface PreparedOrder {
  ok: true;
  existing: null;
  /** The account with this order's reservation. */
  account: Account;
  record: OrderRecord;
  what: "order" | "replace";
  command: BookCommand;
}

/** One item of {@link UserSession.submitOrders}: a placement, or a replace that names its quantity. */
export type BatchOrder =
  | { kind: "place"; req: PlaceOrderRequest }
  | { kind: "replace"; orderId: string; req: ReplaceOrderRequest & { qty: string } };

/**
 * Position marks younger than this are served without asking the book again: a portfolio read costs one
 * round trip per held symbol at most once a second, and marks are at most a second old (fills of the
 * account itself update them at once).
 */
const MARK_MAX_AGE_MS = 1_000;

/**
 * Finished orders the account model remembers (it rejects their ids and recognises their late events).
 * Here every order, finished or not, is also a row of `orders` (checked first for ids and client order
 * ids), and book events are deduplicated by event id before they reach the model, so a short memory is
 * enough; it is serialised with the account on every change, so a long one costs every operation
 * (1,000 entries of about 90 characters each made every save of an active account ~90 KB of JSON).
 */
const COMPLETED_ORDER_MEMORY = 64;

/** Orders kept in memory after their last write (see `recentOrders`): a few active accounts' worth. */
const RECENT_ORDER_MEMORY = 256;
/** Book event ids kept in memory once applied (see `seenBookEvents`). */
const SEEN_BOOK_EVENT_MEMORY = 4_096;
/**
 * How long the inbox remembers a book event's id. A book redelivers an event only until it has recorded the
 * delivery, which its next alarm does within seconds (retries back off to a minute at most), so a week is
 * far beyond any redelivery; without a horizon an active account's inbox (a market maker's: several events
 * a second) grew without bound.
 */
export const BOOK_EVENT_RETENTION_MS = 7 * 24 * 3_600_000;
/** Inbox rows deleted per pruning statement, and the pause between prunings that find nothing more. */
const BOOK_EVENT_PRUNE_CHUNK = 2_000;
const BOOK_EVENT_PRUNE_EVERY_MS = 3_600_000;

/**
 * One live account per user (`idFromName(userId)`): cash, reservations, positions, the user's orders and
 * fills, and the `trade_updates` stream.
 *
 * Every state change is one SQLite transaction: the account snapshot, the touched order rows, fill rows
 * and the event-id inbox commit together, so a crash never leaves half an update, and an event delivered
 * twice (the book's reply and its outbox) is applied once.
 */
export class UserSession extends DurableObject<Env> {
  private readonly sql: Sql;
  private readonly stream: TradeStream;
  /** Account events for Postgres, written in the transaction of each change. */
  private readonly outbox: AccountOutbox;
  private readonly alarmClock: AlarmClock;
  private userId: string | null = null;
  private account: Account | null = null;
  /** Last trade / mid price per symbol seen by this object (ticks), for equity and PnL. */
  private readonly marks = new Map<string, number>();
  /** When each mark was last set (a quote or a fill of this account), for {@link refreshMarks}. */
  private readonly markedAt = new Map<string, number>();
  /**
   * Book events applied (or found applied) lately. The book's outbox repeats every event its reply already
   * carried (at-least-once delivery), so most deliveries to an active account are repeats: these skip the
   * SQLite transaction. The durable dedupe stays the `book_events` table.
   */
  private readonly seenBookEvents = new Recent<true>(SEEN_BOOK_EVENT_MEMORY);
  /** When the inbox was last found pruned to its retention (see {@link pruneBookEvents}). */
  private bookEventsPrunedAt = 0;
  /**
   * Orders this object wrote lately, as written (frozen copies): most reads of an order (every book event
   * applies to one) follow its write closely, and this spares them a query and a JSON parse. Emptied when
   * a transaction rolls back.
   */
  private readonly recentOrders = new Recent<Readonly<OrderRecord>>(RECENT_ORDER_MEMORY);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = sqlOf(ctx.storage);
    this.stream = new TradeStream(ctx);
    this.alarmClock = new AlarmClock(ctx.storage);
    this.outbox = new AccountOutbox(this.sql, this.alarmClock, queueTransport(env));
    this.sql.onRollback(() => this.recentOrders.clear());
    void ctx.blockConcurrencyWhile(async () => {
      try {
        migrate(this.sql, "book_events", BOOK_EVENTS_MIGRATIONS);
        migrate(this.sql, "account", ACCOUNT_MIGRATIONS);
        const outboxSchema = migrate(this.sql, ACCOUNT_OUTBOX_COMPONENT, ACCOUNT_OUTBOX_MIGRATIONS);
        this.alarmClock.loaded(await ctx.storage.getAlarm());
        const row = this.sql.one<{
          user_id: string;
          snapshot: string;
        }>`SELECT user_id, snapshot FROM account`;
        if (row) {
          const restored = fromSnapshot(JSON.parse(row.snapshot));
          if (!restored.ok) throw new Error(`account snapshot is unreadable: ${restored.message}`);
          this.userId = row.user_id;
          this.account = restored.account;
          // An account older than its outbox: publish its balances and orders once, so the ledger starts right.
          if (outboxSchema.from === 0) this.publishCarriedOver(restored.account);
        }
        await this.outbox.rearm(Date.now());
      } catch (err) {
        // Rethrown outside blockConcurrencyWhile's promise so the object resets instead of staying broken.
        queueMicrotask(() => {
          throw err;
        });
        throw err;
      }
    });
  }

  async ping(): Promise<"pong"> {
    return "pong";
  }

  // -----------------------------------------------------------------------------------------------
  // Account
  // -----------------------------------------------------------------------------------------------

  async getAccount(userId: string): Promise<Outcome<AccountView>> {
    const account = this.open(userId);
    const view = accountView(account, this.priceMarks(account));
    if (!view.ok) return fail(503, view.code, view.message);
    return ok({ ...view.account, id: userId, account_number: accountNumber(userId) } as AccountView);
  }

  async getPositions(userId: string): Promise<Outcome<PositionView[]>> {
    const account = this.open(userId);
    await this.refreshMarks(account);
    const view = accountView(account, this.priceMarks(account));
    if (!view.ok) return fail(503, view.code, view.message);
    return ok(view.positions.map((p) => withAssetFields(p)));
  }

  async getPosition(userId: string, symbol: string): Promise<Outcome<PositionView>> {
    const positions = await this.getPositions(userId);
    if (!positions.ok) return positions;
    const found = positions.value.find((p) => p.symbol === symbol);
    return found ? ok(found) : fail(404, "position_not_found", `no open position in ${symbol}`);
  }

  /**
   * Back to the starting state (practice accounts need it): open orders are canceled at their books,
   * positions and history of the epoch are dropped, cash returns to the starting amount.
   */
  async resetAccount(userId: string): Promise<Outcome<AccountView>> {
    const account = this.open(userId);
    await this.cancelAllOrders(userId);
    const before = this.account ?? account;
    const fresh = resetAccountState(before);
    if (!fresh.ok) return fail(503, fresh.code, fresh.message);
    const now = Date.now();
    this.sql.transaction(() => {
      this.saveAccount(fresh.account, now);
      this.sql.run`DELETE FROM equity_points`;
      this.outbox.enqueue(
        { userId, epoch: fresh.account.epoch, ts: now },
        { type: "account.reset", before: balancesOf(before), after: balancesOf(fresh.account) },
        (seq) => accountEventIds.reset(userId, seq),
      );
    });
    this.account = fresh.account;
    return this.getAccount(userId);
  }

  /**
   * Admin: give the account shares at a price (capital in kind), e.g. a market maker's inventory. The
   * grant raises the starting capital by the same value, so it is neither profit nor loss.
   */
  async grantShares(
    userId: string,
    symbol: string,
    qty: string,
    price: string,
  ): Promise<Outcome<PositionView[]>> {
    const account = this.open(userId);
    const spec = findSymbol(symbol);
    if (!spec) return fail(422, "unknown_symbol", `symbol ${symbol} is not traded here`);
    const parsed = parsePlaceRequest(spec, {
      symbol,
      side: "buy",
      type: "limit",
      time_in_force: "gtc",
      qty,
      limit_price: price,
    });
    if ("status" in parsed) return parsed;
    const granted = grantPosition(account, spec, parsed.qtyLots ?? 0, parsed.limitTicks ?? 0);
    if (!granted.ok) return fail(422, granted.code, granted.message);
    const now = Date.now();
    const position = granted.account.positions.get(spec.symbol);
    this.sql.transaction(() => {
      this.saveAccount(granted.account, now);
      this.recordEquity(granted.account, now);
      this.outbox.enqueue(
        { userId, epoch: granted.account.epoch, ts: now },
        {
          type: "account.grant",
          grant: {
            symbol: spec.symbol,
            qtyLots: parsed.qtyLots ?? 0,
            priceTicks: parsed.limitTicks ?? 0,
            valueMicros: granted.account.startingCashMicros - account.startingCashMicros,
            tickSize: spec.tickSize,
            lotSize: spec.lotSize,
            positionQtyLots: position?.qtyLots ?? 0,
            positionCostBasisMicros: position?.costBasisMicros ?? 0,
          },
          equityMicros: this.equityNow(granted.account),
        },
        (seq) => accountEventIds.grant(userId, seq),
      );
    });
    this.account = granted.account;
    return this.getPositions(userId);
  }

  // -----------------------------------------------------------------------------------------------
  // Orders
  // -----------------------------------------------------------------------------------------------

  /**
   * Place an order: check it, reserve cash or shares, record it, submit it to its book and apply what the
   * book answered. A `client_order_id` seen before returns that order and places nothing.
   */
  async placeOrder(userId: string, req: PlaceOrderRequest): Promise<Outcome<AlpacaOrder>> {
    const account = this.open(userId);
    const clientOrderId = req.client_order_id ?? crypto.randomUUID();
    const existing = this.orderByClientId(clientOrderId);
    if (existing) return ok(this.render(existing));
    const spec = findSymbol(req.symbol);
    if (!spec) return fail(422, "unknown_symbol", `symbol ${req.symbol} is not traded here`);
    const parsed = parsePlaceRequest(spec, req);
    if ("status" in parsed) return parsed;
    const quote = await this.quoteFor(parsed);
    // The await above let other requests in: a retry with this client order id may have won the race.
    const raced = this.orderByClientId(clientOrderId);
    if (raced) return ok(this.render(raced));
    return this.reserveAndSubmit(this.account ?? account, spec, parsed, clientOrderId, quote, null);
  }

  async getOrders(userId: string, query: OrderQuery): Promise<Outcome<AlpacaOrder[]>> {
    this.open(userId);
    const after = query.after ?? 0;
    const until = query.until ?? Number.MAX_SAFE_INTEGER;
    const rows =
      query.direction === "asc"
        ? this.sql<{
            body: string;
          }>`SELECT body FROM orders WHERE created_at > ${after} AND created_at < ${until}
            AND (${query.status} = 'all' OR open = ${query.status === "open" ? 1 : 0})
            ORDER BY created_at ASC, id ASC`
        : this.sql<{
            body: string;
          }>`SELECT body FROM orders WHERE created_at > ${after} AND created_at < ${until}
            AND (${query.status} = 'all' OR open = ${query.status === "open" ? 1 : 0})
            ORDER BY created_at DESC, id DESC`;
    const symbols = query.symbols ? new Set(query.symbols) : null;
    const out: AlpacaOrder[] = [];
    for (const row of rows) {
      const order = JSON.parse(row.body) as OrderRecord;
      if (symbols && !symbols.has(order.symbol)) continue;
      out.push(this.render(order));
      if (out.length >= query.limit) break;
    }
    return ok(out);
  }

  async getOrder(userId: string, orderId: string): Promise<Outcome<AlpacaOrder>> {
    this.open(userId);
    const order = this.orderById(orderId);
    return order ? ok(this.render(order)) : orderNotFound(orderId);
  }

  async getOrderByClientOrderId(userId: string, clientOrderId: string): Promise<Outcome<AlpacaOrder>> {
    this.open(userId);
    const order = this.orderByClientId(clientOrderId);
    return order
      ? ok(this.render(order))
      : fail(404, "order_not_found", `no order with client_order_id ${clientOrderId}`);
  }

  /** Cancel one open order. Resolves when the book has answered; 422 when the order is no longer open. */
  async cancelOrder(userId: string, orderId: string): Promise<Outcome<AlpacaOrder>> {
    this.open(userId);
    const order = this.orderById(orderId);
    if (!order) return orderNotFound(orderId);
    if (!isOpen(order)) {
      return fail(
        422,
        "order_not_cancelable",
        `order ${orderId} is ${order.status} and can no longer be canceled`,
      );
    }
    const events = await this.book(order.symbol).submit({ kind: "cancel", orderId, account: userId });
    this.ingest(order.symbol, events);
    const after = this.orderById(orderId) ?? order;
    // Success means the order ended canceled. The book refuses a cancel when the order has just filled
    // (or expired); its fill may reach this object while the cancel is in flight, so the order can be
    // closed but not canceled here: that is still a refusal.
    const rejected = events.find((e) => e.type === "rejected");
    if (rejected && after.status !== "canceled") {
      return fail(
        422,
        "order_not_cancelable",
        `the book refused to cancel order ${orderId} (${rejected.reason}); it is ${after.status}`,
      );
    }
    return ok(this.render(after));
  }

  /** Cancel every open order; returns Alpaca's per-order results. */
  async cancelAllOrders(
    userId: string,
  ): Promise<Outcome<{ id: string; status: number; body: AlpacaOrder | null }[]>> {
    this.open(userId);
    const open = this.sql<{ body: string }>`SELECT body FROM orders WHERE open = 1 ORDER BY created_at`.map(
      (r) => JSON.parse(r.body) as OrderRecord,
    );
    const bySymbol = new Map<string, OrderRecord[]>();
    for (const o of open) bySymbol.set(o.symbol, [...(bySymbol.get(o.symbol) ?? []), o]);
    const results: { id: string; status: number; body: AlpacaOrder | null }[] = [];
    await Promise.all(
      [...bySymbol].map(async ([symbol, orders]) => {
        const perCommand = unpackEvents(
          await this.book(symbol).submitMany(
            orders.map((o) => ({ kind: "cancel" as const, orderId: o.id, account: userId })),
          ),
        );
        this.ingest(symbol, perCommand.flat());
        for (const o of orders) {
          const after = this.orderById(o.id) ?? o;
          results.push({ id: o.id, status: isOpen(after) ? 500 : 200, body: this.render(after) });
        }
      }),
    );
    return ok(results);
  }

  /**
   * Replace (amend) an open order, Alpaca style: a new order with a new id takes over and the old one ends
   * `replaced`. The new order is reserved for before the book sees it.
   */
  async replaceOrder(
    userId: string,
    orderId: string,
    req: ReplaceOrderRequest,
  ): Promise<Outcome<AlpacaOrder>> {
    const account = this.open(userId);
    const checked = this.checkReplace(orderId, req);
    if (!checked.ok) return checked;
    const { old, spec, parsed, clientOrderId } = checked;
    // A price change of a priced order that keeps its quantity hands the old order's reservation over
    // (see replaceHandingOver); a new quantity is reserved for in full while the old order still holds its own.
    if (req.qty === undefined && parsed.limitTicks !== undefined && parsed.qtyLots !== undefined) {
      return this.replaceHandingOver(this.account ?? account, spec, parsed, clientOrderId, old);
    }
    const quote = await this.quoteFor(parsed);
    return this.reserveAndSubmit(this.account ?? account, spec, parsed, clientOrderId, quote, old);
  }

  /** A replace request checked against the order it replaces: the new order's terms, nothing reserved. */
  private checkReplace(
    orderId: string,
    req: ReplaceOrderRequest,
  ):
    | { ok: true; old: OrderRecord; spec: SymbolSpec; parsed: ParsedOrder; clientOrderId: string }
    | ApiFailure {
    const old = this.orderById(orderId);
    if (!old) return orderNotFound(orderId);
    if (!isOpen(old) || old.status === "pending_new") {
      return fail(
        422,
        "order_not_replaceable",
        `order ${orderId} is ${old.status} and can no longer be replaced`,
      );
    }
    if (req.client_order_id !== undefined && this.orderByClientId(req.client_order_id)) {
      return fail(
        422,
        "duplicate_client_order_id",
        `client_order_id ${req.client_order_id} is already in use`,
      );
    }
    const spec = findSymbol(old.symbol);
    if (!spec) return fail(422, "unknown_symbol", `symbol ${old.symbol} is not traded here`);
    const remaining = old.qtyLots - old.filledQtyLots;
    const parsed = parsePlaceRequest(spec, {
      symbol: old.symbol,
      side: old.side,
      type: old.type,
      time_in_force: old.tif,
      qty: req.qty ?? lotsToQty(spec, remaining),
      limit_price:
        req.limit_price ?? (old.limitTicks === null ? undefined : ticksToPrice(spec, old.limitTicks)),
      stop_price: req.stop_price ?? (old.stopTicks === null ? undefined : ticksToPrice(spec, old.stopTicks)),
    });
    if ("status" in parsed) return parsed;
    return { ok: true, old, spec, parsed, clientOrderId: req.client_order_id ?? crypto.randomUUID() };
  }

  /**
   * Several orders of one symbol at once, for a caller that sends many together (the market maker's
   * requote): each item is checked and reserved for in turn exactly as it would be alone, then all are
   * recorded in one transaction, sent in one packed `submitMany`, and the book's answers applied in one
   * transaction. One outcome per item, in order, as `placeOrder` / `replaceOrder` would give it. Every
   * reservation is taken before the book answers any item, so a replace holds both its orders' until then.
   */
  async submitOrders(
    userId: string,
    symbol: string,
    items: readonly BatchOrder[],
  ): Promise<Outcome<AlpacaOrder>[]> {
    this.open(userId);
    const spec = findSymbol(symbol);
    if (!spec) return items.map(() => fail(422, "unknown_symbol", `symbol ${symbol} is not traded here`));
    // Parse first: the one quote the batch may need is read before any reservation, so nothing else can
    // change the account between the first reservation and the write.
    type Checked =
      | { ok: true; old: OrderRecord | null; spec: SymbolSpec; parsed: ParsedOrder; clientOrderId: string }
      | { ok: true; existing: OrderRecord }
      | ApiFailure;
    const parsedItems = items.map((item): Checked => {
      if (item.kind === "replace") return this.checkReplace(item.orderId, item.req);
      if (item.req.symbol !== symbol) {
        return fail(422, "symbol_mismatch", `a batch for ${symbol} cannot place ${item.req.symbol}`);
      }
      const clientOrderId = item.req.client_order_id ?? crypto.randomUUID();
      const existing = this.orderByClientId(clientOrderId);
      if (existing) return { ok: true, existing };
      const parsed = parsePlaceRequest(spec, item.req);
      if ("status" in parsed) return parsed;
      return { ok: true, old: null, spec, parsed, clientOrderId };
    });
    const needsQuote = parsedItems.find((p) => p.ok && "parsed" in p && quoteNeeded(p.parsed));
    const quote = needsQuote ? await this.quoteOf(symbol) : NO_QUOTE;

    const outcomes: (Outcome<AlpacaOrder> | null)[] = [];
    const prepared: { index: number; order: PreparedOrder }[] = [];
    let account = this.open(userId);
    for (const [index, p] of parsedItems.entries()) {
      if (!p.ok) {
        outcomes.push(p);
        continue;
      }
      if ("existing" in p) {
        outcomes.push(ok(this.render(p.existing)));
        continue;
      }
      const r = this.prepareOrder(account, spec, p.parsed, p.clientOrderId, quote, p.old);
      if (!r.ok || r.existing) {
        outcomes.push(r.ok ? ok(this.render(r.existing as OrderRecord)) : r);
        continue;
      }
      account = r.account;
      prepared.push({ index, order: r });
      outcomes.push(null);
    }
    if (prepared.length > 0) {
      const now = Date.now();
      this.sql.transaction(() => {
        this.saveAccount(account, now);
        for (const p of prepared) this.saveOrder(p.order.record, { publish: false });
      });
      this.account = account;
      await this.alarmClock.arm(now + PENDING_SETTLE_MS);
      let answers: EngineEvent[][] | null = null;
      try {
        // Packed both ways: three values cross the RPC boundary instead of a structured clone of every
        // command and event (shared/engine/wire.ts).
        answers = unpackEvents(
          await this.book(symbol).submitMany(packCommands(prepared.map((p) => p.order.command))),
        );
      } catch (err) {
        console.error(JSON.stringify({ level: "error", msg: "book submitMany failed", error: String(err) }));
      }
      if (answers) this.ingest(symbol, answers.flat());
      for (const [i, p] of prepared.entries()) {
        const events = answers?.[i];
        outcomes[p.index] = events
          ? this.answerOf(spec, p.order.record, p.order.what, events)
          : fail(
              503,
              "book_unavailable",
              `the ${symbol} book did not answer; order ${p.order.record.id} is pending`,
            );
      }
    }
    return outcomes as Outcome<AlpacaOrder>[];
  }

  /**
   * Replace a limit or stop-limit order keeping its remaining quantity, so that a sell of a whole position
   * (or a buy using all the buying power) can move its price. The book replaces atomically: the old and the
   * new order never rest together, and without a `qty` the new order takes over exactly what the old one
   * had left when the book processed the replace (fills in flight stay with the old order). So the account
   * checks here that the new order fits once the old one's reservation is freed, submits, and reserves for
   * the new order when the book's `replaced` event closes the old one (`applyToAccount`), in the same
   * transaction. A refused replace changes nothing.
   */
  private async replaceHandingOver(
    account: Account,
    spec: SymbolSpec,
    parsed: ParsedOrder,
    clientOrderId: string,
    old: OrderRecord,
  ): Promise<Outcome<AlpacaOrder>> {
    const userId = account.config.accountId;
    const orderId = crypto.randomUUID();
    const held = account.orders.get(old.id);
    const freed = held === undefined ? null : applyOrderClosed(account, old.id, held.filledLots);
    if (freed === null || !freed.ok) {
      return fail(422, "order_not_replaceable", `order ${old.id} has no open reservation to replace`);
    }
    const check = reserveForOrder(freed.account, reserveRequestOf(orderId, clientOrderId, spec, parsed), {
      rules: symbolRules(spec),
      referencePriceTicks: null,
    });
    if (!check.ok) return fail(reserveStatus(check.code), check.code, check.message);
    const now = Date.now();
    const record = pendingRecordOf(
      { id: orderId, clientOrderId, account: userId, replaces: old.id, now },
      spec,
      parsed,
      parsed.qtyLots as number,
    );
    if (old.expiresAt !== null) record.expiresAt = old.expiresAt;
    this.sql.transaction(() => this.saveOrder(record, { publish: false }));
    await this.alarmClock.arm(now + PENDING_SETTLE_MS);
    return this.submitRecorded(spec, record, "replace", {
      kind: "replace",
      orderId: old.id,
      newOrderId: orderId,
      account: userId,
      limitPrice: parsed.limitTicks as number,
      ...(parsed.stopTicks !== undefined ? { stopPrice: parsed.stopTicks } : {}),
    });
  }

  /** Sell `qty` (default: everything open orders do not hold) of a position at market. */
  async closePosition(userId: string, symbol: string, qty: string | null): Promise<Outcome<AlpacaOrder>> {
    const account = this.open(userId);
    const spec = findSymbol(symbol);
    const position = account.positions.get(symbol);
    if (!spec || !position) return fail(404, "position_not_found", `no open position in ${symbol}`);
    const available = qtyAvailableLots(account, symbol);
    if (available <= 0) {
      return fail(
        403,
        "insufficient_position",
        `all of ${symbol} is held for open orders; cancel them first`,
      );
    }
    return this.placeOrder(userId, {
      symbol,
      side: "sell",
      type: "market",
      time_in_force: "day",
      qty: qty ?? lotsToQty(spec, available),
    });
  }

  /** Close every position at market; one result per symbol. */
  async closeAllPositions(
    userId: string,
  ): Promise<Outcome<{ symbol: string; status: number; body: object }[]>> {
    const account = this.open(userId);
    const results: { symbol: string; status: number; body: object }[] = [];
    for (const symbol of [...account.positions.keys()].sort()) {
      const r = await this.closePosition(userId, symbol, null);
      results.push(
        r.ok
          ? { symbol, status: 200, body: r.value }
          : { symbol, status: r.status, body: { code: r.code, message: r.message } },
      );
    }
    return ok(results);
  }

  // -----------------------------------------------------------------------------------------------
  // Activities and history
  // -----------------------------------------------------------------------------------------------

  async getFillActivities(userId: string, query: ActivityQuery): Promise<Outcome<FillActivity[]>> {
    this.open(userId);
    const after = query.after ?? 0;
    const until = query.until ?? Number.MAX_SAFE_INTEGER;
    const token = query.pageToken ?? (query.direction === "asc" ? "" : "\uffff");
    type FillRow = {
      event_id: string;
      order_id: string;
      symbol: string;
      side: string;
      price_ticks: number;
      qty_lots: number;
      at: number;
    };
    const rows =
      query.direction === "asc"
        ? this.sql<FillRow>`SELECT * FROM fills WHERE at > ${after} AND at < ${until} AND event_id > ${token}
            ORDER BY at ASC, event_id ASC LIMIT ${query.pageSize}`
        : this.sql<FillRow>`SELECT * FROM fills WHERE at > ${after} AND at < ${until} AND event_id < ${token}
            ORDER BY at DESC, event_id DESC LIMIT ${query.pageSize}`;
    return ok(
      rows.map((r) => {
        const spec = findSymbol(r.symbol);
        const order = this.orderById(r.order_id);
        const units = spec ?? { tickSize: "0.01", lotSize: "1" };
        const leaves = order ? Math.max(0, order.qtyLots - order.filledQtyLots) : 0;
        return {
          id: r.event_id,
          activity_type: "FILL" as const,
          transaction_time: new Date(r.at).toISOString(),
          type: order && order.filledQtyLots >= order.qtyLots ? ("fill" as const) : ("partial_fill" as const),
          price: ticksToPrice(units, r.price_ticks),
          qty: lotsToQty(units, r.qty_lots, true),
          side: r.side,
          symbol: r.symbol,
          leaves_qty: lotsToQty(units, isOpenRecord(order) ? leaves : 0, true),
          order_id: r.order_id,
          cum_qty: lotsToQty(units, order?.filledQtyLots ?? r.qty_lots, true),
          order_status: order?.status ?? "filled",
        };
      }),
    );
  }

  async getPortfolioHistory(userId: string): Promise<Outcome<PortfolioHistory>> {
    const account = this.open(userId);
    const points = this.sql<{ ts: number; equity_micros: number }>`SELECT ts, equity_micros FROM equity_points
      ORDER BY ts`;
    const base = account.startingCashMicros;
    const all = [...points];
    const equityNow = this.equityNow(account);
    if (equityNow !== null) all.push({ ts: Date.now(), equity_micros: equityNow });
    return ok({
      timestamp: all.map((p) => Math.floor(p.ts / 1000)),
      equity: all.map((p) => formatMicros(p.equity_micros, { trimZeros: true })),
      profit_loss: all.map((p) => formatMicros(p.equity_micros - base, { trimZeros: true })),
      profit_loss_pct: all.map((p) => ratio(p.equity_micros - base, base)),
      base_value: formatMicros(base, { trimZeros: true }),
      timeframe: "1Min",
    });
  }

  // -----------------------------------------------------------------------------------------------
  // Book events (the OrderBook outbox delivers here, at least once)
  // -----------------------------------------------------------------------------------------------

  /**
   * Inbox of OrderBook events about this account's orders (fills on either side, cancels, expiries,
   * replaces), delivered at least once by each book's outbox. Each event is applied once, keyed by its
   * stable `eventId` (`${symbol}:${seq}`); returns how many were new. Books send them packed
   * (shared/engine/wire.ts: one list), which clones for a fraction of the cost of the event objects;
   * an array of events is taken too.
   */
  async applyBookEvents(symbol: string, events: AccountBookEvent[] | PackedEvents): Promise<number> {
    return this.ingest(symbol, Array.isArray(events) ? events : unpackEvents(events).flat());
  }

  /**
   * The inbox (support): the book events applied in the last {@link BOOK_EVENT_RETENTION_MS}, in arrival
   * order. What they did is in the orders, fills and account events; the inbox keeps their ids only.
   */
  async bookEvents(): Promise<
    { eventId: string; symbol: string; seq: number; type: string; receivedAt: number }[]
  > {
    return this.sql<{ event_id: string; symbol: string; seq: number; type: string; received_at: number }>`
      SELECT event_id, symbol, seq, type, received_at FROM book_events ORDER BY rowid`.map((r) => ({
      eventId: r.event_id,
      symbol: r.symbol,
      seq: r.seq,
      type: r.type,
      receivedAt: r.received_at,
    }));
  }

  // -----------------------------------------------------------------------------------------------
  // System of record: the account event stream that Postgres follows
  // -----------------------------------------------------------------------------------------------

  /**
   * Sequence number of the account's latest event. Postgres holds the complete history of this account
   * once its `account_streams.applied_through` reaches it (the edge's history reads check this).
   */
  async historyCursor(userId: string): Promise<{ seq: number }> {
    this.open(userId);
    return { seq: this.outbox.lastSeq() };
  }

  /**
   * The ledger terms of the account at event `seq`, for reconciliation against the Postgres ledger;
   * `balances: null` for a user who never had an account here (none is created).
   */
  async ledgerBalances(userId: string): Promise<{
    seq: number;
    balances: ReturnType<typeof balancesOf> | null;
    outbox: { rows: number; failing: number };
  }> {
    const account = this.account === null ? null : this.open(userId);
    return {
      seq: this.outbox.lastSeq(),
      balances: account === null ? null : balancesOf(account),
      outbox: this.outbox.pending(),
    };
  }

  /** Opening balances and order snapshots of an account that existed before its outbox did. */
  private publishCarriedOver(account: Account): void {
    const userId = account.config.accountId;
    const now = Date.now();
    const orders = this.sql<{ body: string }>`SELECT body FROM orders ORDER BY created_at, id`;
    this.sql.transaction(() => {
      this.outbox.enqueue(
        { userId, epoch: account.epoch, ts: now },
        { type: "account.opened", balances: balancesOf(account), carriedOver: true },
        (seq) => accountEventIds.opened(userId, seq),
      );
      for (const row of orders) {
        const order = JSON.parse(row.body) as OrderRecord;
        this.outbox.enqueue(
          { userId, epoch: account.epoch, ts: now },
          { type: "account.order", order },
          (seq) => accountEventIds.order(order.id, seq),
        );
      }
    });
  }

  // -----------------------------------------------------------------------------------------------
  // trade_updates stream (hibernating WebSockets; the edge authenticates before forwarding)
  // -----------------------------------------------------------------------------------------------

  /**
   * In-app notification (docs/notifications.md): the notifications consumer calls this to push a
   * `notifications` stream message to the user's sockets that listen to it. Touches no account state;
   * returns how many sockets it reached (0 when the user is not connected: the notification is still in
   * their history at `GET /v1/notifications`).
   */
  async pushNotification(userId: string, notification: InAppNotification): Promise<{ sockets: number }> {
    if (!this.env.USER_SESSION.idFromName(userId).equals(this.ctx.id)) {
      throw new Error("user id does not match this UserSession");
    }
    return { sockets: this.stream.notify(notification) };
  }

  /**
   * A `trade_updates` socket. Only the edge calls this, after it has authenticated the user (headers, or the
   * stream's `authenticate` message), so every socket here belongs to this account.
   */
  override async fetch(request: Request): Promise<Response> {
    const userId = request.headers.get(STREAM_USER_HEADER);
    if (!userId || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ code: "bad_request", message: "expected a WebSocket upgrade" }, { status: 400 });
    }
    this.open(userId);
    return this.stream.accept();
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.stream.onMessage(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.stream.onClose(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.stream.onClose(ws, 1011, "socket error");
  }

  /**
   * Publishes the account outbox, then settles orders whose book never answered (a failed
   * submit): cancel-on-doubt at the book. Re-arms itself for whichever is due first.
   */
  override async alarm(): Promise<void> {
    this.alarmClock.fired();
    await this.outbox.drain(() => Date.now());
    this.pruneBookEvents(Date.now());
    const cutoff = Date.now() - PENDING_SETTLE_MS;
    const stuck = this.sql<{ body: string }>`SELECT body FROM orders WHERE status = 'pending_new' AND
      created_at < ${cutoff}`.map((r) => JSON.parse(r.body) as OrderRecord);
    for (const order of stuck) {
      const events = await this.book(order.symbol).submit({
        kind: "cancel",
        orderId: order.id,
        account: order.account,
      });
      this.ingest(order.symbol, events);
      const after = this.orderById(order.id);
      if (after?.status === "pending_new") {
        // The book never saw it: nothing can fill, so the reservation goes back.
        this.closeNeverPlaced(after, "not_submitted");
      }
    }
    const pending = this.sql.one<{
      n: number;
    }>`SELECT count(*) AS n FROM orders WHERE status = 'pending_new'`;
    if ((pending?.n ?? 0) > 0) await this.alarmClock.arm(Date.now() + PENDING_SETTLE_MS);
    await this.outbox.rearm(Date.now());
  }

  // -----------------------------------------------------------------------------------------------
  // Internals
  // -----------------------------------------------------------------------------------------------

  /**
   * Forget inbox ids older than {@link BOOK_EVENT_RETENTION_MS}, oldest first, a chunk per statement. Runs
   * from the alarm (an account that receives events has one), at most hourly once it has caught up. Rows go
   * in rowid order, which is arrival order, so the oldest chunk is found without an index on the time.
   */
  private pruneBookEvents(now: number): void {
    if (now - this.bookEventsPrunedAt < BOOK_EVENT_PRUNE_EVERY_MS) return;
    const cutoff = now - BOOK_EVENT_RETENTION_MS;
    for (let chunk = 0; chunk < 10; chunk++) {
      const deleted = this.sql<{ n: number }>`DELETE FROM book_events WHERE rowid IN (
          SELECT rowid FROM book_events ORDER BY rowid LIMIT ${BOOK_EVENT_PRUNE_CHUNK})
        AND received_at < ${cutoff} RETURNING 1 AS n`.length;
      if (deleted < BOOK_EVENT_PRUNE_CHUNK) {
        this.bookEventsPrunedAt = now;
        return;
      }
    }
  }

  /** The account of `userId`, created with its starting cash on first use. */
  private open(userId: string): Account {
    if (this.userId !== null && this.userId !== userId) {
      throw new Error("this UserSession belongs to another user");
    }
    if (this.account) return this.account;
    if (!this.env.USER_SESSION.idFromName(userId).equals(this.ctx.id)) {
      throw new Error("user id does not match this UserSession");
    }
    const cash = parseMicros(this.env.STARTING_CASH ?? "100000");
    const created = createAccount({
      accountId: userId,
      completedOrderMemory: COMPLETED_ORDER_MEMORY,
      ...(cash.ok ? { startingCashMicros: cash.value } : {}),
    });
    if (!created.ok) throw new Error(`cannot create account: ${created.message}`);
    this.userId = userId;
    const now = Date.now();
    this.sql.transaction(() => {
      this.saveAccount(created.account, now);
      this.outbox.enqueue(
        { userId, epoch: created.account.epoch, ts: now },
        { type: "account.opened", balances: balancesOf(created.account), carriedOver: false },
        (seq) => accountEventIds.opened(userId, seq),
      );
    });
    this.account = created.account;
    return created.account;
  }

  private book(symbol: string) {
    return this.env.ORDER_BOOK.get(this.env.ORDER_BOOK.idFromName(symbol));
  }

  private async quoteOf(symbol: string): Promise<Quote> {
    const status = await this.book(symbol).quote();
    const q: Quote = {
      bid: status.bestBid?.[0] ?? null,
      ask: status.bestAsk?.[0] ?? null,
      last: status.lastTradePrice,
      reference: status.referencePrice,
    };
    const mark = q.last ?? (q.bid !== null && q.ask !== null ? Math.round((q.bid + q.ask) / 2) : q.reference);
    if (mark !== null) this.setMark(symbol, mark);
    return q;
  }

  /**
   * The quote an order's reservation needs. A limit or stop-limit order for a quantity is reserved at its
   * own limit price, so it needs none and skips a round trip to the book; market and stop orders are
   * reserved at a protective price from the quote, and notional orders are sized with it.
   */
  private async quoteFor(parsed: ParsedOrder): Promise<Quote> {
    return quoteNeeded(parsed) ? this.quoteOf(parsed.symbol) : NO_QUOTE;
  }

  /** Marks of the held symbols, re-read from their books when older than {@link MARK_MAX_AGE_MS}. */
  private async refreshMarks(account: Account): Promise<void> {
    const now = Date.now();
    const stale = [...account.positions.keys()].filter(
      (s) => now - (this.markedAt.get(s) ?? 0) >= MARK_MAX_AGE_MS,
    );
    await Promise.all(stale.map((s) => this.quoteOf(s).catch(() => null)));
  }

  private setMark(symbol: string, priceTicks: number): void {
    this.marks.set(symbol, priceTicks);
    this.markedAt.set(symbol, Date.now());
  }

  private priceMarks(account: Account): PriceMarks {
    const out: Record<string, number> = {};
    for (const symbol of account.positions.keys()) {
      const mark = this.marks.get(symbol);
      if (mark !== undefined) out[symbol] = mark;
    }
    return out;
  }

  private equityNow(account: Account): number | null {
    const view = accountView(account, this.priceMarks(account));
    if (!view.ok) return null;
    const parsed = parseMicros(view.account.equity, { allowNegative: true });
    return parsed.ok ? parsed.value : null;
  }

  private async reserveAndSubmit(
    account: Account,
    spec: SymbolSpec,
    parsed: ParsedOrder,
    clientOrderId: string,
    quote: Quote,
    replacing: OrderRecord | null,
  ): Promise<Outcome<AlpacaOrder>> {
    const prepared = this.prepareOrder(account, spec, parsed, clientOrderId, quote, replacing);
    if (!prepared.ok) return prepared;
    if (prepared.existing) return ok(this.render(prepared.existing));
    const { record } = prepared;
    // Durable before the book sees it: a crash after this point is settled by the alarm (cancel-on-doubt).
    this.sql.transaction(() => {
      this.saveAccount(prepared.account, record.createdAt);
      this.saveOrder(record, { publish: false });
    });
    this.account = prepared.account;
    await this.alarmClock.arm(record.createdAt + PENDING_SETTLE_MS);
    return this.submitRecorded(spec, record, prepared.what, prepared.command);
  }

  /**
   * Check and reserve for an order (a placement, or the new order of a replace with its own quantity):
   * the account with the reservation, the `pending_new` record and the book command, nothing written yet.
   * A client order id the account already knows gives that order instead.
   */
  private prepareOrder(
    account: Account,
    spec: SymbolSpec,
    parsed: ParsedOrder,
    clientOrderId: string,
    quote: Quote,
    replacing: OrderRecord | null,
  ): PreparedOrder | { ok: true; existing: OrderRecord } | ApiFailure {
    const userId = account.config.accountId;
    const orderId = crypto.randomUUID();
    const reference =
      parsed.side === "buy"
        ? (quote.ask ?? quote.last ?? quote.reference)
        : (quote.bid ?? quote.last ?? quote.reference);
    const reserved = reserveForOrder(account, reserveRequestOf(orderId, clientOrderId, spec, parsed), {
      rules: symbolRules(spec),
      referencePriceTicks: reference,
    });
    if (!reserved.ok) {
      if (reserved.code === "duplicate_client_order_id" && reserved.existingOrderId) {
        const existing = this.orderById(reserved.existingOrderId);
        if (existing) return { ok: true, existing };
      }
      return fail(reserveStatus(reserved.code), reserved.code, reserved.message);
    }
    const now = Date.now();
    const record = pendingRecordOf(
      { id: orderId, clientOrderId, account: userId, replaces: replacing?.id ?? null, now },
      spec,
      parsed,
      reserved.qtyLots,
    );
    const command = bookPlaceCommand(
      parsed,
      { orderId, account: userId },
      reserved.qtyLots,
      reserved.protectivePriceTicks,
      now,
    );
    if (command.expiresAt !== undefined) record.expiresAt = command.expiresAt;
    return {
      ok: true,
      existing: null,
      account: reserved.account,
      record,
      what: replacing ? "replace" : "order",
      command: replacing
        ? {
            kind: "replace",
            orderId: replacing.id,
            newOrderId: orderId,
            account: userId,
            qty: reserved.qtyLots,
            ...(parsed.limitTicks !== undefined ? { limitPrice: parsed.limitTicks } : {}),
            ...(parsed.stopTicks !== undefined ? { stopPrice: parsed.stopTicks } : {}),
          }
        : command,
    };
  }

  /**
   * Send the command of an order already on record (`pending_new`, durable) to its book and answer with
   * what the book did. No answer: 503, the order stays pending and the alarm settles it (cancel-on-doubt).
   * A synchronous reject (price band, halt, post-only, FOK) is the answer to this request: 422 saying why;
   * the rejected order stays on record, so a retry with the same client order id finds it.
   */
  private async submitRecorded(
    spec: SymbolSpec,
    record: OrderRecord,
    what: "order" | "replace",
    command: BookCommand,
  ): Promise<Outcome<AlpacaOrder>> {
    let events: EngineEvent[];
    try {
      events = await this.book(spec.symbol).submit(command);
    } catch (err) {
      console.error(
        JSON.stringify({ level: "error", msg: "book submit failed", orderId: record.id, error: String(err) }),
      );
      return fail(
        503,
        "book_unavailable",
        `the ${spec.symbol} book did not answer; order ${record.id} is pending`,
      );
    }
    this.ingest(spec.symbol, events);
    return this.answerOf(spec, record, what, events);
  }

  /** The answer to a request whose command the book answered with `events` (already ingested). */
  private answerOf(
    spec: SymbolSpec,
    record: OrderRecord,
    what: "order" | "replace",
    events: readonly EngineEvent[],
  ): Outcome<AlpacaOrder> {
    const rejected = events.find((e) => e.type === "rejected");
    if (rejected?.type === "rejected") {
      return fail(422, rejected.reason, `the ${spec.symbol} book rejected the ${what}: ${rejected.reason}`);
    }
    return ok(this.render(this.orderById(record.id) ?? record));
  }

  /**
   * Apply book events about this account, each once (by event id), in one transaction with every account,
   * order and fill change they cause; then push the resulting trade updates to the stream.
   */
  private ingest(symbol: string, events: readonly (EngineEvent | AccountBookEvent)[]): number {
    const userId = this.userId;
    if (userId === null || this.account === null) return 0;
    const receivedAt = Date.now();
    const updates: { update: OrderUpdate; order: OrderRecord; positionLots: number }[] = [];
    const candidates: { event: EngineEvent; eventId: string }[] = [];
    for (const event of events) {
      if (!isAccountEvent(event)) continue;
      const eventId = bookEventId(symbol, event.seq);
      if (!this.seenBookEvents.has(eventId)) candidates.push({ event, eventId });
    }
    if (candidates.length === 0) return 0;
    const settled: string[] = [];
    let account = this.account;
    const fresh = this.sql.transaction(() => {
      let count = 0;
      for (const { event, eventId } of candidates) {
        const ids = orderIdsForAccount(event, userId);
        if (ids.length === 0) continue;
        settled.push(eventId);
        // The id is the dedupe key; the event's effect is recorded by the orders, fills and account events
        // below, so the row carries no copy of it (`body` stays empty).
        const inserted = this.sql`INSERT INTO book_events (event_id, symbol, seq, type, body, received_at)
          VALUES (${eventId}, ${symbol}, ${event.seq}, ${event.type}, '', ${receivedAt})
          ON CONFLICT (event_id) DO NOTHING RETURNING event_id`;
        if (inserted.length === 0) continue;
        count++;
        if (event.type === "fill") this.setMark(symbol, event.price);
        for (const orderId of ids) {
          const order = this.orderById(orderId);
          if (!order) continue;
          const applied = applyEngineEvent(order, event);
          account = this.applyToAccount(account, applied.order, event, eventId);
          this.saveOrder(applied.order);
          if (applied.update) {
            updates.push({
              update: applied.update,
              order: applied.order,
              positionLots: account.positions.get(symbol)?.qtyLots ?? 0,
            });
          }
        }
      }
      // Most events (an order accepted, a replace's new order) leave the account as it was: the model
      // returns the same object then, and neither the snapshot nor the equity curve needs a write.
      if (count > 0 && account !== this.account) {
        this.saveAccount(account, receivedAt);
        this.recordEquity(account, receivedAt);
      }
      return count;
    });
    // Remembered once the transaction that applied them has committed.
    for (const id of settled) this.seenBookEvents.set(id, true);
    this.account = account;
    for (const u of updates) {
      const spec = findSymbol(u.order.symbol);
      if (spec) this.stream.broadcast(toTradeUpdate(u.update, u.order, spec, u.positionLots));
    }
    return fresh;
  }

  /** The account effect of one event on one of its orders. Failures are logged, never half-applied. */
  private applyToAccount(account: Account, order: OrderRecord, event: EngineEvent, eventId: string): Account {
    const log = (what: string, detail: unknown) =>
      console.error(
        JSON.stringify({ level: "error", msg: `account: ${what}`, eventId, orderId: order.id, detail }),
      );
    switch (event.type) {
      case "fill": {
        const r = applyFill(account, {
          fillId: eventId,
          orderId: order.id,
          priceTicks: event.price,
          qtyLots: event.qty,
        });
        if (!r.ok) {
          log("fill not applied", r);
          return account;
        }
        if (r.applied) {
          const e = r.effect;
          this.sql
            .run`INSERT INTO fills (event_id, order_id, symbol, side, price_ticks, qty_lots, notional_micros,
              fee_micros, realized_pl_micros, cash_delta_micros, position_qty_lots, liquidity, at)
            VALUES (${eventId}, ${order.id}, ${e.symbol}, ${e.side}, ${e.priceTicks}, ${e.qtyLots}, ${e.notionalMicros},
              ${e.feeMicros}, ${e.realizedPlMicros}, ${e.cashDeltaMicros}, ${e.positionQtyLots},
              ${event.takerOrderId === order.id ? "taker" : "maker"}, ${event.ts})
            ON CONFLICT (event_id) DO NOTHING`;
          const units = account.orders.get(order.id)?.units ?? findSymbol(e.symbol) ?? DEFAULT_UNITS;
          this.outbox.enqueue(
            { userId: order.account, epoch: r.account.epoch, ts: Date.now() },
            {
              type: "account.fill",
              fill: {
                bookEventId: eventId,
                orderId: order.id,
                symbol: e.symbol,
                side: e.side,
                priceTicks: e.priceTicks,
                qtyLots: e.qtyLots,
                tickSize: units.tickSize,
                lotSize: units.lotSize,
                notionalMicros: e.notionalMicros,
                feeMicros: e.feeMicros,
                realizedPlMicros: e.realizedPlMicros,
                cashDeltaMicros: e.cashDeltaMicros,
                positionQtyLots: e.positionQtyLots,
                positionCostBasisMicros: e.positionCostBasisMicros,
                liquidity: event.takerOrderId === order.id ? "taker" : "maker",
                at: event.ts,
              },
              equityMicros: this.equityNow(r.account),
            },
            () => accountEventIds.fill(eventId, order.id),
          );
        }
        return r.account;
      }
      case "canceled":
      case "expired": {
        // A hand-over replacement holds nothing until its `replaced` event arrives (see replaceHandingOver).
        if (order.replaces !== null && !account.orders.has(order.id)) return account;
        const r = applyOrderClosed(account, order.id, event.filledQty);
        if (!r.ok) log("close not applied", r);
        return r.ok ? r.account : account;
      }
      case "replaced": {
        if (event.newOrderId === order.id) return this.reserveReplacement(account, order, event);
        if (event.orderId !== order.id) return account;
        const r = applyOrderClosed(account, order.id, event.filledQty);
        if (!r.ok) log("replace close not applied", r);
        return r.ok ? r.account : account;
      }
      case "rejected": {
        const isPlaceReject = event.command === "place" && event.orderId === order.id;
        const isReplaceReject = event.command === "replace" && event.newOrderId === order.id;
        if (!isPlaceReject && !isReplaceReject) return account;
        // A refused hand-over replacement never held anything.
        if (isReplaceReject && !account.orders.has(order.id)) return account;
        const r = releaseReservation(account, order.id);
        if (!r.ok) log("release not applied", r);
        return r.ok ? r.account : account;
      }
      default:
        return account;
    }
  }

  /**
   * The `replaced` event of a hand-over replace: the old order was just closed (its reservation freed, in
   * the same `ingest` pass), so the new order now reserves for what the book gave it. Nothing to do for a
   * replacement reserved up front, or one that is already closed (its later events arrived first).
   */
  private reserveReplacement(
    account: Account,
    order: OrderRecord,
    event: Extract<EngineEvent, { type: "replaced" }>,
  ): Account {
    if (account.orders.has(order.id) || !isOpen(order)) return account;
    const spec = findSymbol(order.symbol);
    const reserved = spec
      ? reserveForOrder(
          account,
          {
            orderId: order.id,
            clientOrderId: order.clientOrderId,
            symbol: order.symbol,
            side: order.side,
            type: order.type,
            qtyLots: event.qty,
            ...(event.limitPrice !== undefined ? { limitPriceTicks: event.limitPrice } : {}),
            ...(event.stopPrice !== undefined ? { stopPriceTicks: event.stopPrice } : {}),
          },
          { rules: symbolRules(spec), referencePriceTicks: null },
        )
      : null;
    if (reserved?.ok) return reserved.account;
    // Checked before the replace was sent, and fills of the old order only shrink the new one: this would
    // be a bug, and the order rests in the book without a reservation. Say so loudly.
    console.error(
      JSON.stringify({
        level: "error",
        alert: "reservation",
        msg: "account: replacement not reserved",
        orderId: order.id,
        detail: reserved ?? "unknown symbol",
      }),
    );
    return account;
  }

  private closeNeverPlaced(order: OrderRecord, reason: string): void {
    const now = Date.now();
    const released = releaseReservation(this.account ?? this.open(order.account), order.id);
    const closed: OrderRecord = { ...order, status: "rejected", reason, failedAt: now, updatedAt: now };
    this.sql.transaction(() => {
      if (released.ok) this.saveAccount(released.account, now);
      this.saveOrder(closed);
    });
    if (released.ok) this.account = released.account;
  }

  private saveAccount(account: Account, now: number): void {
    // toSnapshot spells its one bigint (an order's fee credit) as a string: no replacer needed.
    const snapshot = JSON.stringify(toSnapshot(account));
    this.sql
      .run`INSERT INTO account (id, user_id, snapshot, updated_at) VALUES (1, ${account.config.accountId}, ${snapshot}, ${now})
      ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, updated_at = excluded.updated_at`;
  }

  /**
   * Write an order row and, unless `publish` is false, its snapshot to the account outbox (Postgres keeps
   * the newest). An order about to be sent to its book (`pending_new`) is not published: whatever happens
   * next saves it again — the book's answer, or the alarm that settles an order the book never answered —
   * so Postgres still receives every order, without one event per order that only said "sending".
   */
  private saveOrder(order: OrderRecord, options: { publish: boolean } = { publish: true }): void {
    this.sql.run`INSERT INTO orders (id, client_order_id, symbol, status, open, created_at, updated_at, body)
      VALUES (${order.id}, ${order.clientOrderId}, ${order.symbol}, ${order.status}, ${isOpen(order) ? 1 : 0},
        ${order.createdAt}, ${order.updatedAt}, ${JSON.stringify(order)})
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, open = excluded.open,
        updated_at = excluded.updated_at, body = excluded.body`;
    this.recentOrders.set(order.id, Object.freeze({ ...order }));
    if (!options.publish) return;
    this.outbox.enqueue(
      { userId: order.account, epoch: this.account?.epoch ?? 0, ts: Date.now() },
      { type: "account.order", order },
      (seq) => accountEventIds.order(order.id, seq),
    );
  }

  private recordEquity(account: Account, now: number): void {
    const equity = this.equityNow(account);
    if (equity === null) return;
    const slot = now - (now % EQUITY_POINT_SPACING_MS);
    this.sql
      .run`INSERT INTO equity_points (ts, equity_micros, realized_pl_micros) VALUES (${slot}, ${equity}, ${account.realizedPlMicros})
      ON CONFLICT (ts) DO UPDATE SET equity_micros = excluded.equity_micros, realized_pl_micros = excluded.realized_pl_micros`;
  }

  private orderById(orderId: string): OrderRecord | null {
    const recent = this.recentOrders.get(orderId);
    if (recent) return { ...recent };
    const row = this.sql.one<{ body: string }>`SELECT body FROM orders WHERE id = ${orderId}`;
    return row ? (JSON.parse(row.body) as OrderRecord) : null;
  }

  private orderByClientId(clientOrderId: string): OrderRecord | null {
    const row = this.sql.one<{
      body: string;
    }>`SELECT body FROM orders WHERE client_order_id = ${clientOrderId}`;
    return row ? (JSON.parse(row.body) as OrderRecord) : null;
  }

  private render(order: OrderRecord): AlpacaOrder {
    const spec = findSymbol(order.symbol);
    return toAlpacaOrder(order, spec ?? { tickSize: "0.01", lotSize: "1" });
  }
}

/** What the account model reserves for: a new order with these terms. */
function reserveRequestOf(
  orderId: string,
  clientOrderId: string,
  spec: SymbolSpec,
  parsed: ParsedOrder,
): OrderRequest {
  return {
    orderId,
    clientOrderId,
    symbol: spec.symbol,
    side: parsed.side,
    type: parsed.type,
    ...(parsed.qtyLots !== undefined ? { qtyLots: parsed.qtyLots } : {}),
    ...(parsed.notionalMicros !== undefined ? { notionalMicros: parsed.notionalMicros } : {}),
    ...(parsed.limitTicks !== undefined ? { limitPriceTicks: parsed.limitTicks } : {}),
    ...(parsed.stopTicks !== undefined ? { stopPriceTicks: parsed.stopTicks } : {}),
  };
}

/** The `pending_new` record of a new order with these terms, for `qtyLots` (what was reserved for). */
function pendingRecordOf(
  ids: { id: string; clientOrderId: string; account: string; replaces: string | null; now: number },
  spec: SymbolSpec,
  parsed: ParsedOrder,
  qtyLots: number,
): OrderRecord {
  return newOrderRecord({
    ...ids,
    symbol: spec.symbol,
    side: parsed.side,
    type: parsed.type,
    tif: parsed.tif,
    qtyLots,
    notionalMicros: parsed.notionalMicros ?? null,
    limitTicks: parsed.limitTicks ?? null,
    stopTicks: parsed.stopTicks ?? null,
  });
}

/** Whether an order's reservation needs the book's quote (see `quoteFor`). */
function quoteNeeded(parsed: ParsedOrder): boolean {
  const priced = parsed.type === "limit" || parsed.type === "stop_limit";
  return !(priced && parsed.qtyLots !== undefined);
}

function orderNotFound(orderId: string): ApiFailure {
  return fail(404, "order_not_found", `order ${orderId} not found`);
}

function isOpenRecord(order: OrderRecord | null): boolean {
  return order !== null && isOpen(order);
}

/** Alpaca answers a lack of buying power or shares with 403; malformed or unacceptable orders with 422. */
function reserveStatus(code: string): ApiFailure["status"] {
  switch (code) {
    case "insufficient_buying_power":
    case "insufficient_position":
      return 403;
    case "duplicate_client_order_id":
      return 409;
    default:
      return 422;
  }
}

/** numerator / denominator as a decimal string with 6 decimals, rounded half away from zero, exactly. */
function ratio(numerator: number, denominator: number): string {
  if (denominator === 0) return "0";
  const n = BigInt(numerator) * 1_000_000n;
  const d = BigInt(denominator);
  const q = (2n * (n < 0n ? -n : n) + d) / (2n * d);
  const units = Number(n < 0n ? -q : q);
  return formatMicros(units, { trimZeros: true });
}

/** A short, stable account number derived from the user id (Alpaca accounts have one). */
function accountNumber(userId: string): string {
  return `PX${userId.replace(/-/g, "").slice(0, 10).toUpperCase()}`;
}

function withAssetFields(p: PositionView): PositionView {
  return { ...p, asset_class: "us_equity", exchange: "PREPX" } as PositionView;
}

export type { AlpacaTradeUpdate };
