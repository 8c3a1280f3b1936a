/**
 * The WebSockets of a simulated trader: book streams (`/v2/stream/book/{symbol}`, docs/market-data-protocol.md)
 * checked for sequence gaps and timed for delivery lag, and the account's `trade_updates` (`/stream`, ADR 0004).
 *
 * Book messages are read with a scanner instead of `JSON.parse`: with hundreds of sockets on a hot symbol
 * the generator receives tens of thousands of messages a second, and it only needs `type`, `seq` and (on
 * trades) `ts` from each. One socket per symbol (the "market view") parses everything into an `L2Replica`
 * so the traders can price their orders off the live book.
 */
import WebSocket from "ws";
import { L2Replica, messagesOfFrame } from "../../durable-objects/order-book/protocol.ts";

export interface ScannedMessage {
  type: "snapshot" | "delta" | "trade" | "other";
  seq: number;
  /** Book event time (trades only), ms since the epoch. */
  ts: number;
}

function numberAfter(text: string, key: string, from = 0): number {
  const at = text.indexOf(key, from);
  if (at < 0) return -1;
  let i = at + key.length;
  let n = 0;
  let digits = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
    digits++;
  }
  return digits === 0 ? -1 : n;
}

/**
 * `type`, `seq` and `ts` of a book stream message without parsing the whole frame. The server writes
 * `{"type":"…","symbol":"…","seq":N,…}` (JSON.stringify keeps the literal's key order); anything that does
 * not look like that is "other".
 */
export function scanBookMessage(text: string, from = 0): ScannedMessage {
  let type: ScannedMessage["type"] = "other";
  if (text.startsWith('{"type":"delta"', from)) type = "delta";
  else if (text.startsWith('{"type":"trade"', from)) type = "trade";
  else if (text.startsWith('{"type":"snapshot"', from)) type = "snapshot";
  if (type === "other") return { type, seq: -1, ts: -1 };
  const seq = numberAfter(text, '"seq":', from);
  if (seq < 0) return { type: "other", seq: -1, ts: -1 };
  return { type, seq, ts: type === "trade" ? numberAfter(text, '"ts":', from) : -1 };
}

/**
 * Every message of a frame: a frame is one message or, from a busy book, a JSON array of them
 * (docs/market-data-protocol.md, "Frames"). Each message starts with `{"type":`, which occurs nowhere else.
 */
export function scanBookFrame(text: string): ScannedMessage[] {
  if (!text.startsWith("[")) return [scanBookMessage(text)];
  const out: ScannedMessage[] = [];
  for (let at = text.indexOf('{"type":'); at >= 0; at = text.indexOf('{"type":', at + 8)) {
    out.push(scanBookMessage(text, at));
  }
  return out;
}

/** Sequence bookkeeping of one book socket (docs/market-data-protocol.md, "Sequence numbers"). */
export class SeqTracker {
  /** Seq of the last message in order; -1 before the first snapshot. */
  seq = -1;
  /** Waiting for the snapshot asked for after a gap. */
  resyncing = false;
  gaps = 0;
  /** Sequenced messages that never arrived (sum of the holes). */
  missing = 0;
  /** Messages at or below the current seq (duplicates or reordering). */
  stale = 0;

  /** Returns what the caller should do: nothing, or ask for a snapshot (`resync`). */
  onSnapshot(seq: number): void {
    this.seq = seq;
    this.resyncing = false;
  }

  onSequenced(seq: number): "ok" | "stale" | "gap" | "ignored" {
    if (this.seq < 0 || this.resyncing) return "ignored";
    if (seq === this.seq + 1) {
      this.seq = seq;
      return "ok";
    }
    if (seq <= this.seq) {
      this.stale++;
      return "stale";
    }
    this.gaps++;
    this.missing += seq - this.seq - 1;
    this.resyncing = true;
    return "gap";
  }
}

export interface StreamSink {
  /** A sequenced book message arrived; `lagMs` for trades (receive time − book event time). */
  bookMessage(bytes: number, lagMs: number | undefined): void;
  gap(missing: number): void;
  stale(): void;
  disconnect(kind: "book" | "trade_updates", code: number, reason: string): void;
}

const WS_OPTIONS = { perMessageDeflate: false, handshakeTimeout: 30_000 } as const;

function wsUrl(baseUrl: string, path: string): string {
  return baseUrl.replace(/^http/, "ws") + path;
}

/** Opens a socket and resolves once its first message arrives (the snapshot, or the listen ack). */
function opened(ws: WebSocket, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`${what}: ${err.message}`));
    ws.once("error", onError);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`${what}: HTTP ${res.statusCode}`)));
    ws.once("message", () => {
      ws.off("error", onError);
      resolve();
    });
  });
}

/**
 * One subscription to a symbol's book stream. With `replica` set it also keeps the full book (the market
 * view the traders price from).
 */
export class BookSocket {
  readonly symbol: string;
  readonly tracker = new SeqTracker();
  readonly replica: L2Replica | null;
  messages = 0;
  private ws: WebSocket | null = null;
  private closing = false;
  private readonly url: string;
  private readonly sink: StreamSink;

  /** `intervalMs`: the stream's update interval (`interval_ms`), 0 for every update. */
  constructor(
    baseUrl: string,
    symbol: string,
    depth: number,
    sink: StreamSink,
    keepBook: boolean,
    intervalMs = 0,
  ) {
    this.symbol = symbol;
    const interval = intervalMs === 0 ? "" : `&interval_ms=${intervalMs}`;
    this.url = wsUrl(baseUrl, `/v2/stream/book/${encodeURIComponent(symbol)}?depth=${depth}${interval}`);
    this.sink = sink;
    this.replica = keepBook ? new L2Replica() : null;
  }

  async open(): Promise<void> {
    const ws = new WebSocket(this.url, WS_OPTIONS);
    this.ws = ws;
    ws.on("message", (data: Buffer) => this.onMessage(data));
    ws.on("error", () => {});
    ws.on("close", (code, reason) => {
      if (this.closing) return;
      this.sink.disconnect("book", code, reason.toString());
      // Reconnect after a pause; the new snapshot restarts the sequence.
      this.tracker.seq = -1;
      setTimeout(() => {
        if (!this.closing) this.open().catch(() => {});
      }, 1000).unref();
    });
    await opened(ws, `book ${this.symbol}`);
  }

  private onMessage(data: Buffer): void {
    const text = data.toString("utf8");
    const scanned = scanBookFrame(text);
    if (this.replica) {
      // After a gap the replica waits for the snapshot the tracker below asks for.
      for (const full of messagesOfFrame(text)) this.replica.apply(full);
      // Trades are not needed beyond the last price; keep the replica's list short.
      if (this.replica.trades.length > 64) this.replica.trades.splice(0, this.replica.trades.length - 1);
    }
    const bytes = Math.round(data.length / Math.max(1, scanned.length));
    for (const m of scanned) {
      if (m.type === "snapshot") {
        this.tracker.onSnapshot(m.seq);
        continue;
      }
      if (m.type === "other") continue;
      this.messages++;
      const result = this.tracker.onSequenced(m.seq);
      if (result === "gap") {
        this.sink.gap(m.seq - (this.tracker.seq + 1));
        this.ws?.send('{"type":"subscribe"}');
      } else if (result === "stale") {
        this.sink.stale();
      }
      this.sink.bookMessage(bytes, m.type === "trade" && m.ts > 0 ? Date.now() - m.ts : undefined);
    }
  }

  close(): void {
    this.closing = true;
    this.ws?.close(1000);
  }
}

export interface TradeUpdate {
  event: string;
  execution_id?: string;
  timestamp: string;
  price?: string;
  qty?: string;
  position_qty?: string;
  order: {
    id: string;
    client_order_id: string;
    symbol: string;
    side: string;
    status: string;
    filled_qty: string;
    qty: string | null;
  };
}

/** The account's `trade_updates` socket: headers auth on the upgrade (ADR 0004 path 1), then `listen`. */
export class TradeUpdatesSocket {
  private ws: WebSocket | null = null;
  private closing = false;
  private readonly url: string;
  private readonly headers: () => Record<string, string>;
  private readonly onUpdate: (u: TradeUpdate, lagMs: number) => void;
  private readonly sink: StreamSink;
  messages = 0;

  constructor(
    baseUrl: string,
    headers: () => Record<string, string>,
    onUpdate: (u: TradeUpdate, lagMs: number) => void,
    sink: StreamSink,
  ) {
    this.url = wsUrl(baseUrl, "/stream");
    this.headers = headers;
    this.onUpdate = onUpdate;
    this.sink = sink;
  }

  async open(): Promise<void> {
    const ws = new WebSocket(this.url, { ...WS_OPTIONS, headers: this.headers() });
    this.ws = ws;
    let listening = false;
    const ready = new Promise<void>((resolve, reject) => {
      ws.once("open", () => ws.send('{"action":"listen","data":{"streams":["trade_updates"]}}'));
      ws.once("unexpected-response", (_req, res) =>
        reject(new Error(`trade_updates: HTTP ${res.statusCode}`)),
      );
      ws.once("error", (err) => reject(new Error(`trade_updates: ${err.message}`)));
      ws.on("message", (data: Buffer) => {
        const m = JSON.parse(data.toString("utf8")) as { stream?: string; data?: unknown };
        if (m.stream === "listening") {
          listening = true;
          resolve();
          return;
        }
        if (m.stream !== "trade_updates") return;
        this.messages++;
        const u = m.data as TradeUpdate;
        this.onUpdate(u, Date.now() - Date.parse(u.timestamp));
      });
    });
    ws.on("error", () => {});
    ws.on("close", (code, reason) => {
      if (this.closing) return;
      this.sink.disconnect("trade_updates", code, reason.toString());
      setTimeout(() => {
        if (!this.closing) this.open().catch(() => {});
      }, 1000).unref();
    });
    await ready;
    if (!listening) throw new Error("trade_updates: not listening");
  }

  close(): void {
    this.closing = true;
    this.ws?.close(1000);
  }
}
