/**
 * OrderBook Durable Object benchmark: `npm run bench:book`.
 *
 * Serves the bundled worker (port 8799, a throw-away persistence directory) straight from Miniflare — the
 * workerd the Workers test pool uses, without `wrangler dev`'s proxy in front; BENCH_SERVER=wrangler uses
 * `wrangler dev` instead — and measures, through the
 * development-only routes of workers/routes/market-data.ts (enabled only when ENVIRONMENT is
 * "development" or "test"):
 *
 * 1. RPC rate inside the Worker (no HTTP in the loop): `POST /v2/dev/book/:symbol/bench` runs a
 *    deterministic order flow against one book: one order per `submit` RPC (in sequence, and with 16 in
 *    flight), then `submitMany` batches of 100 (one and four in flight; commands and events cross packed,
 *    shared/engine/wire.ts: the load generator packs its batches before the clock starts and unpacks every
 *    answer into event objects). Every order is durable (its batch's journal row, which is also its outbox
 *    entry, committed) before its RPC answers. Each batched scenario runs BENCH_BATCHED_RUNS times (3) on
 *    fresh books and reports the median run.
 *    After each scenario the benchmark waits until the outbox has delivered everything (every account
 *    event to its UserSession, every event to the trade-events queue) and reports that rate too, and the
 *    server's CPU time per order before and after the last reply. A `ping` RPC baseline separates the cost
 *    of the call from the book's work.
 * 2. HTTP: 50 keep-alive connections POSTing one order each to `/v2/dev/book/:symbol/orders`.
 * 3. Fan-out: 1,000 WebSocket subscribers (not offering permessage-deflate) on one book while batches are
 *    submitted as fast as they go; the rate is messages received by all sockets per second, each socket
 *    checked for gaps, and the frames they came in (the book coalesces a window's messages into one frame
 *    per socket). Then batches one at a time, each delivered to every socket before the next: the server's
 *    CPU per frame there is the cost of one socket write, the capacity model's fan-out figure. Then a
 *    steady book (a batch of 10 every 25 ms for 4 s): the share of a core the server needs, and the frames
 *    per second each socket took (BENCH_FANOUT_INTERVAL sets the subscribers' `interval_ms`).
 * 4. In-process reference: the same flow through the pure engine, the journal row's encoding (the
 *    commands' JSON, Brotli) and the packing of a batch's commands and events both ways in Node, to show
 *    how much of an order's time is matching and serialisation.
 *
 * 5. The disk's write + fsync latency in the persistence directory: every durable commit pays for at least
 *    one, so it bounds the rate of one order per RPC from a single caller (group commit lifts it for
 *    concurrent callers).
 *
 * Knobs (env): BENCH_SINGLE (orders, default 3,000), BENCH_BATCHED (default 50,000), BENCH_BATCHED_RUNS
 * (default 3),
 * BENCH_HTTP (default 2,000), BENCH_SOCKETS (default 1,000), BENCH_FANOUT_BATCHES (default 100),
 * BENCH_FANOUT_INTERVAL (the subscribers' `interval_ms`, default 0: every update),
 * BENCH_ONLY (e.g. "single,batched"; default all of single,batched,http,fanout), BENCH_SERVER (miniflare
 * or wrangler), BENCH_PROFILE (a scenario label, e.g. BATCH100: a V8 CPU profile of that run),
 * BENCH_SERVER_LOG (a file that receives the server's output).
 * The last line printed is JSON: {"ordersPerSec", "batchedOrdersPerSec", "fanoutMsgsPerSec",
 * "fanoutFramesPerSec", "fanoutCpuUsPerFrame", "fanoutSteadyCpuPercent", ...}.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  appendFileSync,
  closeSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import http from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync } from "node:zlib";
import WebSocket from "ws";
import {
  type BookCommand,
  type PackedCommands,
  packCommands,
  unpackCommands,
} from "../durable-objects/order-book/commands.ts";
import { BROTLI_FASTEST_SMALL } from "../durable-objects/order-book/journal.ts";
import type { ServerMessage } from "../durable-objects/order-book/protocol.ts";
import { workload } from "../durable-objects/order-book/workload.ts";
import { EventLog, MatchingEngine } from "../shared/engine/index.ts";
import type { EngineCommand } from "../shared/engine/types.ts";
import { packLog } from "../shared/engine/wire.ts";
import { findSymbol, referencePriceTicks, type SymbolSpec, symbolRules } from "../shared/symbols.ts";
import {
  type CpuProfile,
  type RunningProfile,
  SourceMap,
  startCpuProfile,
  summarizeProfile,
} from "./scenario/cpu-profile.ts";
import { scanBookFrame } from "./scenario/streams.ts";

/** An environment knob that must be a whole number ≥ 1, or its default. */
function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value ?? fallback);
  return Number.isInteger(n) && n >= 1 ? n : fallback;
}

const PORT = Number(process.env.BENCH_PORT ?? 8799);
const BASE = `http://127.0.0.1:${PORT}`;
const SINGLE = Number(process.env.BENCH_SINGLE ?? 3_000);
const BATCHED = Number(process.env.BENCH_BATCHED ?? 50_000);
/**
 * Runs of each batched scenario, each on a fresh book; the figure reported is the median run (the lower
 * middle one for an even count). With the same code one run varied from ~38,000 to ~78,000 orders/s on
 * this machine, within one server as much as across servers, even after the isolate's warm-up. Every run
 * is printed.
 */
const BATCHED_RUNS = positiveInt(process.env.BENCH_BATCHED_RUNS, 3);
const HTTP_ORDERS = Number(process.env.BENCH_HTTP ?? 2_000);
const HTTP_CONNECTIONS = 50;
const SOCKETS = Number(process.env.BENCH_SOCKETS ?? 1_000);
const FANOUT_BATCHES = Number(process.env.BENCH_FANOUT_BATCHES ?? 100);
/** The fan-out subscribers' update interval (`?interval_ms=`, docs/market-data-protocol.md); 0 = every update. */
const FANOUT_INTERVAL = Number(process.env.BENCH_FANOUT_INTERVAL ?? 0);
/** How the worker is served: "miniflare" (default; workerd directly, as the test pool) or "wrangler" (dev). */
const SERVER = process.env.BENCH_SERVER === "wrangler" ? "wrangler" : "miniflare";
/**
 * BENCH_PROFILE=<label> (e.g. BATCH100): a V8 CPU profile of the worker isolate during that measured run,
 * through workerd's inspector; saved as bench-book-<label>.cpuprofile in BENCH_PROFILE_DIR (default: the temp dir) and
 * summarised (self time by function and file).
 */
const PROFILE = process.env.BENCH_PROFILE ?? "";
const INSPECTOR_PORT = PORT + 1000;
/** BENCH_SERVER_LOG=<file>: append the server's output (the worker's console) to that file. */
const SERVER_LOG = process.env.BENCH_SERVER_LOG ?? "";
const RUN = Date.now().toString(36).toUpperCase().slice(-5);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");

/** Where the bundle and its source map live while the server runs. */
let bundleDir = "";
/** Process group of the server (its workerd is in it), for CPU accounting. */
let serverPid: number | undefined;

/**
 * CPU time (ms) the server's processes (workerd and the Node process hosting Miniflare) have used so far,
 * from /proc; null where there is none. workerd runs every isolate and every object's SQLite on one
 * thread, so this is what bounds a book here, and it depends less on what else the machine runs than a
 * rate does.
 */
function serverCpuMs(): number | null {
  if (serverPid === undefined) return null;
  try {
    let ticks = 0;
    for (const pid of readdirSync("/proc")) {
      if (!/^[0-9]+$/.test(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue;
      }
      // After the command name: state ppid pgrp … utime (14th field of the line) stime (15th).
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === serverPid) ticks += Number(fields[11]) + Number(fields[12]);
    }
    return ticks * 10; // USER_HZ = 100
  } catch {
    return null;
  }
}

const log = (...args: unknown[]) => console.log(...args);

// -------------------------------------------------------------------------------------------------
// wrangler dev
// -------------------------------------------------------------------------------------------------

/**
 * The benchmark measures the book, not the downstream consumers: without a database the history consumer
 * would retry (and log) every trade event in the same process. Producers stay, so every event is still
 * sent to the queue. BENCH_KEEP_CONSUMERS=1 keeps them.
 */
function withoutQueueConsumers(toml: string): string {
  const out: string[] = [];
  let skipping = false;
  for (const line of toml.split("\n")) {
    const trimmed = line.trim();
    if (trimmed.startsWith("[")) skipping = trimmed === "[[queues.consumers]]";
    if (!skipping) out.push(line);
  }
  return out.join("\n");
}

/**
 * Bundle the Worker once and serve that bundle, so that edits to the working tree while the benchmark
 * runs (wrangler dev watches its sources) cannot restart the Worker mid-measurement.
 */
function bundle(dir: string): string {
  const out = join(dir, "dist");
  const built = spawnSync(WRANGLER, ["deploy", "--dry-run", "--outdir", out], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (built.status !== 0) throw new Error(`wrangler build failed:\n${built.stdout}\n${built.stderr}`);
  let config = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(
    /^main\s*=.*$/m,
    'main = "dist/index.js"\nno_bundle = true',
  );
  if (process.env.BENCH_KEEP_CONSUMERS !== "1") config = withoutQueueConsumers(config);
  const path = join(dir, "wrangler.toml");
  writeFileSync(path, config);
  return path;
}

/**
 * The same bundle served straight from Miniflare (one workerd, as the Workers test pool runs it): no
 * `wrangler dev` proxy worker in front, whose extra hop and log forwarding cost more than the book itself on
 * 2 cores (see docs/capacity.md, "wrangler dev vs Miniflare").
 */
async function startMiniflare(): Promise<{ child: ChildProcess; stop: () => void; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "bench-book-"));
  const config = bundle(dir);
  const varsFile = join(dir, "vars.json");
  writeFileSync(
    varsFile,
    JSON.stringify({ ENVIRONMENT: "development", LOG_LEVEL: "warn", MARKET_SIM_ENABLED: "false" }),
  );
  const child = spawn(
    process.execPath,
    [
      join(ROOT, "loadtest", "scenario", "miniflare-child.ts"),
      config,
      String(PORT),
      join(dir, "state"),
      varsFile,
      ...(PROFILE ? [String(INSPECTOR_PORT)] : []),
    ],
    { cwd: dir, stdio: ["pipe", "pipe", "pipe"], detached: true },
  );
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
    if (SERVER_LOG) appendFileSync(SERVER_LOG, d);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const stop = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`miniflare exited early:\n${output}`);
    try {
      const res = await fetch(`${BASE}/health`);
      if (res.ok) return { child, stop, dir };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  stop();
  throw new Error(`miniflare did not answer /health within 180 s:\n${output}`);
}

async function startWrangler(): Promise<{ child: ChildProcess; stop: () => void; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "bench-book-"));
  const config = bundle(dir);
  const child = spawn(
    WRANGLER,
    [
      "dev",
      "--config",
      config,
      "--port",
      String(PORT),
      "--ip",
      "127.0.0.1",
      "--inspector-port",
      String(PORT + 1000),
      "--persist-to",
      join(dir, "state"),
      "--var",
      "ENVIRONMENT:development",
      "--log-level",
      "warn",
      "--show-interactive-dev-session=false",
    ],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"], detached: true, env: { ...process.env, CI: "1" } },
  );
  let output = "";
  // Keep the tail of wrangler's output for error reports.
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const stop = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited early:\n${output}`);
    try {
      const res = await fetch(`${BASE}/health`);
      if (res.ok) return { child, stop, dir };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  stop();
  throw new Error(`wrangler dev did not answer /health within 90 s:\n${output}`);
}

async function post<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(`${BASE}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

async function get<T>(path: string): Promise<T> {
  const res = await fetch(`${BASE}${path}`);
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

interface BenchResult {
  orders: number;
  rpcs: number;
  ms: number;
  ordersPerSec: number;
  rpcsPerSec: number;
  /**
   * Outbox entries still undelivered when the last reply came (journal batches after the delivery cursor
   * plus rows of receivers that fell behind); when the outbox was empty again, and the rate up to then.
   */
  backlogRows: number;
  drainedMs: number;
  drainedOrdersPerSec: number;
  /** Server CPU time (all threads) per order until the last reply, and after it until the outbox was empty. */
  cpuUsPerOrder?: number;
  drainCpuUsPerOrder?: number;
  /** When the scenario ran more than once: orders/s of every run, in order (the result is the median run). */
  runs?: number[];
}

async function configure(symbol: string): Promise<void> {
  await post(`/v2/dev/book/${symbol}/configure`, { like: "ACME" });
}

// -------------------------------------------------------------------------------------------------
// Scenarios
// -------------------------------------------------------------------------------------------------

/** Books made so far: each run gets its own (a symbol holds at most 16 characters, so labels are cut). */
let books = 0;

/**
 * `rpcBench` `runs` times, each on a fresh book; the median run by orders/s (with its CPU and delivery
 * figures), and every run's rate. A profile (BENCH_PROFILE=label) covers the first run.
 */
async function repeatedBench(
  label: string,
  count: number,
  batch: number,
  concurrency: number,
  runs: number,
): Promise<BenchResult> {
  const results: BenchResult[] = [];
  for (let k = 0; k < runs; k++) results.push(await rpcBench(label, count, batch, concurrency, [k, runs]));
  const rates = results.map((r) => r.ordersPerSec);
  const median = [...results].sort((a, b) => a.ordersPerSec - b.ordersPerSec)[(runs - 1) >> 1] as BenchResult;
  if (runs > 1) {
    log(
      `  ${label.padEnd(12)} median of ${runs} runs: ${median.ordersPerSec} orders/s (runs: ${rates.join(", ")})`,
    );
  }
  return { ...median, runs: rates };
}

async function rpcBench(
  label: string,
  count: number,
  batch: number,
  concurrency: number,
  [run, runs]: [number, number] = [0, 1],
): Promise<BenchResult> {
  const symbol = `B${RUN}-${++books}-${label}`.slice(0, 16);
  await configure(symbol);
  // Warm up the isolate and the object (JIT, SQLite statement cache): a few hundred orders leave the
  // scenario that runs first in a fresh server measurably colder than the others.
  await post(`/v2/dev/book/${symbol}/bench`, {
    count: Math.min(batch === 1 ? 500 : 5_000, count),
    batch,
    concurrency,
    idPrefix: "w",
  });
  await post(`/v2/dev/book/${symbol}/drained`, {});
  const profiler = PROFILE === label && run === 0 ? await startCpuProfile(INSPECTOR_PORT, 200) : null;
  const cpuBefore = serverCpuMs();
  const r = await post<BenchResult>(`/v2/dev/book/${symbol}/bench`, {
    count,
    batch,
    concurrency,
    idPrefix: "m",
    seed: 2,
  });
  const cpuReplied = serverCpuMs();
  if (profiler !== null) await saveProfile(label, profiler);
  // The outbox delivers behind the replies: wait until it is empty, so the next scenario starts clean and
  // the delivery rate (every fill at its UserSession, every event on the queue) is known too. Timed here,
  // not in the worker: while the drain keeps workerd's one thread busy the request may wait to start.
  const drainStarted = performance.now();
  const drained = await post<{ ms: number; pending: number }>(`/v2/dev/book/${symbol}/drained`, {});
  if (drained.pending > 0) throw new Error(`${label}: outbox still holds ${drained.pending} after 60 s`);
  r.drainedMs = r.ms + Math.round(performance.now() - drainStarted);
  const cpuDrained = serverCpuMs();
  r.drainedOrdersPerSec = Math.round((count * 1000) / r.drainedMs);
  if (cpuBefore !== null && cpuReplied !== null && cpuDrained !== null) {
    r.cpuUsPerOrder = Math.round(((cpuReplied - cpuBefore) * 1000) / count);
    r.drainCpuUsPerOrder = Math.round(((cpuDrained - cpuReplied) * 1000) / count);
  }
  const name = runs > 1 ? `${label} ${run + 1}/${runs}` : label;
  log(
    `  ${name.padEnd(12)} ${String(r.orders).padStart(7)} orders in ${String(r.ms).padStart(6)} ms ` +
      `${String(r.ordersPerSec).padStart(7)} orders/s (${r.rpcsPerSec} RPC/s); all delivered after ` +
      `${r.drainedMs} ms: ${r.drainedOrdersPerSec} orders/s (${r.backlogRows} outbox entries left at the last reply); ` +
      `server CPU ${r.cpuUsPerOrder ?? "?"} µs/order to the last reply + ${r.drainCpuUsPerOrder ?? "?"} after`,
  );
  return r;
}

/** Stop the profile, save it (with the bundle's source map) and print where the isolate's time went. */
async function saveProfile(label: string, profiler: RunningProfile): Promise<void> {
  const profile: CpuProfile = await profiler.stop();
  const file = join(process.env.BENCH_PROFILE_DIR ?? tmpdir(), `bench-book-${label}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  let map: SourceMap | null = null;
  try {
    const text = readFileSync(join(bundleDir, "dist", "index.js.map"), "utf8");
    writeFileSync(`${file}.map`, text);
    map = new SourceMap(JSON.parse(text));
  } catch {
    // no source map: frames are named by bundle position
  }
  const summary = summarizeProfile(profile, 40, map);
  log(
    `  CPU profile of ${label} (${summary.totalMs} ms, idle ${Math.round(summary.idleShare * 100)} %): ${file}`,
  );
  for (const f of summary.topFunctions) {
    log(`    ${String(f.share).padStart(5)} %  ${String(f.selfMs).padStart(7)} ms  ${f.name}  ${f.file}`);
  }
  for (const f of summary.topFiles.slice(0, 20)) {
    log(`    file ${String(f.share).padStart(5)} %  ${f.file}`);
  }
}

/**
 * Warm the isolate before the first measured scenario: the scenario that ran first in a fresh server
 * measured 15–25 % more CPU per order than the same scenario run second, even after its own warm-up of
 * 5,000 orders.
 */
async function warmIsolate(): Promise<void> {
  const symbol = `B${RUN}-WARM`;
  await configure(symbol);
  await post(`/v2/dev/book/${symbol}/bench`, { count: 40_000, batch: 100, concurrency: 1, idPrefix: "w" });
  await post(`/v2/dev/book/${symbol}/drained`, {});
}

async function pingBench(concurrency: number): Promise<number> {
  const symbol = `B${RUN}-PING`;
  await configure(symbol);
  await post(`/v2/dev/book/${symbol}/bench-ping`, { count: 500, concurrency });
  const r = await post<{ perSec: number; ms: number; count: number }>(`/v2/dev/book/${symbol}/bench-ping`, {
    count: 5000,
    concurrency,
  });
  log(`  ping RPC (no book work), ${concurrency} in flight: ${r.perSec} RPC/s`);
  return r.perSec;
}

/** `count` requests over `HTTP_CONNECTIONS` keep-alive connections; answers requests per second. */
async function httpLoad(
  count: number,
  request: (i: number) => { method: string; path: string; body?: string },
) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: HTTP_CONNECTIONS });
  const send = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const { method, path, body } = request(i);
      const req = http.request(
        `${BASE}${path}`,
        { method, agent, headers: { "content-type": "application/json" } },
        (res) => {
          res.resume();
          res.on("end", () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`${path}: HTTP ${res.statusCode}`)),
          );
        },
      );
      req.on("error", reject);
      req.setTimeout(30_000, () => req.destroy(new Error("no answer within 30 s")));
      req.end(body);
    });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: HTTP_CONNECTIONS }, async () => {
      while (next < count) await send(next++);
    }),
  );
  const ms = performance.now() - started;
  agent.destroy();
  return Math.round((count * 1000) / ms);
}

async function httpBench(): Promise<{ orders: number; health: number }> {
  const symbol = `B${RUN}-HTTP`;
  await configure(symbol);
  const commands = workload({ seed: 9, count: HTTP_ORDERS + 100, idPrefix: "h", centre: 10_000 });
  const order = (i: number) => ({
    method: "POST",
    path: `/v2/dev/book/${symbol}/orders`,
    body: JSON.stringify(commands[i]),
  });
  // Warm-up with the first 100 orders, then the measured ones.
  await httpLoad(100, order);
  const orders = await httpLoad(HTTP_ORDERS, (i) => order(i + 100));
  // Baseline: the cheapest route of the same Worker (no Durable Object), same connections.
  const health = await httpLoad(HTTP_ORDERS, () => ({ method: "GET", path: "/health" }));
  log(
    `  HTTP, ${HTTP_CONNECTIONS} connections, one order per request: ${orders} orders/s ` +
      `(GET /health on the same server: ${health} req/s)`,
  );
  return { orders, health };
}

interface FanoutResult {
  /** Sequenced messages received by all sockets together, per second (batches as fast as they go). */
  msgsPerSec: number;
  /** WebSocket frames of that flow (one frame carries every message of a coalescing window). */
  frames: number;
  framesPerSec: number;
  /** Server CPU per message received by a socket in that flow (the book's commits included), µs. */
  cpuUsPerMsg: number | null;
  /** Server CPU, % of a core, while a batch of 10 comes every 25 ms (a busy book's steady state). */
  steadyCpuShare: number | null;
  /**
   * Server CPU per socket write of a frame of one batch's messages (~5), measured on a paced flow: one
   * batch, then wait until every socket has it. Includes the batch's commit and RPC spread over the
   * sockets.
   */
  cpuUsPerFrame: number | null;
  gaps: number;
  messages: number;
  ms: number;
}

const NO_FANOUT: FanoutResult = {
  msgsPerSec: 0,
  frames: 0,
  framesPerSec: 0,
  cpuUsPerMsg: null,
  steadyCpuShare: null,
  cpuUsPerFrame: null,
  gaps: 0,
  messages: 0,
  ms: 0,
};

/** Batches of the paced flow that measures the cost of one socket write. */
const PACED_BATCHES = 40;
/** The steady flow: a batch of 10 orders every STEADY_EVERY_MS, STEADY_BATCHES times (40 commits/s, 4 s). */
const STEADY_BATCHES = 160;
const STEADY_EVERY_MS = 25;

interface Subscriber {
  ws: WebSocket;
  seq: number;
  count: number;
  frames: number;
  gaps: number;
}

/** `SOCKETS` subscribers of `symbol`, each counting messages, frames and gaps. */
async function subscribers(symbol: string): Promise<Subscriber[]> {
  const sockets: Subscriber[] = [];
  const opened: Promise<void>[] = [];
  for (let i = 0; i < SOCKETS; i++) {
    // Without permessage-deflate, as the load runner's clients: offered, it makes workerd deflate every
    // frame once per socket where the client's connection ends (locally this same thread, in production
    // the edge that terminates the connection, not the book): 58 % of workerd's CPU in a perf profile of
    // this scenario, 125 µs per frame against ~45 without.
    const interval = FANOUT_INTERVAL > 0 ? `?interval_ms=${FANOUT_INTERVAL}` : "";
    const ws = new WebSocket(`ws://127.0.0.1:${PORT}/v2/stream/book/${symbol}${interval}`, {
      perMessageDeflate: false,
    });
    const s: Subscriber = { ws, seq: -1, count: 0, frames: 0, gaps: 0 };
    sockets.push(s);
    opened.push(
      new Promise<void>((resolve, reject) => {
        ws.once("error", reject);
        ws.on("message", (data: Buffer) => {
          const text = data.toString();
          if (s.seq < 0) {
            const m = JSON.parse(text) as ServerMessage;
            if (m.type === "snapshot") {
              s.seq = m.seq;
              resolve();
            }
            return;
          }
          // Deltas and trades (one per frame, or an array of them from a busy book): read "seq" without a
          // full parse (the client must not be the bottleneck).
          s.frames++;
          for (const m of scanBookFrame(text)) {
            if (m.type === "other" || m.type === "snapshot") continue;
            s.count++;
            if (m.seq !== s.seq + 1) s.gaps++;
            s.seq = m.seq;
          }
        });
      }),
    );
    // Open in waves so the server is not flooded.
    if (i % 100 === 99) await Promise.all(opened.slice(i - 99));
  }
  await Promise.all(opened);
  return sockets;
}

/** Resolves once every socket has received message `seq` (or after 120 s). */
async function delivered(sockets: readonly Subscriber[], seq: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (sockets.some((s) => s.seq < seq) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Waits until every socket has the book's latest message; returns its seq. */
async function deliveredAll(symbol: string, sockets: readonly Subscriber[]): Promise<number> {
  const { mdSeq } = await get<{ mdSeq: number }>(`/v2/dev/book/${symbol}/status`);
  await delivered(sockets, mdSeq);
  return mdSeq;
}

/** One counter summed over every socket. */
function total(sockets: readonly Subscriber[], counter: "count" | "frames" | "gaps"): number {
  return sockets.reduce((n, s) => n + s[counter], 0);
}

/** Server CPU ms spent since `before` (a `serverCpuMs()` reading), or null when it cannot be read. */
function cpuSince(before: number | null): number | null {
  const now = serverCpuMs();
  return before === null || now === null ? null : now - before;
}

/** `batches` batches of 10 orders of the deterministic flow, one RPC each, from the worker. */
function submitTens(symbol: string, batches: number, idPrefix: string, seed: number) {
  return post<BenchResult>(`/v2/dev/book/${symbol}/bench`, {
    count: batches * 10,
    batch: 10,
    concurrency: 1,
    idPrefix,
    seed,
  });
}

async function fanoutBench(): Promise<FanoutResult> {
  const symbol = `B${RUN}-FAN`;
  await configure(symbol);
  const sockets = await subscribers(symbol);
  log(
    `  ${SOCKETS} subscribers connected (${FANOUT_INTERVAL > 0 ? `interval_ms=${FANOUT_INTERVAL}` : "every update"})`,
  );
  const fastCpuBefore = serverCpuMs();
  const started = performance.now();
  const r = await submitTens(symbol, FANOUT_BATCHES, "f", 4);
  const mdSeq = await deliveredAll(symbol, sockets);
  const ms = performance.now() - started;
  const fastCpu = cpuSince(fastCpuBefore);
  const messages = total(sockets, "count");
  const frames = total(sockets, "frames");
  const gaps = total(sockets, "gaps");
  const complete = sockets.filter((s) => s.seq === mdSeq).length;
  const msgsPerSec = Math.round((messages * 1000) / ms);
  const framesPerSec = Math.round((frames * 1000) / ms);
  const cpuUsPerMsg =
    fastCpu === null || messages === 0 ? null : Math.round((fastCpu * 10_000) / messages) / 10;
  log(
    `  fan-out: ${r.rpcs} batches → ${mdSeq} sequenced messages × ${SOCKETS} sockets = ${messages} received in ` +
      `${Math.round(ms)} ms: ${msgsPerSec} msgs/s in ${frames} frames (${framesPerSec} frames/s); ` +
      `${complete}/${SOCKETS} sockets complete, ${gaps} gaps (book side: ${r.ordersPerSec} orders/s while broadcasting); ` +
      `server CPU ${cpuUsPerMsg ?? "?"} µs per message received`,
  );

  // The cost of one socket write: batches one at a time, each delivered to every socket before the next.
  const framesBefore = total(sockets, "frames");
  const pacedCpuBefore = serverCpuMs();
  for (let b = 0; b < PACED_BATCHES; b++) {
    await submitTens(symbol, 1, `p${b}`, 100 + b);
    await deliveredAll(symbol, sockets);
  }
  const pacedCpu = cpuSince(pacedCpuBefore);
  const pacedFrames = total(sockets, "frames") - framesBefore;
  const pacedGaps = total(sockets, "gaps") - gaps;
  const cpuUsPerFrame =
    pacedCpu === null || pacedFrames === 0 ? null : Math.round((pacedCpu * 1000) / pacedFrames);
  log(
    `  fan-out, one batch at a time: ${pacedFrames} frames, server CPU ${cpuUsPerFrame ?? "?"} µs per socket ` +
      `write, ${pacedGaps} gaps`,
  );

  // A steady book: a batch every STEADY_EVERY_MS for STEADY_BATCHES batches, the share of a core the server
  // spends (commits and socket writes), and the frames each socket took.
  const steadyFramesBefore = total(sockets, "frames");
  const steadyGapsBefore = total(sockets, "gaps");
  const steadyCpuBefore = serverCpuMs();
  const steadyStarted = performance.now();
  for (let b = 0; b < STEADY_BATCHES; b++) {
    await submitTens(symbol, 1, `s${b}`, 1_000 + b);
    const next = steadyStarted + (b + 1) * STEADY_EVERY_MS;
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
  }
  await deliveredAll(symbol, sockets);
  const steadyMs = performance.now() - steadyStarted;
  const steadyCpu = cpuSince(steadyCpuBefore);
  const steadyFrames = total(sockets, "frames") - steadyFramesBefore;
  const steadyGaps = total(sockets, "gaps") - steadyGapsBefore;
  const steadyCpuShare = steadyCpu === null ? null : Math.round((steadyCpu * 1000) / steadyMs) / 10;
  log(
    `  fan-out, a batch of 10 every ${STEADY_EVERY_MS} ms: ${Math.round((steadyFrames * 1000) / steadyMs / SOCKETS)} frames/s ` +
      `per socket, server CPU ${steadyCpuShare ?? "?"} % of a core over ${Math.round(steadyMs)} ms, ${steadyGaps} gaps`,
  );
  for (const s of sockets) s.ws.close(1000);
  return {
    steadyCpuShare,
    msgsPerSec,
    frames,
    framesPerSec,
    cpuUsPerMsg,
    cpuUsPerFrame,
    gaps: total(sockets, "gaps"),
    messages,
    ms: Math.round(ms),
  };
}

/** Mean latency of a 4 KiB write + fsync in `dir` (what one durable SQLite commit costs at least). */
function fsyncMs(dir: string): number {
  const file = join(dir, "fsync-probe");
  const fd = openSync(file, "w");
  const page = Buffer.alloc(4096, 1);
  const started = performance.now();
  for (let i = 0; i < 100; i++) {
    writeSync(fd, page);
    fsyncSync(fd);
  }
  const ms = (performance.now() - started) / 100;
  closeSync(fd);
  unlinkSync(file);
  return Math.round(ms * 1000) / 1000;
}

/**
 * The same flow through the pure engine, the journal row of each batch (its commands' JSON, then Brotli
 * at quality 0, as durable-objects/order-book/journal.ts does) and the book's side of the packing
 * (unpacking the commands a `submitMany` brings, packing the events it answers with), in Node. The
 * caller's side (packing the commands, unpacking the answer) is the load generator's, off the clock.
 */
function inProcessReference(count: number): {
  engineUsPerOrder: number;
  journalUsPerOrder: number;
  packingUsPerOrder: number;
} {
  const spec = findSymbol("ACME") as SymbolSpec;
  const run = () => {
    const engine = new MatchingEngine(symbolRules(spec), { referencePrice: referencePriceTicks(spec) });
    const commands = workload({ seed: 2, count, idPrefix: "n", centre: 10_000 }).map(
      (c) => ({ ...c, now: 1_750_000_000_000 }) as EngineCommand,
    );
    // As the book commits: a batch's events go to one log, each command's rows delimited by `bounds`.
    const batches: { log: EventLog; bounds: number[] }[] = [];
    const t0 = performance.now();
    for (let i = 0; i < commands.length; i += 100) {
      const log = new EventLog(512);
      const bounds = [0];
      for (const c of commands.slice(i, i + 100)) {
        engine.process(c, log);
        bounds.push(log.length);
      }
      batches.push({ log, bounds });
    }
    const t1 = performance.now();
    // A journal row: the batch's commands as JSON, Brotli-compressed (docs/adr/0007-command-journal.md).
    let bytes = 0;
    for (let i = 0; i < batches.length; i++) {
      bytes += brotliCompressSync(
        JSON.stringify(commands.slice(i * 100, i * 100 + 100)),
        BROTLI_FASTEST_SMALL,
      ).length;
    }
    const t2 = performance.now();
    // Packing, the book's side: it unpacks the commands it was sent and packs its answer from its log.
    const sent = batches.map((_, i) => packCommands(commands.slice(i * 100, i * 100 + 100) as BookCommand[]));
    const t3start = performance.now();
    for (let i = 0; i < batches.length; i++) {
      const { log, bounds } = batches[i] as (typeof batches)[number];
      bytes += unpackCommands(sent[i] as PackedCommands, 100, 0).length + packLog(log, bounds).n.length;
    }
    const t3 = performance.now();
    return { engine: t1 - t0, journal: t2 - t1, packing: t3 - t3start, bytes };
  };
  // The fastest of four runs per phase: the first runs compile the code.
  const runs = [run(), run(), run(), run()];
  const r = {
    engine: Math.min(...runs.map((x) => x.engine)),
    journal: Math.min(...runs.map((x) => x.journal)),
    packing: Math.min(...runs.map((x) => x.packing)),
  };
  const perOrder = (ms: number) => Math.round((ms * 1000 * 100) / count) / 100;
  return {
    engineUsPerOrder: perOrder(r.engine),
    journalUsPerOrder: perOrder(r.journal),
    packingUsPerOrder: perOrder(r.packing),
  };
}

// -------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  log(`bench:book — serving the bundled worker with ${SERVER} on ${BASE}`);
  const { stop, dir, child } = SERVER === "wrangler" ? await startWrangler() : await startMiniflare();
  serverPid = child.pid;
  bundleDir = dir;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      stop();
      process.exit(130);
    });
  }
  const fsync = fsyncMs(dir);
  log(`Disk: ${fsync} ms per 4 KiB write + fsync in the persistence directory`);
  try {
    log("RPC from inside the Worker (durable before each reply):");
    // BENCH_ONLY=single,batched,http,fanout runs a subset (skipped figures are reported as 0).
    const only = new Set((process.env.BENCH_ONLY ?? "single,batched,http,fanout").split(","));
    const skipped: BenchResult = {
      orders: 0,
      rpcs: 0,
      ms: 0,
      ordersPerSec: 0,
      rpcsPerSec: 0,
      backlogRows: 0,
      drainedMs: 0,
      drainedOrdersPerSec: 0,
    };
    await warmIsolate();
    const pingSeq = await pingBench(1);
    const pingConc = await pingBench(16);
    const single = only.has("single") ? await rpcBench("SINGLE", SINGLE, 1, 1) : skipped;
    const singleConcurrent = only.has("single") ? await rpcBench("SINGLE16", SINGLE, 1, 16) : skipped;
    const batched = only.has("batched")
      ? await repeatedBench("BATCH100", BATCHED, 100, 1, BATCHED_RUNS)
      : skipped;
    const batchedConcurrent = only.has("batched")
      ? await repeatedBench("BATCH100X4", BATCHED, 100, 4, BATCHED_RUNS)
      : skipped;
    const httpRate = only.has("http") ? await httpBench() : { orders: 0, health: 0 };
    const fanout = only.has("fanout") ? await fanoutBench() : NO_FANOUT;
    const ref = inProcessReference(100_000);
    log(
      `In-process reference (Node, same flow): engine ${ref.engineUsPerOrder} µs/order, ` +
        `journal row (commands: JSON + Brotli) ${ref.journalUsPerOrder} µs/order, ` +
        `the book's packing (commands in, events out) ${ref.packingUsPerOrder} µs/order`,
    );
    if (single.ordersPerSec > 0) {
      log(
        `Where the time goes, one order per RPC ≈ ${Math.round(1e6 / single.ordersPerSec)} µs: the RPC round ` +
          `trip ≈ ${Math.round(1e6 / pingSeq)} µs (ping) + one durable SQLite commit (≥ one fsync, ${fsync} ms ` +
          `on this disk now) + engine and journal row.`,
      );
    }
    if (batched.ordersPerSec > 0) {
      log(
        `Where the time goes, batches of 100 ≈ ${(1e6 / batched.ordersPerSec).toFixed(1)} µs/order ` +
          `(${batched.cpuUsPerOrder ?? "?"} µs of server CPU): engine ≈ ${ref.engineUsPerOrder} µs and journal ` +
          `row ≈ ${ref.journalUsPerOrder} µs and its packing ≈ ${ref.packingUsPerOrder} µs per order in Node; each ` +
          `batch also waits for its durable commit (≥ one fsync: ≈ ${(fsync * 10).toFixed(1)} µs/order on this disk ` +
          `now) and makes one RPC round trip (ping ≈ ${(1e6 / pingSeq / 100).toFixed(1)} µs/order); the rest is ` +
          `workerd's RPC and SQLite work and garbage collection (see docs/capacity.md). Delivering ` +
          `the outbox (to 20 UserSessions and the local queue, on workerd's one thread too) costs another ` +
          `${batched.drainCpuUsPerOrder ?? "?"} µs/order; it runs when workerd's event loop is free, mostly ` +
          `after the last reply.`,
      );
    }
    const summary = {
      ordersPerSec: single.ordersPerSec,
      ordersPerSecConcurrent16: singleConcurrent.ordersPerSec,
      batchedOrdersPerSec: batched.ordersPerSec,
      batchedOrdersPerSecConcurrent4: batchedConcurrent.ordersPerSec,
      batchedRuns: batched.runs ?? [],
      batchedConcurrent4Runs: batchedConcurrent.runs ?? [],
      batchedDeliveredOrdersPerSec: batched.drainedOrdersPerSec,
      batchedCpuUsPerOrder: batched.cpuUsPerOrder ?? null,
      batchedDrainCpuUsPerOrder: batched.drainCpuUsPerOrder ?? null,
      httpOrdersPerSec: httpRate.orders,
      httpHealthReqPerSec: httpRate.health,
      fanoutMsgsPerSec: fanout.msgsPerSec,
      fanoutFramesPerSec: fanout.framesPerSec,
      fanoutCpuUsPerFrame: fanout.cpuUsPerFrame,
      fanoutCpuUsPerMsg: fanout.cpuUsPerMsg,
      fanoutSteadyCpuPercent: fanout.steadyCpuShare,
      fanoutIntervalMs: FANOUT_INTERVAL,
      fanoutSockets: SOCKETS,
      fanoutGaps: fanout.gaps,
      pingRpcPerSec: pingSeq,
      pingRpcPerSecConcurrent16: pingConc,
      engineUsPerOrder: ref.engineUsPerOrder,
      journalUsPerOrder: ref.journalUsPerOrder,
      packingUsPerOrder: ref.packingUsPerOrder,
      fsyncMs: fsync,
      server: SERVER,
      loadAverage: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    };
    console.log(JSON.stringify(summary));
  } finally {
    stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
