/**
 * Public types of the PrepX matching engine.
 *
 * Everything here is plain data: commands in, events out. Prices are integer ticks, quantities are
 * integer lots (JS numbers holding safe integers, never floats). See `docs/engine.md` for the semantics.
 */

export type Side = "buy" | "sell";
export type OrderType = "market" | "limit" | "stop" | "stop_limit";
export type TimeInForce = "day" | "gtc" | "ioc" | "fok";
/** What happens when a taker would trade against a resting order of the same account. */
export type SelfTradePrevention = "cancel_newest" | "cancel_oldest" | "cancel_both";

/** Static trading rules of one symbol. */
export interface SymbolRules {
  symbol: string;
  /** Decimal string, e.g. "0.01" or "0.05". One tick of price. */
  tickSize: string;
  /** Decimal string, e.g. "1" or "0.001". One lot of quantity. */
  lotSize: string;
  /** Smallest order quantity in lots (≥ 1). */
  minQtyLots: number;
  /** Largest order quantity in lots (≤ MAX_QTY_LOTS). */
  maxQtyLots: number;
  /** Smallest order notional, in price ticks × quantity lots (0 = no minimum). */
  minNotionalTicksLots: number;
  /** Orders whose limit / stop price is further than this from the reference price are rejected. 0 = no band. */
  priceBandBps: number;
}

/** Optional engine settings. Part of the snapshot, so a restored engine behaves the same. */
export interface EngineOptions {
  /** Self-trade prevention mode used when a place command does not name one. Default "cancel_newest". */
  defaultStp?: SelfTradePrevention;
  /**
   * Closed order ids (filled, canceled, expired, replaced) are remembered for at least this many and at
   * most twice this many further closes (two generations: when the current one holds this many ids, the
   * previous one is forgotten). A cancel / replace of a remembered id is rejected with "order_not_open"
   * rather than "unknown_order", and placing a remembered id again with "duplicate_order_id".
   * Default 10,000; 0 remembers nothing. Idempotency over longer horizons is the caller's job (the
   * UserSession dedupes client order ids).
   */
  closedOrderMemory?: number;
  /** Initial reference price in ticks (for the price band). */
  referencePrice?: number;
  /** Start halted. Default false. */
  halted?: boolean;
  /** Initial capacity of the order pool (it grows by doubling). Default 1024. */
  initialCapacity?: number;
}

// ---------------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------------

/** Place a new order. `now` is the caller's time in ms since epoch (the engine never reads a clock). */
export interface PlaceCommand {
  kind: "place";
  now: number;
  /** Caller-chosen unique id (a UUID in production). */
  orderId: string;
  account: string;
  side: Side;
  type: OrderType;
  tif: TimeInForce;
  /** Quantity in lots. */
  qty: number;
  /** Limit price in ticks: required for limit and stop_limit, forbidden otherwise. */
  limitPrice?: number;
  /** Stop (trigger) price in ticks: required for stop and stop_limit, forbidden otherwise. */
  stopPrice?: number;
  /** Only for limit orders with tif day / gtc: the order is rejected if it would take liquidity. */
  postOnly?: boolean;
  stp?: SelfTradePrevention;
  /**
   * For day and gtc orders: `tick(now >= expiresAt)` expires the order. For day orders the caller
   * computes the session end. Must be > now. Ignored for ioc / fok.
   */
  expiresAt?: number;
}

export interface CancelCommand {
  kind: "cancel";
  now: number;
  orderId: string;
  /** If given, must own the order. */
  account?: string;
}

/**
 * Amend an open order (Alpaca semantics): the old order ends as "replaced" and a new order id carries on.
 * `qty` is the quantity of the new order (its open quantity); fills of the old order stay with the old order.
 * Keeping the price (and stop price) and not increasing the quantity keeps time priority; anything else
 * loses it.
 */
export interface ReplaceCommand {
  kind: "replace";
  now: number;
  orderId: string;
  newOrderId: string;
  account?: string;
  qty?: number;
  limitPrice?: number;
  stopPrice?: number;
}

/** Expire every order with `expiresAt <= now`. */
export interface TickCommand {
  kind: "tick";
  now: number;
}

export interface HaltCommand {
  kind: "halt";
  now: number;
}

export interface ResumeCommand {
  kind: "resume";
  now: number;
}

export interface SetReferencePriceCommand {
  kind: "setReferencePrice";
  now: number;
  /** Ticks. */
  price: number;
}

export type EngineCommand =
  | PlaceCommand
  | CancelCommand
  | ReplaceCommand
  | TickCommand
  | HaltCommand
  | ResumeCommand
  | SetReferencePriceCommand;

export type CommandKind = EngineCommand["kind"];

// ---------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------

/** Stable reason codes of a rejected command. */
export type RejectReason =
  | "invalid_command"
  | "invalid_time"
  | "invalid_order_id"
  | "invalid_account"
  | "invalid_side"
  | "invalid_order_type"
  | "invalid_tif"
  | "invalid_stp"
  | "invalid_expiry"
  | "invalid_qty"
  | "qty_not_lot_multiple"
  | "qty_below_min"
  | "qty_above_max"
  | "invalid_price"
  | "off_tick"
  | "missing_limit_price"
  | "missing_stop_price"
  | "unexpected_limit_price"
  | "unexpected_stop_price"
  | "price_out_of_band"
  | "min_notional"
  | "halted"
  | "post_only_invalid"
  | "post_only_would_take"
  | "fok_unfillable"
  | "duplicate_order_id"
  | "unknown_order"
  | "order_not_open"
  | "not_owner"
  | "nothing_to_replace";

/** Why an accepted order was canceled. */
export type CancelReason =
  /** A cancel command. */
  | "user"
  /** The unfilled rest of an IOC limit order. */
  | "ioc_remainder"
  /** The unfilled rest of a market order (market orders never rest). */
  | "market_no_liquidity"
  /** A triggered FOK stop order that could not be filled in full. */
  | "fok_unfillable"
  /** Self-trade prevention. */
  | "stp";

/** Status of an order after a fill. */
export type FillStatus = "partially_filled" | "filled";

/** Status of an order still known to the engine. */
export type OrderStatus =
  | "new"
  | "partially_filled"
  | "pending_trigger"
  | "filled"
  | "canceled"
  | "expired"
  | "replaced";

interface EventBase {
  /** Engine sequence number: strictly increasing across all events of this book. */
  seq: number;
  /** Sequence number the engine assigned to the command that produced this event. */
  commandSeq: number;
  /** The `now` of that command. */
  ts: number;
}

export interface AcceptedEvent extends EventBase {
  type: "accepted";
  orderId: string;
  account: string;
  side: Side;
  orderType: OrderType;
  tif: TimeInForce;
  qty: number;
  limitPrice?: number;
  stopPrice?: number;
  postOnly: boolean;
  stp: SelfTradePrevention;
  expiresAt?: number;
}

export interface RejectedEvent extends EventBase {
  type: "rejected";
  command: CommandKind | "unknown";
  reason: RejectReason;
  /** The order the command named (place: the new id; cancel / replace: the existing id). */
  orderId?: string;
  /** Replace only. */
  newOrderId?: string;
  account?: string;
}

export interface FillEvent extends EventBase {
  type: "fill";
  /** Monotonic per book, starting at 1. */
  fillId: number;
  /** Ticks; always the maker's price. */
  price: number;
  /** Lots. */
  qty: number;
  takerOrderId: string;
  makerOrderId: string;
  takerAccount: string;
  makerAccount: string;
  /** The taker (liquidity remover) side; the maker (liquidity provider) is on the other side. */
  takerSide: Side;
  takerLeavesQty: number;
  makerLeavesQty: number;
  takerStatus: FillStatus;
  makerStatus: FillStatus;
}

export interface CanceledEvent extends EventBase {
  type: "canceled";
  orderId: string;
  account: string;
  side: Side;
  reason: CancelReason;
  /** Open quantity removed by the cancel. */
  canceledQty: number;
  /** Quantity this order had filled before it was canceled. */
  filledQty: number;
}

export interface ExpiredEvent extends EventBase {
  type: "expired";
  orderId: string;
  account: string;
  side: Side;
  expiredQty: number;
  filledQty: number;
}

/**
 * The old order is closed with status "replaced" and the new order id carries on with the same type, tif,
 * post-only flag, STP mode and expiry (those cannot change), and the quantity and prices given here.
 */
export interface ReplacedEvent extends EventBase {
  type: "replaced";
  /** The old order. */
  orderId: string;
  newOrderId: string;
  account: string;
  side: Side;
  /** Quantity of the new order. */
  qty: number;
  limitPrice?: number;
  stopPrice?: number;
  /** Open quantity of the old order that the replace closed. */
  replacedQty: number;
  /** Quantity the old order had filled (stays with the old order). */
  filledQty: number;
  /** True when the new order kept the old one's place in the queue. */
  priorityKept: boolean;
}

export interface TriggeredEvent extends EventBase {
  type: "triggered";
  orderId: string;
  account: string;
  side: Side;
  /** "stop" now behaves as a market order, "stop_limit" as a limit order. */
  orderType: OrderType;
  stopPrice: number;
  lastTradePrice: number;
}

/** L2 delta: the new total quantity resting at one price level (0 = level removed). */
export interface BookEvent extends EventBase {
  type: "book";
  /** Strictly increasing across book events only. */
  bookSeq: number;
  side: Side;
  price: number;
  qty: number;
}

export interface TradingStatusEvent extends EventBase {
  type: "trading_status";
  halted: boolean;
}

export interface ReferencePriceEvent extends EventBase {
  type: "reference_price";
  price: number;
}

export type EngineEvent =
  | AcceptedEvent
  | RejectedEvent
  | FillEvent
  | CanceledEvent
  | ExpiredEvent
  | ReplacedEvent
  | TriggeredEvent
  | BookEvent
  | TradingStatusEvent
  | ReferencePriceEvent;

export type EngineEventType = EngineEvent["type"];

// ---------------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------------

/** [price in ticks, total quantity in lots]. */
export type PriceLevel = [price: number, qty: number];

export interface TopOfBook {
  bid: PriceLevel | null;
  ask: PriceLevel | null;
  /** Book sequence number of the last book delta reflected here. */
  bookSeq: number;
}

export interface DepthSnapshot {
  /** Best first. */
  bids: PriceLevel[];
  /** Best first. */
  asks: PriceLevel[];
  /** Book sequence number of the last book delta reflected here: apply deltas with bookSeq > this. */
  bookSeq: number;
}

/** An open order (resting limit order or untriggered stop). */
export interface OrderView {
  orderId: string;
  account: string;
  side: Side;
  orderType: OrderType;
  tif: TimeInForce;
  /** Open quantity in lots. */
  leavesQty: number;
  filledQty: number;
  limitPrice?: number;
  stopPrice?: number;
  postOnly: boolean;
  stp: SelfTradePrevention;
  expiresAt?: number;
  /** Stop orders: true once triggered (a triggered stop_limit rests as a limit order). */
  triggered: boolean;
  status: "new" | "partially_filled" | "pending_trigger";
}

// ---------------------------------------------------------------------------------------------------
// Snapshot
// ---------------------------------------------------------------------------------------------------

/** One open order in a snapshot, in queue order. Prices absent (null) when not applicable. */
export interface SnapshotOrder {
  id: string;
  account: string;
  side: Side;
  type: OrderType;
  tif: TimeInForce;
  leaves: number;
  filled: number;
  limitPrice: number | null;
  stopPrice: number | null;
  postOnly: boolean;
  stp: SelfTradePrevention;
  expiresAt: number | null;
  triggered: boolean;
  /** Queue priority stamp (also the expiry tie-break). */
  prio: number;
}

/** JSON-serialisable state of an engine. `MatchingEngine.restore(snapshot)` continues identically. */
export interface EngineSnapshot {
  version: 1;
  rules: SymbolRules;
  options: Required<Omit<EngineOptions, "referencePrice" | "halted" | "initialCapacity">>;
  seq: number;
  commandSeq: number;
  bookSeq: number;
  fillId: number;
  prioSeq: number;
  lastTradePrice: number | null;
  referencePrice: number | null;
  halted: boolean;
  /** Resting bids, best level first, queue order within a level. */
  bids: SnapshotOrder[];
  asks: SnapshotOrder[];
  /** Untriggered buy stops in trigger order. */
  buyStops: SnapshotOrder[];
  sellStops: SnapshotOrder[];
  /** Recently closed orders, older generation, oldest first: [orderId, status]. */
  closedPrevious: [string, OrderStatus][];
  /** Recently closed orders, current generation, oldest first. */
  closedCurrent: [string, OrderStatus][];
}
