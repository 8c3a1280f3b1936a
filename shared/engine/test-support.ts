/**
 * Test support for the engine suites: random command recipes (fast-check) turned into commands, and an
 * invariant checker that watches the event stream of an engine.
 * @internal
 */
import fc from "fast-check";
import { MatchingEngine } from "./engine.ts";
import type {
  EngineCommand,
  EngineEvent,
  EngineOptions,
  OrderType,
  SelfTradePrevention,
  Side,
  SymbolRules,
  TimeInForce,
} from "./types.ts";

export const RULES: SymbolRules = {
  symbol: "TEST",
  tickSize: "0.01",
  lotSize: "1",
  minQtyLots: 1,
  maxQtyLots: 40,
  minNotionalTicksLots: 150,
  priceBandBps: 800,
};

/**
 * How `CommandBuilder` spells new order ids: `short` ("o17"), `uuid` (UUID-shaped, a mixed head and the
 * counter in the last 12 hex digits, like production ids), or `collide` (long ids that differ only in the
 * middle, where the engine's sampled id hash does not look, so it must notice and rehash).
 */
export type IdStyle = "short" | "uuid" | "collide";

/** Engine settings the random suites cycle through. */
export const VARIANTS: { rules: SymbolRules; opts: EngineOptions; ids?: IdStyle }[] = [
  { rules: RULES, opts: { referencePrice: 100, closedOrderMemory: 64, initialCapacity: 16 } },
  {
    rules: { ...RULES, minNotionalTicksLots: 0, priceBandBps: 0 },
    opts: { closedOrderMemory: 0, defaultStp: "cancel_oldest" },
  },
  {
    rules: { ...RULES, minQtyLots: 2, maxQtyLots: 25 },
    opts: { defaultStp: "cancel_both", referencePrice: 98 },
  },
  { rules: RULES, opts: { referencePrice: 100, closedOrderMemory: 48, initialCapacity: 16 }, ids: "uuid" },
  {
    rules: { ...RULES, minNotionalTicksLots: 0, priceBandBps: 0 },
    opts: { closedOrderMemory: 40, defaultStp: "cancel_oldest" },
    ids: "collide",
  },
];

const SIDES: Side[] = ["buy", "sell"];
const TYPES: OrderType[] = ["limit", "limit", "limit", "limit", "market", "stop", "stop_limit", "stop_limit"];
const TIFS: TimeInForce[] = ["gtc", "gtc", "day", "day", "ioc", "fok"];
const STPS: (SelfTradePrevention | undefined)[] = [
  undefined,
  undefined,
  "cancel_newest",
  "cancel_oldest",
  "cancel_both",
];
const ACCOUNTS = ["A", "B", "C", "D", "E"];

/** A command in index form; `toCommand` interprets it against the ids generated so far. */
export type Recipe =
  | {
      k: "place";
      dt: number;
      acct: number;
      side: number;
      type: number;
      tif: number;
      qty: number;
      px: number;
      stopPx: number;
      postOnly: boolean;
      stp: number;
      ttl: number;
      reuseId: number;
      passive: boolean;
    }
  | { k: "cancel"; dt: number; target: number; acct: number }
  | {
      k: "replace";
      dt: number;
      target: number;
      acct: number;
      what: number;
      qty: number;
      px: number;
      stopPx: number;
    }
  | { k: "tick"; dt: number }
  | { k: "halt" | "resume"; dt: number }
  | { k: "ref"; dt: number; px: number }
  | { k: "garbage"; dt: number; which: number };

const qtyArb = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: 1, max: 12 }) },
  { weight: 4, arbitrary: fc.integer({ min: 13, max: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -3, 2.5, 41, 1000, Number.NaN) },
);
/** Price offsets around 100 ticks, mostly near the middle, sometimes off-tick or out of band. */
const pxArb = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: -4, max: 4 }) },
  { weight: 4, arbitrary: fc.integer({ min: -12, max: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(0.5, -100, -99.5, 1e12) },
);

export const recipeArb: fc.Arbitrary<Recipe> = fc.oneof(
  {
    weight: 50,
    arbitrary: fc.record({
      k: fc.constant("place" as const),
      dt: fc.nat(3),
      acct: fc.nat(ACCOUNTS.length - 1),
      side: fc.nat(1),
      type: fc.nat(TYPES.length - 1),
      tif: fc.nat(TIFS.length - 1),
      qty: qtyArb,
      px: pxArb,
      stopPx: pxArb,
      postOnly: fc.oneof(
        { weight: 6, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
      stp: fc.nat(STPS.length - 1),
      ttl: fc.oneof(
        { weight: 3, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: -1, max: 40 }) },
      ),
      reuseId: fc.oneof({ weight: 30, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat(1000) }),
      passive: fc.boolean(),
    }),
  },
  {
    weight: 14,
    arbitrary: fc.record({
      k: fc.constant("cancel" as const),
      dt: fc.nat(3),
      target: fc.nat(100_000),
      acct: fc.oneof(
        { weight: 6, arbitrary: fc.constant(-1) },
        { weight: 1, arbitrary: fc.nat(ACCOUNTS.length) },
      ),
    }),
  },
  {
    weight: 22,
    arbitrary: fc.record({
      k: fc.constant("replace" as const),
      dt: fc.nat(3),
      target: fc.nat(100_000),
      acct: fc.oneof(
        { weight: 6, arbitrary: fc.constant(-1) },
        { weight: 1, arbitrary: fc.nat(ACCOUNTS.length) },
      ),
      what: fc.oneof(
        { weight: 15, arbitrary: fc.integer({ min: 1, max: 7 }) },
        { weight: 1, arbitrary: fc.constant(0) },
      ),
      qty: qtyArb,
      px: pxArb,
      stopPx: pxArb,
    }),
  },
  { weight: 5, arbitrary: fc.record({ k: fc.constant("tick" as const), dt: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("halt" as const), dt: fc.nat(3) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant("resume" as const), dt: fc.nat(3) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("ref" as const),
      dt: fc.nat(3),
      px: fc.integer({ min: -6, max: 6 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("garbage" as const), dt: fc.nat(3), which: fc.nat(9) }),
  },
);

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, "0").slice(-digits);
}

/**
 * Turns recipes into commands, tracking time, the ids handed out so far and (through `observe`) the ids
 * that are open, so cancels and replaces mostly hit live orders.
 */
export class CommandBuilder {
  now = 1_700_000_000_000;
  private nextId = 1;
  private readonly ids: string[] = [];
  private readonly live: string[] = [];
  private readonly idStyle: IdStyle;

  constructor(idStyle: IdStyle = "short") {
    this.idStyle = idStyle;
  }

  /** Feed the events of the last command. */
  observe(events: EngineEvent[]): void {
    const drop = (id: string) => {
      const i = this.live.indexOf(id);
      if (i !== -1) this.live.splice(i, 1);
    };
    for (const e of events) {
      if (e.type === "accepted") this.live.push(e.orderId);
      else if (e.type === "replaced") {
        drop(e.orderId);
        this.live.push(e.newOrderId);
      } else if (e.type === "canceled" || e.type === "expired") drop(e.orderId);
      else if (e.type === "fill") {
        if (e.takerLeavesQty === 0) drop(e.takerOrderId);
        if (e.makerLeavesQty === 0) drop(e.makerOrderId);
      }
    }
  }

  build(r: Recipe): EngineCommand {
    this.now += r.dt;
    const now = this.now;
    switch (r.k) {
      case "place": {
        const type = TYPES[r.type] as OrderType;
        const tif = TIFS[r.tif] as TimeInForce;
        const orderId = r.reuseId >= 0 && this.ids.length > 0 ? this.pick(r.reuseId) : this.fresh();
        const cmd: EngineCommand = {
          kind: "place",
          now,
          orderId,
          account: ACCOUNTS[r.acct] as string,
          side: SIDES[r.side] as Side,
          type,
          tif,
          qty: r.qty,
        };
        // Passive orders build depth: buys at or below 99, sells at or above 101.
        const px =
          r.passive && Number.isInteger(r.px) && Math.abs(r.px) < 20
            ? (r.side === 0 ? -1 : 1) * (1 + Math.abs(r.px))
            : r.px;
        if (type === "limit" || type === "stop_limit" || r.px === 0.5) cmd.limitPrice = 100 + px;
        if (type === "stop" || type === "stop_limit") cmd.stopPrice = 100 + r.stopPx;
        if (r.postOnly && type === "limit") cmd.postOnly = true;
        const stp = STPS[r.stp];
        if (stp !== undefined) cmd.stp = stp;
        if (r.ttl !== 0) cmd.expiresAt = now + r.ttl;
        return cmd;
      }
      case "cancel": {
        const cmd: EngineCommand = { kind: "cancel", now, orderId: this.pick(r.target) };
        if (r.acct >= 0) cmd.account = ACCOUNTS[r.acct] ?? "Z";
        return cmd;
      }
      case "replace": {
        const cmd: EngineCommand = {
          kind: "replace",
          now,
          orderId: this.pick(r.target),
          newOrderId: this.fresh(),
        };
        if (r.acct >= 0) cmd.account = ACCOUNTS[r.acct] ?? "Z";
        // what: bit 0 qty, bit 1 limit price, bit 2 stop price (0 = nothing: rejected).
        if (r.what & 1) cmd.qty = r.qty;
        if (r.what & 2) cmd.limitPrice = 100 + r.px;
        if (r.what & 4) cmd.stopPrice = 100 + r.stopPx;
        return cmd;
      }
      case "tick":
        return { kind: "tick", now };
      case "halt":
      case "resume":
        return { kind: r.k, now };
      case "ref":
        return { kind: "setReferencePrice", now, price: 100 + r.px };
      case "garbage":
        return garbage(r.which, now, this.pick(r.which));
    }
  }

  private fresh(): string {
    const n = this.nextId++;
    const id =
      this.idStyle === "short"
        ? `o${n}`
        : this.idStyle === "uuid"
          ? `${hex(Math.imul(n, 0x9e3779b1) >>> 0, 8)}-${hex(n >>> 3, 4)}-4000-8000-${hex(n, 12)}`
          : `ord-${String(n).padStart(10, "0")}-000000000000`;
    this.ids.push(id);
    return id;
  }

  /** Mostly a live order; else an id seen before (mostly recent ones), or one that never existed. */
  private pick(n: number): string {
    if (this.live.length > 0 && n % 8 < 6) return this.live[(n >> 3) % this.live.length] as string;
    if (this.ids.length === 0 || n % 17 === 0) return `missing${n % 5}`;
    const recent = Math.min(this.ids.length, 40);
    const index = n % 3 === 0 ? n % this.ids.length : this.ids.length - 1 - (n % recent);
    return this.ids[index] as string;
  }
}

function garbage(which: number, now: number, id: string): EngineCommand {
  const bad: unknown[] = [
    null,
    { kind: "explode", now },
    { kind: "place", now: -1, orderId: "g", account: "A", side: "buy", type: "limit", tif: "gtc", qty: 1 },
    {
      kind: "place",
      now,
      orderId: "",
      account: "A",
      side: "buy",
      type: "limit",
      tif: "gtc",
      qty: 1,
      limitPrice: 100,
    },
    { kind: "place", now, orderId: "g2", account: "A", side: "up", type: "limit", tif: "gtc", qty: 1 },
    {
      kind: "place",
      now,
      orderId: "g3",
      account: "A",
      side: "buy",
      type: "limit",
      tif: "gtd",
      qty: 5,
      limitPrice: 100,
    },
    { kind: "cancel", now, orderId: 42 },
    { kind: "replace", now, orderId: id, newOrderId: id, qty: 1 },
    { kind: "tick", now: 1.5 },
    { kind: "setReferencePrice", now, price: "100" },
  ];
  return bad[which % bad.length] as EngineCommand;
}

interface Ledger {
  qty: number;
  filled: number;
  canceled: number;
  expired: number;
  replaced: number;
  side: Side;
  tif: TimeInForce;
  /** Effective limit for fills (null: market / stop). */
  limit: number | null;
  done: boolean;
}

/**
 * Commands of a recipe list for variant `variant`: cancels and replaces aim at orders that are open as the
 * sequence unfolds in an engine of that variant.
 */
export function commandsOf(variant: number, recipes: Recipe[]): EngineCommand[] {
  const { rules, opts, ids } = VARIANTS[variant] as (typeof VARIANTS)[number];
  const engine = new MatchingEngine(rules, opts);
  const builder = new CommandBuilder(ids);
  return recipes.map((r) => {
    const cmd = builder.build(r);
    const out: EngineEvent[] = [];
    engine.process(cmd, out);
    builder.observe(out);
    return cmd;
  });
}

/**
 * Checks the invariants of the issue on one engine's event stream, after every command:
 * sequence numbers, an uncrossed book, L2 deltas that rebuild `depth()`, quantity conservation per order,
 * no fill worse than the limit, makers fill at their own price, FOK all-or-nothing, IOC / market never
 * rest, and price-time order of the resting queues.
 */
export class InvariantChecker {
  private lastSeq: number;
  private lastBookSeq: number;
  private lastFillId = 0;
  private readonly l2 = new Map<string, number>();
  private readonly orders = new Map<string, Ledger>();

  private readonly engine: MatchingEngine;

  constructor(engine: MatchingEngine) {
    this.engine = engine;
    this.lastSeq = engine.seq;
    this.lastBookSeq = engine.bookSeq;
  }

  check(cmd: EngineCommand, events: EngineEvent[]): void {
    const touched = new Set<string>();
    let takerSide: Side | null = null;
    let lastFillPrice = 0;
    let lastTaker = "";
    for (const e of events) {
      expectTrue(e.seq === this.lastSeq + 1, "seq is consecutive", e);
      this.lastSeq = e.seq;
      expectTrue(e.commandSeq === this.engine.commandSeq, "commandSeq is the command's", e);
      switch (e.type) {
        case "accepted":
          expectTrue(
            !this.orders.has(e.orderId) || (this.orders.get(e.orderId) as Ledger).done,
            "fresh id",
            e,
          );
          this.orders.set(e.orderId, {
            qty: e.qty,
            filled: 0,
            canceled: 0,
            expired: 0,
            replaced: 0,
            side: e.side,
            tif: e.tif,
            limit: e.orderType === "limit" || e.orderType === "stop_limit" ? (e.limitPrice as number) : null,
            done: false,
          });
          touched.add(e.orderId);
          break;
        case "replaced": {
          const old = this.ledger(e.orderId, e);
          old.replaced += e.replacedQty;
          expectTrue(old.filled === e.filledQty, "replaced filledQty", e);
          this.orders.set(e.newOrderId, {
            qty: e.qty,
            filled: 0,
            canceled: 0,
            expired: 0,
            replaced: 0,
            side: old.side,
            tif: old.tif,
            limit: e.limitPrice ?? null,
            done: false,
          });
          expectTrue(old.side === e.side, "replace keeps the side", e);
          touched.add(e.orderId);
          touched.add(e.newOrderId);
          break;
        }
        case "fill": {
          expectTrue(e.fillId === this.lastFillId + 1, "fill ids are consecutive", e);
          this.lastFillId = e.fillId;
          expectTrue(e.qty > 0 && Number.isSafeInteger(e.qty), "fill qty positive integer", e);
          const taker = this.ledger(e.takerOrderId, e);
          const maker = this.ledger(e.makerOrderId, e);
          taker.filled += e.qty;
          maker.filled += e.qty;
          expectTrue(e.takerAccount !== e.makerAccount, "no self trade", e);
          expectTrue(taker.side === e.takerSide && maker.side !== e.takerSide, "sides", e);
          expectTrue(maker.limit === e.price, "maker fills at its own price", e);
          if (taker.limit !== null) {
            expectTrue(
              e.takerSide === "buy" ? e.price <= taker.limit : e.price >= taker.limit,
              "limit respected",
              e,
            );
          }
          expectTrue(taker.qty - taker.filled === e.takerLeavesQty, "taker leaves", e);
          expectTrue(maker.qty - maker.filled === e.makerLeavesQty, "maker leaves", e);
          if (lastTaker === e.takerOrderId && takerSide !== null) {
            expectTrue(
              takerSide === "buy" ? e.price >= lastFillPrice : e.price <= lastFillPrice,
              "a taker walks the book from the best price",
              e,
            );
          }
          lastTaker = e.takerOrderId;
          takerSide = e.takerSide;
          lastFillPrice = e.price;
          touched.add(e.takerOrderId);
          touched.add(e.makerOrderId);
          break;
        }
        case "canceled": {
          const o = this.ledger(e.orderId, e);
          o.canceled += e.canceledQty;
          expectTrue(o.filled === e.filledQty, "canceled filledQty", e);
          touched.add(e.orderId);
          break;
        }
        case "expired": {
          const o = this.ledger(e.orderId, e);
          o.expired += e.expiredQty;
          expectTrue(o.filled === e.filledQty, "expired filledQty", e);
          touched.add(e.orderId);
          break;
        }
        case "book":
          expectTrue(e.bookSeq === this.lastBookSeq + 1, "bookSeq is consecutive", e);
          this.lastBookSeq = e.bookSeq;
          expectTrue(Number.isSafeInteger(e.qty) && e.qty >= 0, "book qty", e);
          if (e.qty === 0) {
            expectTrue(this.l2.has(`${e.side}:${e.price}`), "removed level existed", e);
            this.l2.delete(`${e.side}:${e.price}`);
          } else this.l2.set(`${e.side}:${e.price}`, e.qty);
          break;
        default:
          break;
      }
    }
    this.checkBook();
    for (const id of touched) this.checkOrder(id);
    void cmd;
  }

  private ledger(id: string, e: EngineEvent): Ledger {
    const o = this.orders.get(id);
    expectTrue(o !== undefined, `event for an order the stream never accepted: ${id}`, e);
    return o as Ledger;
  }

  private checkOrder(id: string): void {
    const o = this.orders.get(id) as Ledger;
    const open = this.engine.getOrder(id);
    const leaves = open?.leavesQty ?? 0;
    const accounted = o.filled + o.canceled + o.expired + o.replaced + leaves;
    expectTrue(accounted === o.qty, `quantity conserved for ${id}: ${JSON.stringify(o)} leaves ${leaves}`);
    if (open === undefined) o.done = true;
    else {
      expectTrue(
        open.status === "pending_trigger" || open.tif === "day" || open.tif === "gtc",
        `only day / gtc orders rest: ${id}`,
      );
      expectTrue(
        open.status === "pending_trigger" || (open.orderType !== "market" && open.orderType !== "stop"),
        `market orders never rest: ${id}`,
      );
      expectTrue(open.filledQty === o.filled, `filledQty of ${id}`);
    }
    if (o.tif === "fok" && open === undefined) {
      expectTrue(o.filled === 0 || o.filled === o.qty, `FOK all-or-nothing: ${id}`);
    }
    if (o.tif === "ioc" && open !== undefined)
      expectTrue(open.status === "pending_trigger", `IOC never rests`);
  }

  private checkBook(): void {
    const depth = this.engine.depth(1_000_000);
    const bid = depth.bids[0];
    const ask = depth.asks[0];
    if (bid !== undefined && ask !== undefined)
      expectTrue(bid[0] < ask[0], `book crossed: ${bid[0]} ≥ ${ask[0]}`);
    let count = 0;
    for (const [price, qty] of depth.bids) {
      expectTrue(this.l2.get(`buy:${price}`) === qty, `L2 deltas rebuild bid ${price}`);
      count++;
    }
    for (const [price, qty] of depth.asks) {
      expectTrue(this.l2.get(`sell:${price}`) === qty, `L2 deltas rebuild ask ${price}`);
      count++;
    }
    expectTrue(count === this.l2.size, "no stale L2 levels");
    // Price-time priority of the queues.
    const snap = this.engine.snapshot();
    const ordered = (list: typeof snap.bids, key: (o: (typeof snap.bids)[number]) => number, dir: number) => {
      for (let i = 1; i < list.length; i++) {
        const a = list[i - 1] as (typeof snap.bids)[number];
        const b = list[i] as (typeof snap.bids)[number];
        const ka = key(a) * dir;
        const kb = key(b) * dir;
        expectTrue(ka < kb || (ka === kb && a.prio < b.prio), "price-time order of the queue");
      }
    };
    ordered(snap.bids, (o) => o.limitPrice as number, -1);
    ordered(snap.asks, (o) => o.limitPrice as number, 1);
    ordered(snap.buyStops, (o) => o.stopPrice as number, 1);
    ordered(snap.sellStops, (o) => o.stopPrice as number, -1);
    expectTrue(
      snap.bids.length + snap.asks.length + snap.buyStops.length + snap.sellStops.length ===
        this.engine.openOrderCount,
      "openOrderCount",
    );
  }
}

function expectTrue(condition: boolean, message: string, event?: EngineEvent): asserts condition {
  if (!condition)
    throw new Error(`invariant violated: ${message}${event ? ` at ${JSON.stringify(event)}` : ""}`);
}

/** Shallow equality of two event lists (events are flat records; `undefined` members count as absent). */
export function sameEvents(a: EngineEvent[], b: EngineEvent[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as unknown as Record<string, unknown>;
    const y = b[i] as unknown as Record<string, unknown>;
    for (const k in x) if (x[k] !== y[k]) return false;
    for (const k in y) if (x[k] !== y[k]) return false;
  }
  return true;
}
