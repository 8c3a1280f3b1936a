/**
 * `npm run loadtest`: N simulated traders against PrepX on this machine (docs/loadtest.md).
 *
 *   npm run loadtest -- --users 1000 --duration 60          # the headline run
 *   npm run loadtest -- --ramp 250,500,750,1000,1500        # the highest user count within the targets
 *   npm run loadtest -- --target http://127.0.0.1:8787      # against a running `npm run dev`
 *   npm run loadtest -- --simulate 10000,100000,1000000     # the capacity / fan-out model only
 *
 * Progress goes to stderr; results to loadtest/results/<timestamp>.{json,md,html}; the last line on stdout
 * is one JSON object with the headline figures.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { capacityReport, formatCapacityReport, type MeasuredCosts, type Workload } from "./fanout-model.ts";
import { type CrossFill, checkTrader, crossTraderConflicts, summarizeChecks } from "./scenario/checks.ts";
import {
  type CpuProfile,
  type ProfileSummary,
  type RunningProfile,
  SourceMap,
  startCpuProfile,
  summarizeProfile,
} from "./scenario/cpu-profile.ts";
import { assertLocalTarget, HttpClient } from "./scenario/http.ts";
import { MarketView } from "./scenario/market.ts";
import {
  mergeEncoded,
  reportWindow,
  round,
  summarize,
  Ticker,
  type TimelinePoint,
  Window,
  type WindowReport,
} from "./scenario/metrics.ts";
import { type Options, parseOptions, USAGE } from "./scenario/options.ts";
import { type BookProbe, type ProbeFigure, runBookProbes, runProbes } from "./scenario/probe.ts";
import { CpuProfiler } from "./scenario/profile.ts";
import { type RunResults, renderHtml, renderMarkdown, type StepVerdict } from "./scenario/report.ts";
import { Rng, Zipf } from "./scenario/rng.ts";
import { startTarget, type Target } from "./scenario/server.ts";
import { serverTimings } from "./scenario/server-log.ts";
import { adminToken, grantShares, pool, registerTraders } from "./scenario/setup.ts";
import { BookSocket, type StreamSink, TradeUpdatesSocket } from "./scenario/streams.ts";
import { type RunContext, Trader } from "./scenario/trader.ts";

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

let quiet = false;
const say = (line: string) => {
  if (!quiet) process.stderr.write(`[loadtest] ${line}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Operations whose p95 the targets apply to. */
export const TARGET_GROUPS = {
  "order placement": ["POST /v2/orders (limit)", "POST /v2/orders (market)"],
  "account reads": ["GET /v2/account", "GET /v2/positions"],
} as const;

function groupSummaries(w: WindowReport) {
  return Object.fromEntries(
    Object.entries(TARGET_GROUPS).map(([group, ops]) => {
      const encoded = w.ops.filter((o) => (ops as readonly string[]).includes(o.op)).map((o) => o.histogram);
      return [group, summarize(mergeEncoded(encoded))];
    }),
  );
}

function verdict(w: WindowReport, gaps: number, opts: Options, loopP99: number): StepVerdict {
  const reasons: string[] = [];
  const groups = groupSummaries(w);
  for (const [group, s] of Object.entries(groups)) {
    if (s.count > 0 && s.p95Ms > opts.p95TargetMs)
      reasons.push(`${group} p95 ${s.p95Ms} ms > ${opts.p95TargetMs} ms`);
  }
  if (w.errorRate > opts.errorTarget)
    reasons.push(`error rate ${(w.errorRate * 100).toFixed(3)} % > ${opts.errorTarget * 100} %`);
  if (gaps > 0) reasons.push(`${gaps} sequence gaps`);
  if (loopP99 > 100) reasons.push(`load generator event loop p99 ${loopP99} ms (the generator is saturated)`);
  return { users: w.users, pass: reasons.length === 0, reasons, groups };
}

async function main(): Promise<void> {
  const parsed = parseOptions(process.argv.slice(2));
  if (parsed === "help") {
    console.log(USAGE);
    return;
  }
  const opts = parsed;
  quiet = opts.quiet;
  if (opts.simulate) {
    const costs = opts.costs ? (JSON.parse(readFileSync(opts.costs, "utf8")) as Partial<MeasuredCosts>) : {};
    const workload = opts.workloadFrom
      ? workloadFromResults(JSON.parse(readFileSync(opts.workloadFrom, "utf8")))
      : {};
    if (opts.activeShare !== null) workload.activeShare = opts.activeShare;
    if (opts.conflateHz !== null) workload.conflateHz = opts.conflateHz;
    const report = capacityReport(opts.simulate, costs, workload);
    console.log(formatCapacityReport(report));
    console.log(JSON.stringify(report.summary));
    return;
  }

  const runId = Date.now().toString(36);
  const startedAt = new Date();
  const loadAtStart = os.loadavg().map((x) => round(x, 2));
  say(
    `run ${runId}: ${opts.ramp.length > 0 ? `ramp ${opts.ramp.join(" → ")}` : `${opts.users}`} traders, ${opts.duration} s measured, load average ${loadAtStart.join(" ")}`,
  );

  // --- the server ---------------------------------------------------------------------------------
  let target: Target;
  if (opts.target) {
    const u = assertLocalTarget(opts.target);
    target = {
      baseUrl: u.origin,
      mode: "external",
      processes: [],
      logFile: null,
      inspectorPort: null,
      sourceMapFile: null,
      stop: async () => {},
    };
    say(`driving the running PrepX at ${u.origin} (its own rate limits apply)`);
  } else {
    target = await startTarget({
      mode: opts.server,
      replica: opts.replica,
      pgAuth: opts.pgAuth,
      log: say,
      vars: {
        ENVIRONMENT: "development",
        RATE_LIMIT_AUTH_PER_MINUTE: "1000000",
        RATE_LIMIT_TRADING_PER_MINUTE: "1000000",
        RATE_LIMIT_LOGIN_FAILURES_PER_15_MINUTES: "1000000",
        ACCESS_TOKEN_TTL_SECONDS: "7200",
        MARKET_SIM_ENABLED: opts.marketSim ? "true" : "false",
      },
    });
  }
  const stopTarget = async () => {
    say("stopping the server…");
    await target.stop();
  };
  process.once("SIGINT", () => {
    void stopTarget().then(() => process.exit(130));
  });

  const http = new HttpClient({ baseUrl: target.baseUrl, connections: opts.connections });
  const market = new MarketView(opts.symbols);
  const profiler = new CpuProfiler(target.processes);
  if (opts.profile) profiler.start();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();

  // --- streams sink: what every socket reports ---------------------------------------------------
  const ctx: RunContext = {
    http,
    market,
    mix: opts.mix,
    runId,
    maxOpenOrders: opts.maxOpenOrders,
    window: null,
    ticker: new Ticker(),
    budget: opts.maxRequests,
    acting: false,
  };
  const totals = { gaps: 0, gapMessages: 0, stale: 0, disconnects: 0, messages: 0 };
  const sink: StreamSink = {
    bookMessage(bytes, lagMs) {
      totals.messages++;
      const w = ctx.window;
      if (!w) return;
      w.wsMessages++;
      w.wsBytes += bytes;
      if (lagMs !== undefined) w.bookLag.recordValue(Math.max(1, Math.round(Math.max(0, lagMs) * 1000)));
      ctx.ticker.message(lagMs);
    },
    gap(missing) {
      totals.gaps++;
      totals.gapMessages += missing;
      if (ctx.window) {
        ctx.window.gaps++;
        ctx.window.gapMessages += missing;
      }
    },
    stale() {
      totals.stale++;
      if (ctx.window) ctx.window.outOfOrder++;
    },
    disconnect(kind, code, reason) {
      totals.disconnects++;
      if (ctx.window) ctx.window.wsDisconnects++;
      say(`a ${kind} socket closed: ${code} ${reason}`);
    },
  };

  const windows: WindowReport[] = [];
  const profiles: { label: string; summary: ProfileSummary }[] = [];
  let lastProfile: CpuProfile | null = null;
  const verdicts: StepVerdict[] = [];
  const timeline: TimelinePoint[] = [];
  const traders: Trader[] = [];
  const bookSockets: BookSocket[] = [];
  const tuSockets: TradeUpdatesSocket[] = [];
  const setup = { seconds: 0, registered: 0, grantsFailed: 0, sockets: 0 };
  let checks: ReturnType<typeof summarizeChecks> | null = null;
  let probes: ProbeFigure[] | null = null;
  let bookProbe: BookProbe | null = null;
  let failure: string | null = null;
  const runSalt = Math.floor(Math.random() * 1e9);
  const zipf = new Zipf(opts.symbols.length, opts.zipf);

  try {
    // The market view: one full book per symbol.
    for (const s of opts.symbols) {
      const b = new BookSocket(target.baseUrl, s, 50, sink, true);
      await b.open();
      market.attach(s, b);
      bookSockets.push(b);
    }
    const admin = await adminToken(http, "10.250.0.1");
    if (opts.probe) {
      profiler.measure(true);
      const [probeUser] = await registerTraders(
        http,
        { runId, runSalt, from: 0, to: 1, concurrency: 1 },
        () => {},
      );
      const v8probe =
        opts.cpuProfile && target.inspectorPort
          ? await startCpuProfile(target.inspectorPort).catch(() => null)
          : null;
      probes = await runProbes(http, market, (probeUser as { accessToken: string }).accessToken, {
        concurrency: 16,
        seconds: Math.min(opts.duration, 15),
        symbol: opts.symbols.includes("DYNA") ? "DYNA" : (opts.symbols[0] as string),
        log: say,
      });
      bookProbe = await runBookProbes(target.baseUrl, { sockets: 1_000, batches: 60, log: say });
      const raw = v8probe ? await v8probe.stop().catch(() => null) : null;
      if (raw) {
        profiles.push({
          label: "probes",
          summary: summarizeProfile(raw, 30, sourceMapOf(target.sourceMapFile)),
        });
        lastProfile = raw;
      }
      profiler.measure(false);
    }
    const steps = opts.probe ? [] : opts.ramp.length > 0 ? opts.ramp : [opts.users];
    let t0 = 0;

    for (const [stepIndex, users] of steps.entries()) {
      // --- setup of the new traders (unmeasured) ---------------------------------------------------
      const setupStarted = Date.now();
      if (users > traders.length) {
        say(`registering traders ${traders.length + 1}…${users} (${opts.setupConcurrency} at a time)…`);
        const creds = await registerTraders(
          http,
          { runId, runSalt, from: traders.length, to: users, concurrency: opts.setupConcurrency },
          (done) => {
            if (done % 100 === 0) say(`  ${done} registered`);
          },
        );
        setup.registered += creds.length;
        const fresh = creds.map((c) => {
          const rng = new Rng(`${opts.seed}/trader/${c.index}`);
          const watch = zipf.sampleDistinct(rng, opts.watch).map((i) => opts.symbols[i] as string);
          const bot = rng.chance(opts.botFraction);
          return new Trader(ctx, c, rng, { watch, bot, thinkMs: bot ? opts.botThinkMs : opts.thinkMs });
        });
        if (opts.grantQty > 0) {
          const grants = fresh.flatMap((t) =>
            t.watch.map((symbol) => ({ userId: t.creds.userId, symbol, qty: opts.grantQty })),
          );
          say(`granting ${opts.grantQty} shares of each watched symbol (${grants.length} grants)…`);
          const granted = await grantShares(http, admin, grants, market, 8);
          const byUser = new Map(fresh.map((t) => [t.creds.userId, t]));
          granted.forEach((g, i) => {
            const grant = grants[i] as (typeof grants)[number];
            if (!g.ok) {
              setup.grantsFailed++;
              say(
                `  grant of ${grant.symbol} to trader ${byUser.get(grant.userId)?.creds.index} failed: HTTP ${g.status}`,
              );
              return;
            }
            const t = byUser.get(grant.userId) as Trader;
            t.granted.set(grant.symbol, grant.qty);
            t.held.set(grant.symbol, grant.qty);
          });
        }
        say(
          `opening sockets (${opts.books} book stream(s)${opts.tradeUpdates ? " + trade_updates" : ""} per trader)…`,
        );
        await pool(fresh, 50, async (t) => {
          for (const symbol of t.watch.slice(0, opts.books)) {
            const interval = t.bot ? 0 : opts.bookIntervalMs;
            const b = new BookSocket(target.baseUrl, symbol, opts.depth, sink, false, interval);
            await b.open();
            bookSockets.push(b);
          }
          if (opts.tradeUpdates) {
            const s = new TradeUpdatesSocket(
              target.baseUrl,
              () => t.headers(),
              (u, lag) => t.onTradeUpdate(u, lag),
              sink,
            );
            await s.open();
            tuSockets.push(s);
          }
        });
        setup.sockets = bookSockets.length + tuSockets.length;
        ctx.acting = true;
        for (const t of fresh) {
          traders.push(t);
          t.start();
        }
      }
      setup.seconds += (Date.now() - setupStarted) / 1000;

      // --- warm-up, then the measured window --------------------------------------------------------
      if (opts.warmup > 0) {
        say(`step ${stepIndex + 1}/${steps.length}: ${users} traders, warming up ${opts.warmup} s…`);
        await sleep(opts.warmup * 1000);
      }
      const w = new Window(steps.length > 1 ? `${users} users` : "run");
      ctx.ticker.tick(0, users);
      loop.reset();
      w.startedAt = Date.now();
      ctx.window = w;
      profiler.measure(true);
      let v8: RunningProfile | null = null;
      if (opts.cpuProfile && target.inspectorPort) {
        v8 = await startCpuProfile(target.inspectorPort).catch((err: unknown) => {
          say(`CPU profile not started: ${err instanceof Error ? err.message : String(err)}`);
          return null;
        });
      }
      say(`step ${stepIndex + 1}/${steps.length}: measuring ${users} traders for ${opts.duration} s`);
      for (let s = 1; s <= opts.duration; s++) {
        await sleep(w.startedAt + s * 1000 - Date.now());
        const p = ctx.ticker.tick(t0 + s, users);
        timeline.push(p);
        const cpu = profiler.samples.at(-1);
        const cpuText = cpu
          ? ` | cpu ${Object.entries(cpu.components)
              .filter(([, v]) => v >= 1)
              .map(([k, v]) => `${k.split(" ")[0]} ${v.toFixed(0)}%`)
              .join(" ")}`
          : "";
        if (s % 5 === 0 || s === opts.duration) {
          say(
            `  t=${String(s).padStart(3)}s ${String(p.requests).padStart(5)} req/s p50 ${p.p50Ms} p95 ${p.p95Ms} p99 ${p.p99Ms} ms, ` +
              `${p.errors} err, ws ${p.wsMessages} msg/s lag p95 ${p.wsLagP95Ms} ms, gaps ${totals.gaps}${cpuText}`,
          );
        }
        if (ctx.budget <= 0) {
          say("request budget (--max-requests) used up: ending the window early");
          break;
        }
      }
      t0 += opts.duration;
      w.endedAt = Date.now();
      ctx.window = null;
      profiler.measure(false);
      if (v8) {
        const raw = await v8.stop().catch(() => null);
        if (raw) {
          profiles.push({
            label: w.label,
            summary: summarizeProfile(raw, 30, sourceMapOf(target.sourceMapFile)),
          });
          lastProfile = raw;
        }
      }
      const report = reportWindow(w, users);
      const loopP99 = round(loop.percentile(99) / 1e6, 1);
      (report as WindowReport & { generatorLoopP99Ms?: number }).generatorLoopP99Ms = loopP99;
      windows.push(report);
      const v = verdict(report, w.gaps, opts, loopP99);
      verdicts.push(v);
      say(
        `step ${stepIndex + 1}: ${report.requests} requests, ${report.rps} req/s, p95 ${report.latency.p95Ms} ms, ` +
          `p99 ${report.latency.p99Ms} ms, errors ${(report.errorRate * 100).toFixed(3)} % → ${v.pass ? "PASS" : `MISS (${v.reasons.join("; ")})`}`,
      );
      if (!v.pass && steps.length > 1) {
        say("targets missed: the ramp stops here");
        break;
      }
      if (ctx.budget <= 0) break;
    }

    // --- wind down and check ---------------------------------------------------------------------
    ctx.acting = false;
    await Promise.all(traders.map((t) => t.stop()));
    say("cancelling the traders' open orders and letting the last events arrive…");
    await pool(traders, 8, (t) => http.request("DELETE", "/v2/orders", { headers: t.headers() }));
    let last = -1;
    for (let i = 0; i < 40; i++) {
      await sleep(500);
      const n = traders.reduce((a, t) => a + t.tradeUpdates, 0);
      if (n === last && i >= 4) break;
      last = n;
    }
    for (const b of bookSockets) b.close();
    say(`checking ${traders.length} accounts (orders, fills, ledgers)…`);
    const perTrader = await pool(traders, 8, (t) => checkTrader(http, t, market, opts.tradeUpdates));
    const cross = new Map<string, CrossFill[]>();
    for (const t of traders) {
      for (const f of t.fills.values()) {
        const list = cross.get(f.executionId) ?? [];
        list.push({ trader: t.creds.index, side: f.side, qtyLots: f.qtyLots, priceTicks: f.priceTicks });
        cross.set(f.executionId, list);
      }
    }
    checks = summarizeChecks(perTrader, crossTraderConflicts(cross), opts.tradeUpdates);
    say(
      `checks: ${checks.ok ? "OK" : "FAILED"} — ${checks.ackedOrders} acknowledged orders (${checks.lostOrders} lost), ` +
        `${checks.fillsReceived} fills (${checks.duplicateFills} duplicated), ${checks.ledgerImbalanced} unbalanced ledgers`,
    );
    for (const e of checks.examples) say(`  ${e}`);
  } catch (err) {
    failure = err instanceof Error ? (err.stack ?? err.message) : String(err);
    say(`run failed: ${failure}`);
  } finally {
    ctx.acting = false;
    for (const s of tuSockets) s.close();
    for (const b of bookSockets) b.close();
    profiler.stop();
    http.close();
  }

  const timings = target.logFile ? serverTimings(target.logFile, windows) : null;
  await stopTarget();

  // --- results ---------------------------------------------------------------------------------------
  const passing = verdicts.filter((v) => v.pass);
  const headlineIndex =
    verdicts.length > 1 && passing.length > 0
      ? verdicts.lastIndexOf(passing.at(-1) as StepVerdict)
      : windows.length - 1;
  const hw = windows[headlineIndex];
  const headline = {
    users: hw?.users ?? 0,
    requests: hw?.requests ?? 0,
    rps: hw?.rps ?? 0,
    p95Ms: hw?.latency.p95Ms ?? 0,
    p99Ms: hw?.latency.p99Ms ?? 0,
    errorRate: hw?.errorRate ?? 0,
    wsLagP95Ms: hw?.ws.bookLag.p95Ms ?? 0,
    gaps: totals.gaps,
  };
  const results: RunResults = {
    version: 1,
    runId,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: opts,
    target: { mode: target.mode, baseUrl: target.baseUrl },
    machine: {
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? "",
      node: process.version,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)),
    },
    setup,
    windows,
    verdicts,
    ceiling: verdicts.length > 1 ? (passing.at(-1)?.users ?? 0) : null,
    streams: { ...totals, bookSockets: bookSockets.length, tradeUpdateSockets: tuSockets.length },
    checks,
    cpu: opts.profile ? profiler.summary() : null,
    serverTimings: timings,
    workerProfiles: profiles,
    probes,
    bookProbe,
    timeline,
    headline,
    failure,
  };
  const outDir = path.resolve(REPO, opts.outDir);
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-").replace(/Z$/, "");
  const base = path.join(outDir, stamp);
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 1)}\n`);
  writeFileSync(`${base}.md`, renderMarkdown(results));
  writeFileSync(`${base}.html`, renderHtml(results));
  if (lastProfile) writeFileSync(`${base}.cpuprofile`, JSON.stringify(lastProfile));
  say(`results: ${path.relative(REPO, base)}.{json,md,html}`);
  if (failure) process.exitCode = 1;
  else if (checks && !checks.ok) process.exitCode = 2;
  console.log(JSON.stringify(headline));
}

function sourceMapOf(file: string | null): SourceMap | null {
  if (!file) return null;
  try {
    return new SourceMap(JSON.parse(readFileSync(file, "utf8")) as { sources: string[]; mappings: string });
  } catch {
    return null;
  }
}

/** An active trader's request and order-command rates, from the headline window of a load run. */
function workloadFromResults(r: RunResults): Partial<Workload> {
  const w = r.windows.find((x) => x.users === r.headline.users) ?? r.windows.at(-1);
  if (!w || w.users === 0) return {};
  const orderOps = w.ops.filter((o) => /^(POST|PATCH|DELETE) \/v2\/orders/.test(o.op));
  return {
    reqPerActiveUserSec: round(w.rps / w.users, 4),
    orderCmdsPerActiveUserSec: round(orderOps.reduce((a, o) => a + o.rps, 0) / w.users, 4),
    booksPerUser: r.options.books,
    zipf: r.options.zipf,
  };
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
