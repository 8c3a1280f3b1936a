import { DurableObject } from "cloudflare:workers";
import { validateSymbolRules } from "../shared/engine/index.ts";
import type { EngineCommand, EngineEvent, PriceLevel } from "../shared/engine/types.ts";
import { type PackedEvents, packEvents, packLog } from "../shared/engine/wire.ts";
import { findSymbol, referencePriceTicks, type SymbolSpec, symbolRules } from "../shared/symbols.ts";
import type { Env } from "../workers/env.ts";
import {
  BookCore,
  type BookPolicy,
  type CommitResult,
  DEFAULT_BOOK_POLICY,
  eventsOf,
  type RecoveryInfo,
} from "./order-book/book-core.ts";
import {
  type BookCommand,
  BookInputError,
  normalizeCommand,
  type PackedCommands,
  unpackCommands,
} from "./order-book/commands.ts";
import { parseClientFrame, parseDepth } from "./order-book/market-data.ts";
import {
  DEFAULT_OUTBOX_POLICY,
  envTransport,
  type OutboxPolicy,
  type OutboxTransport,
} from "./order-book/outbox.ts";
import {
  CLOSE_CODES,
  DEFAULT_DEPTH,
  type ErrorMessage,
  MAX_DEPTH,
  PING_FRAME,
  PONG_FRAME,
  type SnapshotMessage,
  type StatusMessage,
} from "./order-book/protocol.ts";
import { ORDER_BOOK_MIGRATIONS, ORDER_BOOK_SCHEMA } from "./order-book/schema.ts";
import {
  frameOf,
  IntervalFrames,
  intervalTag,
  parseInterval,
  REALTIME_TAG,
  STREAM_INTERVALS_MS,
} from "./order-book/stream-intervals.ts";
import { migrate, type Sql, sqlOf } from "./sql.ts";

export type { BookCommand } from "./order-book/commands.ts";
export type { SnapshotMessage } from "./order-book/protocol.ts";

/** What `status()` reports. Prices are ticks and quantities lots. */
export interface BookStatus {
  symbol: string;
  name: string;
  halted: boolean;
  /** Engine sequence of the last event. */
  seq: number;
  commandSeq: number;
  bookSeq: number;
  /** Market-data sequence of the last delta / trade message. */
  mdSeq: number;
  openOrders: number;
  bestBid: PriceLevel | null;
  bestAsk: PriceLevel | null;
  lastTradePrice: number | null;
  referencePrice: number | null;
  /** Hash of the whole engine state: equal before and after a restart. */
  stateHash: string;
  journal: { lastBatch: number; snapshotBatch: number; commandsSinceSnapshot: number };
  /**
   * Undelivered batches after the delivery cursor plus rows of receivers that fell behind; rows that
   * failed; events held in memory for them (delivered batches are let go of at once).
   */
  outbox: { pending: number; failing: number; eventsInMemory: number };
  subscribers: number;
  recovery: RecoveryInfo;
}

/**
 * The top of the book and the prices around it: what an order's reservation, a position's mark and the
 * latest-quote cache need. Cheap (no state hash, no journal or outbox reads), so callers may ask per order.
 */
export interface BookQuote {
  symbol: string;
  halted: boolean;
  /** Engine sequence of the last event: quotes with a higher seq are newer. */
  seq: number;
  bestBid: PriceLevel | null;
  bestAsk: PriceLevel | null;
  lastTradePrice: number | null;
  referencePrice: number | null;
}

/** Limits of the market-data stream; tests may lower them on an instance. */
export interface StreamLimits {
  maxSockets: number;
  /** Longest client frame, in characters (bytes for binary frames). */
  maxFrameChars: number;
  /** Bad frames tolerated (each answered with an error) before the socket is closed. */
  maxBadFrames: number;
  /** Snapshot requests per window (the one sent on connect counts). */
  snapshotsPerWindow: number;
  snapshotWindowMs: number;
  /**
   * Frames to subscribers are sent at most once per this many ms: messages of commits inside one window
   * go out together as one JSON-array frame (every message kept, seq unchanged). The first commit after a
   * quiet window is sent at once, so a quiet book adds no delay; a busy one costs one socket write per
   * window per subscriber instead of one per message. 0 sends every commit's messages at once.
   */
  coalesceMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxSockets: 30_000,
  maxFrameChars: 4096,
  maxBadFrames: 10,
  snapshotsPerWindow: 10,
  snapshotWindowMs: 10_000,
  coalesceMs: 50,
};

/** Per-socket state, kept with `serializeAttachment` so it survives hibernation. */
interface SocketState {
  depth: number;
  connectedAt: number;
  badFrames: number;
  windowStart: number;
  snapshotsInWindow: number;
}

function jsonResponse(status: number, code: string, message: string): Response {
  return Response.json({ code, message }, { status });
}

/**
 * One matching engine per symbol (`idFromName(symbol)`), durable in the object's SQLite storage.
 *
 * - RPC: `submit` / `submitMany` (place, cancel, replace; `submitMany` packed) return the engine's events
 *   once the batch's journal row, which is also its outbox entry, is committed (calls that arrive while a
 *   commit is on its way to disk share the next one: group commit); `snapshot`, `quote`, `status`,
 *   `outboxStatus`, and the admin calls `halt`, `resume`, `cancelAll`, `setReferencePrice`, `configure`.
 * - Recovery: latest engine snapshot plus the journal tail, inside `blockConcurrencyWhile` on every wake.
 * - Outbox: one alarm delivers the batches after the delivery cursor: account events to UserSessions and
 *   all events to the trade-events Queue (order-book/outbox.ts).
 * - Market data: hibernatable WebSockets (`fetch` is only the upgrade), see docs/market-data-protocol.md.
 *
 * @example
 * ```ts
 * const book = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName("ACME"));
 * const events = await book.submit({ kind: "place", orderId: crypto.randomUUID(), account: userId,
 *   side: "buy", type: "limit", tif: "day", qty: 10, limitPrice: 10_125 });
 * ```
 */
export class OrderBook extends DurableObject<Env> {
  /** @internal Test seam: where the outbox delivers. Instance fields are not reachable over RPC. */
  transport: OutboxTransport;
  /** @internal Test seam: snapshot / journal policy. */
  policy: BookPolicy = { ...DEFAULT_BOOK_POLICY };
  /** @internal Test seam: outbox batching and retry policy. */
  outboxPolicy: OutboxPolicy = { ...DEFAULT_OUTBOX_POLICY };
  /** @internal Test seam: stream limits. */
  limits: StreamLimits = { ...DEFAULT_STREAM_LIMITS };

  private readonly sql: Sql;
  private core: BookCore | null = null;
  private broken: unknown = null;
  /** The alarm time this instance last set (null: none set, or it has fired). */
  private alarmAt: number | null = null;
  /** While the alarm runs, it re-arms itself at the end; commits only note the time they need. */
  private alarmRunning = false;
  private wantedDuringRun: number | null = null;
  /** Commits since the alarm last started (a heartbeat keeps the alarm armed while this is non-zero). */
  private commitsSinceAlarm = 0;
  /** Submitted commands waiting for the group commit (see `enqueue`). */
  private pending: Pending[] = [];
  private committing = false;
  /** Market-data messages committed but not yet sent (JSON texts, in seq order), see `coalesceMs`. */
  private outgoing: string[] = [];
  private lastFlushAt = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  /** Connected subscribers as of the last accept / flush (decides whether commits build messages). */
  private subscribers = 0;
  /** Messages waiting for the subscribers that asked for an update interval (`?interval_ms=`). */
  private readonly intervalFrames = new IntervalFrames();
  private intervalTimer: ReturnType<typeof setTimeout> | null = null;
  private intervalTimerAt = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = sqlOf(ctx.storage);
    this.transport = envTransport(env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    void ctx.blockConcurrencyWhile(async () => {
      try {
        await this.wake();
      } catch (err) {
        // Rethrown so the runtime resets the object and the next request retries a clean wake; kept so a
        // call that still reaches this instance fails with the cause instead of using a half-built book.
        this.broken = err;
        console.error(
          JSON.stringify({
            level: "error",
            msg: "order book wake failed",
            book: ctx.id.name,
            error: err instanceof Error ? err.message : String(err),
          }),
        );
        throw err;
      }
    });
  }

  /** Readiness probe: proves a Durable Object round trip works. */
  async ping(): Promise<"pong"> {
    return "pong";
  }

  // -------------------------------------------------------------------------------------------------
  // Trading
  // -------------------------------------------------------------------------------------------------

  /**
   * Place, cancel or replace one order. Resolves with the engine's events for it (a reject is an event,
   * not an exception) after they are durable. `now` defaults to the object's clock.
   */
  async submit(command: BookCommand): Promise<EngineEvent[]> {
    this.book();
    const now = Date.now();
    const commands = [normalizeCommand(command, now)];
    const events = await new Promise<EngineEvent[][]>((resolve, reject) => {
      this.enqueue({ commands, reply: "events", resolve, reject });
    });
    return events[0] ?? [];
  }

  /**
   * Several commands in one transaction: the events of each, in order, packed (`unpackEvents` of the
   * answer is `EngineEvent[][]`, equal field for field to what the engine produced). At most `maxBatch`
   * (1000). Packed because structured-cloning a batch's ~240 event objects cost the book and its caller
   * more than matching and journaling the batch (shared/engine/wire.ts).
   */
  async submitMany(commands: BookCommand[] | PackedCommands): Promise<PackedEvents> {
    const normalized = this.normalizeBatch(commands);
    if (normalized.length === 0) return packEvents([]);
    return new Promise((resolve, reject) => {
      this.enqueue({ commands: normalized, reply: "packed", resolve, reject });
    });
  }

  /** The top `depth` levels per side, exactly as a market-data subscriber receives them. */
  async snapshot(depth: number = DEFAULT_DEPTH): Promise<SnapshotMessage> {
    const core = this.book();
    if (!Number.isInteger(depth) || depth < 1 || depth > MAX_DEPTH) {
      throw new BookInputError(`depth must be an integer from 1 to ${MAX_DEPTH}`);
    }
    return this.snapshotMessage(core, depth);
  }

  /** Best bid and ask, last trade and reference price (see {@link BookQuote}). */
  async quote(): Promise<BookQuote> {
    const core = this.book();
    const engine = core.engine;
    const top = engine.topOfBook();
    return {
      symbol: core.spec.symbol,
      halted: engine.halted,
      seq: engine.seq,
      bestBid: top.bid,
      bestAsk: top.ask,
      lastTradePrice: engine.lastTradePrice,
      referencePrice: engine.referencePrice,
    };
  }

  /** Everything about the book, including a hash of its whole state (O(open orders): for ops and tests). */
  async status(): Promise<BookStatus> {
    const core = this.book();
    const engine = core.engine;
    const top = engine.topOfBook();
    const pending = core.outbox.pending();
    return {
      symbol: core.spec.symbol,
      name: core.spec.name,
      halted: engine.halted,
      seq: engine.seq,
      commandSeq: engine.commandSeq,
      bookSeq: engine.bookSeq,
      mdSeq: core.mdSeq,
      openOrders: engine.openOrderCount,
      bestBid: top.bid,
      bestAsk: top.ask,
      lastTradePrice: engine.lastTradePrice,
      referencePrice: engine.referencePrice,
      stateHash: engine.stateHash(),
      journal: {
        lastBatch: core.journal.lastId,
        snapshotBatch: core.journal.latestSnapshotJournalId(),
        commandsSinceSnapshot: core.commandsSinceSnapshot,
      },
      outbox: { pending: pending.rows, failing: pending.failing, eventsInMemory: core.recentEventCount },
      subscribers: this.ctx.getWebSockets().length,
      recovery: core.recovery,
    };
  }

  /**
   * What the outbox has yet to deliver (committed batches after its delivery cursor plus rows of receivers
   * that fell behind) and how many of those rows failed at least once, as in `status()` but cheap (no hash).
   */
  async outboxStatus(): Promise<{ pending: number; failing: number }> {
    const pending = this.book().outbox.pending();
    return { pending: pending.rows, failing: pending.failing };
  }

  // -------------------------------------------------------------------------------------------------
  // Administration
  // -------------------------------------------------------------------------------------------------

  /** Halt trading: new orders and replaces are rejected ("halted"); resting orders stay, cancels work. */
  async halt(): Promise<BookStatus> {
    this.book();
    this.flushAll();
    const now = Date.now();
    this.commit([{ kind: "halt", now }], now);
    return this.status();
  }

  async resume(): Promise<BookStatus> {
    this.book();
    this.flushAll();
    const now = Date.now();
    this.commit([{ kind: "resume", now }], now);
    return this.status();
  }

  /** Cancel every open order (resting and untriggered stops). Each owner learns it through the outbox. */
  async cancelAll(): Promise<{ canceled: number }> {
    const core = this.book();
    this.flushAll();
    const now = Date.now();
    const ids = core.engine.openOrders().map((o) => o.orderId);
    let canceled = 0;
    for (let i = 0; i < ids.length; i += core.policy.maxBatch) {
      const commands: EngineCommand[] = ids
        .slice(i, i + core.policy.maxBatch)
        .map((orderId) => ({ kind: "cancel", now, orderId }));
      const { log } = this.commit(commands, now);
      for (let k = 0; k < log.length; k++) if (log.type(k) === "canceled") canceled++;
    }
    return { canceled };
  }

  /** Move the centre of the price band (ticks). Returns the engine's events (a reject when invalid). */
  async setReferencePrice(priceTicks: number): Promise<EngineEvent[]> {
    this.book();
    this.flushAll();
    const now = Date.now();
    return eventsOf(this.commit([{ kind: "setReferencePrice", now, price: priceTicks }], now), 0);
  }

  /**
   * List a symbol that is not in the default catalog (catalog symbols configure themselves on first wake).
   * Idempotent for the same rules; a listed book cannot be reconfigured.
   */
  async configure(spec: SymbolSpec): Promise<BookStatus> {
    if (this.broken !== null) throw this.broken;
    if (this.core !== null) {
      if (JSON.stringify(symbolRules(this.core.spec)) !== JSON.stringify(symbolRules(spec))) {
        throw new Error(`already_configured: ${this.core.spec.symbol} is listed with other rules`);
      }
      return this.status();
    }
    const name = this.ctx.id.name;
    if (name !== undefined && name !== spec.symbol) {
      throw new BookInputError(`this book is named ${name}, not ${spec.symbol}`);
    }
    const checked = validateSymbolRules(symbolRules(spec));
    if (!checked.ok) throw new BookInputError(checked.problem);
    referencePriceTicks(spec);
    migrate(this.sql, ORDER_BOOK_SCHEMA, ORDER_BOOK_MIGRATIONS);
    this.core = this.listAndOpen(spec);
    return this.status();
  }

  // -------------------------------------------------------------------------------------------------
  // Alarm: expiry, outbox, snapshots
  // -------------------------------------------------------------------------------------------------

  /**
   * The one alarm. Idempotent (an alarm may run more than once): expires due orders, drains the outbox,
   * snapshots the engine when due, then re-arms itself for the earliest remaining work.
   */
  override async alarm(): Promise<void> {
    if (this.broken !== null) throw this.broken;
    const core = this.core;
    if (core === null) return;
    this.alarmAt = null;
    this.alarmRunning = true;
    this.wantedDuringRun = null;
    const active = this.commitsSinceAlarm > 0;
    this.commitsSinceAlarm = 0;
    try {
      const now = Date.now();
      if (core.nextExpiryAt !== null && core.nextExpiryAt <= now) this.commit([], now);
      await core.drainOutbox(() => Date.now());
      const later = Date.now();
      if (core.snapshotDue(later).due) core.takeSnapshot(later);
    } finally {
      this.alarmRunning = false;
    }
    const end = Date.now();
    const wanted = this.wantedDuringRun;
    this.wantedDuringRun = null;
    // Heartbeat while the book is busy: the next commits find the alarm armed and skip setAlarm.
    if (active || wanted !== null || this.commitsSinceAlarm > 0)
      this.schedule(end + this.outboxPolicy.delayMs);
    if (wanted !== null) this.schedule(wanted);
    this.scheduleNext(end);
  }

  // -------------------------------------------------------------------------------------------------
  // Market data (hibernatable WebSockets)
  // -------------------------------------------------------------------------------------------------

  /** Only the WebSocket upgrade of `GET /v2/stream/book/:symbol[?depth=N][&interval_ms=N]`. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return jsonResponse(426, "upgrade_required", "this endpoint only accepts WebSocket upgrades");
    }
    if (this.broken !== null) throw this.broken;
    const core = this.core;
    if (core === null) return jsonResponse(404, "unknown_symbol", "no such symbol is listed");
    const params = new URL(request.url).searchParams;
    const depth = parseDepth(params.get("depth"), DEFAULT_DEPTH);
    if (depth === null) {
      return jsonResponse(422, "invalid_depth", `depth must be an integer from 1 to ${MAX_DEPTH}`);
    }
    const interval = parseInterval(params.get("interval_ms"));
    if (interval === null) {
      return jsonResponse(
        422,
        "invalid_interval",
        `interval_ms must be one of ${STREAM_INTERVALS_MS.join(", ")} (or absent for every update)`,
      );
    }
    if (this.ctx.getWebSockets().length >= this.limits.maxSockets) {
      return jsonResponse(503, "too_many_subscribers", "this book has no room for more subscribers");
    }
    // Messages still waiting for their window go to the current subscribers first: the new one's
    // snapshot already includes them.
    this.flushEverything();
    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    this.ctx.acceptWebSocket(server, [interval === 0 ? REALTIME_TAG : intervalTag(interval)]);
    if (interval !== 0) this.intervalFrames.joined(interval);
    this.subscribers = this.ctx.getWebSockets().length;
    const now = Date.now();
    const state: SocketState = {
      depth,
      connectedAt: now,
      badFrames: 0,
      windowStart: now,
      snapshotsInWindow: 1,
    };
    server.serializeAttachment(state);
    server.send(JSON.stringify(this.snapshotMessage(core, depth)));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const core = this.core;
    if (core === null) {
      ws.close(CLOSE_CODES.tryAgainLater, "book unavailable");
      return;
    }
    const state = ws.deserializeAttachment() as SocketState;
    const size = typeof message === "string" ? message.length : message.byteLength;
    if (size > this.limits.maxFrameChars) {
      ws.close(CLOSE_CODES.messageTooBig, `frame larger than ${this.limits.maxFrameChars} bytes`);
      return;
    }
    const parsed =
      typeof message === "string"
        ? parseClientFrame(message)
        : {
            ok: false as const,
            error: {
              type: "error",
              code: "binary_not_supported",
              message: "send JSON text frames",
            } satisfies ErrorMessage,
          };
    if (!parsed.ok) {
      state.badFrames++;
      if (state.badFrames > this.limits.maxBadFrames) {
        ws.close(CLOSE_CODES.policyViolation, "too many bad frames");
        return;
      }
      ws.serializeAttachment(state);
      ws.send(JSON.stringify(parsed.error));
      return;
    }
    if (parsed.message.type === "ping") {
      ws.send(PONG_FRAME);
      return;
    }
    // subscribe: a fresh snapshot, e.g. after a gap.
    const now = Date.now();
    if (now - state.windowStart >= this.limits.snapshotWindowMs) {
      state.windowStart = now;
      state.snapshotsInWindow = 0;
    }
    state.snapshotsInWindow++;
    if (state.snapshotsInWindow > this.limits.snapshotsPerWindow) {
      ws.close(CLOSE_CODES.policyViolation, "too many snapshot requests");
      return;
    }
    state.depth = parsed.message.depth ?? state.depth;
    ws.serializeAttachment(state);
    this.flushEverything();
    ws.send(JSON.stringify(this.snapshotMessage(core, state.depth)));
  }

  override async webSocketClose(
    ws: WebSocket,
    code: number,
    reason: string,
    _wasClean: boolean,
  ): Promise<void> {
    // Complete the closing handshake. 1005 / 1006 / 1015 mean "no code" and may not be sent back.
    const sendable = code === 1000 || (code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1014);
    try {
      ws.close(sendable || (code >= 3000 && code <= 4999) ? code : 1000, reason);
    } catch {
      // Already closed.
    }
  }

  override async webSocketError(ws: WebSocket, _error: unknown): Promise<void> {
    try {
      ws.close(1011, "socket error");
    } catch {
      // Already closed.
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------------

  /** Schema (versioned) and recovery, once per wake, inside blockConcurrencyWhile. */
  private async wake(): Promise<void> {
    const name = this.ctx.id.name;
    const catalog = name === undefined ? undefined : findSymbol(name);
    const hasSchema =
      this.sql
        .one`SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = '_schema_versions'` !==
      undefined;
    // A book that is neither in the catalog nor configured writes nothing (no storage for stray names).
    if (!hasSchema && catalog === undefined) return;
    migrate(this.sql, ORDER_BOOK_SCHEMA, ORDER_BOOK_MIGRATIONS);
    const stored = this.sql.one<{ spec: string }>`SELECT spec FROM book_config WHERE id = 1`;
    if (stored !== undefined) {
      this.core = this.openCore(JSON.parse(stored.spec) as SymbolSpec);
    } else if (catalog !== undefined) {
      this.core = this.listAndOpen(catalog);
    }
    this.alarmAt = await this.ctx.storage.getAlarm();
    // Hibernated subscribers are still connected when the object wakes.
    this.subscribers = this.ctx.getWebSockets().length;
    for (const ms of STREAM_INTERVALS_MS) {
      this.intervalFrames.setSockets(ms, this.ctx.getWebSockets(intervalTag(ms)).length);
    }
    if (this.core !== null) this.scheduleNext(Date.now());
  }

  private listAndOpen(spec: SymbolSpec): BookCore {
    this.sql.run`INSERT INTO book_config (id, symbol, spec, created_at)
      VALUES (1, ${spec.symbol}, ${JSON.stringify(spec)}, ${Date.now()})`;
    return this.openCore(spec);
  }

  private openCore(spec: SymbolSpec): BookCore {
    // The outbox reads `this.transport` at delivery time, so a test can swap it on a live instance.
    const transport: OutboxTransport = {
      deliverToSession: (account, symbol, events) => this.transport.deliverToSession(account, symbol, events),
      publish: (messages) => this.transport.publish(messages),
    };
    const core = BookCore.open(this.sql, spec, transport, Date.now(), this.policy);
    core.outbox.policy = this.outboxPolicy;
    return core;
  }

  private book(): BookCore {
    if (this.broken !== null) throw this.broken;
    if (this.core === null) {
      throw new Error(`symbol_not_listed: ${this.ctx.id.name ?? "this book"} is not a listed symbol`);
    }
    return this.core;
  }

  private snapshotMessage(core: BookCore, depth: number): SnapshotMessage {
    return core.md.snapshot(core.engine.depth(depth), depth, core.mdSeq, core.engine.halted);
  }

  /**
   * Group commit. A command batch is committed at once when no commit is on its way to disk; commands
   * that arrive while one is (other callers' `submit` / `submitMany`) wait for it and are then committed
   * together in one transaction, in arrival order, each call getting its own events. Every reply still
   * leaves only once its transaction is durable (the output gate holds the object's outgoing messages while
   * a write is pending). One commit per RPC would cap a book at the disk's commit rate however many
   * callers it has; sharing commits lets concurrent callers scale, and a lone caller waits for nothing extra.
   */
  private enqueue(call: Pending): void {
    this.pending.push(call);
    if (!this.committing) void this.commitLoop();
  }

  /** Check a `submitMany` argument and normalise its commands (all with the same `now`). */
  private normalizeBatch(commands: BookCommand[] | PackedCommands): EngineCommand[] {
    const core = this.book();
    const now = Date.now();
    if (!Array.isArray(commands)) {
      if (typeof commands !== "object" || commands === null) {
        throw new BookInputError("commands must be an array or a pack of commands");
      }
      return unpackCommands(commands, core.policy.maxBatch, now);
    }
    if (commands.length > core.policy.maxBatch) {
      throw new BookInputError(`at most ${core.policy.maxBatch} commands per batch`);
    }
    return commands.map((c) => normalizeCommand(c, now));
  }

  private async commitLoop(): Promise<void> {
    this.committing = true;
    try {
      while (this.pending.length > 0) {
        this.flushPending();
        // Let the commit reach disk; callers arriving meanwhile queue up for the next group.
        await this.ctx.storage.sync();
      }
    } catch (err) {
      // Storage failed: nobody may wait forever for a commit that will not come.
      const waiting = this.pending;
      this.pending = [];
      for (const g of waiting) g.reject(err);
    } finally {
      this.committing = false;
    }
  }

  /** Commit everything queued now: admin commands go after the orders that arrived before them. */
  private flushAll(): void {
    while (this.pending.length > 0) this.flushPending();
  }

  /** Commit the queued commands (up to `maxBatch`) in one transaction. */
  private flushPending(): void {
    if (this.pending.length === 0) return;
    const group: typeof this.pending = [];
    const all: EngineCommand[] = [];
    // At most maxBatch commands per commit (a single submitMany may bring that many on its own).
    while (this.pending.length > 0) {
      const next = this.pending[0] as (typeof this.pending)[number];
      if (all.length > 0 && all.length + next.commands.length > this.policy.maxBatch) break;
      this.pending.shift();
      group.push(next);
      for (const c of next.commands) all.push(c);
    }
    let result: CommitResult;
    try {
      result = this.commit(all, Date.now());
    } catch (err) {
      for (const g of group) g.reject(err);
      return;
    }
    // Each caller's answer is read from the batch's rows now: the book reuses them for its next commit.
    let offset = 0;
    for (const g of group) {
      const n = g.commands.length;
      const bounds = result.bounds.slice(offset, offset + n + 1);
      if (g.reply === "packed") g.resolve(packLog(result.log, bounds));
      else g.resolve(Array.from({ length: n }, (_, k) => eventsOf(result, offset + k)));
      offset += n;
    }
  }

  /**
   * Commit a batch, arm the alarm for what it left to do, and broadcast its market data.
   */
  private commit(commands: EngineCommand[], now: number): CommitResult {
    const core = this.book();
    let result: CommitResult;
    try {
      result = core.commit(commands, now, this.subscribers > 0);
    } catch (err) {
      // The engine in memory is now ahead of storage: drop this instance; the next wake replays storage.
      this.broken = err;
      try {
        this.ctx.abort(`commit failed: ${err instanceof Error ? err.message : String(err)}`);
      } catch {
        // abort() may throw to unwind; the error below is the one the caller should see.
      }
      throw err;
    }
    this.commitsSinceAlarm++;
    if (result.journaled) this.schedule(now + this.outboxPolicy.delayMs);
    const snapshot = core.snapshotDue(now);
    if (snapshot.due) this.schedule(now);
    else if (snapshot.at !== null) this.schedule(snapshot.at);
    if (core.nextExpiryAt !== null) this.schedule(core.nextExpiryAt);

    if (this.subscribers > 0) {
      for (const message of result.messages ?? []) this.outgoing.push(JSON.stringify(message));
      if (result.statusChanged) {
        const status: StatusMessage = {
          type: "status",
          symbol: core.spec.symbol,
          halted: core.engine.halted,
        };
        this.outgoing.push(JSON.stringify(status));
      }
      if (this.outgoing.length > 0) this.scheduleFlush(now);
    }
    return result;
  }

  /** Send now if the last frame left at least `coalesceMs` ago, else at the end of the window. */
  private scheduleFlush(now: number): void {
    if (this.flushTimer !== null) return;
    const due = this.lastFlushAt + this.limits.coalesceMs;
    if (now >= due) {
      this.flushMarketData();
      return;
    }
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flushMarketData();
    }, due - now);
  }

  /**
   * One frame with every waiting message to every real-time subscriber (an array when there are several);
   * the same messages wait for the subscribers of each update interval (see `flushIntervals`).
   */
  private flushMarketData(): void {
    if (this.flushTimer !== null) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    const sockets = this.ctx.getWebSockets(REALTIME_TAG);
    this.subscribers = sockets.length + this.intervalFrames.sockets;
    if (this.outgoing.length === 0) return;
    const messages = this.outgoing;
    const frame = frameOf(messages);
    this.outgoing = [];
    const now = Date.now();
    this.lastFlushAt = now;
    broadcast(sockets, frame);
    this.intervalFrames.add(messages, frame.length);
    this.flushIntervals(now, false);
  }

  /**
   * Send each update interval's frame that is due (every waiting one when `all`), and make sure a timer
   * is set for the earliest that is not. Each send counts the group's sockets again (closed ones leave it
   * there).
   */
  private flushIntervals(now: number, all: boolean): void {
    for (const ms of this.intervalFrames.due(now, all)) {
      const frame = this.intervalFrames.take(ms, now);
      const sockets = this.ctx.getWebSockets(intervalTag(ms));
      this.intervalFrames.setSockets(ms, sockets.length);
      if (frame !== null) broadcast(sockets, frame);
    }
    // A timer already set for this time or earlier stays: when it fires it sends what is due and sets the
    // next (every flush of a busy book passes here; re-arming each time would churn a timer per frame).
    const at = this.intervalFrames.nextDueAt();
    if (at === null || (this.intervalTimer !== null && this.intervalTimerAt <= at)) return;
    if (this.intervalTimer !== null) clearTimeout(this.intervalTimer);
    this.intervalTimerAt = at;
    this.intervalTimer = setTimeout(
      () => {
        this.intervalTimer = null;
        this.flushIntervals(Date.now(), false);
      },
      Math.max(0, at - now),
    );
  }

  /** Everything committed goes out now, to every subscriber: a snapshot sent next includes all of it. */
  private flushEverything(): void {
    this.flushMarketData();
    this.flushIntervals(Date.now(), true);
  }

  /** Arm the alarm for `at` unless it is already armed for that time or earlier. */
  private schedule(at: number): void {
    if (this.alarmRunning) {
      this.wantedDuringRun = this.wantedDuringRun === null ? at : Math.min(this.wantedDuringRun, at);
      return;
    }
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  /** Re-arm for the earliest remaining work: outbox rows, an expiry, a snapshot. */
  private scheduleNext(now: number): void {
    const core = this.core;
    if (core === null) return;
    let at: number | null = null;
    const consider = (t: number | null) => {
      if (t !== null) at = at === null ? t : Math.min(at, t);
    };
    const outboxAt = core.outbox.nextDueAt();
    consider(outboxAt === null ? null : Math.max(outboxAt, now));
    consider(core.nextExpiryAt);
    const snapshot = core.snapshotDue(now);
    consider(snapshot.due ? now : snapshot.at);
    if (at !== null) this.schedule(at);
  }
}

/** A caller waiting for its commands' commit, and the form its answer takes. */
type Pending =
  | {
      commands: EngineCommand[];
      reply: "events";
      resolve: (events: EngineEvent[][]) => void;
      reject: (err: unknown) => void;
    }
  | {
      commands: EngineCommand[];
      reply: "packed";
      resolve: (events: PackedEvents) => void;
      reject: (err: unknown) => void;
    };

function broadcast(sockets: readonly WebSocket[], text: string): void {
  for (const ws of sockets) {
    try {
      ws.send(text);
    } catch {
      // A socket that is closing; its close handler cleans up.
    }
  }
}
