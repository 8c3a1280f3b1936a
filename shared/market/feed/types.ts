/**
 * Real market feeds behind one interface: an adapter turns an external source's messages (trades and
 * best bid / offer) into PrepX's units, and {@link FeedState} folds them into what the market maker needs
 * (the last trade and the real best bid / offer, in the symbol's ticks).
 *
 * An adapter is pure: it never opens a socket. Whoever holds the connection (the MarketMaker Durable
 * Object in production, the tests with recorded fixtures) passes each received frame to `normalize`.
 *
 * @example
 * ```ts
 * const adapter = coinbaseAdapter({ product: "BTC-USD", symbol: "EPIC", tickSize: "0.01", lotSize: "1",
 *   priceScale: "0.001", qtyScale: "100" });
 * let state = emptyFeedState();
 * for (const frame of frames) for (const e of adapter.normalize(JSON.parse(frame))) state = applyFeedEvent(state, e);
 * state.bid; state.ask; state.lastTrade?.priceTicks;
 * ```
 */
import type { Side } from "../../engine/types.ts";

/** A trade of the external market, in the PrepX symbol's units. */
export interface FeedTrade {
  kind: "trade";
  /** The PrepX symbol the feed is mapped to. */
  symbol: string;
  /** Adapter name, e.g. "coinbase". */
  source: string;
  /** Stable id within the source, e.g. "coinbase:BTC-USD:370843401". */
  id: string;
  /** The source's sequence number (orders messages of one product). */
  sourceSeq: number;
  /** Source time, ms since epoch. */
  ts: number;
  priceTicks: number;
  /** Lots, rounded half up; a trade smaller than half a lot normalises to 0. */
  qtyLots: number;
  /** The side that took liquidity, when the source says. */
  takerSide: Side | null;
}

/** The external market's best bid and offer, in the PrepX symbol's units. */
export interface FeedQuote {
  kind: "quote";
  symbol: string;
  source: string;
  sourceSeq: number;
  ts: number;
  bidTicks: number;
  bidLots: number;
  askTicks: number;
  askLots: number;
}

export type FeedEvent = FeedTrade | FeedQuote;

/** One external source (an exchange's public stream) mapped onto one PrepX symbol. */
export interface FeedAdapter {
  readonly source: string;
  readonly symbol: string;
  /** Where to connect (a WebSocket URL). */
  readonly url: string;
  /** Frames to send once connected (the subscription). */
  subscribeFrames(): string[];
  /** The PrepX events in one received message (parsed JSON); [] for anything else (heartbeats, acks). */
  normalize(message: unknown): FeedEvent[];
}

/** What the market maker keeps from a feed. */
export interface FeedState {
  lastTrade: FeedTrade | null;
  bid: number | null;
  ask: number | null;
  bidLots: number;
  askLots: number;
  /** Source time of the last applied event (ms), 0 before any. */
  updatedAt: number;
  /** Highest source sequence applied (older messages are dropped). */
  lastSeq: number;
  trades: number;
  quotes: number;
  /** Messages dropped as older than `lastSeq`. */
  stale: number;
}

export function emptyFeedState(): FeedState {
  return {
    lastTrade: null,
    bid: null,
    ask: null,
    bidLots: 0,
    askLots: 0,
    updatedAt: 0,
    lastSeq: -1,
    trades: 0,
    quotes: 0,
    stale: 0,
  };
}

/**
 * The state after one event. Events older than the last applied one (by source sequence) are dropped:
 * feeds reorder across reconnects, and an old best bid / offer must never overwrite a newer one.
 */
export function applyFeedEvent(state: FeedState, event: FeedEvent): FeedState {
  if (event.sourceSeq <= state.lastSeq) return { ...state, stale: state.stale + 1 };
  const base = { ...state, lastSeq: event.sourceSeq, updatedAt: Math.max(state.updatedAt, event.ts) };
  if (event.kind === "trade") return { ...base, lastTrade: event, trades: state.trades + 1 };
  return {
    ...base,
    bid: event.bidTicks,
    ask: event.askTicks,
    bidLots: event.bidLots,
    askLots: event.askLots,
    quotes: state.quotes + 1,
  };
}

/**
 * The reference price the feed implies, in ticks: the middle of the best bid and offer when both are
 * known and not crossed (rounded down), else the last trade, else null.
 */
export function feedReferencePrice(state: FeedState): number | null {
  if (state.bid !== null && state.ask !== null && state.bid > 0 && state.ask >= state.bid) {
    return Math.floor((state.bid + state.ask) / 2);
  }
  return state.lastTrade?.priceTicks ?? null;
}
