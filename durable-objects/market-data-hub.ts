import { DurableObject } from "cloudflare:workers";
import { priceToTicks, qtyToLots } from "../shared/engine/rules.ts";
import {
  alpacaBar,
  alpacaQuote,
  alpacaTrade,
  type QuoteRecord,
  sameQuote,
} from "../shared/market/alpaca-data.ts";
import {
  applySubscription,
  type Channel,
  emptySubscriptions,
  errorMessage,
  parseClientAction,
  STREAM_ERRORS,
  type Subscriptions,
  subscribedSymbols,
  subscriptionMessage,
  successMessage,
  wants,
} from "../shared/market/data-stream.ts";
import { DEFAULT_SYMBOLS, findSymbol, SYMBOL_PATTERN, type SymbolSpec } from "../shared/symbols.ts";
import type { Env } from "../workers/env.ts";
import { writeThrough } from "../workers/lib/market/cache.ts";
import { readMinuteBars } from "../workers/lib/market/queries.ts";
import { L2Replica, messagesOfFrame, type ServerMessage } from "./order-book/protocol.ts";

/** Header through which the edge names the authenticated user of a forwarded data-stream socket. */
export const DATA_STREAM_USER_HEADER = "x-prepx-user-id";
/** Greetings the hub sends on accept: "connected,authenticated" (headers auth) or "authenticated" (relay). */
export const DATA_STREAM_HELLO_HEADER = "x-prepx-hello";

/** The hub every data-stream socket is served by (one shard for now; see docs/market-data.md). */
export const DATA_HUB_NAME = "hub-0";

/** Sockets one hub accepts (the platform caps hibernatable sockets per object at 32,768). */
const MAX_SOCKETS = 30_000;
/** Symbols one connection may name per channel. */
const MAX_SYMBOLS = 1_000;
const MAX_FRAME_CHARS = 16_384;
/** Minute bars go out this long after the minute closes (the queue needs ~1–2 s to land its trades). */
const BAR_DELAY_MS = 3_000;
/** While a traded minute's bar has not reached Postgres, look again this often (until the next minute). */
const BAR_RETRY_MS = 2_000;
/** Health check of the upstream book sockets while clients are connected. */
const HEALTH_MS = 30_000;
/** Write a changed quote through to Redis at most this often per symbol. */
const WRITE_THROUGH_MS = 250;
/** Snapshot depth asked of the books: deep enough that the top is always known. */
const UPSTREAM_DEPTH = 1_000;

interface ClientState {
  userId: string;
  subs: Subscriptions;
  connectedAt: number;
}

interface Upstream {
  ws: WebSocket;
  replica: L2Replica;
  quote: QuoteRecord | null;
  lastWriteThrough: number;
}

export interface HubStats {
  clients: number;
  upstreams: string[];
  sent: { trades: number; quotes: number; bars: number };
  upstreamMessages: number;
  gaps: number;
}

/**
 * The market-data stream in Alpaca's data-stream protocol (`t` trades, `q` quotes, `b` minute bars),
 * fanned out from the OrderBooks' L2 streams.
 *
 * - Clients: hibernatable WebSockets, their subscriptions in the socket attachment. The edge authenticates
 *   before it hands a socket over (headers on the upgrade, or the first `auth` message relayed).
 * - Upstreams: for each symbol some client wants trades or quotes of, one socket to that OrderBook's L2
 *   stream (`/v2/stream/book/:symbol`), kept as an {@link L2Replica} (a `seq` gap re-subscribes). Each
 *   trade is a `t`; each change of the best bid / ask (price or size) is a `q`, and is written through
 *   to the latest-quote cache.
 * - Bars: at each minute boundary (+3 s for the queue) the alarm reads the 1-minute bars that just closed
 *   from Postgres and sends them as `b`.
 */
export class MarketDataHub extends DurableObject<Env> {
  private readonly upstreams = new Map<string, Upstream>();
  /** Minutes in which each symbol traded (seen on its book stream), the last few: which bars to expect. */
  private readonly tradedMinutes = new Map<string, Set<number>>();
  /** The last minute whose bar went out, per symbol, so a retry never sends a bar twice. */
  private readonly barSentFor = new Map<string, number>();
  private readonly stats: HubStats = {
    clients: 0,
    upstreams: [],
    sent: { trades: 0, quotes: 0, bars: 0 },
    upstreamMessages: 0,
    gaps: 0,
  };

  /** Only the upgrade of a socket the edge has authenticated. */
  override async fetch(request: Request): Promise<Response> {
    const userId = request.headers.get(DATA_STREAM_USER_HEADER);
    if (!userId || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json(
        { code: "bad_request", message: "expected an authenticated WebSocket upgrade" },
        { status: 400 },
      );
    }
    if (this.ctx.getWebSockets().length >= MAX_SOCKETS) {
      return Response.json(
        { code: "too_many_connections", message: "the data stream is full" },
        { status: 503 },
      );
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const state: ClientState = { userId, subs: emptySubscriptions(), connectedAt: Date.now() };
    server.serializeAttachment(state);
    const hello = (request.headers.get(DATA_STREAM_HELLO_HEADER) ?? "connected,authenticated").split(",");
    const greetings = [];
    if (hello.includes("connected")) greetings.push(successMessage("connected"));
    greetings.push(successMessage("authenticated"));
    server.send(JSON.stringify(greetings));
    await this.armHealth();
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const send = (body: unknown[]) => {
      try {
        ws.send(JSON.stringify(body));
      } catch {
        // Closing.
      }
    };
    if (typeof message !== "string" || message.length > MAX_FRAME_CHARS) {
      send([errorMessage(STREAM_ERRORS.invalidSyntax)]);
      return;
    }
    const action = parseClientAction(message, (s) => SYMBOL_PATTERN.test(s));
    if (action === null) {
      send([errorMessage(STREAM_ERRORS.invalidSyntax)]);
      return;
    }
    if (action.action === "auth") {
      send([errorMessage(STREAM_ERRORS.alreadyAuthenticated)]);
      return;
    }
    if (action.action === "ping") {
      send([{ T: "pong" }]);
      return;
    }
    const state = ws.deserializeAttachment() as ClientState;
    const subs = applySubscription(state.subs, action.action, action.changes);
    if ((["trades", "quotes", "bars"] as const).some((c) => subs[c].length > MAX_SYMBOLS)) {
      send([errorMessage(STREAM_ERRORS.symbolLimit)]);
      return;
    }
    const added = newlyQuoted(state.subs, subs);
    state.subs = subs;
    ws.serializeAttachment(state);
    send([subscriptionMessage(subs)]);
    this.syncUpstreams();
    // A new quote subscriber gets the current quote at once instead of waiting for the next change.
    const initial = [];
    for (const symbol of added) {
      const up = this.upstreams.get(symbol);
      const spec = findSymbol(symbol);
      if (up?.quote && spec) initial.push({ T: "q", S: symbol, ...alpacaQuote(up.quote, spec) });
    }
    if (initial.length > 0) send(initial);
    if (subs.bars.length > 0) await this.armBars();
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const sendable = code === 1000 || (code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1014);
    try {
      ws.close(sendable || (code >= 3000 && code <= 4999) ? code : 1000, reason);
    } catch {
      // Already closed.
    }
    this.syncUpstreams(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    try {
      ws.close(1011, "socket error");
    } catch {
      // Already closed.
    }
    this.syncUpstreams(ws);
  }

  /** Minute bars, and a health check of the upstreams while anyone is connected. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const clients = this.clients();
    if (clients.length === 0) {
      this.syncUpstreams();
      return;
    }
    this.syncUpstreams();
    const closedMinute = Math.floor((now - BAR_DELAY_MS) / 60_000) * 60_000 - 60_000;
    let unseenBarMissing = false;
    let tradedBarMissing = false;
    const barSubs = clients.filter((c) => c.state.subs.bars.length > 0);
    if (barSubs.length > 0) {
      const { symbols, wildcard } = subscribedSymbols({
        trades: [],
        quotes: [],
        bars: barSubs.flatMap((c) => c.state.subs.bars),
      });
      try {
        const bars = await readMinuteBars(this.env, wildcard ? "*" : [...symbols], closedMinute);
        for (const [symbol, bar] of bars) {
          const spec = findSymbol(symbol);
          if (!spec || this.barSentFor.get(symbol) === closedMinute) continue;
          const text = JSON.stringify([{ T: "b", S: symbol, ...alpacaBar(bar, spec) }]);
          this.stats.sent.bars += this.broadcast("bars", symbol, text);
          this.barSentFor.set(symbol, closedMinute);
        }
        // A bar not in Postgres yet may only be late: the minute's trades can still be on their way
        // through the queue, which lags by many seconds when the consumers are busy. Look again until
        // the next minute: every BAR_RETRY_MS for a symbol this hub saw trade in that minute (it streams
        // its book); with a growing gap for one it does not watch (a bars-only subscription), which may
        // as well have stayed quiet; and not at all for a symbol it saw stay quiet.
        const expected = wildcard ? DEFAULT_SYMBOLS.map((d) => d.symbol) : [...symbols];
        for (const symbol of expected) {
          if (this.barSentFor.get(symbol) === closedMinute) continue;
          const seen = this.upstreams.has(symbol) ? this.tradedMinutes.get(symbol) : undefined;
          if (seen === undefined) unseenBarMissing = true;
          else if (seen.has(closedMinute)) tradedBarMissing = true;
        }
      } catch (err) {
        console.error(JSON.stringify({ level: "error", msg: "data hub: minute bars", error: String(err) }));
        tradedBarMissing = true;
      }
    }
    const nextMinute = Math.floor(now / 60_000) * 60_000 + 60_000 + BAR_DELAY_MS;
    // Unseen symbols: at 3, 5, 7.5, 11, 17, 25, 38 s … after the close (half the time since it): ~8 reads a minute.
    const sinceClose = now - (closedMinute + 60_000);
    const retryIn = tradedBarMissing
      ? BAR_RETRY_MS
      : unseenBarMissing
        ? Math.max(BAR_RETRY_MS, sinceClose / 2)
        : Number.POSITIVE_INFINITY;
    const nextBar = barSubs.length === 0 ? Number.POSITIVE_INFINITY : Math.min(nextMinute, now + retryIn);
    await this.ctx.storage.setAlarm(Math.min(nextBar, now + HEALTH_MS));
  }

  private noteTradeMinute(symbol: string, ts: number): void {
    const minute = Math.floor(ts / 60_000) * 60_000;
    let minutes = this.tradedMinutes.get(symbol);
    if (minutes === undefined) {
      minutes = new Set();
      this.tradedMinutes.set(symbol, minutes);
    }
    minutes.add(minute);
    for (const m of minutes) if (m < minute - 3 * 60_000) minutes.delete(m);
  }

  /** Counters and what is open (admin page, tests). */
  async hubStats(): Promise<HubStats> {
    return this.snapshotStats();
  }

  // -------------------------------------------------------------------------------------------------

  private snapshotStats(): HubStats {
    return {
      ...this.stats,
      sent: { ...this.stats.sent },
      clients: this.ctx.getWebSockets().length,
      upstreams: [...this.upstreams.keys()].sort(),
    };
  }

  private clients(except?: WebSocket): { ws: WebSocket; state: ClientState }[] {
    const out: { ws: WebSocket; state: ClientState }[] = [];
    for (const ws of this.ctx.getWebSockets()) {
      if (ws === except || ws.readyState !== WebSocket.OPEN) continue;
      const state = ws.deserializeAttachment() as ClientState | null;
      if (state) out.push({ ws, state });
    }
    return out;
  }

  /** Open an upstream for every symbol someone wants trades or quotes of; close the rest. */
  private syncUpstreams(except?: WebSocket): void {
    const wanted = new Set<string>();
    for (const { state } of this.clients(except)) {
      const { symbols, wildcard } = subscribedSymbols({ ...state.subs, bars: [] });
      if (wildcard) for (const s of DEFAULT_SYMBOLS) wanted.add(s.symbol);
      for (const s of symbols) if (findSymbol(s)) wanted.add(s);
    }
    for (const [symbol, up] of this.upstreams) {
      if (wanted.has(symbol) && up.ws.readyState === WebSocket.OPEN) continue;
      this.upstreams.delete(symbol);
      try {
        up.ws.close(1000, "no subscribers");
      } catch {
        // Already closed.
      }
    }
    for (const symbol of wanted) {
      if (!this.upstreams.has(symbol)) this.openUpstream(symbol);
    }
  }

  private openUpstream(symbol: string): void {
    const spec = findSymbol(symbol);
    if (!spec) return;
    // Reserve the slot while the upgrade is in flight.
    const pending: Upstream = {
      ws: { readyState: WebSocket.OPEN, close: () => {}, send: () => {} } as unknown as WebSocket,
      replica: new L2Replica(),
      quote: null,
      lastWriteThrough: 0,
    };
    this.upstreams.set(symbol, pending);
    const book = this.env.ORDER_BOOK.get(this.env.ORDER_BOOK.idFromName(symbol));
    const connect = async () => {
      const res = await book.fetch(
        `https://order-book.internal/v2/stream/book/${symbol}?depth=${UPSTREAM_DEPTH}`,
        {
          headers: { Upgrade: "websocket" },
        },
      );
      const ws = res.webSocket;
      if (!ws) throw new Error(`book ${symbol} refused the stream (${res.status})`);
      ws.accept();
      if (this.upstreams.get(symbol) !== pending) {
        ws.close(1000, "no longer wanted");
        return;
      }
      pending.ws = ws;
      ws.addEventListener("message", (ev) => this.onUpstream(symbol, spec, pending, ev.data));
      ws.addEventListener("close", () => {
        if (this.upstreams.get(symbol) === pending) this.upstreams.delete(symbol);
      });
    };
    connect().catch((err: unknown) => {
      if (this.upstreams.get(symbol) === pending) this.upstreams.delete(symbol);
      console.error(
        JSON.stringify({ level: "error", msg: "data hub: upstream", symbol, error: String(err) }),
      );
    });
  }

  private onUpstream(symbol: string, spec: SymbolSpec, up: Upstream, data: unknown): void {
    let messages: ServerMessage[];
    try {
      messages = messagesOfFrame(
        typeof data === "string" ? data : new TextDecoder().decode(data as ArrayBuffer),
      );
    } catch {
      return;
    }
    for (const msg of messages) {
      this.stats.upstreamMessages++;
      if (this.onUpstreamMessage(symbol, spec, up, msg) === "resubscribed") return;
    }
  }

  /** One book message: trades and quote changes go out; a gap asks the book for a fresh snapshot. */
  private onUpstreamMessage(
    symbol: string,
    spec: SymbolSpec,
    up: Upstream,
    msg: ServerMessage,
  ): "resubscribed" | undefined {
    const applied = up.replica.apply(msg);
    if (applied === "gap") {
      this.stats.gaps++;
      up.ws.send('{"type":"subscribe"}');
      return "resubscribed";
    }
    if (applied !== "applied") return;
    if (msg.type === "trade") {
      this.noteTradeMinute(symbol, msg.ts);
      const price = priceToTicks(spec, msg.price);
      const qty = qtyToLots(spec, msg.qty);
      if (!price.ok || !qty.ok) return;
      const text = JSON.stringify([
        {
          T: "t",
          S: symbol,
          ...alpacaTrade(
            {
              seq: msg.seq,
              ts: msg.ts,
              priceTicks: price.value,
              qtyLots: qty.value,
              takerSide: msg.taker_side,
            },
            spec,
          ),
        },
      ]);
      this.stats.sent.trades += this.broadcast("trades", symbol, text);
      return;
    }
    if (msg.type !== "snapshot" && msg.type !== "delta") return;
    const quote = topOf(spec, up.replica);
    if (sameQuote(quote, up.quote)) return;
    up.quote = quote;
    const text = JSON.stringify([{ T: "q", S: symbol, ...alpacaQuote(quote, spec) }]);
    this.stats.sent.quotes += this.broadcast("quotes", symbol, text);
    const now = Date.now();
    if (now - up.lastWriteThrough >= WRITE_THROUGH_MS) {
      up.lastWriteThrough = now;
      this.ctx.waitUntil(writeThrough(this.env, "quote", symbol, alpacaQuote(quote, spec)));
    }
  }

  /** Send `text` to every client that wants `channel` of `symbol`; returns how many got it. */
  private broadcast(channel: Channel, symbol: string, text: string): number {
    let n = 0;
    for (const { ws, state } of this.clients()) {
      if (!wants(state.subs, channel, symbol)) continue;
      try {
        ws.send(text);
        n++;
      } catch {
        // Closing; its close handler cleans up.
      }
    }
    return n;
  }

  private async armBars(): Promise<void> {
    const now = Date.now();
    const at = Math.floor(now / 60_000) * 60_000 + 60_000 + BAR_DELAY_MS;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  private async armHealth(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + HEALTH_MS);
  }
}

/** Symbols that a subscription change newly added to `quotes` (explicitly or by wildcard). */
function newlyQuoted(before: Subscriptions, after: Subscriptions): string[] {
  const all = DEFAULT_SYMBOLS.map((s) => s.symbol);
  const set = (subs: Subscriptions) => new Set(subs.quotes.includes("*") ? all : subs.quotes);
  const old = set(before);
  return [...set(after)].filter((s) => !old.has(s));
}

/** The replica's best bid and ask in ticks / lots. */
function topOf(spec: SymbolSpec, replica: L2Replica): QuoteRecord {
  const level = (l: [string, string] | undefined): [number, number] | null => {
    if (!l) return null;
    const p = priceToTicks(spec, l[0]);
    const q = qtyToLots(spec, l[1]);
    return p.ok && q.ok ? [p.value, q.value] : null;
  };
  return { ts: Date.now(), bid: level(replica.bids(1)[0]), ask: level(replica.asks(1)[0]) };
}
