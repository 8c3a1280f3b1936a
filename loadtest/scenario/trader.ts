/**
 * One simulated trader: a person (think times of seconds) or a bot (about a second), with a watch list of
 * symbols drawn by Zipf popularity. It keeps its book streams and its trade_updates socket open, and in a
 * loop thinks, then does one thing of the configured mix: places, replaces or cancels an order, or reads
 * its account, positions, open orders or history. Everything it was told (order acks, fills) is kept for
 * the checks at the end of the run.
 */
import type { HttpClient, HttpReply } from "./http.ts";
import type { MarketView } from "./market.ts";
import type { Ticker, Window } from "./metrics.ts";
import type { ActionMix } from "./options.ts";
import type { Rng } from "./rng.ts";
import type { TradeUpdate } from "./streams.ts";

export interface Credentials {
  index: number;
  email: string;
  password: string;
  userId: string;
  accessToken: string;
  refreshToken: string;
  /** Distinct client address (CF-Connecting-IP), so per-IP auth limits of a dev server do not couple traders. */
  ip: string;
}

/** Shared by every trader of a run. */
export interface RunContext {
  http: HttpClient;
  market: MarketView;
  mix: ActionMix;
  runId: string;
  maxOpenOrders: number;
  /** Where measurements go; null while warming up. */
  window: Window | null;
  ticker: Ticker;
  /** Requests left in the run's budget; traders stop acting at 0. */
  budget: number;
  /** True while traders should act. */
  acting: boolean;
}

export interface AckedOrder {
  id: string;
  clientOrderId: string;
  symbol: string;
  side: "buy" | "sell";
  type: "limit" | "market";
  qtyLots: number;
  /** What the trader was told last: the order's status in the HTTP answer, then trade_updates. */
  status: string;
  /** This trader canceled it (204) or replaced it (200 with the new order). */
  canceledByUs: boolean;
  replacedBy: string | null;
}

export interface ReceivedFill {
  executionId: string;
  orderId: string;
  symbol: string;
  side: "buy" | "sell";
  qtyLots: number;
  priceTicks: number;
}

const OPEN = new Set([
  "new",
  "accepted",
  "pending_new",
  "partially_filled",
  "pending_replace",
  "pending_cancel",
]);
const MIX_KEYS: (keyof ActionMix)[] = [
  "placeLimit",
  "placeMarket",
  "replace",
  "cancel",
  "account",
  "positions",
  "openOrders",
  "closedOrders",
  "fills",
  "portfolio",
];

export class Trader {
  readonly creds: Credentials;
  readonly watch: string[];
  readonly bot: boolean;
  readonly thinkMs: number;
  readonly acked = new Map<string, AckedOrder>();
  /** Orders this trader believes are open. */
  readonly open = new Map<string, AckedOrder>();
  readonly fills = new Map<string, ReceivedFill>();
  /** Fill lots received per order id (trade_updates), for the check against the order's filled_qty. */
  readonly filledByOrder = new Map<string, number>();
  duplicateFills = 0;
  /** Shares per symbol as far as this trader knows (grants + fills). */
  readonly held = new Map<string, number>();
  readonly granted = new Map<string, number>();
  /** Placements that never got an answer (network error / 5xx): looked up by client order id at the end. */
  readonly unanswered: { clientOrderId: string; symbol: string }[] = [];
  tradeUpdates = 0;
  private readonly ctx: RunContext;
  private readonly rng: Rng;
  private readonly weights: number[];
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<void> | null = null;

  constructor(
    ctx: RunContext,
    creds: Credentials,
    rng: Rng,
    opts: { watch: string[]; bot: boolean; thinkMs: number },
  ) {
    this.ctx = ctx;
    this.creds = creds;
    this.rng = rng;
    this.watch = opts.watch;
    this.bot = opts.bot;
    this.thinkMs = opts.thinkMs;
    this.weights = MIX_KEYS.map((k) => ctx.mix[k]);
  }

  headers(): Record<string, string> {
    return { authorization: `Bearer ${this.creds.accessToken}`, "cf-connecting-ip": this.creds.ip };
  }

  // --- the loop ----------------------------------------------------------------------------------

  /** Starts acting after a random first pause (so traders do not wake in lockstep). */
  start(): void {
    this.schedule(this.rng.next() * this.thinkMs);
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.ctx.acting || this.ctx.budget <= 0) return;
      this.busy = this.act()
        .catch(() => {})
        .finally(() => {
          this.busy = null;
          if (this.ctx.acting) this.schedule(Math.max(50, this.rng.exp(this.thinkMs)));
        });
    }, delay);
  }

  /** Stops acting; resolves when the action in flight (if any) has its answer. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.busy;
  }

  private async act(): Promise<void> {
    let action = MIX_KEYS[this.rng.weighted(this.weights)] as keyof ActionMix;
    if ((action === "replace" || action === "cancel") && this.open.size === 0) action = "placeLimit";
    if ((action === "placeLimit" || action === "placeMarket") && this.open.size >= this.ctx.maxOpenOrders) {
      action = "cancel";
    }
    switch (action) {
      case "placeLimit":
        return this.place("limit");
      case "placeMarket":
        return this.place("market");
      case "replace":
        return this.replace();
      case "cancel":
        return this.cancel();
      case "account":
        return void (await this.call("GET /v2/account", "GET", "/v2/account"));
      case "positions":
        return void (await this.call("GET /v2/positions", "GET", "/v2/positions"));
      case "openOrders":
        return void (await this.call("GET /v2/orders (open)", "GET", "/v2/orders?status=open&limit=50"));
      case "closedOrders":
        return void (await this.call("GET /v2/orders (closed)", "GET", "/v2/orders?status=closed&limit=20"));
      case "fills":
        return void (await this.call(
          "GET /v2/account/activities/FILL",
          "GET",
          "/v2/account/activities/FILL?page_size=20",
        ));
      case "portfolio":
        return void (await this.call(
          "GET /v2/account/portfolio/history",
          "GET",
          "/v2/account/portfolio/history",
        ));
    }
  }

  // --- HTTP --------------------------------------------------------------------------------------

  /** One measured request (the budget, the window and the per-second ticker all count it). */
  async call(op: string, method: string, path: string, body?: unknown): Promise<HttpReply> {
    this.ctx.budget--;
    let reply = await this.ctx.http.request(method, path, { body, headers: this.headers() });
    if (reply.status === 401 && codeOf(reply) === "token_expired" && (await this.refresh())) {
      reply = await this.ctx.http.request(method, path, { body, headers: this.headers() });
    }
    const w = this.ctx.window;
    w?.record(
      op,
      reply.status,
      reply.ms,
      reply.status >= 300 || reply.status === 0 ? codeOf(reply) : undefined,
    );
    const source = reply.headers["x-prepx-history-source"];
    if (w && typeof source === "string")
      w.historySources.set(source, (w.historySources.get(source) ?? 0) + 1);
    if (this.ctx.window) this.ctx.ticker.record(reply.status, reply.ms);
    return reply;
  }

  private async refresh(): Promise<boolean> {
    const r = await this.ctx.http.request("POST", "/v1/auth/refresh", {
      body: { refresh_token: this.creds.refreshToken },
      headers: { "cf-connecting-ip": this.creds.ip },
    });
    const b = r.body as { access_token?: string; refresh_token?: string } | undefined;
    if (r.status !== 200 || !b?.access_token || !b.refresh_token) return false;
    this.creds.accessToken = b.access_token;
    this.creds.refreshToken = b.refresh_token;
    return true;
  }

  // --- orders ------------------------------------------------------------------------------------

  private pickSymbol(): string {
    // The watch list is ordered by the trader's interest: the first symbol gets the most orders.
    const w = this.watch.map((_, i) => 1 / (i + 1));
    return this.watch[this.rng.weighted(w)] as string;
  }

  private available(symbol: string): number {
    let held = this.held.get(symbol) ?? 0;
    for (const o of this.open.values()) {
      if (o.symbol === symbol && o.side === "sell") held -= o.qtyLots - (this.filledByOrder.get(o.id) ?? 0);
    }
    return held;
  }

  private async place(type: "limit" | "market"): Promise<void> {
    const m = this.ctx.market;
    const symbol = this.pickSymbol();
    const lots = this.rng.int(1, 10);
    let side: "buy" | "sell" = this.rng.chance(0.5) ? "buy" : "sell";
    if (side === "sell" && this.available(symbol) < lots) side = "buy";
    const clientOrderId = `lt-${this.ctx.runId}-${this.creds.index}-${++this.seq}`;
    const body: Record<string, string> = {
      symbol,
      side,
      type,
      qty: m.qty(symbol, lots),
      client_order_id: clientOrderId,
      time_in_force: type === "market" ? "day" : "gtc",
    };
    if (type === "limit") {
      // Passive: a few ticks behind the best price of its own side (or of the mid), so it rests and
      // builds the book; now and then (10 %) it crosses the spread by a tick and trades.
      const { bid, ask } = m.top(symbol);
      const mid = m.mid(symbol);
      const behind = this.rng.int(0, 8);
      let ticks: number;
      if (this.rng.chance(0.1)) ticks = side === "buy" ? (ask ?? mid) + 1 : (bid ?? mid) - 1;
      else ticks = side === "buy" ? (bid ?? mid - 1) - behind : (ask ?? mid + 1) + behind;
      // Stay well inside the symbol's price band around its reference.
      const ref = m.of(symbol).referenceTicks;
      ticks = Math.min(Math.max(ticks, Math.ceil(ref * 0.92)), Math.floor(ref * 1.08));
      body.limit_price = m.price(symbol, ticks);
    }
    const op = type === "limit" ? "POST /v2/orders (limit)" : "POST /v2/orders (market)";
    const reply = await this.call(op, "POST", "/v2/orders", body);
    if (reply.status === 200) {
      this.remember(reply.body as OrderBody, null);
    } else if (reply.status === 0 || reply.status >= 500) {
      this.unanswered.push({ clientOrderId, symbol });
    }
  }

  private remember(o: OrderBody, replaces: AckedOrder | null): AckedOrder {
    const known = this.acked.get(o.id);
    const order: AckedOrder = known ?? {
      id: o.id,
      clientOrderId: o.client_order_id,
      symbol: o.symbol,
      side: o.side === "sell" ? "sell" : "buy",
      type: o.type === "market" ? "market" : "limit",
      qtyLots: this.ctx.market.lots(o.symbol, o.qty ?? "0"),
      status: o.status,
      canceledByUs: false,
      replacedBy: null,
    };
    if (!known) {
      this.acked.set(o.id, order);
      // A trade_update may have closed it before this answer arrived.
      if (OPEN.has(o.status) && !this.closedEarly.has(o.id)) this.open.set(o.id, order);
    }
    if (replaces) {
      replaces.replacedBy = o.id;
      this.open.delete(replaces.id);
    }
    return order;
  }

  /** Orders a trade_update closed before the HTTP answer that placed them arrived. */
  private readonly closedEarly = new Set<string>();

  private pickOpen(): AckedOrder | undefined {
    const list = [...this.open.values()];
    return list.length === 0 ? undefined : this.rng.pick(list);
  }

  private async replace(): Promise<void> {
    const o = this.pickOpen();
    if (!o) return this.place("limit");
    const m = this.ctx.market;
    const filled = this.filledByOrder.get(o.id) ?? 0;
    const remaining = o.qtyLots - filled;
    const body: Record<string, string> = {
      client_order_id: `lt-${this.ctx.runId}-${this.creds.index}-${++this.seq}`,
    };
    if (o.type === "limit" && (remaining <= 1 || this.rng.chance(0.7))) {
      // Move the price a tick or two (toward the market or away).
      const top = m.top(o.symbol);
      const base = (o.side === "buy" ? top.bid : top.ask) ?? m.mid(o.symbol);
      const ticks = base + (o.side === "buy" ? -1 : 1) * this.rng.int(0, 4);
      const ref = m.of(o.symbol).referenceTicks;
      body.limit_price = m.price(
        o.symbol,
        Math.min(Math.max(ticks, Math.ceil(ref * 0.92)), Math.floor(ref * 1.08)),
      );
    } else {
      body.qty = m.qty(o.symbol, Math.max(1, o.qtyLots - 1));
    }
    const reply = await this.call("PATCH /v2/orders/{id}", "PATCH", `/v2/orders/${o.id}`, body);
    if (reply.status === 200) this.remember(reply.body as OrderBody, o);
    else if (reply.status === 422 || reply.status === 404) this.open.delete(o.id); // no longer open
  }

  private async cancel(): Promise<void> {
    const o = this.pickOpen();
    if (!o) return;
    const reply = await this.call("DELETE /v2/orders/{id}", "DELETE", `/v2/orders/${o.id}`);
    if (reply.status === 204) {
      o.canceledByUs = true;
      this.open.delete(o.id);
    } else if (reply.status === 422 || reply.status === 404) {
      this.open.delete(o.id);
    }
  }

  // --- trade_updates -----------------------------------------------------------------------------

  onTradeUpdate(u: TradeUpdate, lagMs: number): void {
    this.tradeUpdates++;
    const w = this.ctx.window;
    if (w) {
      w.wsMessages++;
      if (lagMs >= 0) w.tradeUpdateLag.recordValue(Math.max(1, Math.round(lagMs * 1000)));
    }
    const id = u.order.id;
    const order = this.acked.get(id);
    if (order) order.status = u.order.status;
    if ((u.event === "fill" || u.event === "partial_fill") && u.execution_id && u.qty && u.price) {
      if (this.fills.has(u.execution_id)) {
        this.duplicateFills++;
        if (w) w.duplicates++;
      } else {
        const symbol = u.order.symbol;
        const lots = this.ctx.market.lots(symbol, u.qty);
        const side = u.order.side === "sell" ? "sell" : "buy";
        this.fills.set(u.execution_id, {
          executionId: u.execution_id,
          orderId: id,
          symbol,
          side,
          qtyLots: lots,
          priceTicks: this.ctx.market.ticks(symbol, u.price) ?? 0,
        });
        this.filledByOrder.set(id, (this.filledByOrder.get(id) ?? 0) + lots);
        this.held.set(symbol, (this.held.get(symbol) ?? 0) + (side === "buy" ? lots : -lots));
      }
    }
    if (!OPEN.has(u.order.status)) {
      this.open.delete(id);
      if (!order) this.closedEarly.add(id);
    }
  }
}

interface OrderBody {
  id: string;
  client_order_id: string;
  symbol: string;
  side: string;
  type: string;
  qty: string | null;
  status: string;
}

export function codeOf(reply: HttpReply): string | undefined {
  const b = reply.body as { code?: unknown } | undefined;
  return typeof b?.code === "string" ? b.code : undefined;
}
