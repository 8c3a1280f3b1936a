import { DurableObject } from "cloudflare:workers";
import { lotsToQty, notionalMicros, priceToTicks, ticksToPrice } from "../shared/engine/rules.ts";
import { alpacaQuote } from "../shared/market/alpaca-data.ts";
import {
  defaultMarketConfig,
  type MarketConfig,
  type MarketConfigPatch,
  mergeMarketConfig,
} from "../shared/market/config.ts";
import { coinbaseAdapter } from "../shared/market/feed/coinbase.ts";
import {
  applyFeedEvent,
  emptyFeedState,
  type FeedAdapter,
  type FeedState,
  feedReferencePrice,
} from "../shared/market/feed/types.ts";
import { drawNoise, noiseOrder } from "../shared/market/noise.ts";
import { Prng } from "../shared/market/prng.ts";
import {
  desiredLadder,
  othersBest,
  planRequote,
  priceBand,
  type QuoteAction,
  type QuoteLevel,
} from "../shared/market/quoting.ts";
import { advance, initialState, priceTicksOf, stepsDue } from "../shared/market/simulator.ts";
import { DEFAULT_SYMBOLS, findSymbol, type SymbolSpec } from "../shared/symbols.ts";
import type { Env } from "../workers/env.ts";
import { writeThrough } from "../workers/lib/market/cache.ts";
import { botAccount, lotsOf, makerBotId, restingQuotes, sessionOf, takerBotId } from "./market-maker/bots.ts";
import {
  emptyMetrics,
  ewma,
  initialMakerState,
  MAKER_MIGRATIONS,
  type MakerMetrics,
  type MakerMode,
  type MakerState,
} from "./market-maker/state.ts";
import { migrate, type Sql, sqlOf } from "./sql.ts";
import { fail, type Outcome, ok } from "./user-session/outcome.ts";
import type { BatchOrder } from "./user-session.ts";

export { botNameOf, isBotId, makerBotId, takerBotId } from "./market-maker/bots.ts";

/** Default time between ticks (ms) when `MARKET_TICK_MS` is not set: gentle on a small machine. */
export const DEFAULT_TICK_MS = 1_500;
/** Simulator steps a tick may catch up after a pause; beyond that the path skips ahead (re-anchors). */
const MAX_CATCH_UP_STEPS = 100_000;
/** Order actions in flight at once per tick (the bot's UserSession serialises them anyway). */
const ACTION_CONCURRENCY = 4;
/** Lots to ask a snapshot for beyond the maker's own levels, to find everyone else's best price. */
const EXTRA_DEPTH = 20;

export interface MakerStatus {
  symbol: string;
  mode: MakerMode;
  /** The maker bot's account id (a UUID derived from its name `mm-<SYMBOL>`). */
  botId: string;
  /** The noise takers' account ids (names `nt-<SYMBOL>-<n>`). */
  takerIds: string[];
  config: MarketConfig | null;
  /** Reference price last sent to the book: ticks and decimal. */
  reference: number | null;
  referencePrice: string | null;
  referenceSource: "simulator" | "feed";
  simulator: { step: number; priceTicks: number; jumps: number } | null;
  /** The ladder the maker last wanted (ticks / lots). */
  ladder: { bids: QuoteLevel[]; asks: QuoteLevel[] };
  feed: (FeedState & { receivedAt: number; fresh: boolean }) | null;
  metrics: MakerMetrics & { ticksPerSec: number };
  nextTickAt: number | null;
  lastError: { at: number; message: string } | null;
  startedAt: number | null;
  stoppedAt: number | null;
}

export interface TickReport {
  ran: boolean;
  steps: number;
  reference: number | null;
  actions: number;
  rejects: number;
  takerOrders: number;
  requoteMs: number;
  tickMs: number;
  error?: string;
}

export interface FeedIngestReport {
  events: number;
  trades: number;
  quotes: number;
  stale: number;
  bid: number | null;
  ask: number | null;
  reference: number | null;
}

function envTickMs(env: Env): number {
  const n = Number(env.MARKET_TICK_MS ?? "");
  return Number.isSafeInteger(n) && n >= 100 ? n : DEFAULT_TICK_MS;
}

/**
 * The simulated market of one symbol (`idFromName(symbol)`): a reference-price simulator (or a real
 * feed), a market-maker bot and a few noise-taker bots, driven by the object's alarm.
 *
 * Every tick: advance the simulator to the current time; move the book's reference price
 * (`OrderBook.setReferencePrice`) when it changed; re-quote the maker's ladder through its own UserSession
 * (`mm-<SYMBOL>`: `placeOrder` / `replaceOrder` / `cancelOrder`, so the account's risk checks and ledger
 * apply exactly as to a user); let each noise taker (`nt-<SYMBOL>-<n>`) maybe send a market order.
 *
 * Started by the cron trigger / first request (`ensureRunning`, when `MARKET_SIM_ENABLED` is not
 * "false") or by an admin (`start`); `stop` cancels the maker's orders and disarms the alarm.
 * See docs/market-data.md.
 *
 * @example
 * ```ts
 * const maker = env.MARKET_MAKER.get(env.MARKET_MAKER.idFromName("EPIC"));
 * await maker.start({ quote: { spreadTicks: 6 } });
 * (await maker.status()).ladder.bids[0]; // { price: 7_497, qty: 40 }
 * ```
 */
export class MarketMaker extends DurableObject<Env> {
  private readonly sql: Sql;
  private state: MakerState;
  private spec: SymbolSpec | null = null;
  /** Serialises ticks (alarm and RPC) so two never interleave at an await. */
  private running: Promise<unknown> = Promise.resolve();
  private feedSocket: WebSocket | null = null;
  private adapter: FeedAdapter | null = null;
  /** The feed config the cached adapter was built from. */
  private adapterKey = "";
  private nextTickAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = sqlOf(ctx.storage);
    this.state = initialMakerState(Date.now());
    void ctx.blockConcurrencyWhile(async () => {
      try {
        migrate(this.sql, "market_maker", MAKER_MIGRATIONS);
        const row = this.sql.one<{ body: string }>`SELECT body FROM maker_state WHERE id = 1`;
        if (row) this.state = JSON.parse(row.body) as MakerState;
        const name = ctx.id.name;
        this.spec = name === undefined ? null : (findSymbol(name) ?? null);
        this.nextTickAt = await ctx.storage.getAlarm();
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
        throw err;
      }
    });
  }

  // -------------------------------------------------------------------------------------------------
  // Control
  // -------------------------------------------------------------------------------------------------

  /**
   * Start (or restart) the market: config defaults on first start, `patch` on top; the bots get their
   * starting shares once; the first tick runs at once.
   */
  async start(patch: MarketConfigPatch = {}): Promise<Outcome<MakerStatus>> {
    const merged = this.merged(patch);
    if (!merged.ok) return merged;
    const now = Date.now();
    this.applyConfig(merged.value, now);
    this.state.mode = "running";
    this.state.startedAt = now;
    this.state.stoppedAt = null;
    // Counters describe this run (ticks per second, latencies).
    this.state.metrics = emptyMetrics(now);
    this.save();
    await this.arm(now);
    return ok(await this.status());
  }

  /** Stop ticking and cancel the maker's resting orders. Nothing restarts it but {@link start}. */
  async stop(): Promise<MakerStatus> {
    const spec = this.symbolSpec();
    this.state.mode = "stopped";
    this.state.stoppedAt = Date.now();
    this.save();
    await this.ctx.storage.deleteAlarm();
    this.nextTickAt = null;
    this.closeFeed();
    await this.running.catch(() => {});
    const bot = makerBotId(spec.symbol);
    const canceled = await sessionOf(this.env, bot).cancelAllOrders(bot);
    if (!canceled.ok) this.noteError(`cancel on stop: ${canceled.code}`);
    this.state.ladder = { bids: [], asks: [] };
    this.state.quotedCentre = null;
    this.save();
    return this.status();
  }

  /** Change the config of a started or stopped market; a new market is configured but not started. */
  async configure(patch: MarketConfigPatch): Promise<Outcome<MakerStatus>> {
    const merged = this.merged(patch);
    if (!merged.ok) return merged;
    const now = Date.now();
    this.applyConfig(merged.value, now);
    this.save();
    if (this.state.mode === "running") await this.arm(now);
    return ok(await this.status());
  }

  /**
   * For the cron trigger and the first request: start a market that was never started, re-arm a running
   * one whose alarm is missing, leave a stopped one alone.
   */
  async ensureRunning(): Promise<MakerMode> {
    if (this.state.mode === "new") {
      const started = await this.start();
      if (!started.ok) throw new Error(`${started.code}: ${started.message}`);
    } else if (this.state.mode === "running" && (await this.ctx.storage.getAlarm()) === null) {
      await this.arm(Date.now());
    }
    return this.state.mode;
  }

  async status(): Promise<MakerStatus> {
    const spec = this.symbolSpec();
    const s = this.state;
    const config = s.config;
    const elapsed = Math.max(1, Date.now() - s.metrics.since);
    return {
      symbol: spec.symbol,
      mode: s.mode,
      botId: makerBotId(spec.symbol),
      takerIds: config
        ? Array.from({ length: config.noise.takers }, (_, i) => takerBotId(spec.symbol, i + 1))
        : [],
      config,
      reference: s.reference,
      referencePrice: s.reference === null ? null : ticksToPrice(spec, s.reference),
      referenceSource: s.referenceSource,
      simulator:
        config && s.sim
          ? { step: s.sim.step, priceTicks: priceTicksOf(config.simulator, s.sim), jumps: s.sim.jumps }
          : null,
      ladder: s.ladder,
      feed: s.feed ? { ...s.feed, receivedAt: s.feedReceivedAt, fresh: this.feedFresh(Date.now()) } : null,
      metrics: { ...s.metrics, ticksPerSec: (s.metrics.ticks * 1000) / elapsed },
      nextTickAt: this.nextTickAt,
      lastError: s.lastError,
      startedAt: s.startedAt,
      stoppedAt: s.stoppedAt,
    };
  }

  /** Run one tick now, whatever the mode (tests, and an admin's "step"). */
  async tick(): Promise<TickReport> {
    return this.serialised(() => this.runTick(Date.now()));
  }

  /**
   * Pass external feed messages (parsed JSON, as the exchange sent them) through the configured adapter:
   * what the live connection does with each frame, and how recorded fixtures are replayed.
   */
  async ingestFeed(messages: unknown[]): Promise<Outcome<FeedIngestReport>> {
    const adapter = this.feedAdapter();
    if (adapter === null) return fail(422, "no_feed", "this market has no feed configured");
    if (!Array.isArray(messages) || messages.length > 10_000) {
      return fail(422, "invalid_messages", "messages must be an array of at most 10000");
    }
    const report = this.applyFeedMessages(adapter, messages);
    this.save();
    return ok(report);
  }

  // -------------------------------------------------------------------------------------------------
  // Alarm
  // -------------------------------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    this.nextTickAt = null;
    if (this.state.mode !== "running" || this.state.config === null) return;
    const started = Date.now();
    await this.serialised(() => this.runTick(started));
    if (this.state.mode !== "running" || this.state.config === null) return;
    const tickMs = this.state.config.tickMs;
    const phase = tickPhase(this.spec?.symbol ?? this.ctx.id.name ?? "", tickMs);
    const next = Math.max(nextTickAfter(started + tickMs / 2, tickMs, phase), Date.now() + 50);
    await this.ctx.storage.setAlarm(next);
    this.nextTickAt = next;
  }

  // -------------------------------------------------------------------------------------------------
  // One tick
  // -------------------------------------------------------------------------------------------------

  private async runTick(now: number): Promise<TickReport> {
    const config = this.state.config;
    const report: TickReport = {
      ran: false,
      steps: 0,
      reference: this.state.reference,
      actions: 0,
      rejects: 0,
      takerOrders: 0,
      requoteMs: 0,
      tickMs: 0,
    };
    if (config === null) return report;
    const spec = this.symbolSpec();
    const m = this.state.metrics;
    report.ran = true;
    try {
      if (config.feed?.connect) this.connectFeed();
      report.steps = this.stepSimulator(config, now);
      report.reference = await this.moveReference(spec, config, now);
      const quoted = await this.requote(spec, config, now);
      report.actions = quoted.actions;
      report.rejects = quoted.rejects;
      report.requoteMs = Date.now() - now;
      report.takerOrders = await this.runTakers(spec, config);
    } catch (err) {
      report.error = err instanceof Error ? err.message : String(err);
      m.failedTicks++;
      this.noteError(report.error);
    }
    report.tickMs = Date.now() - now;
    m.ticks++;
    m.steps += report.steps;
    m.quoteActions += report.actions;
    m.quoteRejects += report.rejects;
    m.requoteMsLast = report.requoteMs;
    m.requoteMsAvg = ewma(m.requoteMsAvg, report.requoteMs, m.ticks);
    m.requoteMsMax = Math.max(m.requoteMsMax, report.requoteMs);
    m.tickMsLast = report.tickMs;
    m.tickMsAvg = ewma(m.tickMsAvg, report.tickMs, m.ticks);
    m.tickMsMax = Math.max(m.tickMsMax, report.tickMs);
    this.save();
    return report;
  }

  /** Advance the simulator to `now`; returns the steps taken. */
  private stepSimulator(config: MarketConfig, now: number): number {
    let sim = this.state.sim ?? initialState(config.simulator);
    let due = stepsDue(config.simulator, sim, now);
    if (due > MAX_CATCH_UP_STEPS) {
      // A long pause: skip ahead instead of replaying it (the path from here is still seeded and stored).
      config.simulator.startMs = now - (sim.step + 1) * config.simulator.stepMs;
      due = 1;
    }
    sim = advance(config.simulator, sim, due);
    this.state.sim = sim;
    return due;
  }

  /** Send the reference price to the book when it changed: the feed's when fresh, else the simulator's. */
  private async moveReference(spec: SymbolSpec, config: MarketConfig, now: number): Promise<number | null> {
    const sim = this.state.sim;
    if (sim === null) return this.state.reference;
    let reference = priceTicksOf(config.simulator, sim);
    let source: "simulator" | "feed" = "simulator";
    const feedRef = this.feedFresh(now) && this.state.feed ? feedReferencePrice(this.state.feed) : null;
    if (feedRef !== null && feedRef > 0) {
      reference = feedRef;
      source = "feed";
      // The simulator continues from the real price if the feed goes quiet.
      this.state.sim = { ...sim, price: feedRef };
    }
    this.state.referenceSource = source;
    if (reference !== this.state.reference) {
      const events = await this.book(spec.symbol).setReferencePrice(reference);
      const rejected = events.find((e) => e.type === "rejected");
      if (rejected?.type === "rejected") throw new Error(`setReferencePrice rejected: ${rejected.reason}`);
      this.state.reference = reference;
      this.state.metrics.referenceUpdates++;
    }
    return reference;
  }

  /** Bring the maker's resting quotes to the ladder it wants now. */
  private async requote(
    spec: SymbolSpec,
    config: MarketConfig,
    now: number,
  ): Promise<{ actions: number; rejects: number }> {
    const reference = this.state.reference;
    if (reference === null) return { actions: 0, rejects: 0 };
    const bot = makerBotId(spec.symbol);
    const session = sessionOf(this.env, bot);
    await this.grantOnce(spec, bot, config.maker.inventoryGrantLots, reference);
    const [orders, account, position, snapshot, bookStatus] = await Promise.all([
      session.getOrders(bot, { status: "open", limit: 500, direction: "asc" }),
      session.getAccount(bot),
      session.getPosition(bot, spec.symbol),
      this.book(spec.symbol).snapshot(config.quote.levels + EXTRA_DEPTH),
      this.book(spec.symbol).quote(),
    ]);
    if (!orders.ok) throw new Error(`maker orders: ${orders.code}`);
    if (!account.ok) throw new Error(`maker account: ${account.code}`);
    const current = restingQuotes(spec, orders.value);
    const funds = botAccount(spec, account.value, position.ok ? position.value : null);

    // Which side was hit since the last tick (the position moved), for the refill pause.
    const last = this.state.lastPositionLots;
    if (last !== null && funds.positionLots > last) this.state.bidHitAt = now;
    if (last !== null && funds.positionLots < last) this.state.askHitAt = now;
    this.state.lastPositionLots = funds.positionLots;

    // Centre: the reference, unless it moved less than the requote threshold since the last quote.
    const quoted = this.state.quotedCentre;
    const centre =
      quoted !== null && Math.abs(reference - quoted) < config.maker.requoteThresholdTicks
        ? quoted
        : reference;
    const levels = {
      bids: snapshot.bids.map((l) => [ticksOf(spec, l[0] ?? ""), lotsOf(spec, l[1] ?? "")] as const),
      asks: snapshot.asks.map((l) => [ticksOf(spec, l[0] ?? ""), lotsOf(spec, l[1] ?? "")] as const),
    };
    const others = othersBest(levels, current);
    const feed = this.feedFresh(now) ? this.state.feed : null;
    const ladder = desiredLadder(config.quote, {
      centreTicks: centre,
      bbo: feed && feed.bid !== null && feed.ask !== null ? { bid: feed.bid, ask: feed.ask } : null,
      inventoryLots: funds.positionLots,
      bidBudgetMicros: Math.floor(funds.cashMicros * config.maker.budgetFraction),
      askBudgetLots: Math.floor(funds.positionLots * config.maker.budgetFraction),
      microsPerTickLot: microsPerTickLot(spec),
      band: priceBand(bookStatus.referencePrice ?? reference, spec.priceBandBps),
      othersBestBid: others.bid,
      othersBestAsk: others.ask,
    });
    this.state.ladder = { bids: ladder.bids, asks: ladder.asks };
    this.state.quotedCentre = centre;
    const actions = planRequote(current, ladder, {
      bidsPaused: now - this.state.bidHitAt < config.maker.refillDelayMs,
      asksPaused: now - this.state.askHitAt < config.maker.refillDelayMs,
    });
    const rejects = await this.send(spec, bot, actions);
    if (actions.length > 0) this.ctx.waitUntil(this.publishQuote(spec));
    return { actions: actions.length, rejects };
  }

  /**
   * Send the plan: cancels, then trims, then moves and places, as {@link planRequote} ordered them. The
   * cancels finish first (a cancel frees the reservation a replace may need); the replaces and placements
   * that follow go to the bot's UserSession as one batch (`submitOrders`: one transaction and one book
   * call for all of them, instead of two transactions and one book call each).
   */
  private async send(spec: SymbolSpec, bot: string, actions: QuoteAction[]): Promise<number> {
    const session = sessionOf(this.env, bot);
    const outcomes: { ok: boolean; code?: string }[] = [];
    const cancels = actions.filter((a) => a.kind === "cancel");
    for (let i = 0; i < cancels.length; i += ACTION_CONCURRENCY) {
      outcomes.push(
        ...(await Promise.all(
          cancels.slice(i, i + ACTION_CONCURRENCY).map((a) => session.cancelOrder(bot, a.orderId)),
        )),
      );
    }
    const orders: BatchOrder[] = actions.flatMap((a): BatchOrder[] => {
      if (a.kind === "cancel") return [];
      const terms = { qty: lotsToQty(spec, a.qty), limit_price: ticksToPrice(spec, a.price) };
      if (a.kind === "replace") return [{ kind: "replace", orderId: a.orderId, req: terms }];
      const req = {
        symbol: spec.symbol,
        side: a.side,
        type: "limit",
        time_in_force: "gtc",
        ...terms,
      } as const;
      return [{ kind: "place", req }];
    });
    if (orders.length > 0) outcomes.push(...(await session.submitOrders(bot, spec.symbol, orders)));
    let rejects = 0;
    for (const outcome of outcomes) {
      if (outcome.ok) continue;
      rejects++;
      const codes = this.state.metrics.rejectCodes;
      const code = outcome.code ?? "unknown";
      codes[code] = (codes[code] ?? 0) + 1;
    }
    return rejects;
  }

  /**
   * The maker just changed the book: write its new best bid / offer through to the latest-quote cache,
   * so readers see the change without waiting for the cache's TTL (the edge cache's ≤ 1 s still applies).
   */
  private async publishQuote(spec: SymbolSpec): Promise<void> {
    try {
      const status = await this.book(spec.symbol).quote();
      const level = (l: number[] | null): [number, number] | null =>
        l && l.length === 2 ? [l[0] as number, l[1] as number] : null;
      const quote = alpacaQuote(
        { ts: Date.now(), bid: level(status.bestBid), ask: level(status.bestAsk) },
        spec,
      );
      await writeThrough(this.env, "quote", spec.symbol, quote);
    } catch {
      // The cache is an optimisation; its TTL bounds what a failed write leaves stale.
    }
  }

  /** Each noise taker may send one market order; returns how many did. */
  private async runTakers(spec: SymbolSpec, config: MarketConfig): Promise<number> {
    const reference = this.state.reference;
    if (reference === null || config.noise.takers === 0) return 0;
    const rng = this.state.takerRng
      ? Prng.fromState(this.state.takerRng)
      : Prng.fromSeed(`${config.simulator.seed}:takers`);
    const draws = Array.from({ length: config.noise.takers }, () => drawNoise(rng, config.noise));
    this.state.takerRng = rng.state();
    let sent = 0;
    for (let i = 0; i < draws.length; i++) {
      const draw = draws[i];
      if (!draw) continue;
      const bot = takerBotId(spec.symbol, i + 1);
      const session = sessionOf(this.env, bot);
      await this.grantOnce(spec, bot, config.noise.targetInventoryLots, reference);
      const [account, position] = await Promise.all([
        session.getAccount(bot),
        session.getPosition(bot, spec.symbol),
      ]);
      if (!account.ok) continue;
      const funds = botAccount(spec, account.value, position.ok ? position.value : null);
      // A market buy reserves at the best ask plus the account's 5 % collar: stay well inside it.
      const priceMicros = Math.ceil(reference * 1.1) * microsPerTickLot(spec);
      const order = noiseOrder(draw, config.noise, {
        inventoryLots: funds.availableLots,
        affordableBuyLots: Math.floor(Math.max(0, funds.buyingPowerMicros) / priceMicros),
      });
      if (!order) continue;
      const placed = await session.placeOrder(bot, {
        symbol: spec.symbol,
        side: order.side,
        type: "market",
        time_in_force: "ioc",
        qty: lotsToQty(spec, order.qtyLots),
      });
      sent++;
      this.state.metrics.takerOrders++;
      if (!placed.ok) this.state.metrics.takerRejects++;
    }
    return sent;
  }

  /** Give a bot its starting shares, once per bot (capital in kind: neither profit nor loss). */
  private async grantOnce(spec: SymbolSpec, bot: string, lots: number, priceTicks: number): Promise<void> {
    if (this.state.granted.includes(bot) || lots <= 0) return;
    const granted = await sessionOf(this.env, bot).grantShares(
      bot,
      spec.symbol,
      lotsToQty(spec, lots),
      ticksToPrice(spec, priceTicks),
    );
    if (!granted.ok) throw new Error(`grant to ${bot}: ${granted.code}`);
    this.state.granted.push(bot);
    if (bot === makerBotId(spec.symbol)) this.state.lastPositionLots = null;
    this.save();
  }

  // -------------------------------------------------------------------------------------------------
  // Feed
  // -------------------------------------------------------------------------------------------------

  private feedAdapter(): FeedAdapter | null {
    const feed = this.state.config?.feed;
    if (!feed) return null;
    if (this.adapter !== null && this.adapterKey === JSON.stringify(feed)) return this.adapter;
    const spec = this.symbolSpec();
    this.adapter = coinbaseAdapter({
      product: feed.product,
      symbol: spec.symbol,
      tickSize: spec.tickSize,
      lotSize: spec.lotSize,
      priceScale: feed.priceScale,
      qtyScale: feed.qtyScale,
      ...(feed.url !== undefined ? { url: feed.url } : {}),
    });
    this.adapterKey = JSON.stringify(feed);
    return this.adapter;
  }

  private applyFeedMessages(adapter: FeedAdapter, messages: readonly unknown[]): FeedIngestReport {
    let state = this.state.feed ?? emptyFeedState();
    const before = { trades: state.trades, quotes: state.quotes, stale: state.stale };
    let events = 0;
    for (const message of messages) {
      for (const event of adapter.normalize(message)) {
        state = applyFeedEvent(state, event);
        events++;
      }
    }
    this.state.feed = state;
    if (events > 0) this.state.feedReceivedAt = Date.now();
    return {
      events,
      trades: state.trades - before.trades,
      quotes: state.quotes - before.quotes,
      stale: state.stale - before.stale,
      bid: state.bid,
      ask: state.ask,
      reference: feedReferencePrice(state),
    };
  }

  private feedFresh(now: number): boolean {
    const feed = this.state.config?.feed;
    return !!feed && this.state.feed !== null && now - this.state.feedReceivedAt <= feed.staleAfterMs;
  }

  /** Open the live feed connection (production; there is no network in tests). */
  private connectFeed(): void {
    const adapter = this.feedAdapter();
    if (adapter === null || this.feedSocket !== null) return;
    const open = async () => {
      const res = await fetch(adapter.url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket" } });
      const ws = res.webSocket;
      if (!ws) throw new Error(`feed ${adapter.url} refused the upgrade (${res.status})`);
      ws.accept();
      this.feedSocket = ws;
      for (const frame of adapter.subscribeFrames()) ws.send(frame);
      ws.addEventListener("message", (ev) => {
        try {
          const text =
            typeof ev.data === "string" ? ev.data : new TextDecoder().decode(ev.data as ArrayBuffer);
          this.applyFeedMessages(adapter, [JSON.parse(text)]);
        } catch {
          // A frame that is not JSON: feeds are expected to ignore what they do not understand.
        }
      });
      ws.addEventListener("close", () => {
        this.feedSocket = null;
      });
    };
    // Mark as connecting so a slow handshake is not started twice.
    this.feedSocket = { close: () => {} } as WebSocket;
    open().catch((err: unknown) => {
      this.feedSocket = null;
      this.noteError(`feed: ${err instanceof Error ? err.message : String(err)}`);
    });
  }

  private closeFeed(): void {
    try {
      this.feedSocket?.close(1000, "market stopped");
    } catch {
      // Already closed.
    }
    this.feedSocket = null;
  }

  // -------------------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------------------

  private symbolSpec(): SymbolSpec {
    if (this.spec === null) {
      throw new RangeError(`unknown_symbol: ${this.ctx.id.name ?? "this object"} is not a listed symbol`);
    }
    return this.spec;
  }

  private seed(): string {
    return this.env.MARKET_SEED && this.env.MARKET_SEED.length > 0 ? this.env.MARKET_SEED : "prepx";
  }

  /** The current (or default) config with `patch` applied, or why it is refused. */
  private merged(patch: MarketConfigPatch): Outcome<MarketConfig> {
    if (this.spec === null) {
      return fail(404, "symbol_not_found", `${this.ctx.id.name ?? "this object"} is not a listed symbol`);
    }
    const base =
      this.state.config ??
      defaultMarketConfig(this.spec, { tickMs: envTickMs(this.env), seed: this.seed(), startMs: Date.now() });
    const merged = mergeMarketConfig(base, patch ?? {});
    return merged.ok ? ok(merged.config) : fail(422, "invalid_config", merged.problem);
  }

  /** Install a checked config: a new path restarts the simulator, a new tempo re-anchors its clock. */
  private applyConfig(config: MarketConfig, now: number): void {
    const old = this.state.config;
    const sim = this.state.sim;
    if (old !== null && sim !== null) {
      const pathChanged =
        old.simulator.seed !== config.simulator.seed ||
        old.simulator.startPriceTicks !== config.simulator.startPriceTicks;
      if (pathChanged) {
        // A new path: start it from scratch at the current time.
        config.simulator.startMs = now - (now % config.simulator.stepMs);
        this.state.sim = initialState(config.simulator);
        this.state.takerRng = null;
      } else if (old.simulator.stepMs !== config.simulator.stepMs) {
        // A new tempo: keep the path and its current step, re-anchor step times at the new spacing.
        config.simulator.startMs = now - sim.step * config.simulator.stepMs;
      }
    }
    if (JSON.stringify(old?.feed ?? null) !== JSON.stringify(config.feed)) {
      this.closeFeed();
      this.state.feed = config.feed ? emptyFeedState() : null;
      this.state.feedReceivedAt = 0;
    }
    this.state.config = config;
    this.state.sim ??= initialState(config.simulator);
  }

  private async arm(now: number): Promise<void> {
    await this.ctx.storage.setAlarm(now);
    this.nextTickAt = now;
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.running.then(fn, fn);
    this.running = next.catch(() => {});
    return next;
  }

  private noteError(message: string): void {
    this.state.lastError = { at: Date.now(), message };
    console.error(
      JSON.stringify({ level: "error", msg: "market maker", symbol: this.spec?.symbol, error: message }),
    );
  }

  private save(): void {
    this.sql
      .run`INSERT INTO maker_state (id, body, updated_at) VALUES (1, ${JSON.stringify(this.state)}, ${Date.now()})
      ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`;
  }

  private book(symbol: string) {
    return this.env.ORDER_BOOK.get(this.env.ORDER_BOOK.idFromName(symbol));
  }
}

/** Micro-USD per tick × lot of a symbol (tick 0.01 × lot 1 = 10,000); exact. */
function microsPerTickLot(spec: SymbolSpec): number {
  const micros = notionalMicros(spec, 1, 1);
  if (!micros.ok || micros.value < 1) throw new RangeError(`${spec.symbol}: tick × lot is not a whole µUSD`);
  return micros.value;
}

/** A wire price of the book's snapshot in ticks (the book only sends prices on its grid). */
function ticksOf(spec: SymbolSpec, price: string): number {
  const parsed = priceToTicks(spec, price);
  if (!parsed.ok) throw new Error(`book sent an off-grid price ${price}`);
  return parsed.value;
}

/**
 * Where in each tick period a symbol's maker ticks. The makers of all symbols start together (the same
 * cron), and a tick is a burst of orders through the bot's UserSession and the book; spread over the
 * period, those bursts take turns instead of arriving at once (locally they share one thread with every
 * request, in production they spread the load on the bots' objects and the queue). Catalog symbols are
 * spaced evenly; others by a hash of the name.
 */
export function tickPhase(symbol: string, tickMs: number): number {
  const index = DEFAULT_SYMBOLS.findIndex((s) => s.symbol === symbol);
  let fraction: number;
  if (index >= 0) {
    fraction = index / DEFAULT_SYMBOLS.length;
  } else {
    let h = 0x811c9dc5;
    for (let i = 0; i < symbol.length; i++) h = Math.imul(h ^ symbol.charCodeAt(i), 0x01000193);
    fraction = (h >>> 0) / 2 ** 32;
  }
  return Math.floor(fraction * tickMs);
}

/** The first time at or after `after` that is `phase` ms into a period of `tickMs` (epoch-aligned). */
export function nextTickAfter(after: number, tickMs: number, phase: number): number {
  const into = (((after - phase) % tickMs) + tickMs) % tickMs;
  return into === 0 ? after : after + (tickMs - into);
}
