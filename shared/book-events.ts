/**
 * Events an OrderBook sends to the rest of the system, and their stable ids.
 *
 * - To a UserSession (RPC `applyBookEvents(symbol, events)`): every event about one of the account's
 *   orders, on both sides of a trade: accepted, rejected, fill, canceled, expired, replaced, triggered.
 * - To the `trade-events` Queue: one {@link TradeEventMessage} per trade (fill), trading-status change and
 *   reference-price change: what only the book knows. An order's own life (accepted, canceled, replaced, …)
 *   reaches the queue from its owner's UserSession as `account.order` events, which is what history reads.
 *   Books used to publish a copy too, which nothing consumed and which was most of the queue's traffic
 *   (docs/history.md).
 *
 * Every event has the id `${symbol}:${seq}` where `seq` is the engine's sequence number: stable across
 * retries, restarts and replays, so receivers dedupe on it (delivery is at-least-once).
 * A fill concerns two accounts (maker and taker); both receive it with the same id.
 */
import type {
  AcceptedEvent,
  CanceledEvent,
  EngineEvent,
  ExpiredEvent,
  FillEvent,
  ReferencePriceEvent,
  RejectedEvent,
  ReplacedEvent,
  TradingStatusEvent,
  TriggeredEvent,
} from "./engine/types.ts";

/** Engine events about an account's order. */
export type AccountEngineEvent =
  | AcceptedEvent
  | RejectedEvent
  | FillEvent
  | CanceledEvent
  | ExpiredEvent
  | ReplacedEvent
  | TriggeredEvent;

/** An account event as delivered to a UserSession: the engine event plus its symbol and stable id. */
export type AccountBookEvent = AccountEngineEvent & {
  /** `${symbol}:${seq}`. */
  eventId: string;
  symbol: string;
};

/** The stable id of the engine event `seq` of `symbol`. */
export function bookEventId(symbol: string, seq: number): string {
  return `${symbol}:${seq}`;
}

/**
 * The accounts that must learn `event` (none for book deltas and symbol-wide events; two for a fill
 * between different accounts; one for a self-trade).
 */
export function accountsOf(event: EngineEvent): string[] {
  switch (event.type) {
    case "fill":
      return event.makerAccount === event.takerAccount
        ? [event.takerAccount]
        : [event.takerAccount, event.makerAccount];
    case "accepted":
    case "canceled":
    case "expired":
    case "replaced":
    case "triggered":
      return [event.account];
    case "rejected":
      return event.account === undefined ? [] : [event.account];
    default:
      return [];
  }
}

/** Whether `event` is about an account's order. */
export function isAccountEvent(event: EngineEvent): event is AccountEngineEvent {
  switch (event.type) {
    case "accepted":
    case "rejected":
    case "fill":
    case "canceled":
    case "expired":
    case "replaced":
    case "triggered":
      return true;
    default:
      return false;
  }
}

/**
 * Kinds of queue message. Books no longer publish `order` messages; consumers still accept the ones older
 * producers sent.
 */
export type TradeEventType = "order" | "fill" | "trading_status" | "reference_price";

/**
 * One message on the `trade-events` Queue. Prices are ticks and quantities lots, as in the engine;
 * `tickSize` / `lotSize` say how to turn them into decimals.
 */
export type TradeEventMessage = {
  /** Stable event id `${symbol}:${seq}`: consumers dedupe on it. */
  id: string;
  symbol: string;
  seq: number;
  /** The `now` of the command that produced the event (ms since epoch). */
  ts: number;
  tickSize: string;
  lotSize: string;
} & (
  | { type: "order"; event: Exclude<AccountEngineEvent, FillEvent> }
  | { type: "fill"; event: FillEvent }
  | { type: "trading_status"; event: TradingStatusEvent }
  | { type: "reference_price"; event: ReferencePriceEvent }
);

/**
 * The queue message for `event`, or `null` for events the book does not publish: L2 book deltas (market
 * data) and order-lifecycle events (their owner's UserSession publishes them as account events).
 */
export function tradeEventMessage(
  symbol: string,
  sizes: { tickSize: string; lotSize: string },
  event: EngineEvent,
): TradeEventMessage | null {
  switch (event.type) {
    case "fill":
      return { ...messageBase(symbol, sizes, event), type: "fill", event };
    case "trading_status":
      return { ...messageBase(symbol, sizes, event), type: "trading_status", event };
    case "reference_price":
      return { ...messageBase(symbol, sizes, event), type: "reference_price", event };
    default:
      return null;
  }
}

function messageBase(symbol: string, sizes: { tickSize: string; lotSize: string }, event: EngineEvent) {
  return {
    id: bookEventId(symbol, event.seq),
    symbol,
    seq: event.seq,
    ts: event.ts,
    tickSize: sizes.tickSize,
    lotSize: sizes.lotSize,
  };
}
