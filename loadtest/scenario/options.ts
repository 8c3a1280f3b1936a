/**
 * Options of `npm run loadtest`: the scenario (who the traders are and what they do), the run's bounds,
 * and the server it runs against. Every default is documented in docs/loadtest.md.
 */
import { parseArgs } from "node:util";
import { parseInterval, STREAM_INTERVALS_MS } from "../../durable-objects/order-book/stream-intervals.ts";

/** Relative weights of what a trader does when it wakes up. */
export interface ActionMix {
  /** Resting limit order (gtc) a few ticks behind the best price on its side. */
  placeLimit: number;
  /** Market order (day): takes liquidity at once. */
  placeMarket: number;
  /** Replace one of its open orders (new price a tick or two away, or a smaller quantity). */
  replace: number;
  /** Cancel one of its open orders. */
  cancel: number;
  /** GET /v2/account */
  account: number;
  /** GET /v2/positions */
  positions: number;
  /** GET /v2/orders (open) */
  openOrders: number;
  /** GET /v2/orders?status=closed (history) */
  closedOrders: number;
  /** GET /v2/account/activities/FILL (history) */
  fills: number;
  /** GET /v2/account/portfolio/history */
  portfolio: number;
}

export const DEFAULT_MIX: ActionMix = {
  placeLimit: 24,
  placeMarket: 6,
  replace: 8,
  cancel: 8,
  account: 20,
  positions: 14,
  openOrders: 10,
  closedOrders: 4,
  fills: 4,
  portfolio: 2,
};

export interface Options {
  users: number;
  /** Measured seconds (per ramp step in ramp mode). */
  duration: number;
  /** Unmeasured seconds of traffic before the measured window (per step). */
  warmup: number;
  seed: string;
  /** Mean think time between two actions of a person, ms (exponential). */
  thinkMs: number;
  /** Share of traders that are bots, with their own (shorter) mean think time. */
  botFraction: number;
  botThinkMs: number;
  /** Symbols the traders use (default: the catalog) and their Zipf exponent (rank 1 hottest). */
  symbols: string[];
  zipf: number;
  /** Book streams each trader keeps open (its most-watched symbols first). */
  books: number;
  /** Levels per side asked of each book stream's snapshot. */
  depth: number;
  /** Update interval (`interval_ms`) of a person's book streams, ms; 0 = every update. Bots take every update. */
  bookIntervalMs: number;
  /** Symbols a trader trades (its watch list); orders go to these, by popularity. */
  watch: number;
  /** Open the account's trade_updates socket (needed for the fill checks). */
  tradeUpdates: boolean;
  /** Shares granted to each trader per watched symbol, so traders can sell from the start (0 = none). */
  grantQty: number;
  /** At most this many open orders per trader: beyond it a new order becomes a cancel. */
  maxOpenOrders: number;
  mix: ActionMix;
  /** Hard bound on the requests of the whole run (setup excluded). */
  maxRequests: number;
  /** Keep-alive connections of the HTTP pool. */
  connections: number;
  /** Parallel registrations during setup (PBKDF2 runs in the worker: keep it near the core count). */
  setupConcurrency: number;
  /** Ramp steps (users), or empty for a single run. */
  ramp: number[];
  /** Targets that decide whether a run or step passes. */
  p95TargetMs: number;
  errorTarget: number;
  /** Server: `wrangler` (wrangler dev) or `miniflare` (workerd directly), or an external URL. */
  server: "wrangler" | "miniflare";
  target: string | null;
  /** Market-maker bots on (if the build has them): liquidity and trades to fill against. */
  marketSim: boolean;
  /** Run the read replica (as in dev). */
  replica: boolean;
  /** Postgres client auth of the throw-away stack: clear-text password (as via Neon's proxy) or SCRAM in the isolate. */
  pgAuth: "password" | "scram";
  /** Profile CPU by process every second (Linux /proc). */
  profile: boolean;
  /** Capture a V8 CPU profile of the worker through its inspector during the measured window. */
  cpuProfile: boolean;
  /** Write the results here (default loadtest/results). */
  outDir: string;
  /** Measure single-object capacities (trivial route, one UserSession, one OrderBook) instead of a scenario. */
  probe: boolean;
  /** Fan-out model only: print the capacity model for these watcher counts and exit. */
  simulate: number[] | null;
  /** Capacity model: measured per-object costs (JSON, fields of MeasuredCosts) to use instead of the defaults. */
  costs: string | null;
  /** Capacity model: take the active trader's request and order rates from this results file. */
  workloadFrom: string | null;
  /** Capacity model: share of concurrent users who trade (default 0.05), and per-socket conflation (10/s). */
  activeShare: number | null;
  conflateHz: number | null;
  quiet: boolean;
}

export const LIMITS = { users: 20_000, duration: 1_800, maxRequests: 5_000_000 } as const;

const USAGE = `usage: npm run loadtest -- [options]

  --users N            concurrent traders (default 100)
  --duration S         measured seconds (default 60; per step with --ramp)
  --warmup S           unmeasured seconds of traffic first (default 15)
  --ramp A,B,C         step ramp: run each user count in turn, stop at the first that misses the targets
  --seed TEXT          random seed (default "prepx")
  --think-ms MS        mean think time of a person (default 5000)
  --bot-fraction F     share of bots (default 0.1), --bot-think-ms MS (default 1000)
  --symbols A,B        symbols (default ACME,BOLT,CRUX,DYNA,EPIC), --zipf S (default 1.1)
  --books N            book streams per trader (default 1), --depth N levels (default 10)
  --book-interval MS   a person's book streams: one frame per 100, 250, 500 or 1000 ms, or 0 for every
                       update (default 0); bots take every update
  --watch N            symbols a trader trades (default 2)
  --no-trade-updates   do not open trade_updates sockets (skips the fill checks)
  --grant-qty N        shares granted per watched symbol at setup (default 200)
  --max-open N         open orders per trader at most (default 5)
  --mix k=v,...        action weights, e.g. placeLimit=30,account=10 (see docs/loadtest.md)
  --max-requests N     hard bound on requests (default users × duration × 2, at most 5,000,000)
  --connections N      keep-alive connections (default one per trader, at most 1,000)
  --setup-concurrency N parallel registrations (default 4)
  --p95-target MS      latency target for order placement and account reads (default 200)
  --error-target F     error-rate target (default 0.001)
  --server wrangler|miniflare   how the throw-away worker is served (default miniflare)
  --target URL         drive a running PrepX instead (http://127.0.0.1:8787); localhost only
  --no-market-sim      keep the market-maker bots off
  --no-replica         no streaming read replica in the throw-away stack
  --pg-scram           keep SCRAM for the worker's Postgres connections (default: clear-text password, as
                       the Neon driver sends it to Neon's proxy; SCRAM runs 4,096 PBKDF2 rounds in the isolate)
  --no-profile         no per-process CPU sampling
  --cpu-profile        V8 CPU profile of the worker during the measured window (miniflare/wrangler)
  --out DIR            results directory (default loadtest/results)
  --probe              measure single-object capacities (GET /health, one user's reads and orders)
  --simulate N,N,...   print the fan-out / capacity model for these concurrent users and exit
  --costs FILE         (with --simulate) measured per-object costs, JSON (see docs/capacity.md)
  --workload-from FILE (with --simulate) per-trader rates from a results JSON of a load run
  --active-share F     (with --simulate) share of users who trade (default 0.05; the rest watch)
  --conflate-hz N      (with --simulate) coalesced book updates per second per client socket (default 10; 0 = all)
  --quiet              no progress lines`;

function positiveInt(name: string, raw: string | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER) {
  if (raw === undefined) return fallback;
  const n = Number(raw.replace(/_/g, ""));
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new Error(`--${name} must be an integer in [0, ${max}]`);
  return n;
}

/** `--book-interval`: 0 (every update, the default) or one of the book stream's update intervals. */
function bookInterval(raw: string | undefined): number {
  if (raw === undefined || raw === "0") return 0;
  const ms = parseInterval(raw);
  if (ms === null) {
    throw new Error(`--book-interval must be 0 or one of ${STREAM_INTERVALS_MS.join(", ")}`);
  }
  return ms;
}

function fraction(name: string, raw: string | undefined, fallback: number) {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!(n >= 0 && n <= 1)) throw new Error(`--${name} must be a number in [0, 1]`);
  return n;
}

function intList(name: string, raw: string | undefined): number[] | null {
  if (raw === undefined) return null;
  const list = raw.split(",").map((s) => Number(s.trim().replace(/_/g, "")));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new Error(`--${name} takes positive integers separated by commas`);
  }
  return list;
}

export function parseMix(raw: string | undefined, base: ActionMix = DEFAULT_MIX): ActionMix {
  const mix = { ...base };
  if (!raw) return mix;
  for (const part of raw.split(",")) {
    const [key, value] = part.split("=").map((s) => s.trim());
    if (!key || !(key in mix))
      throw new Error(`--mix: unknown action "${key}" (known: ${Object.keys(mix).join(", ")})`);
    const n = Number(value);
    if (!(n >= 0)) throw new Error(`--mix: ${key} needs a weight ≥ 0`);
    mix[key as keyof ActionMix] = n;
  }
  if (Object.values(mix).every((w) => w === 0)) throw new Error("--mix: every weight is 0");
  return mix;
}

export function parseOptions(argv: string[]): Options | "help" {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      users: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      ramp: { type: "string" },
      seed: { type: "string" },
      "think-ms": { type: "string" },
      "bot-fraction": { type: "string" },
      "bot-think-ms": { type: "string" },
      symbols: { type: "string" },
      zipf: { type: "string" },
      books: { type: "string" },
      depth: { type: "string" },
      "book-interval": { type: "string" },
      watch: { type: "string" },
      "no-trade-updates": { type: "boolean" },
      "grant-qty": { type: "string" },
      "max-open": { type: "string" },
      mix: { type: "string" },
      "max-requests": { type: "string" },
      connections: { type: "string" },
      "setup-concurrency": { type: "string" },
      "p95-target": { type: "string" },
      "error-target": { type: "string" },
      server: { type: "string" },
      target: { type: "string" },
      "no-market-sim": { type: "boolean" },
      "no-replica": { type: "boolean" },
      "pg-scram": { type: "boolean" },
      "no-profile": { type: "boolean" },
      "cpu-profile": { type: "boolean" },
      out: { type: "string" },
      probe: { type: "boolean" },
      simulate: { type: "string" },
      costs: { type: "string" },
      "workload-from": { type: "string" },
      "active-share": { type: "string" },
      "conflate-hz": { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  const ramp = intList("ramp", values.ramp) ?? [];
  const users = positiveInt("users", values.users, ramp.length > 0 ? Math.max(...ramp) : 100, LIMITS.users);
  if (users < 1) throw new Error("--users must be at least 1");
  if (ramp.some((n) => n > LIMITS.users)) throw new Error(`--ramp steps are at most ${LIMITS.users} users`);
  const duration = positiveInt("duration", values.duration, 60, LIMITS.duration);
  if (duration < 1) throw new Error("--duration must be at least 1 s");
  const server = values.server ?? "miniflare";
  if (server !== "wrangler" && server !== "miniflare") throw new Error("--server is wrangler or miniflare");
  const symbols = (values.symbols ?? "ACME,BOLT,CRUX,DYNA,EPIC")
    .split(",")
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  const zipf = values.zipf === undefined ? 1.1 : Number(values.zipf);
  if (!(zipf >= 0 && zipf <= 5)) throw new Error("--zipf must be in [0, 5]");
  const peakUsers = ramp.length > 0 ? Math.max(...ramp) : users;
  const steps = Math.max(1, ramp.length);
  const maxRequests = positiveInt(
    "max-requests",
    values["max-requests"],
    Math.min(LIMITS.maxRequests, peakUsers * duration * steps * 2 + 10_000),
    LIMITS.maxRequests,
  );
  return {
    users,
    duration,
    warmup: positiveInt("warmup", values.warmup, 15, 600),
    seed: values.seed ?? "prepx",
    thinkMs: positiveInt("think-ms", values["think-ms"], 5_000, 3_600_000),
    botFraction: fraction("bot-fraction", values["bot-fraction"], 0.1),
    botThinkMs: positiveInt("bot-think-ms", values["bot-think-ms"], 1_000, 3_600_000),
    symbols,
    zipf,
    books: positiveInt("books", values.books, 1, 16),
    depth: Math.max(1, positiveInt("depth", values.depth, 10, 1000)),
    bookIntervalMs: bookInterval(values["book-interval"]),
    watch: Math.max(1, positiveInt("watch", values.watch, 2, 16)),
    tradeUpdates: !values["no-trade-updates"],
    grantQty: positiveInt("grant-qty", values["grant-qty"], 200, 1_000_000),
    maxOpenOrders: Math.max(1, positiveInt("max-open", values["max-open"], 5, 1000)),
    mix: parseMix(values.mix),
    maxRequests,
    // One keep-alive connection per trader (as each person's browser or bot has its own), up to 1,000:
    // requests then wait in the server, not in the generator's pool.
    connections: Math.max(1, positiveInt("connections", values.connections, Math.min(users, 1_000), 4096)),
    setupConcurrency: Math.max(1, positiveInt("setup-concurrency", values["setup-concurrency"], 4, 64)),
    ramp,
    p95TargetMs: positiveInt("p95-target", values["p95-target"], 200, 60_000),
    errorTarget: fraction("error-target", values["error-target"], 0.001),
    server,
    target: values.target ?? null,
    marketSim: !values["no-market-sim"],
    replica: !values["no-replica"],
    pgAuth: values["pg-scram"] ? "scram" : "password",
    profile: !values["no-profile"],
    cpuProfile: values["cpu-profile"] ?? false,
    outDir: values.out ?? "loadtest/results",
    probe: values.probe ?? false,
    simulate: intList("simulate", values.simulate),
    costs: values.costs ?? null,
    workloadFrom: values["workload-from"] ?? null,
    activeShare:
      values["active-share"] === undefined ? null : fraction("active-share", values["active-share"], 0.05),
    conflateHz:
      values["conflate-hz"] === undefined
        ? null
        : positiveInt("conflate-hz", values["conflate-hz"], 10, 1000),
    quiet: values.quiet ?? false,
  };
}

export { USAGE };
