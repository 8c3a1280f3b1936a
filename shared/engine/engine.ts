/**
 * The fast matching engine: one price-time priority order book per symbol.
 *
 * Layout (see docs/engine.md):
 * - Orders live in a pool of parallel typed arrays indexed by slot (struct of arrays), recycled through a
 *   free list, so resting an order allocates nothing (its id and account strings come with the command).
 * - Each price level is an intrusive doubly linked FIFO list of slots (`oNext` / `oPrev`), with its total.
 * - Levels of each side sit in a `LevelIndex` (sorted typed array, best level last).
 * - Untriggered stops use the same structures in two more sides (buy stops: lowest stop first; sell stops:
 *   highest first), so their FIFO order is their trigger order.
 * - Expiry (day / gtc with `expiresAt`) is an indexed binary heap keyed by (expiresAt, priority stamp).
 * - Order ids are hashed once per command (`hashId`) and looked up in typed-array hash indexes: one for
 *   open orders (id → slot), and two generations of recently closed ids (when the current one is full,
 *   the previous one is cleared as a whole, so closing an order never evicts ids one by one).
 */

import { canonicalJson } from "./canonical.ts";
import { stateHashOf } from "./hash.ts";
import { ClosedIdSet, hashId, OpenIdIndex } from "./id-index.ts";
import { LevelIndex } from "./level-index.ts";
import { validateSymbolRules } from "./rules.ts";
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
  OrderView,
  PlaceCommand,
  PriceLevel,
  RejectReason,
  ReplaceCommand,
  SelfTradePrevention,
  SetReferencePriceCommand,
  Side,
  SnapshotOrder,
  SymbolRules,
  TimeInForce,
  TopOfBook,
} from "./types.ts";
import {
  checkCancel,
  checkPlace,
  checkReplaceArgs,
  checkReplaceValues,
  checkSetReferencePrice,
  isStp,
  isValidTime,
  priceReason,
  replaceNotionalReason,
} from "./validate.ts";

const BUY = 0;
const SELL = 1;
const SIDE_NAMES: readonly Side[] = ["buy", "sell"];

const T_MARKET = 0;
const T_LIMIT = 1;
const T_STOP = 2;
const T_STOP_LIMIT = 3;
const TYPE_NAMES: readonly OrderType[] = ["market", "limit", "stop", "stop_limit"];

const TIF_DAY = 0;
const TIF_GTC = 1;
const TIF_IOC = 2;
const TIF_FOK = 3;
const TIF_NAMES: readonly TimeInForce[] = ["day", "gtc", "ioc", "fok"];

const STP_NEWEST = 0;
const STP_OLDEST = 1;
const STP_BOTH = 2;
const STP_NAMES: readonly SelfTradePrevention[] = ["cancel_newest", "cancel_oldest", "cancel_both"];

/** Where a slot is. */
const LOC_FREE = 0;
const LOC_BOOK = 1;
const LOC_STOPS = 2;
/** Accepted and being executed (a taker, or a triggered stop waiting in the trigger queue). */
const LOC_ACTIVE = 3;

const CLOSED_STATUSES: readonly OrderStatus[] = ["filled", "canceled", "expired", "replaced"];
const C_FILLED = 0;
const C_CANCELED = 1;
const C_EXPIRED = 2;
const C_REPLACED = 3;

const DEFAULT_CLOSED_MEMORY = 10_000;

function sideCode(side: Side): number {
  return side === "buy" ? BUY : SELL;
}
function typeCode(type: OrderType): number {
  return type === "limit" ? T_LIMIT : type === "market" ? T_MARKET : type === "stop" ? T_STOP : T_STOP_LIMIT;
}
function tifCode(tif: TimeInForce): number {
  return tif === "gtc" ? TIF_GTC : tif === "day" ? TIF_DAY : tif === "ioc" ? TIF_IOC : TIF_FOK;
}
function stpCode(stp: SelfTradePrevention): number {
  return stp === "cancel_newest" ? STP_NEWEST : stp === "cancel_oldest" ? STP_OLDEST : STP_BOTH;
}

function growF64(a: Float64Array, size: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(size);
  b.set(a);
  return b;
}
function growI32(a: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(size);
  b.set(a);
  return b;
}
function growU8(a: Uint8Array, size: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(size);
  b.set(a);
  return b;
}

/**
 * A price-time priority order book for one symbol. Feed it commands with `process`; it appends the
 * resulting events to the array you pass. It never reads a clock and never throws on bad commands.
 *
 * @example
 * ```ts
 * const engine = new MatchingEngine(rules);
 * const out: EngineEvent[] = [];
 * engine.process({ kind: "place", now, orderId: "o1", account: "a", side: "sell", type: "limit",
 *   tif: "gtc", qty: 5, limitPrice: 10_000 }, out);
 * engine.process({ kind: "place", now, orderId: "o2", account: "b", side: "buy", type: "market",
 *   tif: "ioc", qty: 2 }, out);
 * // out: accepted o1, book(sell 10000 → 5), accepted o2, fill(2 @ 10000), book(sell 10000 → 3)
 * ```
 */
export class MatchingEngine {
  readonly rules: SymbolRules;
  private readonly defaultStp: SelfTradePrevention;
  private readonly closedCap: number;

  // Counters.
  private _seq = 0;
  private _commandSeq = 0;
  private _bookSeq = 0;
  private _fillId = 0;
  private _prioSeq = 0;
  /** 0 = no trade yet. */
  private _last = 0;
  /** 0 = no reference price. */
  private _ref = 0;
  private _halted = false;

  // The command being processed.
  private now = 0;
  private out: EngineEvent[] = [];

  // Order pool (struct of arrays, indexed by slot).
  private cap: number;
  private oId: string[];
  private oAcct: string[];
  private oLeaves: Float64Array;
  private oFilled: Float64Array;
  /** Limit price (0 = none). */
  private oPrice: Float64Array;
  /** Stop price (0 = none). */
  private oStop: Float64Array;
  /** expiresAt (0 = none). */
  private oExp: Float64Array;
  /** Priority stamp: when the order joined its queue. */
  private oPrio: Float64Array;
  private oNext: Int32Array;
  private oPrev: Int32Array;
  private oLevel: Int32Array;
  private oHeap: Int32Array;
  /** hashId(oId[slot]). */
  private oHash: Int32Array;
  private oSide: Uint8Array;
  private oType: Uint8Array;
  private oTif: Uint8Array;
  private oPost: Uint8Array;
  private oStp: Uint8Array;
  private oTrig: Uint8Array;
  private oLoc: Uint8Array;
  private freeSlot = -1;
  private unusedSlot = 0;
  private _open = 0;

  // Level pool.
  private lCap = 256;
  private lPrice = new Float64Array(256);
  private lQty = new Float64Array(256);
  private lHead = new Int32Array(256);
  private lTail = new Int32Array(256);
  private freeLevel = -1;
  private unusedLevel = 0;

  private readonly bids = new LevelIndex(1);
  private readonly asks = new LevelIndex(-1);
  /** Buy stops trigger when last ≥ stop: lowest stop first. */
  private readonly buyStops = new LevelIndex(-1);
  /** Sell stops trigger when last ≤ stop: highest stop first. */
  private readonly sellStops = new LevelIndex(1);

  /** orderId → slot of every open order (in the book or a stop book). */
  private readonly open: OpenIdIndex;
  /** Recently closed ids with their status; `closedCur` fills up, then becomes `closedPrev` (null: off). */
  private closedCur: ClosedIdSet | null;
  private closedPrev: ClosedIdSet | null;

  // Expiry heap of slots.
  private heap: Int32Array;
  private heapN = 0;

  // Triggered stops waiting to execute, FIFO.
  private readonly triggerQueue: number[] = [];

  constructor(rules: SymbolRules, opts?: EngineOptions) {
    const checked = validateSymbolRules(rules);
    if (!checked.ok) throw new RangeError(`invalid symbol rules: ${checked.problem}`);
    this.rules = { ...rules };
    const stp = opts?.defaultStp ?? "cancel_newest";
    if (!isStp(stp)) throw new RangeError(`invalid defaultStp: ${String(stp)}`);
    this.defaultStp = stp;
    const mem = opts?.closedOrderMemory ?? DEFAULT_CLOSED_MEMORY;
    if (!Number.isSafeInteger(mem) || mem < 0)
      throw new RangeError("closedOrderMemory must be an integer ≥ 0");
    this.closedCap = mem;
    const ref = opts?.referencePrice;
    if (ref !== undefined) {
      if (priceReason(ref) !== null) throw new RangeError(`invalid referencePrice: ${ref}`);
      this._ref = ref;
    }
    this._halted = opts?.halted === true;
    const cap = Math.max(16, Math.floor(opts?.initialCapacity ?? 1024));
    this.cap = cap;
    this.oId = new Array<string>(cap).fill("");
    this.oAcct = new Array<string>(cap).fill("");
    this.oLeaves = new Float64Array(cap);
    this.oFilled = new Float64Array(cap);
    this.oPrice = new Float64Array(cap);
    this.oStop = new Float64Array(cap);
    this.oExp = new Float64Array(cap);
    this.oPrio = new Float64Array(cap);
    this.oNext = new Int32Array(cap);
    this.oPrev = new Int32Array(cap);
    this.oLevel = new Int32Array(cap);
    this.oHeap = new Int32Array(cap);
    this.oHash = new Int32Array(cap);
    this.open = new OpenIdIndex(this.oId, cap);
    this.closedCur = mem > 0 ? new ClosedIdSet(mem) : null;
    this.closedPrev = mem > 0 ? new ClosedIdSet(mem) : null;
    this.oSide = new Uint8Array(cap);
    this.oType = new Uint8Array(cap);
    this.oTif = new Uint8Array(cap);
    this.oPost = new Uint8Array(cap);
    this.oStp = new Uint8Array(cap);
    this.oTrig = new Uint8Array(cap);
    this.oLoc = new Uint8Array(cap);
    this.heap = new Int32Array(64);
  }

  // -------------------------------------------------------------------------------------------------
  // Public surface
  // -------------------------------------------------------------------------------------------------

  /** Price of the last trade in ticks, or null before the first trade. */
  get lastTradePrice(): number | null {
    return this._last === 0 ? null : this._last;
  }
  /** Reference price for the price band, or null if none was set. */
  get referencePrice(): number | null {
    return this._ref === 0 ? null : this._ref;
  }
  get halted(): boolean {
    return this._halted;
  }
  /** Sequence number of the last book (L2) event. */
  get bookSeq(): number {
    return this._bookSeq;
  }
  /** Sequence number of the last event. */
  get seq(): number {
    return this._seq;
  }
  /** Sequence number of the last command processed. */
  get commandSeq(): number {
    return this._commandSeq;
  }
  /** Resting limit orders plus untriggered stops. */
  get openOrderCount(): number {
    return this._open;
  }
  /**
   * Earliest `expiresAt` among open orders, or null: the time of the next `tick` that will expire
   * something (O(1), for scheduling an alarm).
   */
  get nextExpiryAt(): number | null {
    return this.heapN === 0 ? null : (this.oExp[this.heap[0] as number] as number);
  }

  /**
   * Apply one command and append its events to `out`. Bad commands produce a "rejected" event; this
   * method does not throw on any input.
   */
  process(cmd: EngineCommand, out: EngineEvent[]): void {
    this.out = out;
    this._commandSeq++;
    if (typeof cmd !== "object" || cmd === null) {
      this.now = 0;
      this.reject("unknown", "invalid_command", undefined, undefined, undefined);
      return;
    }
    this.now = isValidTime(cmd.now) ? cmd.now : 0;
    switch (cmd.kind) {
      case "replace":
        this.replace(cmd);
        break;
      case "place":
        this.place(cmd);
        break;
      case "cancel":
        this.cancel(cmd);
        break;
      case "tick":
        if (!isValidTime(cmd.now)) this.reject("tick", "invalid_time", undefined, undefined, undefined);
        else this.expireUpTo(cmd.now);
        break;
      case "halt":
      case "resume":
        if (!isValidTime(cmd.now)) this.reject(cmd.kind, "invalid_time", undefined, undefined, undefined);
        else {
          this._halted = cmd.kind === "halt";
          this.out.push({
            type: "trading_status",
            seq: ++this._seq,
            commandSeq: this._commandSeq,
            ts: this.now,
            halted: this._halted,
          });
        }
        break;
      case "setReferencePrice":
        this.setReferencePrice(cmd);
        break;
      default:
        this.reject("unknown", "invalid_command", undefined, undefined, undefined);
    }
  }

  /** Best bid and ask levels. */
  topOfBook(): TopOfBook {
    const b = this.bids.best();
    const a = this.asks.best();
    return {
      bid: b === -1 ? null : [this.lPrice[b] as number, this.lQty[b] as number],
      ask: a === -1 ? null : [this.lPrice[a] as number, this.lQty[a] as number],
      bookSeq: this._bookSeq,
    };
  }

  /** Up to `levels` price levels per side, best first. */
  depth(levels: number): DepthSnapshot {
    return {
      bids: this.levelsOf(this.bids, levels),
      asks: this.levelsOf(this.asks, levels),
      bookSeq: this._bookSeq,
    };
  }

  /** An open order (resting, or an untriggered stop), or undefined. */
  getOrder(orderId: string): OrderView | undefined {
    if (typeof orderId !== "string") return undefined;
    const s = this.open.find(orderId, hashId(orderId));
    if (s === -1) return undefined;
    return this.viewOf(s);
  }

  /** Final status of a recently closed order (see `closedOrderMemory`), or undefined. */
  closedOrderStatus(orderId: string): OrderStatus | undefined {
    if (typeof orderId !== "string") return undefined;
    const status = this.closedStatusOf(orderId, hashId(orderId));
    return status === -1 ? undefined : CLOSED_STATUSES[status];
  }

  /** All open orders: bids, asks (best level first, queue order), then buy stops and sell stops. */
  openOrders(): OrderView[] {
    const views: OrderView[] = [];
    for (const index of [this.bids, this.asks, this.buyStops, this.sellStops]) {
      for (let i = 0; i < index.n; i++) {
        for (let s = this.lHead[index.levelFromBest(i)] as number; s !== -1; s = this.oNext[s] as number) {
          views.push(this.viewOf(s));
        }
      }
    }
    return views;
  }

  /** Hash of the full state (orders, queues, counters, closed-id memory): equal states, equal hashes. */
  stateHash(): string {
    return stateHashOf(canonicalJson(this.snapshot()));
  }

  /** JSON-serialisable copy of the full state. */
  snapshot(): EngineSnapshot {
    const closedList = (set: ClosedIdSet | null): [string, OrderStatus][] => {
      const list: [string, OrderStatus][] = [];
      for (let i = 0; set !== null && i < set.size; i++) {
        list.push([set.ids[i] as string, CLOSED_STATUSES[set.statuses[i] as number] as OrderStatus]);
      }
      return list;
    };
    return {
      version: 1,
      rules: { ...this.rules },
      options: { defaultStp: this.defaultStp, closedOrderMemory: this.closedCap },
      seq: this._seq,
      commandSeq: this._commandSeq,
      bookSeq: this._bookSeq,
      fillId: this._fillId,
      prioSeq: this._prioSeq,
      lastTradePrice: this.lastTradePrice,
      referencePrice: this.referencePrice,
      halted: this._halted,
      bids: this.snapshotSide(this.bids),
      asks: this.snapshotSide(this.asks),
      buyStops: this.snapshotSide(this.buyStops),
      sellStops: this.snapshotSide(this.sellStops),
      closedPrevious: closedList(this.closedPrev),
      closedCurrent: closedList(this.closedCur),
    };
  }

  /** Rebuild an engine from `snapshot()` output (also after a JSON round trip). */
  static restore(snap: EngineSnapshot): MatchingEngine {
    if (snap.version !== 1)
      throw new RangeError(`unsupported engine snapshot version: ${String(snap.version)}`);
    const count = snap.bids.length + snap.asks.length + snap.buyStops.length + snap.sellStops.length;
    const engine = new MatchingEngine(snap.rules, {
      defaultStp: snap.options.defaultStp,
      closedOrderMemory: snap.options.closedOrderMemory,
      initialCapacity: Math.max(1024, count * 2),
      halted: snap.halted,
      ...(snap.referencePrice !== null ? { referencePrice: snap.referencePrice } : {}),
    });
    engine._seq = snap.seq;
    engine._commandSeq = snap.commandSeq;
    engine._bookSeq = snap.bookSeq;
    engine._fillId = snap.fillId;
    engine._prioSeq = snap.prioSeq;
    engine._last = snap.lastTradePrice ?? 0;
    let previous = snap.closedPrevious ?? [];
    let current = snap.closedCurrent ?? [];
    // Snapshots written before the two-generation memory held one `closed` list, oldest first.
    const legacy = (snap as { closed?: [string, OrderStatus][] }).closed;
    if (snap.closedCurrent === undefined && legacy !== undefined) {
      const cap = snap.options.closedOrderMemory;
      current = cap === 0 ? [] : legacy.slice(-cap);
      previous = cap === 0 ? [] : legacy.slice(0, -cap).slice(-cap);
    }
    for (const [id, status] of previous) {
      engine.closedPrev?.add(id, hashId(id), CLOSED_STATUSES.indexOf(status));
    }
    for (const [id, status] of current) {
      engine.closedCur?.add(id, hashId(id), CLOSED_STATUSES.indexOf(status));
    }
    for (const o of snap.bids) engine.restoreOrder(o, LOC_BOOK);
    for (const o of snap.asks) engine.restoreOrder(o, LOC_BOOK);
    for (const o of snap.buyStops) engine.restoreOrder(o, LOC_STOPS);
    for (const o of snap.sellStops) engine.restoreOrder(o, LOC_STOPS);
    return engine;
  }

  // -------------------------------------------------------------------------------------------------
  // Commands
  // -------------------------------------------------------------------------------------------------

  private place(cmd: PlaceCommand): void {
    const problem = checkPlace(cmd, this.rules, this._ref, this._halted);
    if (problem !== null) {
      this.reject("place", problem, cmd.orderId, undefined, cmd.account);
      return;
    }
    const h = hashId(cmd.orderId);
    if (this.isKnownId(cmd.orderId, h)) {
      this.reject("place", "duplicate_order_id", cmd.orderId, undefined, cmd.account);
      return;
    }
    const side = sideCode(cmd.side);
    const type = typeCode(cmd.type);
    const tif = tifCode(cmd.tif);
    const stpName = cmd.stp ?? this.defaultStp;
    const stp = stpCode(stpName);
    const limit = type === T_LIMIT || type === T_STOP_LIMIT ? (cmd.limitPrice as number) : 0;
    const stop = type === T_STOP || type === T_STOP_LIMIT ? (cmd.stopPrice as number) : 0;
    const postOnly = cmd.postOnly === true;
    if (postOnly && this.crosses(side, limit)) {
      this.reject("place", "post_only_would_take", cmd.orderId, undefined, cmd.account);
      return;
    }
    if (
      tif === TIF_FOK &&
      (type === T_LIMIT || type === T_MARKET) &&
      !this.fokFillable(side, limit, cmd.qty, cmd.account, stp)
    ) {
      this.reject("place", "fok_unfillable", cmd.orderId, undefined, cmd.account);
      return;
    }
    const exp = (tif === TIF_DAY || tif === TIF_GTC) && cmd.expiresAt !== undefined ? cmd.expiresAt : 0;

    const s = this.allocSlot();
    this.oId[s] = cmd.orderId;
    this.oHash[s] = h;
    this.oAcct[s] = cmd.account;
    this.oLeaves[s] = cmd.qty;
    this.oFilled[s] = 0;
    this.oPrice[s] = limit;
    this.oStop[s] = stop;
    this.oExp[s] = exp;
    this.oPrio[s] = 0;
    this.oSide[s] = side;
    this.oType[s] = type;
    this.oTif[s] = tif;
    this.oPost[s] = postOnly ? 1 : 0;
    this.oStp[s] = stp;
    this.oTrig[s] = 0;
    this.oLoc[s] = LOC_ACTIVE;

    this.out.push({
      type: "accepted",
      seq: ++this._seq,
      commandSeq: this._commandSeq,
      ts: this.now,
      orderId: cmd.orderId,
      account: cmd.account,
      side: cmd.side,
      orderType: cmd.type,
      tif: cmd.tif,
      qty: cmd.qty,
      limitPrice: limit === 0 ? undefined : limit,
      stopPrice: stop === 0 ? undefined : stop,
      postOnly,
      stp: stpName,
      expiresAt: exp === 0 ? undefined : exp,
    });

    if (stop !== 0) this.armStop(s);
    else this.execute(s);
    this.runTriggers();
  }

  private cancel(cmd: CancelCommand): void {
    const problem = checkCancel(cmd);
    if (problem !== null) {
      this.reject("cancel", problem, cmd.orderId, undefined, cmd.account);
      return;
    }
    const h = hashId(cmd.orderId);
    const s = this.open.find(cmd.orderId, h);
    if (s === -1) {
      const reason = this.closedStatusOf(cmd.orderId, h) !== -1 ? "order_not_open" : "unknown_order";
      this.reject("cancel", reason, cmd.orderId, undefined, cmd.account);
      return;
    }
    if (cmd.account !== undefined && cmd.account !== this.oAcct[s]) {
      this.reject("cancel", "not_owner", cmd.orderId, undefined, cmd.account);
      return;
    }
    this.emitCanceled(s, "user");
    this.removeOpen(s);
    this.close(s, C_CANCELED);
  }

  private replace(cmd: ReplaceCommand): void {
    const problem = checkReplaceArgs(cmd, this._halted);
    if (problem !== null) {
      this.reject("replace", problem, cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    const h = hashId(cmd.orderId);
    const s = this.open.find(cmd.orderId, h);
    if (s === -1) {
      const reason = this.closedStatusOf(cmd.orderId, h) !== -1 ? "order_not_open" : "unknown_order";
      this.reject("replace", reason, cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    if (cmd.account !== undefined && cmd.account !== this.oAcct[s]) {
      this.reject("replace", "not_owner", cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    const newHash = hashId(cmd.newOrderId);
    if (cmd.newOrderId === cmd.orderId || this.isKnownId(cmd.newOrderId, newHash)) {
      this.reject("replace", "duplicate_order_id", cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    const type = this.oType[s] as number;
    const oldLimit = this.oPrice[s] as number;
    const oldStop = this.oStop[s] as number;
    const oldLeaves = this.oLeaves[s] as number;
    const triggered = this.oTrig[s] === 1;
    const valueProblem = checkReplaceValues(
      cmd,
      TYPE_NAMES[type] as OrderType,
      triggered,
      oldLimit,
      oldStop,
      this.rules,
      this._ref,
    );
    if (valueProblem !== null) {
      this.reject("replace", valueProblem, cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    const newQty = cmd.qty ?? oldLeaves;
    const newLimit = cmd.limitPrice ?? oldLimit;
    const newStop = cmd.stopPrice ?? oldStop;
    const notional = replaceNotionalReason(newQty, newLimit, newStop, this.rules);
    if (notional !== null) {
      this.reject("replace", notional, cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    const side = this.oSide[s] as number;
    const inBook = this.oLoc[s] === LOC_BOOK;
    if (inBook && this.oPost[s] === 1 && this.crosses(side, newLimit)) {
      this.reject("replace", "post_only_would_take", cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    const keep = newLimit === oldLimit && newStop === oldStop && newQty <= oldLeaves;
    const account = this.oAcct[s] as string;
    this.out.push({
      type: "replaced",
      seq: ++this._seq,
      commandSeq: this._commandSeq,
      ts: this.now,
      orderId: cmd.orderId,
      newOrderId: cmd.newOrderId,
      account,
      side: SIDE_NAMES[side] as Side,
      qty: newQty,
      limitPrice: newLimit === 0 ? undefined : newLimit,
      stopPrice: newStop === 0 ? undefined : newStop,
      replacedQty: oldLeaves,
      filledQty: this.oFilled[s] as number,
      priorityKept: keep,
    });
    if (keep) {
      this.open.remove(s, h);
      this.closeId(cmd.orderId, h, C_REPLACED);
      this.oId[s] = cmd.newOrderId;
      this.oHash[s] = newHash;
      this.oFilled[s] = 0;
      this.open.insert(s, newHash);
      if (newQty < oldLeaves) {
        const level = this.oLevel[s] as number;
        this.oLeaves[s] = newQty;
        const total = (this.lQty[level] as number) - (oldLeaves - newQty);
        this.lQty[level] = total;
        if (inBook) this.emitBook(side, this.lPrice[level] as number, total);
      }
      return;
    }
    this.removeOpen(s);
    this.closeId(cmd.orderId, h, C_REPLACED);
    this.oId[s] = cmd.newOrderId;
    this.oHash[s] = newHash;
    this.oFilled[s] = 0;
    this.oLeaves[s] = newQty;
    this.oPrice[s] = newLimit;
    this.oStop[s] = newStop;
    this.oLoc[s] = LOC_ACTIVE;
    if (inBook) this.execute(s);
    else this.armStop(s);
    this.runTriggers();
  }

  private setReferencePrice(cmd: SetReferencePriceCommand): void {
    const problem = checkSetReferencePrice(cmd);
    if (problem !== null) {
      this.reject("setReferencePrice", problem, undefined, undefined, undefined);
      return;
    }
    this._ref = cmd.price;
    this.out.push({
      type: "reference_price",
      seq: ++this._seq,
      commandSeq: this._commandSeq,
      ts: this.now,
      price: cmd.price,
    });
  }

  /** Expire every open order with expiresAt ≤ now, earliest first (ties: queue priority stamp). */
  private expireUpTo(now: number): void {
    while (this.heapN > 0) {
      const s = this.heap[0] as number;
      if ((this.oExp[s] as number) > now) break;
      const leaves = this.oLeaves[s] as number;
      this.out.push({
        type: "expired",
        seq: ++this._seq,
        commandSeq: this._commandSeq,
        ts: this.now,
        orderId: this.oId[s] as string,
        account: this.oAcct[s] as string,
        side: SIDE_NAMES[this.oSide[s] as number] as Side,
        expiredQty: leaves,
        filledQty: this.oFilled[s] as number,
      });
      this.removeOpen(s);
      this.close(s, C_EXPIRED);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Matching
  // -------------------------------------------------------------------------------------------------

  /** Would a `side` order at `limit` (0 = market) take liquidity now? */
  private crosses(side: number, limit: number): boolean {
    if (side === BUY) {
      const a = this.asks.best();
      return a !== -1 && (limit === 0 || (this.lPrice[a] as number) <= limit);
    }
    const b = this.bids.best();
    return b !== -1 && (limit === 0 || (this.lPrice[b] as number) >= limit);
  }

  /**
   * Could an order fill `qty` in full right now? Walks the opposite side as matching would, including
   * self-trade prevention: cancel_oldest skips own orders, the other modes stop at the first one.
   */
  private fokFillable(side: number, limit: number, qty: number, account: string, stp: number): boolean {
    const opp = side === BUY ? this.asks : this.bids;
    let need = qty;
    for (let i = 0; i < opp.n; i++) {
      const level = opp.levelFromBest(i);
      const p = this.lPrice[level] as number;
      if (limit !== 0 && (side === BUY ? p > limit : p < limit)) return false;
      for (let m = this.lHead[level] as number; m !== -1; m = this.oNext[m] as number) {
        if (this.oAcct[m] === account) {
          if (stp === STP_OLDEST) continue;
          return false;
        }
        need -= this.oLeaves[m] as number;
        if (need <= 0) return true;
      }
    }
    return false;
  }

  /** Execute an accepted (or triggered) order as a taker, then rest or cancel what is left. */
  private execute(t: number): void {
    const type = this.oType[t] as number;
    const isMarket = type === T_MARKET || type === T_STOP;
    const limit = isMarket ? 0 : (this.oPrice[t] as number);
    const tif = this.oTif[t] as number;
    const side = this.oSide[t] as number;
    if (
      tif === TIF_FOK &&
      !this.fokFillable(
        side,
        limit,
        this.oLeaves[t] as number,
        this.oAcct[t] as string,
        this.oStp[t] as number,
      )
    ) {
      this.emitCanceled(t, "fok_unfillable");
      this.close(t, C_CANCELED);
      return;
    }
    const stoppedBySelfTrade = this.crosses(side, limit) ? this.match(t, side, limit) : false;
    if (this.oLeaves[t] === 0) {
      this.close(t, C_FILLED);
    } else if (stoppedBySelfTrade) {
      this.emitCanceled(t, "stp");
      this.close(t, C_CANCELED);
    } else if (isMarket) {
      this.emitCanceled(t, "market_no_liquidity");
      this.close(t, C_CANCELED);
    } else if (tif === TIF_IOC || tif === TIF_FOK) {
      this.emitCanceled(t, "ioc_remainder");
      this.close(t, C_CANCELED);
    } else {
      this.rest(t, side, limit);
    }
  }

  /**
   * Match taker `t` against the opposite side while prices cross. Emits fills, STP cancels and one book
   * event per touched level. Returns true if self-trade prevention stopped the taker.
   */
  private match(t: number, side: number, limit: number): boolean {
    const opp = side === BUY ? this.asks : this.bids;
    const oppSide = side === BUY ? SELL : BUY;
    const takerId = this.oId[t] as string;
    const takerAcct = this.oAcct[t] as string;
    const takerSide = SIDE_NAMES[side] as Side;
    const stp = this.oStp[t] as number;
    let leaves = this.oLeaves[t] as number;
    let takerFilled = this.oFilled[t] as number;
    let stopped = false;
    while (leaves > 0 && opp.n > 0) {
      const level = opp.levels[opp.n - 1] as number;
      const price = this.lPrice[level] as number;
      if (limit !== 0 && (side === BUY ? price > limit : price < limit)) break;
      let total = this.lQty[level] as number;
      let touched = false;
      let m = this.lHead[level] as number;
      while (m !== -1 && leaves > 0) {
        const next = this.oNext[m] as number;
        if (this.oAcct[m] === takerAcct) {
          if (stp === STP_NEWEST) {
            stopped = true;
            break;
          }
          // cancel_oldest / cancel_both: the resting order goes.
          touched = true;
          total -= this.oLeaves[m] as number;
          this.emitCanceled(m, "stp");
          this.popHead(level, m, next);
          this.close(m, C_CANCELED);
          m = next;
          if (stp === STP_BOTH) {
            stopped = true;
            break;
          }
          continue;
        }
        const makerLeaves = this.oLeaves[m] as number;
        const qty = Math.min(leaves, makerLeaves);
        leaves -= qty;
        takerFilled += qty;
        const makerLeft = makerLeaves - qty;
        this.oLeaves[m] = makerLeft;
        this.oFilled[m] = (this.oFilled[m] as number) + qty;
        total -= qty;
        touched = true;
        this._last = price;
        this.out.push({
          type: "fill",
          seq: ++this._seq,
          commandSeq: this._commandSeq,
          ts: this.now,
          fillId: ++this._fillId,
          price,
          qty,
          takerOrderId: takerId,
          makerOrderId: this.oId[m] as string,
          takerAccount: takerAcct,
          makerAccount: this.oAcct[m] as string,
          takerSide,
          takerLeavesQty: leaves,
          makerLeavesQty: makerLeft,
          takerStatus: leaves === 0 ? "filled" : "partially_filled",
          makerStatus: makerLeft === 0 ? "filled" : "partially_filled",
        });
        if (makerLeft === 0) {
          this.popHead(level, m, next);
          this.close(m, C_FILLED);
          m = next;
        }
      }
      if (touched) {
        this.lQty[level] = total;
        if (this.lHead[level] === -1) {
          opp.removeBest();
          this.freeLevelId(level);
          this.emitBook(oppSide, price, 0);
        } else {
          this.emitBook(oppSide, price, total);
        }
      }
      if (stopped) break;
    }
    this.oLeaves[t] = leaves;
    this.oFilled[t] = takerFilled;
    return stopped;
  }

  private rest(s: number, side: number, price: number): void {
    this.oPrio[s] = ++this._prioSeq;
    const total = this.link(s, side === BUY ? this.bids : this.asks, price);
    this.oLoc[s] = LOC_BOOK;
    this.open.insert(s, this.oHash[s] as number);
    if ((this.oExp[s] as number) !== 0) this.heapPush(s);
    this.emitBook(side, price, total);
  }

  /** Put an accepted stop in its stop book, or trigger it at once if the last trade already reached it. */
  private armStop(s: number): void {
    const side = this.oSide[s] as number;
    const stop = this.oStop[s] as number;
    const last = this._last;
    if (last !== 0 && (side === BUY ? last >= stop : last <= stop)) {
      this.trigger(s);
      return;
    }
    this.oPrio[s] = ++this._prioSeq;
    this.link(s, side === BUY ? this.buyStops : this.sellStops, stop);
    this.oLoc[s] = LOC_STOPS;
    this.open.insert(s, this.oHash[s] as number);
    if ((this.oExp[s] as number) !== 0) this.heapPush(s);
  }

  private trigger(s: number): void {
    this.oTrig[s] = 1;
    this.oLoc[s] = LOC_ACTIVE;
    this.triggerQueue.push(s);
    this.out.push({
      type: "triggered",
      seq: ++this._seq,
      commandSeq: this._commandSeq,
      ts: this.now,
      orderId: this.oId[s] as string,
      account: this.oAcct[s] as string,
      side: SIDE_NAMES[this.oSide[s] as number] as Side,
      orderType: TYPE_NAMES[this.oType[s] as number] as OrderType,
      stopPrice: this.oStop[s] as number,
      lastTradePrice: this._last,
    });
  }

  /** Move every stop the last trade price has reached into the trigger queue (buy stops first). */
  private collectTriggers(): void {
    const last = this._last;
    if (last === 0) return;
    for (let level = this.buyStops.best(); level !== -1; level = this.buyStops.best()) {
      if ((this.lPrice[level] as number) > last) break;
      this.triggerLevel(this.buyStops, level);
    }
    for (let level = this.sellStops.best(); level !== -1; level = this.sellStops.best()) {
      if ((this.lPrice[level] as number) < last) break;
      this.triggerLevel(this.sellStops, level);
    }
  }

  private triggerLevel(index: LevelIndex, level: number): void {
    let s = this.lHead[level] as number;
    while (s !== -1) {
      const next = this.oNext[s] as number;
      if ((this.oExp[s] as number) !== 0) this.heapRemove(s);
      this.open.remove(s, this.oHash[s] as number);
      this._open--;
      this.trigger(s);
      s = next;
    }
    index.removeBest();
    this.freeLevelId(level);
  }

  /** Execute triggered stops one at a time, collecting new triggers after each execution. */
  private runTriggers(): void {
    const queue = this.triggerQueue;
    if (this.buyStops.n === 0 && this.sellStops.n === 0 && queue.length === 0) return;
    this.collectTriggers();
    let head = 0;
    while (head < queue.length) {
      const s = queue[head++] as number;
      this.execute(s);
      this.collectTriggers();
    }
    queue.length = 0;
  }

  // -------------------------------------------------------------------------------------------------
  // Levels and queues
  // -------------------------------------------------------------------------------------------------

  /** Append slot `s` to the queue at `price` of `index`; returns the level's new total. */
  private link(s: number, index: LevelIndex, price: number): number {
    let level = index.find(price);
    if (level === -1) {
      level = this.allocLevel(price);
      index.insert(price, level);
    }
    const tail = this.lTail[level] as number;
    this.oPrev[s] = tail;
    this.oNext[s] = -1;
    if (tail === -1) this.lHead[level] = s;
    else this.oNext[tail] = s;
    this.lTail[level] = s;
    this.oLevel[s] = level;
    const total = (this.lQty[level] as number) + (this.oLeaves[s] as number);
    this.lQty[level] = total;
    this._open++;
    return total;
  }

  /** Remove the head `m` of `level` (whose successor is `next`) during matching. */
  private popHead(level: number, m: number, next: number): void {
    this.lHead[level] = next;
    if (next === -1) this.lTail[level] = -1;
    else this.oPrev[next] = -1;
    if ((this.oExp[m] as number) !== 0) this.heapRemove(m);
    this.open.remove(m, this.oHash[m] as number);
    this._open--;
  }

  /**
   * Take an open order out of its book or stop book (with its book event, for the book) and out of the
   * expiry heap. The slot stays allocated.
   */
  private removeOpen(s: number): void {
    const level = this.oLevel[s] as number;
    const prev = this.oPrev[s] as number;
    const next = this.oNext[s] as number;
    if (prev === -1) this.lHead[level] = next;
    else this.oNext[prev] = next;
    if (next === -1) this.lTail[level] = prev;
    else this.oPrev[next] = prev;
    const total = (this.lQty[level] as number) - (this.oLeaves[s] as number);
    this.lQty[level] = total;
    const price = this.lPrice[level] as number;
    const side = this.oSide[s] as number;
    const inBook = this.oLoc[s] === LOC_BOOK;
    if (this.lHead[level] === -1) {
      const index = inBook
        ? side === BUY
          ? this.bids
          : this.asks
        : side === BUY
          ? this.buyStops
          : this.sellStops;
      index.remove(price);
      this.freeLevelId(level);
    }
    if (inBook) this.emitBook(side, price, total);
    if ((this.oExp[s] as number) !== 0) this.heapRemove(s);
    this.open.remove(s, this.oHash[s] as number);
    this._open--;
    this.oLoc[s] = LOC_ACTIVE;
  }

  private levelsOf(index: LevelIndex, count: number): PriceLevel[] {
    const levels: PriceLevel[] = [];
    const n = Math.min(index.n, Math.max(0, Math.floor(count)));
    for (let i = 0; i < n; i++) {
      const level = index.levelFromBest(i);
      levels.push([this.lPrice[level] as number, this.lQty[level] as number]);
    }
    return levels;
  }

  private allocLevel(price: number): number {
    let level = this.freeLevel;
    if (level !== -1) {
      this.freeLevel = this.lHead[level] as number;
    } else {
      if (this.unusedLevel === this.lCap) {
        const size = this.lCap * 2;
        this.lPrice = growF64(this.lPrice, size);
        this.lQty = growF64(this.lQty, size);
        this.lHead = growI32(this.lHead, size);
        this.lTail = growI32(this.lTail, size);
        this.lCap = size;
      }
      level = this.unusedLevel++;
    }
    this.lPrice[level] = price;
    this.lQty[level] = 0;
    this.lHead[level] = -1;
    this.lTail[level] = -1;
    return level;
  }

  private freeLevelId(level: number): void {
    this.lHead[level] = this.freeLevel;
    this.freeLevel = level;
  }

  // -------------------------------------------------------------------------------------------------
  // Slots, ids, closed-id memory
  // -------------------------------------------------------------------------------------------------

  private allocSlot(): number {
    const s = this.freeSlot;
    if (s !== -1) {
      this.freeSlot = this.oNext[s] as number;
      return s;
    }
    if (this.unusedSlot === this.cap) this.growSlots();
    return this.unusedSlot++;
  }

  private growSlots(): void {
    const size = this.cap * 2;
    this.oId.length = size;
    this.oId.fill("", this.cap);
    this.oAcct.length = size;
    this.oAcct.fill("", this.cap);
    this.oLeaves = growF64(this.oLeaves, size);
    this.oFilled = growF64(this.oFilled, size);
    this.oPrice = growF64(this.oPrice, size);
    this.oStop = growF64(this.oStop, size);
    this.oExp = growF64(this.oExp, size);
    this.oPrio = growF64(this.oPrio, size);
    this.oNext = growI32(this.oNext, size);
    this.oPrev = growI32(this.oPrev, size);
    this.oLevel = growI32(this.oLevel, size);
    this.oHeap = growI32(this.oHeap, size);
    this.oHash = growI32(this.oHash, size);
    this.oSide = growU8(this.oSide, size);
    this.oType = growU8(this.oType, size);
    this.oTif = growU8(this.oTif, size);
    this.oPost = growU8(this.oPost, size);
    this.oStp = growU8(this.oStp, size);
    this.oTrig = growU8(this.oTrig, size);
    this.oLoc = growU8(this.oLoc, size);
    this.cap = size;
  }

  /** Close the order in slot `s` (already out of every queue) and recycle the slot. */
  private close(s: number, status: number): void {
    this.closeId(this.oId[s] as string, this.oHash[s] as number, status);
    this.oLoc[s] = LOC_FREE;
    this.oId[s] = "";
    this.oAcct[s] = "";
    this.oNext[s] = this.freeSlot;
    this.freeSlot = s;
  }

  /** Remember `id` (hash `h`, no longer in the open index) as recently closed. */
  private closeId(id: string, h: number, status: number): void {
    let cur = this.closedCur;
    if (cur === null) return;
    if (cur.size === cur.capacity) {
      const recycled = this.closedPrev as ClosedIdSet;
      recycled.clear();
      this.closedPrev = cur;
      this.closedCur = recycled;
      cur = recycled;
    }
    cur.add(id, h, status);
  }

  /** Closed status code of a recently closed id, or -1. */
  private closedStatusOf(id: string, h: number): number {
    const cur = this.closedCur;
    if (cur === null) return -1;
    let e = cur.find(id, h);
    if (e !== -1) return cur.statuses[e] as number;
    const prev = this.closedPrev as ClosedIdSet;
    e = prev.find(id, h);
    return e === -1 ? -1 : (prev.statuses[e] as number);
  }

  /** Is `id` open or recently closed? */
  private isKnownId(id: string, h: number): boolean {
    return this.open.find(id, h) !== -1 || this.closedStatusOf(id, h) !== -1;
  }

  // -------------------------------------------------------------------------------------------------
  // Expiry heap, keyed by (expiresAt, priority stamp)
  // -------------------------------------------------------------------------------------------------

  private heapLess(a: number, b: number): boolean {
    const ea = this.oExp[a] as number;
    const eb = this.oExp[b] as number;
    return ea < eb || (ea === eb && (this.oPrio[a] as number) < (this.oPrio[b] as number));
  }

  private heapPush(s: number): void {
    if (this.heapN === this.heap.length) this.heap = growI32(this.heap, this.heap.length * 2);
    this.heap[this.heapN] = s;
    this.oHeap[s] = this.heapN;
    this.heapN++;
    this.siftUp(this.heapN - 1);
  }

  private heapRemove(s: number): void {
    const i = this.oHeap[s] as number;
    const lastIndex = --this.heapN;
    if (i !== lastIndex) {
      const moved = this.heap[lastIndex] as number;
      this.heap[i] = moved;
      this.oHeap[moved] = i;
      this.siftDown(i);
      this.siftUp(this.oHeap[moved] as number);
    }
    this.oHeap[s] = -1;
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const s = heap[i] as number;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as number;
      if (!this.heapLess(s, p)) break;
      heap[i] = p;
      this.oHeap[p] = i;
      i = parent;
    }
    heap[i] = s;
    this.oHeap[s] = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = this.heapN;
    const s = heap[i] as number;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && this.heapLess(heap[right] as number, heap[child] as number)) child = right;
      const c = heap[child] as number;
      if (!this.heapLess(c, s)) break;
      heap[i] = c;
      this.oHeap[c] = i;
      i = child;
    }
    heap[i] = s;
    this.oHeap[s] = i;
  }

  // -------------------------------------------------------------------------------------------------
  // Events
  // -------------------------------------------------------------------------------------------------

  private reject(
    command: EngineCommand["kind"] | "unknown",
    reason: RejectReason,
    orderId: unknown,
    newOrderId: unknown,
    account: unknown,
  ): void {
    this.out.push({
      type: "rejected",
      seq: ++this._seq,
      commandSeq: this._commandSeq,
      ts: this.now,
      command,
      reason,
      orderId: typeof orderId === "string" ? orderId : undefined,
      newOrderId: typeof newOrderId === "string" ? newOrderId : undefined,
      account: typeof account === "string" ? account : undefined,
    });
  }

  private emitCanceled(s: number, reason: CancelReason): void {
    this.out.push({
      type: "canceled",
      seq: ++this._seq,
      commandSeq: this._commandSeq,
      ts: this.now,
      orderId: this.oId[s] as string,
      account: this.oAcct[s] as string,
      side: SIDE_NAMES[this.oSide[s] as number] as Side,
      reason,
      canceledQty: this.oLeaves[s] as number,
      filledQty: this.oFilled[s] as number,
    });
  }

  private emitBook(side: number, price: number, qty: number): void {
    this.out.push({
      type: "book",
      seq: ++this._seq,
      commandSeq: this._commandSeq,
      ts: this.now,
      bookSeq: ++this._bookSeq,
      side: SIDE_NAMES[side] as Side,
      price,
      qty,
    });
  }

  // -------------------------------------------------------------------------------------------------
  // Views and snapshots
  // -------------------------------------------------------------------------------------------------

  private viewOf(s: number): OrderView {
    const type = this.oType[s] as number;
    const limit = this.oPrice[s] as number;
    const stop = this.oStop[s] as number;
    const exp = this.oExp[s] as number;
    const filled = this.oFilled[s] as number;
    const view: OrderView = {
      orderId: this.oId[s] as string,
      account: this.oAcct[s] as string,
      side: SIDE_NAMES[this.oSide[s] as number] as Side,
      orderType: TYPE_NAMES[type] as OrderType,
      tif: TIF_NAMES[this.oTif[s] as number] as TimeInForce,
      leavesQty: this.oLeaves[s] as number,
      filledQty: filled,
      postOnly: this.oPost[s] === 1,
      stp: STP_NAMES[this.oStp[s] as number] as SelfTradePrevention,
      triggered: this.oTrig[s] === 1,
      status: this.oLoc[s] === LOC_STOPS ? "pending_trigger" : filled > 0 ? "partially_filled" : "new",
    };
    if (limit !== 0) view.limitPrice = limit;
    if (stop !== 0) view.stopPrice = stop;
    if (exp !== 0) view.expiresAt = exp;
    return view;
  }

  private snapshotSide(index: LevelIndex): SnapshotOrder[] {
    const orders: SnapshotOrder[] = [];
    for (let i = 0; i < index.n; i++) {
      for (let s = this.lHead[index.levelFromBest(i)] as number; s !== -1; s = this.oNext[s] as number) {
        const limit = this.oPrice[s] as number;
        const stop = this.oStop[s] as number;
        const exp = this.oExp[s] as number;
        orders.push({
          id: this.oId[s] as string,
          account: this.oAcct[s] as string,
          side: SIDE_NAMES[this.oSide[s] as number] as Side,
          type: TYPE_NAMES[this.oType[s] as number] as OrderType,
          tif: TIF_NAMES[this.oTif[s] as number] as TimeInForce,
          leaves: this.oLeaves[s] as number,
          filled: this.oFilled[s] as number,
          limitPrice: limit === 0 ? null : limit,
          stopPrice: stop === 0 ? null : stop,
          postOnly: this.oPost[s] === 1,
          stp: STP_NAMES[this.oStp[s] as number] as SelfTradePrevention,
          expiresAt: exp === 0 ? null : exp,
          triggered: this.oTrig[s] === 1,
          prio: this.oPrio[s] as number,
        });
      }
    }
    return orders;
  }

  private restoreOrder(o: SnapshotOrder, loc: number): void {
    const s = this.allocSlot();
    const side = sideCode(o.side);
    this.oId[s] = o.id;
    this.oHash[s] = hashId(o.id);
    this.oAcct[s] = o.account;
    this.oLeaves[s] = o.leaves;
    this.oFilled[s] = o.filled;
    this.oPrice[s] = o.limitPrice ?? 0;
    this.oStop[s] = o.stopPrice ?? 0;
    this.oExp[s] = o.expiresAt ?? 0;
    this.oPrio[s] = o.prio;
    this.oSide[s] = side;
    this.oType[s] = typeCode(o.type);
    this.oTif[s] = tifCode(o.tif);
    this.oPost[s] = o.postOnly ? 1 : 0;
    this.oStp[s] = stpCode(o.stp);
    this.oTrig[s] = o.triggered ? 1 : 0;
    this.oLoc[s] = loc;
    if (loc === LOC_BOOK) this.link(s, side === BUY ? this.bids : this.asks, o.limitPrice ?? 0);
    else this.link(s, side === BUY ? this.buyStops : this.sellStops, o.stopPrice ?? 0);
    this.open.insert(s, this.oHash[s] as number);
    if (o.expiresAt !== null) this.heapPush(s);
  }
}
