/**
 * Wire protocol of the market-data stream `GET /v2/stream/book/:symbol` (see docs/market-data-protocol.md),
 * plus {@link L2Replica}, a reference client that rebuilds the book from a snapshot and the deltas that
 * follow it and detects sequence gaps. Pure TypeScript: usable by tests, the load generator and clients.
 */
import type { Side } from "../../shared/engine/types.ts";

/** [price, total quantity] as decimal strings on the symbol's tick and lot grid. "0" removes a level. */
export type WireLevel = [price: string, qty: string];

/** The book's top levels. `seq` is the seq of the last delta or trade reflected in it. */
export interface SnapshotMessage {
  type: "snapshot";
  symbol: string;
  seq: number;
  /** Number of levels per side requested (a side may hold fewer). */
  depth: number;
  halted: boolean;
  /** Best (highest) first. */
  bids: WireLevel[];
  /** Best (lowest) first. */
  asks: WireLevel[];
}

/** New total quantity of every level that changed in one command batch, at any depth. */
export interface DeltaMessage {
  type: "delta";
  symbol: string;
  seq: number;
  bids: WireLevel[];
  asks: WireLevel[];
}

/** One execution. `taker_side` is the side of the order that removed liquidity. */
export interface TradeMessage {
  type: "trade";
  symbol: string;
  seq: number;
  price: string;
  qty: string;
  taker_side: Side;
  /** Milliseconds since the epoch. */
  ts: number;
}

/** Trading status change (halt / resume). Not sequenced: the next snapshot carries it too. */
export interface StatusMessage {
  type: "status";
  symbol: string;
  halted: boolean;
}

/** The server could not act on a client frame. The connection stays open unless noted. */
export interface ErrorMessage {
  type: "error";
  code: "bad_frame" | "unknown_type" | "invalid_depth" | "binary_not_supported";
  message: string;
}

export interface PongMessage {
  type: "pong";
}

/** Messages that carry the book's `seq`. */
export type SequencedMessage = DeltaMessage | TradeMessage;

export type ServerMessage =
  | SnapshotMessage
  | DeltaMessage
  | TradeMessage
  | StatusMessage
  | ErrorMessage
  | PongMessage;

/** Frames a client may send. */
/**
 * What one text frame from the server carries: one message, or (when a busy book sends several messages
 * within one coalescing window) a JSON array of them in `seq` order. Parse every frame with this.
 */
export function messagesOfFrame(text: string): ServerMessage[] {
  const value = JSON.parse(text) as ServerMessage | ServerMessage[];
  return Array.isArray(value) ? value : [value];
}

export type ClientMessage = { type: "subscribe"; depth?: number } | { type: "ping" };

/** Snapshot depth when `?depth=` is absent. */
export const DEFAULT_DEPTH = 50;
/** Largest snapshot depth a client may ask for. */
export const MAX_DEPTH = 1000;
/** Exact text of the keep-alive frame answered without waking the object (and its answer). */
export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';
/** Close codes used by the server. */
export const CLOSE_CODES = {
  /** Too many bad frames or snapshot requests. */
  policyViolation: 1008,
  /** A frame larger than the limit. */
  messageTooBig: 1009,
  /** The book is shutting the stream (e.g. too many subscribers). */
  tryAgainLater: 1013,
} as const;

/**
 * Compare two decimal price strings with the same number of decimals (as sent by one book) without
 * converting to floating point: longer integer part first, then text order.
 */
export function comparePrices(a: string, b: string): number {
  const ia = a.indexOf(".");
  const ib = b.indexOf(".");
  const la = ia === -1 ? a.length : ia;
  const lb = ib === -1 ? b.length : ib;
  if (la !== lb) return la - lb;
  return a < b ? -1 : a > b ? 1 : 0;
}

export type ApplyResult =
  /** Applied. */
  | "applied"
  /** Already reflected (seq ≤ the replica's): ignored. */
  | "stale"
  /** A message is missing between the replica's seq and this one: re-subscribe for a fresh snapshot. */
  | "gap"
  /** Not a book message, or no snapshot yet. */
  | "ignored";

/**
 * A local copy of one book built from a snapshot and the sequenced messages after it.
 *
 * It holds every level of the snapshot plus every level changed since. Levels deeper than the snapshot
 * that have not changed since are unknown to it, so its top `depth` levels match the server's only while
 * the snapshot's depth covers them; ask for a deeper snapshot when more is needed.
 *
 * @example
 * ```ts
 * const book = new L2Replica();
 * ws.onmessage = (e) => { if (book.apply(JSON.parse(e.data)) === "gap") ws.send('{"type":"subscribe"}'); };
 * ```
 */
export class L2Replica {
  /** Seq of the last message applied; -1 before the first snapshot. */
  seq = -1;
  halted = false;
  trades: TradeMessage[] = [];
  private readonly bidLevels = new Map<string, string>();
  private readonly askLevels = new Map<string, string>();
  /** Set after a gap until the next snapshot. */
  private broken = false;

  get synced(): boolean {
    return this.seq >= 0 && !this.broken;
  }

  apply(msg: ServerMessage): ApplyResult {
    if (msg.type === "snapshot") {
      this.bidLevels.clear();
      this.askLevels.clear();
      for (const [p, q] of msg.bids) this.bidLevels.set(p, q);
      for (const [p, q] of msg.asks) this.askLevels.set(p, q);
      this.seq = msg.seq;
      this.halted = msg.halted;
      this.broken = false;
      return "applied";
    }
    if (msg.type === "status") {
      this.halted = msg.halted;
      return "applied";
    }
    if (msg.type !== "delta" && msg.type !== "trade") return "ignored";
    if (this.seq < 0 || this.broken) return "ignored";
    if (msg.seq <= this.seq) return "stale";
    if (msg.seq !== this.seq + 1) {
      this.broken = true;
      return "gap";
    }
    this.seq = msg.seq;
    if (msg.type === "trade") {
      this.trades.push(msg);
      return "applied";
    }
    for (const [p, q] of msg.bids) setLevel(this.bidLevels, p, q);
    for (const [p, q] of msg.asks) setLevel(this.askLevels, p, q);
    return "applied";
  }

  /** Best first, at most `depth` levels. */
  bids(depth = Number.POSITIVE_INFINITY): WireLevel[] {
    return [...this.bidLevels].sort((a, b) => comparePrices(b[0], a[0])).slice(0, depth);
  }

  /** Best first, at most `depth` levels. */
  asks(depth = Number.POSITIVE_INFINITY): WireLevel[] {
    return [...this.askLevels].sort((a, b) => comparePrices(a[0], b[0])).slice(0, depth);
  }
}

function setLevel(levels: Map<string, string>, price: string, qty: string): void {
  if (isZero(qty)) levels.delete(price);
  else levels.set(price, qty);
}

function isZero(qty: string): boolean {
  for (let i = 0; i < qty.length; i++) {
    const c = qty.charCodeAt(i);
    if (c !== 48 && c !== 46) return false;
  }
  return true;
}
