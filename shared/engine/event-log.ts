/**
 * The engine's events as rows of typed arrays instead of objects: what `MatchingEngine.process` writes
 * when it is given an `EventLog` rather than an array.
 *
 * Why: building an event object per fill, book change and acknowledgement was most of what the engine
 * allocated (~300 of ~420 bytes per command of the benchmark's mix). That allocation streams the young
 * generation through the CPU's caches and evicts the engine's own id table and order records, so on a
 * machine whose cache misses are slow it cost more than the matching itself. A log is filled in place and
 * reused batch after batch: writing an event stores numbers and references to strings that already exist
 * (order ids and accounts from the commands, enumeration names), and allocates nothing.
 *
 * A consumer reads the rows it needs (`type`, the typed getters) and turns into objects only the events
 * it keeps (`event(i)`, equal field for field, `undefined` fields included, to what the engine builds
 * for an array). A log holds the events of the commands processed into it since its last `clear()`;
 * row indexes are positions in that sequence.
 */
import type {
  CancelReason,
  CommandKind,
  EngineEvent,
  EngineEventType,
  FillStatus,
  OrderType,
  RejectReason,
  SelfTradePrevention,
  Side,
  TimeInForce,
} from "./types.ts";
// Type only: wire.ts takes the event kinds from here.
import type { WireWriter } from "./wire.ts";

// Event kinds: also the codes of the wire format (wire.ts), which imports them from here.
export const K_ACCEPTED = 0;
export const K_REJECTED = 1;
export const K_FILL = 2;
export const K_CANCELED = 3;
export const K_EXPIRED = 4;
export const K_REPLACED = 5;
export const K_TRIGGERED = 6;
export const K_BOOK = 7;
export const K_TRADING_STATUS = 8;
export const K_REFERENCE_PRICE = 9;

const TYPES: readonly EngineEventType[] = [
  "accepted",
  "rejected",
  "fill",
  "canceled",
  "expired",
  "replaced",
  "triggered",
  "book",
  "trading_status",
  "reference_price",
];

/** Numbers per row: seq, commandSeq, ts and up to 6 of the event's own (a replace has the most). */
const NUMS = 9;
/** Strings per row (a fill has the most: two ids, two accounts, the taker's side, two statuses). */
const STRS = 7;
// Number slots shared by every row.
const N_SEQ = 0;
const N_COMMAND_SEQ = 1;
const N_TS = 2;
// The event's own numbers start here.
const N_A = 3;
const N_B = 4;
const N_C = 5;
const N_D = 6;
const N_E = 7;
const N_F = 8;

/**
 * A number read back from the rows, as a small integer when it is one. Why: a value loaded from a
 * `Float64Array` is a double, and an object field first given a double holds every later value as a
 * separate heap number (an allocation per field, and a pointer chase per read for every consumer), where
 * the engine's own counters and quantities used to be stored as small integers in the object itself.
 */
function int(x: number): number {
  const i = x | 0;
  return i === x ? i : x;
}

/** An optional number: 0 (never a valid price or time) stands for absent. */
function opt(x: number): number | undefined {
  return x === 0 ? undefined : int(x);
}

export class EventLog {
  private kinds: Uint8Array;
  private nums: Float64Array;
  private strs: (string | undefined)[];
  private rows = 0;

  constructor(capacity = 256) {
    const cap = Number.isFinite(capacity) ? Math.max(16, Math.floor(capacity)) : 256;
    this.kinds = new Uint8Array(cap);
    this.nums = new Float64Array(cap * NUMS);
    this.strs = new Array<string | undefined>(cap * STRS).fill(undefined);
  }

  /** Rows it holds before it has to grow. */
  get capacity(): number {
    return this.kinds.length;
  }

  /** Rows written since the last `clear()`. */
  get length(): number {
    return this.rows;
  }

  /**
   * Forget every row (the strings they referenced stay reachable until overwritten: at most a few
   * thousand references to ids the commands brought).
   */
  clear(): void {
    this.rows = 0;
  }

  // -------------------------------------------------------------------------------------------------
  // Reading
  // -------------------------------------------------------------------------------------------------

  type(i: number): EngineEventType {
    return TYPES[this.kindAt(i)] as EngineEventType;
  }
  seq(i: number): number {
    return this.num(i, N_SEQ);
  }
  commandSeq(i: number): number {
    return this.num(i, N_COMMAND_SEQ);
  }
  ts(i: number): number {
    return this.num(i, N_TS);
  }

  /** A `book` row's side (undefined for other rows). */
  bookSide(i: number): Side | undefined {
    return this.kindAt(i) === K_BOOK ? (this.strs[i * STRS] as Side) : undefined;
  }
  /** A `fill` row's taker side (undefined for other rows). */
  takerSide(i: number): Side | undefined {
    return this.kindAt(i) === K_FILL ? (this.strs[i * STRS + 4] as Side) : undefined;
  }
  /** A `fill` row's price, or a `book` row's level price (NaN for other rows). */
  price(i: number): number {
    const kind = this.kindAt(i);
    return kind === K_FILL || kind === K_BOOK ? (this.nums[i * NUMS + N_B] as number) : Number.NaN;
  }
  /** A `fill` row's quantity, or a `book` row's new level quantity (NaN for other rows). */
  qty(i: number): number {
    const kind = this.kindAt(i);
    return kind === K_FILL || kind === K_BOOK ? (this.nums[i * NUMS + N_C] as number) : Number.NaN;
  }

  /** The event of row `i` as the object the engine gives an array consumer. */
  event(i: number): EngineEvent {
    const kind = this.kindAt(i);
    const n = i * NUMS;
    const s = i * STRS;
    const nums = this.nums;
    const strs = this.strs;
    const seq = int(nums[n + N_SEQ] as number);
    const commandSeq = int(nums[n + N_COMMAND_SEQ] as number);
    const ts = nums[n + N_TS] as number;
    switch (kind) {
      case K_ACCEPTED:
        return {
          type: "accepted",
          seq,
          commandSeq,
          ts,
          orderId: strs[s] as string,
          account: strs[s + 1] as string,
          side: strs[s + 2] as Side,
          orderType: strs[s + 3] as OrderType,
          tif: strs[s + 4] as TimeInForce,
          qty: int(nums[n + N_A] as number),
          limitPrice: opt(nums[n + N_B] as number),
          stopPrice: opt(nums[n + N_C] as number),
          postOnly: nums[n + N_D] === 1,
          stp: strs[s + 5] as SelfTradePrevention,
          expiresAt: opt(nums[n + N_E] as number),
        };
      case K_REJECTED:
        return {
          type: "rejected",
          seq,
          commandSeq,
          ts,
          command: strs[s] as CommandKind | "unknown",
          reason: strs[s + 1] as RejectReason,
          orderId: strs[s + 2],
          newOrderId: strs[s + 3],
          account: strs[s + 4],
        };
      case K_FILL: {
        const takerLeavesQty = int(nums[n + N_E] as number);
        const makerLeavesQty = int(nums[n + N_F] as number);
        return {
          type: "fill",
          seq,
          commandSeq,
          ts,
          fillId: int(nums[n + N_A] as number),
          price: int(nums[n + N_B] as number),
          qty: int(nums[n + N_C] as number),
          takerOrderId: strs[s] as string,
          makerOrderId: strs[s + 1] as string,
          takerAccount: strs[s + 2] as string,
          makerAccount: strs[s + 3] as string,
          takerSide: strs[s + 4] as Side,
          takerLeavesQty,
          makerLeavesQty,
          takerStatus: strs[s + 5] as FillStatus,
          makerStatus: strs[s + 6] as FillStatus,
        };
      }
      case K_CANCELED:
        return {
          type: "canceled",
          seq,
          commandSeq,
          ts,
          orderId: strs[s] as string,
          account: strs[s + 1] as string,
          side: strs[s + 2] as Side,
          reason: strs[s + 3] as CancelReason,
          canceledQty: int(nums[n + N_A] as number),
          filledQty: int(nums[n + N_B] as number),
        };
      case K_EXPIRED:
        return {
          type: "expired",
          seq,
          commandSeq,
          ts,
          orderId: strs[s] as string,
          account: strs[s + 1] as string,
          side: strs[s + 2] as Side,
          expiredQty: int(nums[n + N_A] as number),
          filledQty: int(nums[n + N_B] as number),
        };
      case K_REPLACED:
        return {
          type: "replaced",
          seq,
          commandSeq,
          ts,
          orderId: strs[s] as string,
          newOrderId: strs[s + 1] as string,
          account: strs[s + 2] as string,
          side: strs[s + 3] as Side,
          qty: int(nums[n + N_A] as number),
          limitPrice: opt(nums[n + N_B] as number),
          stopPrice: opt(nums[n + N_C] as number),
          replacedQty: int(nums[n + N_D] as number),
          filledQty: int(nums[n + N_E] as number),
          priorityKept: nums[n + N_F] === 1,
        };
      case K_TRIGGERED:
        return {
          type: "triggered",
          seq,
          commandSeq,
          ts,
          orderId: strs[s] as string,
          account: strs[s + 1] as string,
          side: strs[s + 2] as Side,
          orderType: strs[s + 3] as OrderType,
          stopPrice: int(nums[n + N_A] as number),
          lastTradePrice: int(nums[n + N_B] as number),
        };
      case K_BOOK:
        return {
          type: "book",
          seq,
          commandSeq,
          ts,
          bookSeq: int(nums[n + N_A] as number),
          side: strs[s] as Side,
          price: int(nums[n + N_B] as number),
          qty: int(nums[n + N_C] as number),
        };
      case K_TRADING_STATUS:
        return { type: "trading_status", seq, commandSeq, ts, halted: nums[n + N_A] === 1 };
      default:
        return { type: "reference_price", seq, commandSeq, ts, price: int(nums[n + N_A] as number) };
    }
  }

  /**
   * Write row `i` to a wire pack exactly as `packEvents` writes the same event as an object (wire.ts:
   * the same fields in the same order), so a batch's answer is packed without building its events.
   */
  packRow(i: number, w: WireWriter): void {
    const kind = this.kindAt(i);
    const n = i * NUMS;
    const s = i * STRS;
    const nums = this.nums;
    const strs = this.strs;
    w.num(kind);
    w.num(nums[n + N_SEQ] as number);
    w.num(nums[n + N_COMMAND_SEQ] as number);
    w.num(nums[n + N_TS] as number);
    switch (kind) {
      case K_ACCEPTED:
        w.id(strs[s]);
        w.word(strs[s + 1]);
        w.word(strs[s + 2]);
        w.word(strs[s + 3]);
        w.word(strs[s + 4]);
        w.num(nums[n + N_A] as number);
        w.opt(opt(nums[n + N_B] as number));
        w.opt(opt(nums[n + N_C] as number));
        w.bool(nums[n + N_D] === 1);
        w.word(strs[s + 5]);
        w.opt(opt(nums[n + N_E] as number));
        return;
      case K_REJECTED:
        w.word(strs[s]);
        w.word(strs[s + 1]);
        w.id(strs[s + 2]);
        w.id(strs[s + 3]);
        w.word(strs[s + 4]);
        return;
      case K_FILL:
        w.num(nums[n + N_A] as number);
        w.num(nums[n + N_B] as number);
        w.num(nums[n + N_C] as number);
        w.id(strs[s]);
        w.id(strs[s + 1]);
        w.word(strs[s + 2]);
        w.word(strs[s + 3]);
        w.word(strs[s + 4]);
        w.num(nums[n + N_E] as number);
        w.num(nums[n + N_F] as number);
        w.word(strs[s + 5]);
        w.word(strs[s + 6]);
        return;
      case K_CANCELED:
        w.id(strs[s]);
        w.word(strs[s + 1]);
        w.word(strs[s + 2]);
        w.word(strs[s + 3]);
        w.num(nums[n + N_A] as number);
        w.num(nums[n + N_B] as number);
        return;
      case K_EXPIRED:
        w.id(strs[s]);
        w.word(strs[s + 1]);
        w.word(strs[s + 2]);
        w.num(nums[n + N_A] as number);
        w.num(nums[n + N_B] as number);
        return;
      case K_REPLACED:
        w.id(strs[s]);
        w.id(strs[s + 1]);
        w.word(strs[s + 2]);
        w.word(strs[s + 3]);
        w.num(nums[n + N_A] as number);
        w.opt(opt(nums[n + N_B] as number));
        w.opt(opt(nums[n + N_C] as number));
        w.num(nums[n + N_D] as number);
        w.num(nums[n + N_E] as number);
        w.bool(nums[n + N_F] === 1);
        return;
      case K_TRIGGERED:
        w.id(strs[s]);
        w.word(strs[s + 1]);
        w.word(strs[s + 2]);
        w.word(strs[s + 3]);
        w.num(nums[n + N_A] as number);
        w.num(nums[n + N_B] as number);
        return;
      case K_BOOK:
        w.num(nums[n + N_A] as number);
        w.word(strs[s]);
        w.num(nums[n + N_B] as number);
        w.num(nums[n + N_C] as number);
        return;
      case K_TRADING_STATUS:
        w.bool(nums[n + N_A] === 1);
        return;
      default:
        w.num(nums[n + N_A] as number);
    }
  }

  /** Append a copy of row `i` of `src` (same event, no object built). */
  copyRow(src: EventLog, i: number): void {
    const kind = src.kindAt(i);
    const r = this.rows;
    if (r === this.kinds.length) this.grow();
    this.rows = r + 1;
    this.kinds[r] = kind;
    // Element by element: a `subarray` view per row would be an allocation per row.
    for (let k = 0; k < NUMS; k++) this.nums[r * NUMS + k] = src.nums[i * NUMS + k] as number;
    for (let k = 0; k < STRS; k++) this.strs[r * STRS + k] = src.strs[i * STRS + k];
  }

  /** Append the events of rows [from, to) to `out` as objects. */
  appendTo(out: EngineEvent[], from = 0, to = this.rows): void {
    for (let i = from; i < to; i++) out.push(this.event(i));
  }

  /** Rows [from, to) as objects. */
  events(from = 0, to = this.rows): EngineEvent[] {
    const out: EngineEvent[] = [];
    this.appendTo(out, from, to);
    return out;
  }

  // -------------------------------------------------------------------------------------------------
  // Writing (the engine). Optional numbers are passed as 0 when absent.
  // -------------------------------------------------------------------------------------------------

  accepted(
    seq: number,
    commandSeq: number,
    ts: number,
    orderId: string,
    account: string,
    side: Side,
    orderType: OrderType,
    tif: TimeInForce,
    qty: number,
    limitPrice: number,
    stopPrice: number,
    postOnly: boolean,
    stp: SelfTradePrevention,
    expiresAt: number,
  ): void {
    const i = this.row(K_ACCEPTED, seq, commandSeq, ts);
    const n = i * NUMS;
    const s = i * STRS;
    this.nums[n + N_A] = qty;
    this.nums[n + N_B] = limitPrice;
    this.nums[n + N_C] = stopPrice;
    this.nums[n + N_D] = postOnly ? 1 : 0;
    this.nums[n + N_E] = expiresAt;
    this.strs[s] = orderId;
    this.strs[s + 1] = account;
    this.strs[s + 2] = side;
    this.strs[s + 3] = orderType;
    this.strs[s + 4] = tif;
    this.strs[s + 5] = stp;
  }

  rejected(
    seq: number,
    commandSeq: number,
    ts: number,
    command: CommandKind | "unknown",
    reason: RejectReason,
    orderId: string | undefined,
    newOrderId: string | undefined,
    account: string | undefined,
  ): void {
    const s = this.row(K_REJECTED, seq, commandSeq, ts) * STRS;
    this.strs[s] = command;
    this.strs[s + 1] = reason;
    this.strs[s + 2] = orderId;
    this.strs[s + 3] = newOrderId;
    this.strs[s + 4] = account;
  }

  fill(
    seq: number,
    commandSeq: number,
    ts: number,
    fillId: number,
    price: number,
    qty: number,
    takerOrderId: string,
    makerOrderId: string,
    takerAccount: string,
    makerAccount: string,
    takerSide: Side,
    takerLeavesQty: number,
    makerLeavesQty: number,
    takerStatus: FillStatus,
    makerStatus: FillStatus,
  ): void {
    const i = this.row(K_FILL, seq, commandSeq, ts);
    const n = i * NUMS;
    const s = i * STRS;
    this.nums[n + N_A] = fillId;
    this.nums[n + N_B] = price;
    this.nums[n + N_C] = qty;
    this.nums[n + N_E] = takerLeavesQty;
    this.nums[n + N_F] = makerLeavesQty;
    this.strs[s] = takerOrderId;
    this.strs[s + 1] = makerOrderId;
    this.strs[s + 2] = takerAccount;
    this.strs[s + 3] = makerAccount;
    this.strs[s + 4] = takerSide;
    this.strs[s + 5] = takerStatus;
    this.strs[s + 6] = makerStatus;
  }

  canceled(
    seq: number,
    commandSeq: number,
    ts: number,
    orderId: string,
    account: string,
    side: Side,
    reason: CancelReason,
    canceledQty: number,
    filledQty: number,
  ): void {
    const i = this.row(K_CANCELED, seq, commandSeq, ts);
    const n = i * NUMS;
    const s = i * STRS;
    this.nums[n + N_A] = canceledQty;
    this.nums[n + N_B] = filledQty;
    this.strs[s] = orderId;
    this.strs[s + 1] = account;
    this.strs[s + 2] = side;
    this.strs[s + 3] = reason;
  }

  expired(
    seq: number,
    commandSeq: number,
    ts: number,
    orderId: string,
    account: string,
    side: Side,
    expiredQty: number,
    filledQty: number,
  ): void {
    const i = this.row(K_EXPIRED, seq, commandSeq, ts);
    const n = i * NUMS;
    const s = i * STRS;
    this.nums[n + N_A] = expiredQty;
    this.nums[n + N_B] = filledQty;
    this.strs[s] = orderId;
    this.strs[s + 1] = account;
    this.strs[s + 2] = side;
  }

  replaced(
    seq: number,
    commandSeq: number,
    ts: number,
    orderId: string,
    newOrderId: string,
    account: string,
    side: Side,
    qty: number,
    limitPrice: number,
    stopPrice: number,
    replacedQty: number,
    filledQty: number,
    priorityKept: boolean,
  ): void {
    const i = this.row(K_REPLACED, seq, commandSeq, ts);
    const n = i * NUMS;
    const s = i * STRS;
    this.nums[n + N_A] = qty;
    this.nums[n + N_B] = limitPrice;
    this.nums[n + N_C] = stopPrice;
    this.nums[n + N_D] = replacedQty;
    this.nums[n + N_E] = filledQty;
    this.nums[n + N_F] = priorityKept ? 1 : 0;
    this.strs[s] = orderId;
    this.strs[s + 1] = newOrderId;
    this.strs[s + 2] = account;
    this.strs[s + 3] = side;
  }

  triggered(
    seq: number,
    commandSeq: number,
    ts: number,
    orderId: string,
    account: string,
    side: Side,
    orderType: OrderType,
    stopPrice: number,
    lastTradePrice: number,
  ): void {
    const i = this.row(K_TRIGGERED, seq, commandSeq, ts);
    const n = i * NUMS;
    const s = i * STRS;
    this.nums[n + N_A] = stopPrice;
    this.nums[n + N_B] = lastTradePrice;
    this.strs[s] = orderId;
    this.strs[s + 1] = account;
    this.strs[s + 2] = side;
    this.strs[s + 3] = orderType;
  }

  book(
    seq: number,
    commandSeq: number,
    ts: number,
    bookSeq: number,
    side: Side,
    price: number,
    qty: number,
  ): void {
    const i = this.row(K_BOOK, seq, commandSeq, ts);
    const n = i * NUMS;
    this.nums[n + N_A] = bookSeq;
    this.nums[n + N_B] = price;
    this.nums[n + N_C] = qty;
    this.strs[i * STRS] = side;
  }

  tradingStatus(seq: number, commandSeq: number, ts: number, halted: boolean): void {
    const i = this.row(K_TRADING_STATUS, seq, commandSeq, ts);
    this.nums[i * NUMS + N_A] = halted ? 1 : 0;
  }

  referencePrice(seq: number, commandSeq: number, ts: number, price: number): void {
    const i = this.row(K_REFERENCE_PRICE, seq, commandSeq, ts);
    this.nums[i * NUMS + N_A] = price;
  }

  // -------------------------------------------------------------------------------------------------

  private kindAt(i: number): number {
    if (!(i >= 0 && i < this.rows)) throw new RangeError(`no event row ${i} (log holds ${this.rows})`);
    return this.kinds[i] as number;
  }

  private num(i: number, field: number): number {
    this.kindAt(i);
    return this.nums[i * NUMS + field] as number;
  }

  /** Start a row: its kind and the numbers every event has; returns its index. */
  private row(kind: number, seq: number, commandSeq: number, ts: number): number {
    const i = this.rows;
    if (i === this.kinds.length) this.grow();
    this.rows = i + 1;
    this.kinds[i] = kind;
    const n = i * NUMS;
    this.nums[n + N_SEQ] = seq;
    this.nums[n + N_COMMAND_SEQ] = commandSeq;
    this.nums[n + N_TS] = ts;
    return i;
  }

  private grow(): void {
    const cap = this.kinds.length * 2;
    const kinds = new Uint8Array(cap);
    kinds.set(this.kinds);
    const nums = new Float64Array(cap * NUMS);
    nums.set(this.nums);
    const strs = new Array<string | undefined>(cap * STRS).fill(undefined);
    for (let k = 0; k < this.strs.length; k++) strs[k] = this.strs[k];
    this.kinds = kinds;
    this.nums = nums;
    this.strs = strs;
  }
}
