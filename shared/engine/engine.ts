/**
 * The fast matching engine: one price-time priority order book per symbol.
 *
 * Layout (see docs/engine.md):
 * - Orders live in a pool of 64-byte records in one typed-array buffer (one cache line per order; `F_*`,
 *   `I_*`, `B_*` offsets), plus the id and account strings, recycled through a free list, so resting an
 *   order allocates nothing (its strings come with the command).
 * - Each price level is an intrusive doubly linked FIFO list of slots (`I_NEXT` / `I_PREV`), with its
 *   total.
 * - Levels of each side sit in a `LevelIndex` (sorted typed array, best level last).
 * - Untriggered stops use the same structures in two more sides (buy stops: lowest stop first; sell stops:
 *   highest first), so their FIFO order is their trigger order.
 * - Expiry (day / gtc with `expiresAt`) is an indexed binary heap keyed by (expiresAt, priority stamp).
 * - Order ids are hashed once per command (`hashIdSampled`, or `hashId` once ids collided there) and
 *   looked up in one typed-array hash table, `IdIndex`, that holds open ids (→ slot) and two generations
 *   of recently closed ids (→ status): closing a resting order turns its entry into a closed one in
 *   place, and when the current generation is full the previous one leaves the table in one pass.
 */

import { canonicalJson } from "./canonical.ts";
import { EventLog } from "./event-log.ts";
import { stateHashOf } from "./hash.ts";
import { type ClosedIdGeneration, HashStats, hashId, hashIdSampled, IdIndex } from "./id-index.ts";
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
/** Accepted and being executed (a taker, or a triggered stop waiting in the trigger queue); not indexed. */
const LOC_ACTIVE = 3;
/** Out of its queue and about to close, still indexed as open. */
const LOC_LEAVING = 4;

/** Order record layout (see `f64` / `i32` / `u8`). */
const RECORD_BYTES = 64;
const F_LEAVES = 0;
const F_FILLED = 1;
/** Limit price (0 = none). */
const F_PRICE = 2;
/** Stop price (0 = none). */
const F_STOP = 3;
/** Priority stamp: when the order joined its queue. */
const F_PRIO = 4;
const I_NEXT = 10;
const I_PREV = 11;
const I_LEVEL = 12;
/** hashId(oId[slot]). */
const I_HASH = 13;
const B_SIDE = 56;
const B_TYPE = 57;
const B_TIF = 58;
const B_POST = 59;
const B_STP = 60;
const B_TRIG = 61;
const B_LOC = 62;
/** 1 when the order has an expiresAt (and so sits in the expiry heap while open). */
const B_EXP = 63;

const CLOSED_STATUSES: readonly OrderStatus[] = ["filled", "canceled", "expired", "replaced"];
const C_FILLED = 0;
const C_CANCELED = 1;
const C_EXPIRED = 2;
const C_REPLACED = 3;

const DEFAULT_CLOSED_MEMORY = 10_000;
/** `renewSlotStrings` runs every this many commands (a power of two)… */
const RENEW_EVERY = 4_096;
/** …while the pool has at most this many slots (larger arrays cost more to copy than they save). */
const RENEW_MAX_SLOTS = 16_384;
/**
 * Equal hashes of different ids tolerated before the engine gives up on sampled id hashes. Well-spread
 * 32-bit hashes produce about one per billion lookups; ids that differ only where the sampled hash does
 * not look produce one on almost every lookup.
 */
const FALSE_MATCH_LIMIT = 64;

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
  /** Rows of a command whose caller wants objects, turned into them once the command is done. */
  private readonly scratch = new EventLog(64);
  /** Where the command's events go: the caller's log, or `scratch` when the caller gave an array. */
  private log: EventLog = this.scratch;

  // Order pool (struct of arrays, indexed by slot).
  private cap: number;
  private oId: string[];
  private oAcct: string[];
  /**
   * One 64-byte record per slot in one buffer, seen through three views, so touching an order touches
   * one cache line instead of one per field: doubles `F_*` at `(slot << 3) + F_*`, int32 `I_*` at
   * `(slot << 4) + I_*`, bytes `B_*` at `(slot << 6) + B_*`.
   */
  private f64: Float64Array;
  private i32: Int32Array;
  private u8: Uint8Array;
  /** expiresAt (0 = none); read only for orders whose `B_EXP` flag is set. */
  private oExp: Float64Array;
  /** Position in the expiry heap. */
  private oHeap: Int32Array;
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

  /** Open order ids (→ slot, for orders in the book or a stop book) and recently closed ids (→ status). */
  private ids: IdIndex;
  /** False: ids are hashed with `hashIdSampled`; true (for good) once they collided there: `hashId`. */
  private fullIdHash = false;
  private readonly hashStats = new HashStats();

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
    const records = new ArrayBuffer(cap * RECORD_BYTES);
    this.f64 = new Float64Array(records);
    this.i32 = new Int32Array(records);
    this.u8 = new Uint8Array(records);
    this.oExp = new Float64Array(cap);
    this.oHeap = new Int32Array(cap);
    this.ids = new IdIndex(this.oId, cap, mem, this.hashStats);
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
   * Which id hash the indexes use: `sampled` (at most 16 characters of an id, 8 of a UUID) until ids
   * collide there, then `full` for good. Speed only, never results.
   * @internal
   */
  get idHashing(): "sampled" | "full" {
    return this.fullIdHash ? "full" : "sampled";
  }
  /**
   * Earliest `expiresAt` among open orders, or null: the time of the next `tick` that will expire
   * something (O(1), for scheduling an alarm).
   */
  get nextExpiryAt(): number | null {
    return this.heapN === 0 ? null : (this.oExp[this.heap[0] as number] as number);
  }

  /**
   * Apply one command and append its events to `out`: as objects to an array, or as rows to an
   * {@link EventLog} (no allocation; the consumer reads the rows it needs). Bad commands produce a
   * "rejected" event; this method does not throw on any input.
   */
  process(cmd: EngineCommand, out: EngineEvent[] | EventLog): void {
    if (out instanceof EventLog) {
      this.log = out;
      this.apply(cmd);
      return;
    }
    const scratch = this.scratch;
    scratch.clear();
    this.log = scratch;
    this.apply(cmd);
    scratch.appendTo(out);
  }

  private apply(cmd: EngineCommand): void {
    this._commandSeq++;
    if ((this._commandSeq & (RENEW_EVERY - 1)) === 0 && this.cap <= RENEW_MAX_SLOTS) this.renewSlotStrings();
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
          this.log.tradingStatus(++this._seq, this._commandSeq, this.now, this._halted);
        }
        break;
      case "setReferencePrice":
        this.setReferencePrice(cmd);
        break;
      default:
        this.reject("unknown", "invalid_command", undefined, undefined, undefined);
    }
    if (this.hashStats.falseMatches > FALSE_MATCH_LIMIT) this.onIdCollisions();
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
    const s = this.ids.findOpen(orderId, this.idHash(orderId));
    if (s === -1) return undefined;
    return this.viewOf(s);
  }

  /** Final status of a recently closed order (see `closedOrderMemory`), or undefined. */
  closedOrderStatus(orderId: string): OrderStatus | undefined {
    if (typeof orderId !== "string") return undefined;
    const status = this.closedStatusOf(orderId, this.idHash(orderId));
    return status === -1 ? undefined : CLOSED_STATUSES[status];
  }

  /** All open orders: bids, asks (best level first, queue order), then buy stops and sell stops. */
  openOrders(): OrderView[] {
    const views: OrderView[] = [];
    for (const index of [this.bids, this.asks, this.buyStops, this.sellStops]) {
      for (let i = 0; i < index.n; i++) {
        for (
          let s = this.lHead[index.levelFromBest(i)] as number;
          s !== -1;
          s = this.i32[(s << 4) + I_NEXT] as number
        ) {
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
    const closedList = (set: ClosedIdGeneration | undefined): [string, OrderStatus][] => {
      const list: [string, OrderStatus][] = [];
      for (let i = 0; set !== undefined && i < set.size; i++) {
        list.push([set.idAt(i), CLOSED_STATUSES[set.statuses[i] as number] as OrderStatus]);
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
      closedPrevious: closedList(this.closedCap === 0 ? undefined : this.ids.previous),
      closedCurrent: closedList(this.closedCap === 0 ? undefined : this.ids.current),
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
      engine.ids.addClosed(id, engine.idHash(id), CLOSED_STATUSES.indexOf(status), 0);
    }
    for (const [id, status] of current) {
      engine.ids.addClosed(id, engine.idHash(id), CLOSED_STATUSES.indexOf(status), 1);
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
    const h = this.idHash(cmd.orderId);
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
    this.i32[(s << 4) + I_HASH] = h;
    this.oAcct[s] = cmd.account;
    this.f64[(s << 3) + F_LEAVES] = cmd.qty;
    this.f64[(s << 3) + F_FILLED] = 0;
    this.f64[(s << 3) + F_PRICE] = limit;
    this.f64[(s << 3) + F_STOP] = stop;
    this.oExp[s] = exp;
    this.u8[(s << 6) + B_EXP] = exp === 0 ? 0 : 1;
    this.f64[(s << 3) + F_PRIO] = 0;
    this.u8[(s << 6) + B_SIDE] = side;
    this.u8[(s << 6) + B_TYPE] = type;
    this.u8[(s << 6) + B_TIF] = tif;
    this.u8[(s << 6) + B_POST] = postOnly ? 1 : 0;
    this.u8[(s << 6) + B_STP] = stp;
    this.u8[(s << 6) + B_TRIG] = 0;
    this.u8[(s << 6) + B_LOC] = LOC_ACTIVE;

    this.log.accepted(
      ++this._seq,
      this._commandSeq,
      this.now,
      cmd.orderId,
      cmd.account,
      cmd.side,
      cmd.type,
      cmd.tif,
      cmd.qty,
      limit,
      stop,
      postOnly,
      stpName,
      exp,
    );

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
    const h = this.idHash(cmd.orderId);
    const s = this.ids.findOpen(cmd.orderId, h);
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
    const h = this.idHash(cmd.orderId);
    const s = this.ids.findOpen(cmd.orderId, h);
    if (s === -1) {
      const reason = this.closedStatusOf(cmd.orderId, h) !== -1 ? "order_not_open" : "unknown_order";
      this.reject("replace", reason, cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    if (cmd.account !== undefined && cmd.account !== this.oAcct[s]) {
      this.reject("replace", "not_owner", cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    const newHash = this.idHash(cmd.newOrderId);
    if (cmd.newOrderId === cmd.orderId || this.isKnownId(cmd.newOrderId, newHash)) {
      this.reject("replace", "duplicate_order_id", cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    const type = this.u8[(s << 6) + B_TYPE] as number;
    const oldLimit = this.f64[(s << 3) + F_PRICE] as number;
    const oldStop = this.f64[(s << 3) + F_STOP] as number;
    const oldLeaves = this.f64[(s << 3) + F_LEAVES] as number;
    const triggered = this.u8[(s << 6) + B_TRIG] === 1;
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
    const side = this.u8[(s << 6) + B_SIDE] as number;
    const inBook = this.u8[(s << 6) + B_LOC] === LOC_BOOK;
    if (inBook && this.u8[(s << 6) + B_POST] === 1 && this.crosses(side, newLimit)) {
      this.reject("replace", "post_only_would_take", cmd.orderId, cmd.newOrderId, cmd.account);
      return;
    }
    const keep = newLimit === oldLimit && newStop === oldStop && newQty <= oldLeaves;
    const account = this.oAcct[s] as string;
    this.log.replaced(
      ++this._seq,
      this._commandSeq,
      this.now,
      cmd.orderId,
      cmd.newOrderId,
      account,
      SIDE_NAMES[side] as Side,
      newQty,
      newLimit,
      newStop,
      oldLeaves,
      this.f64[(s << 3) + F_FILLED] as number,
      keep,
    );
    if (keep) {
      this.ids.closeOpen(s, h, this.oId[s] as string, C_REPLACED);
      this.oId[s] = cmd.newOrderId;
      this.i32[(s << 4) + I_HASH] = newHash;
      this.f64[(s << 3) + F_FILLED] = 0;
      this.ids.insertOpen(s, newHash);
      if (newQty < oldLeaves) {
        const level = this.i32[(s << 4) + I_LEVEL] as number;
        this.f64[(s << 3) + F_LEAVES] = newQty;
        const total = (this.lQty[level] as number) - (oldLeaves - newQty);
        this.lQty[level] = total;
        if (inBook) this.emitBook(side, this.lPrice[level] as number, total);
      }
      return;
    }
    this.removeOpen(s);
    this.ids.closeOpen(s, h, this.oId[s] as string, C_REPLACED);
    this.oId[s] = cmd.newOrderId;
    this.i32[(s << 4) + I_HASH] = newHash;
    this.f64[(s << 3) + F_FILLED] = 0;
    this.f64[(s << 3) + F_LEAVES] = newQty;
    this.f64[(s << 3) + F_PRICE] = newLimit;
    this.f64[(s << 3) + F_STOP] = newStop;
    this.u8[(s << 6) + B_LOC] = LOC_ACTIVE;
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
    this.log.referencePrice(++this._seq, this._commandSeq, this.now, cmd.price);
  }

  /** Expire every open order with expiresAt ≤ now, earliest first (ties: queue priority stamp). */
  private expireUpTo(now: number): void {
    while (this.heapN > 0) {
      const s = this.heap[0] as number;
      if ((this.oExp[s] as number) > now) break;
      const leaves = this.f64[(s << 3) + F_LEAVES] as number;
      this.log.expired(
        ++this._seq,
        this._commandSeq,
        this.now,
        this.oId[s] as string,
        this.oAcct[s] as string,
        SIDE_NAMES[this.u8[(s << 6) + B_SIDE] as number] as Side,
        leaves,
        this.f64[(s << 3) + F_FILLED] as number,
      );
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
      for (let m = this.lHead[level] as number; m !== -1; m = this.i32[(m << 4) + I_NEXT] as number) {
        if (this.oAcct[m] === account) {
          if (stp === STP_OLDEST) continue;
          return false;
        }
        need -= this.f64[(m << 3) + F_LEAVES] as number;
        if (need <= 0) return true;
      }
    }
    return false;
  }

  /** Execute an accepted (or triggered) order as a taker, then rest or cancel what is left. */
  private execute(t: number): void {
    const type = this.u8[(t << 6) + B_TYPE] as number;
    const isMarket = type === T_MARKET || type === T_STOP;
    const limit = isMarket ? 0 : (this.f64[(t << 3) + F_PRICE] as number);
    const tif = this.u8[(t << 6) + B_TIF] as number;
    const side = this.u8[(t << 6) + B_SIDE] as number;
    if (
      tif === TIF_FOK &&
      !this.fokFillable(
        side,
        limit,
        this.f64[(t << 3) + F_LEAVES] as number,
        this.oAcct[t] as string,
        this.u8[(t << 6) + B_STP] as number,
      )
    ) {
      this.emitCanceled(t, "fok_unfillable");
      this.close(t, C_CANCELED);
      return;
    }
    const stoppedBySelfTrade = this.crosses(side, limit) ? this.match(t, side, limit) : false;
    if (this.f64[(t << 3) + F_LEAVES] === 0) {
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
    const stp = this.u8[(t << 6) + B_STP] as number;
    let leaves = this.f64[(t << 3) + F_LEAVES] as number;
    let takerFilled = this.f64[(t << 3) + F_FILLED] as number;
    let stopped = false;
    while (leaves > 0 && opp.n > 0) {
      const level = opp.levels[opp.n - 1] as number;
      const price = this.lPrice[level] as number;
      if (limit !== 0 && (side === BUY ? price > limit : price < limit)) break;
      let total = this.lQty[level] as number;
      let touched = false;
      let m = this.lHead[level] as number;
      while (m !== -1 && leaves > 0) {
        const next = this.i32[(m << 4) + I_NEXT] as number;
        if (this.oAcct[m] === takerAcct) {
          if (stp === STP_NEWEST) {
            stopped = true;
            break;
          }
          // cancel_oldest / cancel_both: the resting order goes.
          touched = true;
          total -= this.f64[(m << 3) + F_LEAVES] as number;
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
        const makerLeaves = this.f64[(m << 3) + F_LEAVES] as number;
        const qty = Math.min(leaves, makerLeaves);
        leaves -= qty;
        takerFilled += qty;
        const makerLeft = makerLeaves - qty;
        this.f64[(m << 3) + F_LEAVES] = makerLeft;
        this.f64[(m << 3) + F_FILLED] = (this.f64[(m << 3) + F_FILLED] as number) + qty;
        total -= qty;
        touched = true;
        this._last = price;
        this.log.fill(
          ++this._seq,
          this._commandSeq,
          this.now,
          ++this._fillId,
          price,
          qty,
          takerId,
          this.oId[m] as string,
          takerAcct,
          this.oAcct[m] as string,
          takerSide,
          leaves,
          makerLeft,
          leaves === 0 ? "filled" : "partially_filled",
          makerLeft === 0 ? "filled" : "partially_filled",
        );
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
    this.f64[(t << 3) + F_LEAVES] = leaves;
    this.f64[(t << 3) + F_FILLED] = takerFilled;
    return stopped;
  }

  private rest(s: number, side: number, price: number): void {
    this.f64[(s << 3) + F_PRIO] = ++this._prioSeq;
    const total = this.link(s, side === BUY ? this.bids : this.asks, price);
    this.u8[(s << 6) + B_LOC] = LOC_BOOK;
    this.ids.insertOpen(s, this.i32[(s << 4) + I_HASH] as number);
    if (this.u8[(s << 6) + B_EXP] !== 0) this.heapPush(s);
    this.emitBook(side, price, total);
  }

  /** Put an accepted stop in its stop book, or trigger it at once if the last trade already reached it. */
  private armStop(s: number): void {
    const side = this.u8[(s << 6) + B_SIDE] as number;
    const stop = this.f64[(s << 3) + F_STOP] as number;
    const last = this._last;
    if (last !== 0 && (side === BUY ? last >= stop : last <= stop)) {
      this.trigger(s);
      return;
    }
    this.f64[(s << 3) + F_PRIO] = ++this._prioSeq;
    this.link(s, side === BUY ? this.buyStops : this.sellStops, stop);
    this.u8[(s << 6) + B_LOC] = LOC_STOPS;
    this.ids.insertOpen(s, this.i32[(s << 4) + I_HASH] as number);
    if (this.u8[(s << 6) + B_EXP] !== 0) this.heapPush(s);
  }

  private trigger(s: number): void {
    this.u8[(s << 6) + B_TRIG] = 1;
    this.u8[(s << 6) + B_LOC] = LOC_ACTIVE;
    this.triggerQueue.push(s);
    this.log.triggered(
      ++this._seq,
      this._commandSeq,
      this.now,
      this.oId[s] as string,
      this.oAcct[s] as string,
      SIDE_NAMES[this.u8[(s << 6) + B_SIDE] as number] as Side,
      TYPE_NAMES[this.u8[(s << 6) + B_TYPE] as number] as OrderType,
      this.f64[(s << 3) + F_STOP] as number,
      this._last,
    );
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
      const next = this.i32[(s << 4) + I_NEXT] as number;
      if (this.u8[(s << 6) + B_EXP] !== 0) this.heapRemove(s);
      this.ids.removeOpen(s, this.i32[(s << 4) + I_HASH] as number);
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
    this.i32[(s << 4) + I_PREV] = tail;
    this.i32[(s << 4) + I_NEXT] = -1;
    if (tail === -1) this.lHead[level] = s;
    else this.i32[(tail << 4) + I_NEXT] = s;
    this.lTail[level] = s;
    this.i32[(s << 4) + I_LEVEL] = level;
    const total = (this.lQty[level] as number) + (this.f64[(s << 3) + F_LEAVES] as number);
    this.lQty[level] = total;
    this._open++;
    return total;
  }

  /**
   * Remove the head `m` of `level` (whose successor is `next`) during matching; `close` follows (it is
   * still indexed as open until then).
   */
  private popHead(level: number, m: number, next: number): void {
    this.lHead[level] = next;
    if (next === -1) this.lTail[level] = -1;
    else this.i32[(next << 4) + I_PREV] = -1;
    if (this.u8[(m << 6) + B_EXP] !== 0) this.heapRemove(m);
    this._open--;
    this.u8[(m << 6) + B_LOC] = LOC_LEAVING;
  }

  /**
   * Take an open order out of its book or stop book (with its book event, for the book) and out of the
   * expiry heap. The slot stays allocated and its id indexed as open until `close` (or, for a replace,
   * `IdIndex.closeOpen`).
   */
  private removeOpen(s: number): void {
    const level = this.i32[(s << 4) + I_LEVEL] as number;
    const prev = this.i32[(s << 4) + I_PREV] as number;
    const next = this.i32[(s << 4) + I_NEXT] as number;
    if (prev === -1) this.lHead[level] = next;
    else this.i32[(prev << 4) + I_NEXT] = next;
    if (next === -1) this.lTail[level] = prev;
    else this.i32[(next << 4) + I_PREV] = prev;
    const total = (this.lQty[level] as number) - (this.f64[(s << 3) + F_LEAVES] as number);
    this.lQty[level] = total;
    const price = this.lPrice[level] as number;
    const side = this.u8[(s << 6) + B_SIDE] as number;
    const inBook = this.u8[(s << 6) + B_LOC] === LOC_BOOK;
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
    if (this.u8[(s << 6) + B_EXP] !== 0) this.heapRemove(s);
    this._open--;
    this.u8[(s << 6) + B_LOC] = LOC_LEAVING;
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
      this.freeSlot = this.i32[(s << 4) + I_NEXT] as number;
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
    const records = new ArrayBuffer(size * RECORD_BYTES);
    const u8 = new Uint8Array(records);
    u8.set(this.u8);
    this.f64 = new Float64Array(records);
    this.i32 = new Int32Array(records);
    this.u8 = u8;
    this.oExp = growF64(this.oExp, size);
    this.oHeap = growI32(this.oHeap, size);
    this.cap = size;
  }

  /**
   * Close the order in slot `s` (already out of every queue), remember its id as closed and recycle the
   * slot. An order that rested is still indexed as open (loc `LOC_LEAVING`); takers and triggered stops
   * (`LOC_ACTIVE`) are not.
   */
  private close(s: number, status: number): void {
    const id = this.oId[s] as string;
    const h = this.i32[(s << 4) + I_HASH] as number;
    if (this.u8[(s << 6) + B_LOC] === LOC_ACTIVE) this.ids.addClosed(id, h, status);
    else this.ids.closeOpen(s, h, id, status);
    this.u8[(s << 6) + B_LOC] = LOC_FREE;
    this.oId[s] = "";
    this.oAcct[s] = "";
    this.i32[(s << 4) + I_NEXT] = this.freeSlot;
    this.freeSlot = s;
  }

  /**
   * Replace the slot → id and slot → account arrays by fresh copies. Why: resting or replacing an order
   * stores the command's id string, which is young, into `oId`; once V8 has promoted that array to the
   * old generation, every such store takes the write barrier's slow path (the slot is recorded for the
   * next scavenge), which cost ≈ 4 % of the bench mix. A fresh copy is young, so stores into it take
   * the fast path until it is promoted; copying ≤ 16,384 slots every 4,096 commands costs far less.
   */
  private renewSlotStrings(): void {
    this.oId = this.oId.slice();
    this.oAcct = this.oAcct.slice();
    this.ids.setKeys(this.oId);
  }

  /** Closed status code of a recently closed id, or -1. */
  private closedStatusOf(id: string, h: number): number {
    return this.ids.closedStatus(id, h);
  }

  private idHash(id: string): number {
    return this.fullIdHash ? hashId(id) : hashIdSampled(id);
  }

  /**
   * Too many equal hashes of different ids: switch for good from sampled hashes to hashing every
   * character, and index every id again (already hashing everything: nothing better to do, keep counting
   * from 0). Runs between commands, when no hash is held anywhere but in the indexes and `I_HASH`.
   */
  private onIdCollisions(): void {
    const stats = this.hashStats;
    stats.falseMatches = 0;
    if (this.fullIdHash) return;
    this.fullIdHash = true;
    for (let s = 0; s < this.unusedSlot; s++) {
      if (this.u8[(s << 6) + B_LOC] !== LOC_FREE) this.i32[(s << 4) + I_HASH] = hashId(this.oId[s] as string);
    }
    this.ids.rehash(hashId);
  }

  /** Is `id` open or recently closed? */
  private isKnownId(id: string, h: number): boolean {
    return this.ids.isKnown(id, h);
  }

  // -------------------------------------------------------------------------------------------------
  // Expiry heap, keyed by (expiresAt, priority stamp)
  // -------------------------------------------------------------------------------------------------

  private heapLess(a: number, b: number): boolean {
    const ea = this.oExp[a] as number;
    const eb = this.oExp[b] as number;
    return (
      ea < eb ||
      (ea === eb && (this.f64[(a << 3) + F_PRIO] as number) < (this.f64[(b << 3) + F_PRIO] as number))
    );
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
    this.log.rejected(
      ++this._seq,
      this._commandSeq,
      this.now,
      command,
      reason,
      typeof orderId === "string" ? orderId : undefined,
      typeof newOrderId === "string" ? newOrderId : undefined,
      typeof account === "string" ? account : undefined,
    );
  }

  private emitCanceled(s: number, reason: CancelReason): void {
    this.log.canceled(
      ++this._seq,
      this._commandSeq,
      this.now,
      this.oId[s] as string,
      this.oAcct[s] as string,
      SIDE_NAMES[this.u8[(s << 6) + B_SIDE] as number] as Side,
      reason,
      this.f64[(s << 3) + F_LEAVES] as number,
      this.f64[(s << 3) + F_FILLED] as number,
    );
  }

  private emitBook(side: number, price: number, qty: number): void {
    this.log.book(
      ++this._seq,
      this._commandSeq,
      this.now,
      ++this._bookSeq,
      SIDE_NAMES[side] as Side,
      price,
      qty,
    );
  }

  // -------------------------------------------------------------------------------------------------
  // Views and snapshots
  // -------------------------------------------------------------------------------------------------

  private viewOf(s: number): OrderView {
    const type = this.u8[(s << 6) + B_TYPE] as number;
    const limit = this.f64[(s << 3) + F_PRICE] as number;
    const stop = this.f64[(s << 3) + F_STOP] as number;
    const exp = this.oExp[s] as number;
    const filled = this.f64[(s << 3) + F_FILLED] as number;
    const view: OrderView = {
      orderId: this.oId[s] as string,
      account: this.oAcct[s] as string,
      side: SIDE_NAMES[this.u8[(s << 6) + B_SIDE] as number] as Side,
      orderType: TYPE_NAMES[type] as OrderType,
      tif: TIF_NAMES[this.u8[(s << 6) + B_TIF] as number] as TimeInForce,
      leavesQty: this.f64[(s << 3) + F_LEAVES] as number,
      filledQty: filled,
      postOnly: this.u8[(s << 6) + B_POST] === 1,
      stp: STP_NAMES[this.u8[(s << 6) + B_STP] as number] as SelfTradePrevention,
      triggered: this.u8[(s << 6) + B_TRIG] === 1,
      status:
        this.u8[(s << 6) + B_LOC] === LOC_STOPS ? "pending_trigger" : filled > 0 ? "partially_filled" : "new",
    };
    if (limit !== 0) view.limitPrice = limit;
    if (stop !== 0) view.stopPrice = stop;
    if (exp !== 0) view.expiresAt = exp;
    return view;
  }

  private snapshotSide(index: LevelIndex): SnapshotOrder[] {
    const orders: SnapshotOrder[] = [];
    for (let i = 0; i < index.n; i++) {
      for (
        let s = this.lHead[index.levelFromBest(i)] as number;
        s !== -1;
        s = this.i32[(s << 4) + I_NEXT] as number
      ) {
        const limit = this.f64[(s << 3) + F_PRICE] as number;
        const stop = this.f64[(s << 3) + F_STOP] as number;
        const exp = this.oExp[s] as number;
        orders.push({
          id: this.oId[s] as string,
          account: this.oAcct[s] as string,
          side: SIDE_NAMES[this.u8[(s << 6) + B_SIDE] as number] as Side,
          type: TYPE_NAMES[this.u8[(s << 6) + B_TYPE] as number] as OrderType,
          tif: TIF_NAMES[this.u8[(s << 6) + B_TIF] as number] as TimeInForce,
          leaves: this.f64[(s << 3) + F_LEAVES] as number,
          filled: this.f64[(s << 3) + F_FILLED] as number,
          limitPrice: limit === 0 ? null : limit,
          stopPrice: stop === 0 ? null : stop,
          postOnly: this.u8[(s << 6) + B_POST] === 1,
          stp: STP_NAMES[this.u8[(s << 6) + B_STP] as number] as SelfTradePrevention,
          expiresAt: exp === 0 ? null : exp,
          triggered: this.u8[(s << 6) + B_TRIG] === 1,
          prio: this.f64[(s << 3) + F_PRIO] as number,
        });
      }
    }
    return orders;
  }

  private restoreOrder(o: SnapshotOrder, loc: number): void {
    const s = this.allocSlot();
    const side = sideCode(o.side);
    this.oId[s] = o.id;
    this.i32[(s << 4) + I_HASH] = this.idHash(o.id);
    this.oAcct[s] = o.account;
    this.f64[(s << 3) + F_LEAVES] = o.leaves;
    this.f64[(s << 3) + F_FILLED] = o.filled;
    this.f64[(s << 3) + F_PRICE] = o.limitPrice ?? 0;
    this.f64[(s << 3) + F_STOP] = o.stopPrice ?? 0;
    this.oExp[s] = o.expiresAt ?? 0;
    this.u8[(s << 6) + B_EXP] = o.expiresAt === null ? 0 : 1;
    this.f64[(s << 3) + F_PRIO] = o.prio;
    this.u8[(s << 6) + B_SIDE] = side;
    this.u8[(s << 6) + B_TYPE] = typeCode(o.type);
    this.u8[(s << 6) + B_TIF] = tifCode(o.tif);
    this.u8[(s << 6) + B_POST] = o.postOnly ? 1 : 0;
    this.u8[(s << 6) + B_STP] = stpCode(o.stp);
    this.u8[(s << 6) + B_TRIG] = o.triggered ? 1 : 0;
    this.u8[(s << 6) + B_LOC] = loc;
    if (loc === LOC_BOOK) this.link(s, side === BUY ? this.bids : this.asks, o.limitPrice ?? 0);
    else this.link(s, side === BUY ? this.buyStops : this.sellStops, o.stopPrice ?? 0);
    this.ids.insertOpen(s, this.i32[(s << 4) + I_HASH] as number);
    if (o.expiresAt !== null) this.heapPush(s);
  }
}
