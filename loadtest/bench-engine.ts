/**
 * Matching engine benchmark: `npm run bench:engine`.
 *
 * A seeded workload shaped like exchange-core's published mix (≈82 % replace/move, 9 % GTC limit,
 * 3 % IOC, 6 % cancel, ≈1,000 resting orders, a two-sided book around a slowly moving mid) runs through
 * - the PrepX `MatchingEngine`, and
 * - the `hft-limit-order-book` package with the same workload where its features allow (its `modify`
 *   keeps the order id, ours issues a new one, so the bench maps ids; it has no self-trade prevention),
 * in alternating blocks of 50,000 commands (so both see the same machine load), after a 200,000-command
 * warm-up. Each contender runs in its own worker thread (own V8 heap, so neither's garbage is collected
 * inside the other's timed batches), reading the stream from shared memory. Two separate passes:
 * - throughput: one book, one `hrtime` pair per batch of 250 commands and nothing timed per command; the
 *   commands (fresh id strings) are built untimed just before each batch, and the engine writes every
 *   event to an `EventLog` cleared before each batch, as the OrderBook Durable Object takes them (its
 *   commit's log); the array form (`process(cmd, [])`, an object per event) costs more (docs/engine.md);
 * - latency: a twin book fed the same stream, every command timed with a `process.hrtime.bigint()` pair
 *   into an HDR histogram (the timer's own overhead is measured and printed, not subtracted).
 * Throughput is reported three ways: the median batch (the headline: robust when other processes share
 * the 2 cores), all batches over total wall time, and per second of process CPU time.
 * Before and after the throughput and latency passes, the latency of a dependent load over 4 MB is printed:
 * past the L2 (512 KB per core), it is what a cache miss costs at the moment, and this VM's shared memory
 * system moves it (and the engine with it) by up to 2× from minute to minute.
 * Then a child process (node --expose-gc) rests 1,000,000 orders and measures heap + typed-array bytes.
 * The last line printed is one JSON object with the headline figures.
 *
 * Knobs (env): BENCH_COMMANDS (engine commands, default 3,000,000), BENCH_PEER_COMMANDS (default
 * 1,000,000), BENCH_OBJECTS_COMMANDS (the engine's array form, throughput only, default 1,000,000),
 * BENCH_SEED (default 42), BENCH_RESTING (memory test orders, default 1,000,000).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import * as hdr from "hdr-histogram-js";
import { type LimitOrderOptions, OrderBook, Side as PeerSide } from "hft-limit-order-book";
import type { EngineCommand, EngineEvent, SymbolRules } from "../shared/engine/index.ts";
import { EventLog, MatchingEngine } from "../shared/engine/index.ts";

const RULES: SymbolRules = {
  symbol: "BENCH",
  tickSize: "0.01",
  lotSize: "1",
  minQtyLots: 1,
  maxQtyLots: 1_000_000,
  minNotionalTicksLots: 0,
  priceBandBps: 0,
};

const SEED = Number(process.env.BENCH_SEED ?? 42);
const ENGINE_COMMANDS = Number(process.env.BENCH_COMMANDS ?? 3_000_000);
const PEER_COMMANDS = Number(process.env.BENCH_PEER_COMMANDS ?? 1_000_000);
const OBJECTS_COMMANDS = Number(process.env.BENCH_OBJECTS_COMMANDS ?? 1_000_000);
const RESTING = Number(process.env.BENCH_RESTING ?? 1_000_000);
/** Commands are generated in small batches right before they run, so they are hot in cache as a live
 * request would be; timers wrap each batch (throughput) or each command (latency). */
const CHUNK = 250;
/** Ops per turn before the other contender runs. */
const BLOCK = 50_000;
/** Ops run before measuring (JIT warm-up). */
const WARMUP = 200_000;
const TARGET_RESTING = 1_000;
const ACCOUNTS = 10_000;
const START_NOW = 1_750_000_000_000;

// -------------------------------------------------------------------------------------------------
// Deterministic randomness and ids
// -------------------------------------------------------------------------------------------------

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

function mix32(n: number): number {
  let h = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const HEX = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
const ID_CODES = new Array<number>(36).fill(0);

/** Writes the 4-bit groups of `value` (most significant first) into ID_CODES[at, at + count). */
function putHex(value: number, at: number, count: number): void {
  let v = value;
  for (let i = at + count - 1; i >= at; i--) {
    ID_CODES[i] = HEX[v % 16] as number;
    v = Math.floor(v / 16);
  }
}

/**
 * A UUID-shaped id for order number n (random-looking head, n in the last 12 hex digits). Every call
 * builds one new flat string in one step, as a JSON / RPC decoder would, with no cached hash.
 */
function orderId(n: number): string {
  const a = mix32(n);
  const b = mix32(n + 0x51ed27);
  putHex(a, 0, 8);
  ID_CODES[8] = 45;
  putHex(b >>> 16, 9, 4);
  ID_CODES[13] = 45;
  ID_CODES[14] = 52; // version 4
  putHex(b & 0xfff, 15, 3);
  ID_CODES[18] = 45;
  ID_CODES[19] = 56; // variant 8
  putHex(a & 0xfff, 20, 3);
  ID_CODES[23] = 45;
  putHex(n, 24, 12);
  return String.fromCharCode.apply(null, ID_CODES);
}

function orderNumber(id: string): number {
  return Number.parseInt(id.slice(24), 16);
}

const ACCOUNT_NAMES = Array.from({ length: ACCOUNTS }, (_, i) => `acct-${i}`);

// -------------------------------------------------------------------------------------------------
// Workload
// -------------------------------------------------------------------------------------------------

const OP_PLACE = 0;
const OP_IOC = 1;
const OP_CANCEL = 2;
const OP_MOVE = 3;

/** One workload step, independent of either engine's API. */
interface Op {
  op: number;
  /** Order number (place / ioc: the new order; cancel / move: the target). */
  n: number;
  /** Move: the new order number (our engine) — the peer keeps `peerN`. */
  newN: number;
  /** The order number the peer knows this order by. */
  peerN: number;
  buy: boolean;
  price: number;
  qty: number;
  account: number;
}

/**
 * Generates ops by running them through its own engine, so it knows which orders are resting (fills
 * remove makers; moves change ids).
 */
class Workload {
  private readonly rng: Rng;
  private readonly engine = new MatchingEngine(RULES, { closedOrderMemory: 0 });
  private readonly out: EngineEvent[] = [];
  private readonly live: number[] = [];
  private readonly livePos = new Map<number, number>();
  private readonly liveBuy = new Map<number, boolean>();
  private readonly peerOf = new Map<number, number>();
  private nextN = 1;
  private mid = 10_000;
  private step = 0;
  now = START_NOW;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** Build a book of about TARGET_RESTING orders. */
  seed(): Op[] {
    const ops: Op[] = [];
    for (let i = 0; i < TARGET_RESTING; i++) ops.push(this.place(this.rng.next() < 0.5, false));
    return ops;
  }

  chunk(size: number): Op[] {
    const ops: Op[] = [];
    for (let i = 0; i < size; i++) ops.push(this.nextOp());
    return ops;
  }

  private nextOp(): Op {
    this.step++;
    if (this.step % 1_000 === 0) this.mid += this.rng.int(3) - 1;
    const r = this.rng.next();
    const count = this.live.length;
    if (count === 0) return this.place(this.rng.next() < 0.5, false);
    if (r < 0.82) return this.move();
    if (r < 0.91) {
      if (count > TARGET_RESTING * 1.1) return this.cancel();
      return this.place(this.rng.next() < 0.5, false);
    }
    if (r < 0.94) return this.place(this.rng.next() < 0.5, true);
    if (count < TARGET_RESTING * 0.9) return this.place(this.rng.next() < 0.5, false);
    return this.cancel();
  }

  /** Passive distance from the mid: mostly close, with a tail. */
  private distance(): number {
    const u = this.rng.next();
    return 1 + Math.floor(u * u * 40);
  }

  private place(buy: boolean, ioc: boolean): Op {
    const n = this.nextN++;
    this.peerOf.set(n, n);
    // GTC: mostly passive, ~8 % priced through the mid; IOC: priced to take a level or two.
    const price = ioc
      ? this.mid + (buy ? 1 : -1) * this.rng.int(4)
      : this.rng.next() < 0.08
        ? this.mid + (buy ? 1 : -1) * this.rng.int(3)
        : this.mid + (buy ? -1 : 1) * this.distance();
    const op: Op = {
      op: ioc ? OP_IOC : OP_PLACE,
      n,
      newN: 0,
      peerN: n,
      buy,
      price,
      qty: ioc ? 1 + this.rng.int(60) : 1 + this.rng.int(100),
      account: this.rng.int(ACCOUNTS),
    };
    this.apply(op);
    return op;
  }

  private cancel(): Op {
    const n = this.live[this.rng.int(this.live.length)] as number;
    const op: Op = {
      op: OP_CANCEL,
      n,
      newN: 0,
      peerN: this.peerOf.get(n) as number,
      buy: this.liveBuy.get(n) as boolean,
      price: 0,
      qty: 0,
      account: 0,
    };
    this.apply(op);
    return op;
  }

  private move(): Op {
    const n = this.live[this.rng.int(this.live.length)] as number;
    const buy = this.liveBuy.get(n) as boolean;
    const newN = this.nextN++;
    const peerN = this.peerOf.get(n) as number;
    this.peerOf.set(newN, peerN);
    const price =
      this.rng.next() < 0.03
        ? this.mid + (buy ? 1 : -1) * this.rng.int(3)
        : this.mid + (buy ? -1 : 1) * this.distance();
    const op: Op = { op: OP_MOVE, n, newN, peerN, buy, price, qty: 0, account: 0 };
    this.apply(op);
    return op;
  }

  private apply(op: Op): void {
    this.out.length = 0;
    this.engine.process(toCommand(op, this.now), this.out);
    for (const e of this.out) {
      if (e.type === "fill" && e.makerLeavesQty === 0) this.drop(orderNumber(e.makerOrderId));
    }
    if (op.op === OP_PLACE || op.op === OP_IOC) {
      if (this.engine.getOrder(orderId(op.n)) !== undefined) this.add(op.n, op.buy);
      else this.peerOf.delete(op.n);
    } else if (op.op === OP_CANCEL) {
      this.drop(op.n);
    } else {
      this.drop(op.n);
      if (this.engine.getOrder(orderId(op.newN)) !== undefined) this.add(op.newN, op.buy);
      else this.peerOf.delete(op.newN);
    }
  }

  private add(n: number, buy: boolean): void {
    this.livePos.set(n, this.live.length);
    this.live.push(n);
    this.liveBuy.set(n, buy);
  }

  private drop(n: number): void {
    const pos = this.livePos.get(n);
    if (pos === undefined) return;
    const last = this.live.pop() as number;
    if (last !== n) {
      this.live[pos] = last;
      this.livePos.set(last, pos);
    }
    this.livePos.delete(n);
    this.liveBuy.delete(n);
    this.peerOf.delete(n);
  }
}

function toCommand(op: Op, now: number): EngineCommand {
  switch (op.op) {
    case OP_PLACE:
    case OP_IOC:
      return {
        kind: "place",
        now,
        orderId: orderId(op.n),
        account: ACCOUNT_NAMES[op.account] as string,
        side: op.buy ? "buy" : "sell",
        type: "limit",
        tif: op.op === OP_IOC ? "ioc" : "gtc",
        qty: op.qty,
        limitPrice: op.price,
      };
    case OP_CANCEL:
      return { kind: "cancel", now, orderId: orderId(op.n) };
    default:
      return {
        kind: "replace",
        now,
        orderId: orderId(op.n),
        newOrderId: orderId(op.newN),
        limitPrice: op.price,
      };
  }
}

interface PeerOp {
  op: number;
  id: string;
  side: PeerSide;
  price: number;
  qty: number;
}

const PEER_IOC = "IOC" as LimitOrderOptions["timeInForce"];

function toPeerOp(op: Op): PeerOp {
  return {
    op: op.op,
    id: orderId(op.peerN),
    side: op.buy ? PeerSide.BUY : PeerSide.SELL,
    price: op.price,
    qty: op.qty,
  };
}

function runPeerOp(book: OrderBook, p: PeerOp): void {
  switch (p.op) {
    case OP_PLACE:
      book.limit({ id: p.id, side: p.side, size: p.qty, price: p.price });
      break;
    case OP_IOC:
      book.limit({ id: p.id, side: p.side, size: p.qty, price: p.price, timeInForce: PEER_IOC });
      break;
    case OP_CANCEL:
      book.cancel(p.id);
      break;
    default:
      book.modify(p.id, { price: p.price });
  }
}

// -------------------------------------------------------------------------------------------------
// Measurement
// -------------------------------------------------------------------------------------------------

/** An `OpStream` as passed to a worker thread. */
interface SharedStream {
  buffers: SharedArrayBuffer[];
  length: number;
  now: number;
}

/** The whole op stream, generated up front into compact columns. */
class OpStream {
  length = 0;
  readonly now: number;
  private readonly op: Uint8Array;
  private readonly n: Int32Array;
  private readonly newN: Int32Array;
  private readonly peerN: Int32Array;
  private readonly buy: Uint8Array;
  private readonly price: Int32Array;
  private readonly qty: Int32Array;
  private readonly account: Int32Array;

  /** Columns in shared memory, so the contenders' worker threads read the stream without copying it. */
  constructor(capacity: number, now: number, shared?: SharedStream) {
    this.now = now;
    const col = (i: number, bytes: number) =>
      shared?.buffers[i] ?? new SharedArrayBuffer(Math.max(1, capacity * bytes));
    this.op = new Uint8Array(col(0, 1));
    this.n = new Int32Array(col(1, 4));
    this.newN = new Int32Array(col(2, 4));
    this.peerN = new Int32Array(col(3, 4));
    this.buy = new Uint8Array(col(4, 1));
    this.price = new Int32Array(col(5, 4));
    this.qty = new Int32Array(col(6, 4));
    this.account = new Int32Array(col(7, 4));
    if (shared !== undefined) this.length = shared.length;
  }

  share(): SharedStream {
    const columns = [this.op, this.n, this.newN, this.peerN, this.buy, this.price, this.qty, this.account];
    return {
      buffers: columns.map((c) => c.buffer as SharedArrayBuffer),
      length: this.length,
      now: this.now,
    };
  }

  push(o: Op): void {
    const i = this.length++;
    this.op[i] = o.op;
    this.n[i] = o.n;
    this.newN[i] = o.newN;
    this.peerN[i] = o.peerN;
    this.buy[i] = o.buy ? 1 : 0;
    this.price[i] = o.price;
    this.qty[i] = o.qty;
    this.account[i] = o.account;
  }

  get(i: number): Op {
    return {
      op: this.op[i] as number,
      n: this.n[i] as number,
      newN: this.newN[i] as number,
      peerN: this.peerN[i] as number,
      buy: this.buy[i] === 1,
      price: this.price[i] as number,
      qty: this.qty[i] as number,
      account: this.account[i] as number,
    };
  }
}

function generate(total: number): OpStream {
  const workload = new Workload(SEED);
  const seed = workload.seed();
  const stream = new OpStream(seed.length + total, workload.now);
  for (const op of seed) stream.push(op);
  for (let done = 0; done < total; done += CHUNK) {
    for (const op of workload.chunk(Math.min(CHUNK, total - done))) stream.push(op);
  }
  return stream;
}

interface Result {
  /** Commands / total wall time of the timed batches (includes time the OS gave the core to others). */
  opsPerSec: number;
  /** Commands per second of the median batch: robust to the scheduler handing the core to others. */
  medianBatchOpsPerSec: number;
  /** Commands per second of process CPU time (includes GC helper threads). */
  opsPerCpuSec: number;
  commands: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

function histogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 10_000_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

/** How a contender runs: build a batch of inputs (untimed, like requests arriving), then run each. */
interface Runner<T> {
  prepare(stream: OpStream, from: number, to: number): T[];
  run(input: T): void;
}

/**
 * One contender: a book timed per batch (throughput) and a twin book fed the same stream timing every
 * command (latency), so timer overhead stays out of the throughput figure.
 */
class Contender<T> {
  private readonly main: Runner<T>;
  private readonly twin: Runner<T>;
  private readonly h = histogram();
  private readonly batchNanos: number[] = [];
  private commands = 0;
  private nanos = 0;
  private cpuMicros = 0;

  constructor(main: Runner<T>, twin: Runner<T>) {
    this.main = main;
    this.twin = twin;
  }

  /** Throughput over ops [from, to) in batches of CHUNK. */
  throughput(stream: OpStream, from: number, to: number, measure: boolean): void {
    const main = this.main;
    for (let b = from; b < to; b += CHUNK) {
      const input = main.prepare(stream, b, Math.min(b + CHUNK, to));
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < input.length; i++) main.run(input[i] as T);
      const nanos = Number(process.hrtime.bigint() - t0);
      const cpu = process.cpuUsage(c0);
      if (measure) {
        this.commands += input.length;
        this.nanos += nanos;
        this.cpuMicros += cpu.user + cpu.system;
        if (input.length === CHUNK) this.batchNanos.push(nanos);
      }
    }
  }

  /** Latency of every command of ops [from, to) on the twin book. */
  latency(stream: OpStream, from: number, to: number, measure: boolean): void {
    const twin = this.twin;
    const h = this.h;
    for (let b = from; b < to; b += CHUNK) {
      const input = twin.prepare(stream, b, Math.min(b + CHUNK, to));
      for (let i = 0; i < input.length; i++) {
        const t0 = process.hrtime.bigint();
        twin.run(input[i] as T);
        const t1 = process.hrtime.bigint();
        if (measure) h.recordValue(Number(t1 - t0));
      }
    }
  }

  result(): Result {
    const sorted = [...this.batchNanos].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1] as number;
    return {
      opsPerSec: Math.round((this.commands / this.nanos) * 1e9),
      medianBatchOpsPerSec: Math.round((CHUNK / median) * 1e9),
      opsPerCpuSec: Math.round((this.commands / this.cpuMicros) * 1e6),
      commands: this.commands,
      p50: this.h.getValueAtPercentile(50) / 1000,
      p99: this.h.getValueAtPercentile(99) / 1000,
      p999: this.h.getValueAtPercentile(99.9) / 1000,
      max: this.h.maxValue / 1000,
    };
  }
}

/**
 * The engine as a consumer drives it. `log`: as the OrderBook object does, the events of a batch go to one
 * `EventLog`, cleared before the next batch. `objects`: the array form, a fresh array of event objects per
 * command (what the object did before the event log; tests and single answers still take it).
 */
function engineRunner(form: "log" | "objects"): { runner: Runner<EngineCommand>; engine: MatchingEngine } {
  const engine = new MatchingEngine(RULES);
  const log = new EventLog(1024);
  let out: EngineEvent[] = [];
  return {
    engine,
    runner: {
      prepare: (stream, from, to) => {
        log.clear();
        const cmds: EngineCommand[] = [];
        for (let i = from; i < to; i++) cmds.push(toCommand(stream.get(i), stream.now));
        return cmds;
      },
      run:
        form === "log"
          ? (cmd) => engine.process(cmd, log)
          : (cmd) => {
              out = [];
              engine.process(cmd, out);
            },
    },
  };
}

function peerRunner(): Runner<PeerOp> {
  const book = new OrderBook();
  return {
    prepare: (stream, from, to) => {
      const ops: PeerOp[] = [];
      for (let i = from; i < to; i++) ops.push(toPeerOp(stream.get(i)));
      return ops;
    },
    run: (op) => runPeerOp(book, op),
  };
}

/** What the main thread asks a contender's worker to do. */
type WorkerRequest =
  | { kind: "run"; pass: "throughput" | "latency"; from: number; to: number; measure: boolean }
  | { kind: "result" };

interface WorkerSetup {
  role: "engine" | "engine-objects" | "peer";
  stream: SharedStream;
}

/**
 * One contender in its own worker thread, so its V8 heap (and its garbage collections: the peer's book
 * is a graph of JS objects, ours mostly typed arrays) never runs inside the other's timed batches. It
 * replays blocks of the shared stream on request; only one contender runs at a time.
 */
function contenderWorker(setup: WorkerSetup): void {
  const port = parentPort as NonNullable<typeof parentPort>;
  const stream = new OpStream(0, setup.stream.now, setup.stream);
  const form = setup.role === "engine" ? "log" : "objects";
  const main = setup.role === "peer" ? null : engineRunner(form);
  const twin = setup.role === "peer" ? null : engineRunner(form);
  const contender: Contender<unknown> =
    main !== null && twin !== null
      ? (new Contender(main.runner, twin.runner) as Contender<unknown>)
      : (new Contender(peerRunner(), peerRunner()) as Contender<unknown>);
  port.on("message", (req: WorkerRequest) => {
    if (req.kind === "run") {
      contender[req.pass](stream, req.from, req.to, req.measure);
      port.postMessage(null);
      return;
    }
    // (The array form runs no latency pass, so its twin never moved.)
    if (
      setup.role === "engine" &&
      main !== null &&
      twin !== null &&
      main.engine.stateHash() !== twin.engine.stateHash()
    ) {
      throw new Error("twin engines diverged");
    }
    port.postMessage(contender.result());
    port.close();
  });
}

function ask<T>(worker: Worker, req: WorkerRequest): Promise<T> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    worker.once("error", onError);
    worker.once("message", (m: T) => {
      worker.off("error", onError);
      resolve(m);
    });
    worker.postMessage(req);
  });
}

/**
 * The contenders replay the same stream from the start (seed book, warm-up, measured part), each in its
 * own worker thread, in alternating blocks so all see the same machine load; only one book is hot at a
 * time, as in a Durable Object. The engine's array form runs the throughput pass only.
 */
async function benchAll(
  engineCommands: number,
  objectsCommands: number,
  peerCommands: number,
): Promise<{ engine: Result; objects: Result; peer: Result }> {
  const longest = Math.max(engineCommands, objectsCommands, peerCommands);
  const stream = generate(WARMUP + longest);
  const seedEnd = stream.length - WARMUP - longest;
  const self = fileURLToPath(import.meta.url);
  const spawn = (role: WorkerSetup["role"]) =>
    new Worker(self, { workerData: { role, stream: stream.share() } satisfies WorkerSetup });
  const engine = spawn("engine");
  const objects = spawn("engine-objects");
  const peer = spawn("peer");
  const lastOf = (commands: number) => seedEnd + WARMUP + commands;
  for (const pass of ["throughput", "latency"] as const) {
    const contenders: (readonly [Worker, number])[] = [
      [engine, lastOf(engineCommands)],
      ...(pass === "throughput" ? [[objects, lastOf(objectsCommands)] as const] : []),
      [peer, lastOf(peerCommands)],
    ];
    const end = Math.max(...contenders.map(([, last]) => last));
    for (let from = 0; from < end; from += BLOCK) {
      for (const [worker, last] of contenders) {
        const to = Math.min(from + BLOCK, last);
        if (from >= to) continue;
        // Blocks start on a batch boundary; the seed book and warm-up are never measured.
        const measureFrom = Math.max(from, seedEnd + WARMUP);
        if (measureFrom > from)
          await ask(worker, { kind: "run", pass, from, to: Math.min(measureFrom, to), measure: false });
        if (measureFrom < to) await ask(worker, { kind: "run", pass, from: measureFrom, to, measure: true });
      }
    }
  }
  const results = {
    engine: await ask<Result>(engine, { kind: "result" }),
    objects: await ask<Result>(objects, { kind: "result" }),
    peer: await ask<Result>(peer, { kind: "result" }),
  };
  await Promise.all([engine.terminate(), objects.terminate(), peer.terminate()]);
  return results;
}

/** Child process (run with --expose-gc): bytes of heap + typed arrays per resting order. */
function measureMemory(resting: number): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc");
  const used = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const rng = new Rng(SEED);
  const before = used();
  const engine = new MatchingEngine(RULES, { closedOrderMemory: 0 });
  const out: EngineEvent[] = [];
  const mid = 1_000_000;
  for (let n = 1; n <= resting; n++) {
    const buy = (n & 1) === 0;
    out.length = 0;
    engine.process(
      {
        kind: "place",
        now: START_NOW,
        orderId: orderId(n),
        account: ACCOUNT_NAMES[rng.int(ACCOUNTS)] as string,
        side: buy ? "buy" : "sell",
        type: "limit",
        tif: "gtc",
        qty: 1 + rng.int(100),
        limitPrice: mid + (buy ? -1 : 1) * (1 + rng.int(5_000)),
      },
      out,
    );
  }
  out.length = 0;
  const after = used();
  if (engine.openOrderCount !== resting)
    throw new Error(`expected ${resting} resting, got ${engine.openOrderCount}`);
  console.log(
    JSON.stringify({ resting, bytes: after - before, bytesPerRestingOrder: (after - before) / resting }),
  );
}

function memoryInChild(): number {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, ["--expose-gc", self, "--memory"], {
    encoding: "utf8",
    env: process.env,
    maxBuffer: 1 << 20,
  });
  if (child.status !== 0) throw new Error(`memory child failed: ${child.stderr}`);
  const lines = child.stdout.trim().split("\n");
  const result = JSON.parse(lines[lines.length - 1] as string) as { bytesPerRestingOrder: number };
  return result.bytesPerRestingOrder;
}

/**
 * What the latency pass's own timing adds to each sample: the median of back-to-back
 * `process.hrtime.bigint()` pairs plus a histogram record. Printed, not subtracted.
 */
function timerOverheadNanos(): number {
  const h = histogram();
  const samples: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const t0 = process.hrtime.bigint();
    const t1 = process.hrtime.bigint();
    h.recordValue(Number(t1 - t0));
    if (i >= 100_000) samples.push(Number(t1 - t0));
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1] as number;
}

/**
 * Latency of one dependent load over 4 MB (a random cycle through an `Int32Array`, Sattolo's shuffle): past
 * this machine's L2 (512 KB per core), so it measures what the engine's cache misses cost right now. The
 * VM's memory system is shared with its neighbours and this figure moves with them (≈ 110–130 ns in quiet
 * phases, 150–190 ns under contention); the engine's speed follows it (docs/engine.md § Results), so every
 * run prints it beside its figures.
 */
function memoryLatencyNanos(): number {
  const n = (4 * 1024 * 1024) / 4;
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) next[i] = i;
  const rng = new Rng(SEED);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i);
    const t = next[i] as number;
    next[i] = next[j] as number;
    next[j] = t;
  }
  let p = 0;
  for (let i = 0; i < 200_000; i++) p = next[p] as number;
  const loads = 2_000_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < loads; i++) p = next[p] as number;
  const ns = Number(process.hrtime.bigint() - t0) / loads;
  // Keeps the chase from being optimised away.
  if (p < 0) throw new Error("unreachable");
  return ns;
}

function fmt(r: Result): string {
  const n = (x: number) => x.toLocaleString("en-US");
  return (
    `${n(r.medianBatchOpsPerSec)} ops/s median batch | ${n(r.opsPerSec)} ops/s wall over ${n(r.commands)} | ` +
    `${n(r.opsPerCpuSec)} ops/cpu-s\n                        ` +
    `latency µs p50 ${r.p50.toFixed(3)}  p99 ${r.p99.toFixed(3)}  p99.9 ${r.p999.toFixed(3)}  max ${r.max.toFixed(1)}`
  );
}

async function main(): Promise<void> {
  if (!isMainThread) {
    contenderWorker(workerData as WorkerSetup);
    return;
  }
  if (process.argv.includes("--memory")) {
    measureMemory(RESTING);
    return;
  }
  console.log(`node ${process.version}, seed ${SEED}, ~${TARGET_RESTING} resting orders, chunks of ${CHUNK}`);
  const latencyBefore = memoryLatencyNanos();
  const { engine, objects, peer } = await benchAll(ENGINE_COMMANDS, OBJECTS_COMMANDS, PEER_COMMANDS);
  const latencyAfter = memoryLatencyNanos();
  console.log(`prepx engine          : ${fmt(engine)}`);
  console.log(
    `  array form (objects): ${objects.medianBatchOpsPerSec.toLocaleString("en-US")} ops/s median batch ` +
      `(an event object per event, a fresh array per command)`,
  );
  console.log(`hft-limit-order-book  : ${fmt(peer)}`);
  const ratio = engine.medianBatchOpsPerSec / peer.medianBatchOpsPerSec;
  console.log(`throughput ratio      : ${ratio.toFixed(2)}x`);
  console.log(
    `timer overhead        : ~${timerOverheadNanos()} ns per latency sample (included, not subtracted)`,
  );
  console.log(
    `memory latency        : ${latencyBefore.toFixed(0)} ns before, ${latencyAfter.toFixed(0)} ns after per dependent load ` +
      "over 4 MB (quiet phases ≈ 110–130, contended 150–190: the engine's speed follows it)",
  );
  const bytesPerRestingOrder = memoryInChild();
  console.log(
    `memory                : ${bytesPerRestingOrder.toFixed(1)} bytes per resting order (${RESTING} resting)`,
  );
  console.log(
    JSON.stringify({
      engineOpsPerSec: engine.medianBatchOpsPerSec,
      p99Micros: Number(engine.p99.toFixed(3)),
      peerOpsPerSec: peer.medianBatchOpsPerSec,
      engineObjectsOpsPerSec: objects.medianBatchOpsPerSec,
      ratio: Number(ratio.toFixed(2)),
      bytesPerRestingOrder: Number(bytesPerRestingOrder.toFixed(1)),
      memoryLatencyNs: Math.round((latencyBefore + latencyAfter) / 2),
    }),
  );
}

await main();
