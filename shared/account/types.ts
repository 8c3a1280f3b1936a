/**
 * Public types of the account model. All amounts are JS numbers holding safe integers: cash in micro-USD
 * (1e-6 USD), prices in ticks, quantities in lots. See `docs/account-model.md`.
 */
import type { OrderType, Side } from "../engine/types.ts";
import type { AccountSymbolRules, FeeRates, SymbolUnits } from "./units.ts";

export type { OrderType, Side };

/** Risk limits and settings of one account. Part of the state and of the snapshot. */
export interface AccountConfig {
  /** Opaque id of the account (the user id in production). */
  readonly accountId: string;
  /** Paper cash a new (or reset) account starts with, micro-USD. Default 100,000 USD. */
  readonly startingCashMicros: number;
  /** Largest notional of one order, micro-USD; null = no limit. Default null. */
  readonly maxOrderNotionalMicros: number | null;
  /**
   * Largest long exposure per symbol, micro-USD; null = no limit. Checked on buys as
   * (position + open buys + this order) lots × this order's reservation price. Default null.
   */
  readonly maxPositionNotionalMicros: number | null;
  /** Largest number of open orders (orders the book may still fill). Default 500. */
  readonly maxOpenOrders: number;
  /**
   * Protective collar of buys without a limit price (market, stop), basis points: the buy reserves cash at
   * reference price × (1 + collar) and should reach the book as a limit at that price. Default 500 (5 %).
   */
  readonly marketCollarBps: number;
  /**
   * How many finished orders the account remembers (order id and client order id), so that late duplicate
   * fills and closes are recognised and client order ids stay unique over that horizon. Default 1,000.
   */
  readonly completedOrderMemory: number;
}

/** `createAccount` input: only `accountId` is required. */
export type AccountConfigInput = Partial<AccountConfig> & { accountId: string };

/** An order the account has reserved for and that may still receive fills. */
export interface Order {
  readonly orderId: string;
  readonly clientOrderId: string | null;
  readonly symbol: string;
  readonly side: Side;
  readonly type: OrderType;
  /** Ordered quantity, lots. */
  readonly qtyLots: number;
  readonly limitPriceTicks: number | null;
  readonly stopPriceTicks: number | null;
  /**
   * Buys: the price the cash reservation is computed at (the limit price, or the protective price of a
   * market / stop buy). Sells: the price used for the notional limits (limit, stop or reference price).
   */
  readonly reservePriceTicks: number;
  readonly units: SymbolUnits;
  /** Fee schedule the order was accepted under; null = no fees. */
  readonly fees: FeeRates | null;
  /** Lots of the fills applied so far. */
  readonly filledLots: number;
  /**
   * null while the order is open at the book. Once the book closed it (cancel, expiry, replace), the total
   * quantity the book says it filled: the account keeps reserving for fills it has not yet received.
   */
  readonly finalFilledLots: number | null;
  /** Ids of the fills applied to this order: the dedup set while the order lives. */
  readonly fillIds: readonly string[];
  /** Fees charged to this order so far, micro-USD. */
  readonly feesMicros: number;
  /** Fraction of a micro-USD already paid by rounding fees up (numerator over the fee denominator). */
  readonly feeCredit: bigint;
  /** Buys: cash still reserved for this order, micro-USD. Sells: 0. */
  readonly reservedCashMicros: number;
}

/** An open position (long only in this model). Flat positions are removed. */
export interface Position {
  readonly symbol: string;
  readonly units: SymbolUnits;
  /** Lots held, > 0. */
  readonly qtyLots: number;
  /** Average-cost basis of the lots held, micro-USD (fees excluded). */
  readonly costBasisMicros: number;
  /** Lots reserved by open sell orders (Alpaca's held_for_orders); qty_available = qtyLots − heldLots. */
  readonly heldLots: number;
  /** Latest known price (ticks): the last fill, or the last `markToMarket`. */
  readonly markPriceTicks: number;
}

/** A finished order the account still remembers (see `completedOrderMemory`). */
export interface CompletedOrder {
  readonly clientOrderId: string | null;
  /** How the account forgot the order: it completed normally, or a reset dropped it. */
  readonly end: "completed" | "reset";
}

/**
 * The whole state of an account. Treat it as immutable: every operation returns a new `Account` (sharing
 * unchanged parts) and leaves its input untouched, so a rejected operation simply keeps the old value.
 */
export interface Account {
  readonly config: AccountConfig;
  /** Number of resets so far. */
  readonly epoch: number;
  /** Cash the current epoch started with (the ledger's "starting cash"). */
  readonly startingCashMicros: number;
  /** Cash held, including what open buy orders reserve (Alpaca's `cash`). */
  readonly cashMicros: number;
  /** Cumulative realized PnL of the epoch, before fees. */
  readonly realizedPlMicros: number;
  /** Cumulative fees of the epoch. */
  readonly feesMicros: number;
  /** Σ reservedCashMicros of the open buy orders. */
  readonly reservedCashMicros: number;
  /** Equity at the last `rollTradingDay` (Alpaca's last_equity); the starting cash until then. */
  readonly lastEquityMicros: number;
  readonly positions: ReadonlyMap<string, Position>;
  /** Orders the book may still fill, by order id. */
  readonly orders: ReadonlyMap<string, Order>;
  /** clientOrderId → orderId of the live orders. */
  readonly clientOrderIds: ReadonlyMap<string, string>;
  /** Recently finished orders, oldest first (a Map keeps insertion order). */
  readonly completed: ReadonlyMap<string, CompletedOrder>;
  /** clientOrderId → orderId of the remembered finished orders. */
  readonly completedClientOrderIds: ReadonlyMap<string, string>;
}

/** A new order to reserve for, before it is submitted to the book. */
export interface OrderRequest {
  /** Server-assigned unique order id (also the book's order id). */
  orderId: string;
  /** Optional client id, unique over the open and remembered orders (1–128 characters). */
  clientOrderId?: string | null;
  symbol: string;
  side: Side;
  type: OrderType;
  /** Quantity in lots. Exactly one of qtyLots and notionalMicros. */
  qtyLots?: number;
  /**
   * Notional order: spend (buy) or raise (sell) about this many micro-USD. Converted to
   * floor(notional / value of one lot at the sizing price) lots, where the sizing price is the limit price,
   * else the stop price, else the reference price.
   */
  notionalMicros?: number;
  /** Required for limit and stop_limit, forbidden otherwise. */
  limitPriceTicks?: number;
  /** Required for stop and stop_limit, forbidden otherwise. */
  stopPriceTicks?: number;
}

/** What the caller knows about the market of the order's symbol when it reserves. */
export interface MarketContext {
  rules: AccountSymbolRules;
  /**
   * Buys: best ask, else last trade. Sells: best bid, else last trade. Ticks. Required for market orders
   * (protective price and sizing) and for notional orders without a limit or stop price.
   */
  referencePriceTicks?: number | null;
}

/** A fill of one of the account's orders, from the taker response or the book's outbox. */
export interface Fill {
  /** Unique per order (the book's fill id). Applying the same fill again changes nothing. */
  fillId: string;
  orderId: string;
  /** Ticks. */
  priceTicks: number;
  /** Lots, > 0. */
  qtyLots: number;
}

/** Stable reject codes of `reserveForOrder`. */
export type ReserveRejectCode =
  | "invalid_order"
  | "invalid_symbol_rules"
  | "symbol_mismatch"
  | "symbol_rules_changed"
  | "invalid_qty"
  | "invalid_notional"
  | "invalid_price"
  | "qty_below_min"
  | "qty_above_max"
  | "min_notional"
  | "no_reference_price"
  | "duplicate_order_id"
  | "duplicate_client_order_id"
  | "max_open_orders"
  | "max_order_notional"
  | "max_position_notional"
  | "insufficient_buying_power"
  | "insufficient_position"
  | "overflow";

/** Codes of the other operations. */
export type AccountErrorCode =
  | "invalid_fill"
  | "unknown_order"
  | "overfill"
  | "order_has_fills"
  | "inconsistent_fill_qty"
  | "invalid_price"
  | "invalid_config"
  | "invalid_grant"
  | "invalid_snapshot"
  | "overflow";

export interface Failure<C extends string> {
  ok: false;
  code: C;
  message: string;
}

export type ReserveResult =
  | {
      ok: true;
      account: Account;
      order: Order;
      /** Lots to submit (resolved from notionalMicros for notional orders). */
      qtyLots: number;
      /**
       * Buys without a limit (market, stop): the protective price the cash was reserved at. Submit the order
       * to the book with this as its limit (market → IOC limit, stop → stop_limit) so that no fill can cost
       * more than the reservation. null when the order has its own limit, and for sells.
       */
      protectivePriceTicks: number | null;
      /** Cash reserved (buys), micro-USD. */
      reservedCashMicros: number;
      /** Lots reserved from the position (sells). */
      heldLots: number;
    }
  | (Failure<ReserveRejectCode> & {
      /** duplicate_client_order_id: the order that already carries that client order id. */
      existingOrderId?: string;
    });

/** What one applied fill did. */
export interface FillEffect {
  fillId: string;
  orderId: string;
  symbol: string;
  side: Side;
  priceTicks: number;
  qtyLots: number;
  notionalMicros: number;
  feeMicros: number;
  realizedPlMicros: number;
  /** Change of cash: −notional − fee (buy) or +notional − fee (sell). */
  cashDeltaMicros: number;
  /** Position after the fill (0 lots when it closed). */
  positionQtyLots: number;
  positionCostBasisMicros: number;
  /** Total lots of the order filled after this fill. */
  orderFilledLots: number;
  /** True when the order needs nothing more (filled, or closed and all its fills received). */
  orderDone: boolean;
}

export type ApplyFillResult =
  | { ok: true; applied: true; account: Account; effect: FillEffect }
  | {
      ok: true;
      applied: false;
      /** The same account object: nothing changed. */
      account: Account;
      /** "duplicate": already applied. "order_reset": the order was dropped by a reset. */
      reason: "duplicate" | "order_reset";
    }
  | Failure<"invalid_fill" | "unknown_order" | "overfill" | "overflow">;

export type CloseResult =
  | {
      ok: true;
      account: Account;
      /** Cash reservation released, micro-USD. */
      releasedCashMicros: number;
      /** Position lots released (sells). */
      releasedLots: number;
      /** True when the order is finished (no fills outstanding). */
      orderDone: boolean;
      /** True when nothing changed (a repeated close, or the order was already finished). */
      alreadyClosed: boolean;
    }
  | Failure<"unknown_order" | "order_has_fills" | "inconsistent_fill_qty" | "overflow">;

export type AccountResult = { ok: true; account: Account } | Failure<AccountErrorCode>;

/** Alpaca-like GET /v2/account figures, as decimal strings (USD trimmed of trailing zeros). */
export interface AccountView {
  id: string;
  currency: "USD";
  status: "ACTIVE";
  /** Cash held, including cash reserved by open buy orders. */
  cash: string;
  /** cash − cash reserved by open buy orders (a cash account: no margin). */
  buying_power: string;
  /** Same as buying_power (cash account). */
  regt_buying_power: string;
  /** Same as buying_power (cash account). */
  non_marginable_buying_power: string;
  /** cash + long_market_value − |short_market_value|. */
  equity: string;
  /** Equity at the previous `rollTradingDay` (starting cash until the first one). */
  last_equity: string;
  long_market_value: string;
  /** Always "0": shorting is not supported. */
  short_market_value: string;
  /** long_market_value + short_market_value. */
  position_market_value: string;
  /** Same as equity (Alpaca's deprecated alias). */
  portfolio_value: string;
  multiplier: "1";
  shorting_enabled: false;
  // PrepX extensions (not in Alpaca's account object).
  /** Cash the account (or its last reset) started with. */
  starting_cash: string;
  /** Cumulative realized PnL before fees since the start or the last reset. */
  realized_pl: string;
  /** Cumulative fees since the start or the last reset. */
  fees: string;
  /** cash − buying_power: cash reserved by open buy orders. */
  reserved_cash: string;
}

/** Alpaca-like GET /v2/positions entry. */
export interface PositionView {
  symbol: string;
  side: "long";
  /** Lots as a quantity (lot size decimals, trailing zeros trimmed). */
  qty: string;
  /** qty − held by open sell orders. */
  qty_available: string;
  /** cost_basis / qty in USD per unit, rounded half away from zero to 1e-6. */
  avg_entry_price: string;
  /** qty × current_price. */
  market_value: string;
  cost_basis: string;
  /** market_value − cost_basis. */
  unrealized_pl: string;
  /** unrealized_pl / cost_basis, rounded half away from zero to 6 decimals ("0.1" = +10 %). */
  unrealized_plpc: string;
  /** Price used for the figures: the caller's price, else the position's mark. */
  current_price: string;
}

export type AccountViewResult =
  | { ok: true; account: AccountView; positions: PositionView[] }
  | Failure<"overflow" | "invalid_price">;
