/**
 * A deliberately simple reference engine for differential tests: plain objects in arrays that are fully
 * re-sorted after every insert, linear scans everywhere, and L2 book events computed by diffing freshly
 * aggregated level totals against what was last published. Slow and obviously correct; it implements
 * the same documented semantics as `MatchingEngine` (see docs/engine.md) and must emit identical events.
 * @internal
 */
import { canonicalJson } from "./canonical.ts";
import { stateHashOf } from "./hash.ts";
import type {
  CancelCommand,
  CancelReason,
  DepthSnapshot,
  EngineCommand,
  EngineEvent,
  EngineOptions,
  EngineSnapshot,
  OrderStatus,
  OrderType,
  PlaceCommand,
  PriceLevel,
  RejectReason,
  ReplaceCommand,
  SelfTradePrevention,
  Side,
  SnapshotOrder,
  SymbolRules,
  TimeInForce,
} from "./types.ts";
import {
  checkCancel,
  checkPlace,
  checkReplaceArgs,
  checkReplaceValues,
  checkSetReferencePrice,
  isValidTime,
  replaceNotionalReason,
} from "./validate.ts";

interface RefOrder {
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
  prio: number;
}

export class ReferenceEngine {
  readonly rules: SymbolRules;
  private readonly defaultStp: SelfTradePrevention;
  private readonly closedCap: number;
  seq = 0;
  commandSeq = 0;
  bookSeq = 0;
  fillId = 0;
  prioSeq = 0;
  lastTradePrice: number | null = null;
  referencePrice: number | null = null;
  halted = false;

  /** Best first: price descending, then priority. */
  private bids: RefOrder[] = [];
  /** Best first: price ascending, then priority. */
  private asks: RefOrder[] = [];
  /** Trigger order: stop price ascending, then priority. */
  private buyStops: RefOrder[] = [];
  /** Trigger order: stop price descending, then priority. */
  private sellStops: RefOrder[] = [];
  /** Two generations of recently closed ids, as in the fast engine's documented semantics. */
  private closedPrevious: [string, OrderStatus][] = [];
  private closedCurrent: [string, OrderStatus][] = [];
  /** "side:price" → last published level total. */
  private published = new Map<string, number>();

  private now = 0;
  private out: EngineEvent[] = [];

  constructor(rules: SymbolRules, opts?: EngineOptions) {
    this.rules = { ...rules };
    this.defaultStp = opts?.defaultStp ?? "cancel_newest";
    this.closedCap = opts?.closedOrderMemory ?? 10_000;
    this.referencePrice = opts?.referencePrice ?? null;
    this.halted = opts?.halted === true;
  }

  process(cmd: EngineCommand, out: EngineEvent[]): void {
    this.out = out;
    this.commandSeq++;
    if (typeof cmd !== "object" || cmd === null) {
      this.now = 0;
      this.reject("unknown", "invalid_command", undefined, undefined, undefined);
      return;
    }
    this.now = isValidTime(cmd.now) ? cmd.now : 0;
    if (cmd.kind === "place") this.place(cmd);
    else if (cmd.kind === "cancel") this.cancel(cmd);
    else if (cmd.kind === "replace") this.replace(cmd);
    else if (cmd.kind === "tick") {
      if (!isValidTime(cmd.now)) this.reject("tick", "invalid_time", undefined, undefined, undefined);
      else this.expire(cmd.now);
    } else if (cmd.kind === "halt" || cmd.kind === "resume") {
      if (!isValidTime(cmd.now)) this.reject(cmd.kind, "invalid_time", undefined, undefined, undefined);
      else {
        this.halted = cmd.kind === "halt";
        this.emit({ type: "trading_status", halted: this.halted });
      }
    } else if (cmd.kind === "setReferencePrice") {
      const problem = checkSetReferencePrice(cmd);
      if (problem !== null) this.reject("setReferencePrice", problem, undefined, undefined, undefined);
      else {
        this.referencePrice = cmd.price;
        this.emit({ type: "reference_price", price: cmd.price });
      }
    } else {
      this.reject("unknown", "invalid_command", undefined, undefined, undefined);
    }
  }

  // ----- commands -----

  private place(cmd: PlaceCommand): void {
    const problem = checkPlace(cmd, this.rules, this.referencePrice ?? 0, this.halted);
    if (problem !== null) {
      this.reject("place", problem, cmd.orderId, undefined, cmd.account);
      return;
    }
    if (this.isKnown(cmd.orderId)) {
      this.reject("place", "duplicate_order_id", cmd.orderId, undefined, cmd.account);
      return;
    }
    const o: RefOrder = {
      id: cmd.orderId,
      account: cmd.account,
      side: cmd.side,
      type: cmd.type,
      tif: cmd.tif,
      leaves: cmd.qty,
      filled: 0,
      limitPrice: cmd.type === "limit" || cmd.type === "stop_limit" ? (cmd.limitPrice ?? null) : null,
      stopPrice: cmd.type === "stop" || cmd.type === "stop_limit" ? (cmd.stopPrice ?? null) : null,
      postOnly: cmd.postOnly === true,
      stp: cmd.stp ?? this.defaultStp,
      expiresAt:
        (cmd.tif === "day" || cmd.tif === "gtc") && cmd.expiresAt !== undefined ? cmd.expiresAt : null,
      triggered: false,
      prio: 0,
    };
    if (o.postOnly && this.wouldTake(o.side, o.limitPrice)) {
      this.reject("place", "post_only_would_take", cmd.orderId, undefined, cmd.account);
      return;
    }
    if (o.tif === "fok" && o.stopPrice === null && !this.canFillInFull(o)) {
      this.reject("place", "fok_unfillable", cmd.orderId, undefined, cmd.account);
      return;
    }
    this.emit({
      type: "accepted",
      orderId: o.id,
      account: o.account,
      side: o.side,
      orderType: o.type,
      tif: o.tif,
      qty: o.leaves,
      limitPrice: o.limitPrice ?? undefined,
      stopPrice: o.stopPrice ?? undefined,
      postOnly: o.postOnly,
      stp: o.stp,
      expiresAt: o.expiresAt ?? undefined,
    });
    const queue: RefOrder[] = [];
    if (o.stopPrice !== null) this.arm(o, queue);
    else this.execute(o);
    this.runTriggers(queue);
  }

  private cancel(cmd: CancelCommand): void {
    const { orderId, account } = cmd;
    const problem = checkCancel(cmd);
    if (problem !== null) {
      this.reject("cancel", problem, orderId, undefined, account);
      return;
    }
    const o = this.findOpen(orderId);
    if (o === undefined) {
      const reason = this.isClosed(orderId) ? "order_not_open" : "unknown_order";
      this.reject("cancel", reason, orderId, undefined, account);
      return;
    }
    if (account !== undefined && account !== o.account) {
      this.reject("cancel", "not_owner", orderId, undefined, account);
      return;
    }
    this.emitCanceled(o, "user");
    this.removeOpen(o);
    this.publishBook();
    this.closeOrder(o.id, "canceled");
  }

  private replace(cmd: ReplaceCommand): void {
    const reject = (reason: RejectReason) =>
      this.reject("replace", reason, cmd.orderId, cmd.newOrderId, cmd.account);
    const problem = checkReplaceArgs(cmd, this.halted);
    if (problem !== null) {
      reject(problem);
      return;
    }
    const o = this.findOpen(cmd.orderId);
    if (o === undefined) {
      reject(this.isClosed(cmd.orderId) ? "order_not_open" : "unknown_order");
      return;
    }
    if (cmd.account !== undefined && cmd.account !== o.account) {
      reject("not_owner");
      return;
    }
    if (cmd.newOrderId === cmd.orderId || this.isKnown(cmd.newOrderId)) {
      reject("duplicate_order_id");
      return;
    }
    const valueProblem = checkReplaceValues(
      cmd,
      o.type,
      o.triggered,
      o.limitPrice ?? 0,
      o.stopPrice ?? 0,
      this.rules,
      this.referencePrice ?? 0,
    );
    if (valueProblem !== null) {
      reject(valueProblem);
      return;
    }
    const newQty = cmd.qty ?? o.leaves;
    const newLimit = cmd.limitPrice ?? o.limitPrice;
    const newStop = cmd.stopPrice ?? o.stopPrice;
    const notional = replaceNotionalReason(newQty, newLimit ?? 0, newStop ?? 0, this.rules);
    if (notional !== null) {
      reject(notional);
      return;
    }
    const inBook = this.bids.includes(o) || this.asks.includes(o);
    if (inBook && o.postOnly && this.wouldTake(o.side, newLimit)) {
      reject("post_only_would_take");
      return;
    }
    const keep = newLimit === o.limitPrice && newStop === o.stopPrice && newQty <= o.leaves;
    this.emit({
      type: "replaced",
      orderId: o.id,
      newOrderId: cmd.newOrderId,
      account: o.account,
      side: o.side,
      qty: newQty,
      limitPrice: newLimit ?? undefined,
      stopPrice: newStop ?? undefined,
      replacedQty: o.leaves,
      filledQty: o.filled,
      priorityKept: keep,
    });
    this.closeOrder(o.id, "replaced");
    if (keep) {
      o.id = cmd.newOrderId;
      o.filled = 0;
      o.leaves = newQty;
      this.publishBook();
      return;
    }
    this.removeOpen(o);
    this.publishBook();
    o.id = cmd.newOrderId;
    o.filled = 0;
    o.leaves = newQty;
    o.limitPrice = newLimit;
    o.stopPrice = newStop;
    const queue: RefOrder[] = [];
    if (inBook) this.execute(o);
    else this.arm(o, queue);
    this.runTriggers(queue);
  }

  private expire(now: number): void {
    const due = [...this.bids, ...this.asks, ...this.buyStops, ...this.sellStops]
      .filter((o) => o.expiresAt !== null && o.expiresAt <= now)
      .sort((a, b) => (a.expiresAt as number) - (b.expiresAt as number) || a.prio - b.prio);
    for (const o of due) {
      this.emit({
        type: "expired",
        orderId: o.id,
        account: o.account,
        side: o.side,
        expiredQty: o.leaves,
        filledQty: o.filled,
      });
      this.removeOpen(o);
      this.publishBook();
      this.closeOrder(o.id, "expired");
    }
  }

  // ----- matching -----

  private crossesPrice(side: Side, limit: number | null, makerPrice: number): boolean {
    if (limit === null) return true;
    return side === "buy" ? makerPrice <= limit : makerPrice >= limit;
  }

  private wouldTake(side: Side, limit: number | null): boolean {
    const best = (side === "buy" ? this.asks : this.bids)[0];
    return best !== undefined && this.crossesPrice(side, limit, best.limitPrice as number);
  }

  private effectiveLimit(o: RefOrder): number | null {
    return o.type === "market" || o.type === "stop" ? null : o.limitPrice;
  }

  private canFillInFull(o: RefOrder): boolean {
    const limit = this.effectiveLimit(o);
    let need = o.leaves;
    for (const m of o.side === "buy" ? this.asks : this.bids) {
      if (!this.crossesPrice(o.side, limit, m.limitPrice as number)) return false;
      if (m.account === o.account) {
        if (o.stp === "cancel_oldest") continue;
        return false;
      }
      need -= m.leaves;
      if (need <= 0) return true;
    }
    return false;
  }

  private execute(o: RefOrder): void {
    if (o.tif === "fok" && !this.canFillInFull(o)) {
      this.emitCanceled(o, "fok_unfillable");
      this.closeOrder(o.id, "canceled");
      return;
    }
    const limit = this.effectiveLimit(o);
    const opp = o.side === "buy" ? this.asks : this.bids;
    let stoppedBySelfTrade = false;
    while (o.leaves > 0 && !stoppedBySelfTrade) {
      const first = opp[0];
      if (first === undefined || !this.crossesPrice(o.side, limit, first.limitPrice as number)) break;
      const price = first.limitPrice as number;
      while (o.leaves > 0 && opp[0] !== undefined && opp[0].limitPrice === price) {
        const m = opp[0];
        if (m.account === o.account) {
          if (o.stp === "cancel_newest") {
            stoppedBySelfTrade = true;
            break;
          }
          this.emitCanceled(m, "stp");
          opp.shift();
          this.closeOrder(m.id, "canceled");
          if (o.stp === "cancel_both") {
            stoppedBySelfTrade = true;
            break;
          }
          continue;
        }
        const qty = Math.min(o.leaves, m.leaves);
        o.leaves -= qty;
        o.filled += qty;
        m.leaves -= qty;
        m.filled += qty;
        this.lastTradePrice = price;
        this.emit({
          type: "fill",
          fillId: ++this.fillId,
          price,
          qty,
          takerOrderId: o.id,
          makerOrderId: m.id,
          takerAccount: o.account,
          makerAccount: m.account,
          takerSide: o.side,
          takerLeavesQty: o.leaves,
          makerLeavesQty: m.leaves,
          takerStatus: o.leaves === 0 ? "filled" : "partially_filled",
          makerStatus: m.leaves === 0 ? "filled" : "partially_filled",
        });
        if (m.leaves === 0) {
          opp.shift();
          this.closeOrder(m.id, "filled");
        }
      }
      this.publishBook();
    }
    if (o.leaves === 0) this.closeOrder(o.id, "filled");
    else if (stoppedBySelfTrade) this.cancelActive(o, "stp");
    else if (limit === null) this.cancelActive(o, "market_no_liquidity");
    else if (o.tif === "ioc" || o.tif === "fok") this.cancelActive(o, "ioc_remainder");
    else {
      o.prio = ++this.prioSeq;
      const side = o.side === "buy" ? this.bids : this.asks;
      side.push(o);
      this.sortBook();
      this.publishBook();
    }
  }

  private cancelActive(o: RefOrder, reason: CancelReason): void {
    this.emitCanceled(o, reason);
    this.closeOrder(o.id, "canceled");
  }

  private arm(o: RefOrder, queue: RefOrder[]): void {
    const last = this.lastTradePrice;
    const stop = o.stopPrice as number;
    if (last !== null && (o.side === "buy" ? last >= stop : last <= stop)) {
      this.trigger(o, queue);
      return;
    }
    o.prio = ++this.prioSeq;
    (o.side === "buy" ? this.buyStops : this.sellStops).push(o);
    this.sortBook();
  }

  private trigger(o: RefOrder, queue: RefOrder[]): void {
    o.triggered = true;
    queue.push(o);
    this.emit({
      type: "triggered",
      orderId: o.id,
      account: o.account,
      side: o.side,
      orderType: o.type,
      stopPrice: o.stopPrice as number,
      lastTradePrice: this.lastTradePrice as number,
    });
  }

  private collectTriggers(queue: RefOrder[]): void {
    const last = this.lastTradePrice;
    if (last === null) return;
    const buys = this.buyStops.filter((o) => (o.stopPrice as number) <= last);
    this.buyStops = this.buyStops.filter((o) => !buys.includes(o));
    for (const o of buys) this.trigger(o, queue);
    const sells = this.sellStops.filter((o) => (o.stopPrice as number) >= last);
    this.sellStops = this.sellStops.filter((o) => !sells.includes(o));
    for (const o of sells) this.trigger(o, queue);
  }

  private runTriggers(queue: RefOrder[]): void {
    this.collectTriggers(queue);
    while (queue.length > 0) {
      this.execute(queue.shift() as RefOrder);
      this.collectTriggers(queue);
    }
  }

  // ----- bookkeeping -----

  private sortBook(): void {
    this.bids.sort((a, b) => (b.limitPrice as number) - (a.limitPrice as number) || a.prio - b.prio);
    this.asks.sort((a, b) => (a.limitPrice as number) - (b.limitPrice as number) || a.prio - b.prio);
    this.buyStops.sort((a, b) => (a.stopPrice as number) - (b.stopPrice as number) || a.prio - b.prio);
    this.sellStops.sort((a, b) => (b.stopPrice as number) - (a.stopPrice as number) || a.prio - b.prio);
  }

  private findOpen(id: string): RefOrder | undefined {
    return [...this.bids, ...this.asks, ...this.buyStops, ...this.sellStops].find((o) => o.id === id);
  }

  private isClosed(id: string): boolean {
    return [...this.closedPrevious, ...this.closedCurrent].some(([closedId]) => closedId === id);
  }

  private isKnown(id: string): boolean {
    return this.findOpen(id) !== undefined || this.isClosed(id);
  }

  private removeOpen(o: RefOrder): void {
    this.bids = this.bids.filter((x) => x !== o);
    this.asks = this.asks.filter((x) => x !== o);
    this.buyStops = this.buyStops.filter((x) => x !== o);
    this.sellStops = this.sellStops.filter((x) => x !== o);
  }

  private closeOrder(id: string, status: OrderStatus): void {
    if (this.closedCap === 0) return;
    if (this.closedCurrent.length >= this.closedCap) {
      this.closedPrevious = this.closedCurrent;
      this.closedCurrent = [];
    }
    this.closedCurrent.push([id, status]);
  }

  private aggregate(orders: RefOrder[]): PriceLevel[] {
    const levels: PriceLevel[] = [];
    for (const o of orders) {
      const last = levels[levels.length - 1];
      if (last !== undefined && last[0] === o.limitPrice) last[1] += o.leaves;
      else levels.push([o.limitPrice as number, o.leaves]);
    }
    return levels;
  }

  /** Emit a book event for every level whose total differs from what was last published. */
  private publishBook(): void {
    const current = new Map<string, [Side, number, number]>();
    for (const [price, qty] of this.aggregate(this.bids)) current.set(`buy:${price}`, ["buy", price, qty]);
    for (const [price, qty] of this.aggregate(this.asks)) current.set(`sell:${price}`, ["sell", price, qty]);
    const changes: [Side, number, number][] = [];
    for (const [key, level] of current) {
      if (this.published.get(key) !== level[2]) changes.push(level);
    }
    for (const [key] of this.published) {
      if (!current.has(key)) {
        const [side, price] = key.split(":") as [Side, string];
        changes.push([side, Number(price), 0]);
      }
    }
    if (changes.length > 1) throw new Error(`reference engine: ${changes.length} levels changed in one step`);
    for (const [side, price, qty] of changes) {
      this.emit({ type: "book", bookSeq: ++this.bookSeq, side, price, qty });
      if (qty === 0) this.published.delete(`${side}:${price}`);
      else this.published.set(`${side}:${price}`, qty);
    }
  }

  // ----- events -----

  private emit(event: DistributiveOmit<EngineEvent, "seq" | "commandSeq" | "ts">): void {
    this.out.push({ ...event, seq: ++this.seq, commandSeq: this.commandSeq, ts: this.now } as EngineEvent);
  }

  private reject(
    command: EngineCommand["kind"] | "unknown",
    reason: RejectReason,
    orderId: unknown,
    newOrderId: unknown,
    account: unknown,
  ): void {
    this.emit({
      type: "rejected",
      command,
      reason,
      orderId: typeof orderId === "string" ? orderId : undefined,
      newOrderId: typeof newOrderId === "string" ? newOrderId : undefined,
      account: typeof account === "string" ? account : undefined,
    });
  }

  private emitCanceled(o: RefOrder, reason: CancelReason): void {
    this.emit({
      type: "canceled",
      orderId: o.id,
      account: o.account,
      side: o.side,
      reason,
      canceledQty: o.leaves,
      filledQty: o.filled,
    });
  }

  // ----- queries -----

  depth(levels: number): DepthSnapshot {
    return {
      bids: this.aggregate(this.bids).slice(0, levels),
      asks: this.aggregate(this.asks).slice(0, levels),
      bookSeq: this.bookSeq,
    };
  }

  get nextExpiryAt(): number | null {
    const times = [...this.bids, ...this.asks, ...this.buyStops, ...this.sellStops].flatMap((o) =>
      o.expiresAt === null ? [] : [o.expiresAt],
    );
    return times.length === 0 ? null : Math.min(...times);
  }

  get openOrderCount(): number {
    return this.bids.length + this.asks.length + this.buyStops.length + this.sellStops.length;
  }

  snapshot(): EngineSnapshot {
    const copy = (o: RefOrder): SnapshotOrder => ({
      id: o.id,
      account: o.account,
      side: o.side,
      type: o.type,
      tif: o.tif,
      leaves: o.leaves,
      filled: o.filled,
      limitPrice: o.limitPrice,
      stopPrice: o.stopPrice,
      postOnly: o.postOnly,
      stp: o.stp,
      expiresAt: o.expiresAt,
      triggered: o.triggered,
      prio: o.prio,
    });
    return {
      version: 1,
      rules: { ...this.rules },
      options: { defaultStp: this.defaultStp, closedOrderMemory: this.closedCap },
      seq: this.seq,
      commandSeq: this.commandSeq,
      bookSeq: this.bookSeq,
      fillId: this.fillId,
      prioSeq: this.prioSeq,
      lastTradePrice: this.lastTradePrice,
      referencePrice: this.referencePrice,
      halted: this.halted,
      bids: this.bids.map(copy),
      asks: this.asks.map(copy),
      buyStops: this.buyStops.map(copy),
      sellStops: this.sellStops.map(copy),
      closedPrevious: this.closedPrevious.map(([id, status]) => [id, status]),
      closedCurrent: this.closedCurrent.map(([id, status]) => [id, status]),
    };
  }

  stateHash(): string {
    return stateHashOf(canonicalJson(this.snapshot()));
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
