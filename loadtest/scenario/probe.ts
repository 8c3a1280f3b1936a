/**
 * `--probe`: per-object capacity figures for the capacity model, measured end to end through the API:
 * a trivial route (`GET /health`, no object), account reads of ONE user (one UserSession object) and order
 * placements of ONE user (its UserSession and one OrderBook), each with `concurrency` requests in flight for
 * `seconds`. A Durable Object runs one request at a time, so the single-user rates are the objects'
 * throughput including the edge worker's share (auth, rate limit) of each request.
 */
import type { HttpClient } from "./http.ts";
import type { MarketView } from "./market.ts";
import { type LatencySummary, newHistogram, recordMs, summarize } from "./metrics.ts";

export interface ProbeFigure {
  name: string;
  concurrency: number;
  seconds: number;
  requests: number;
  perSec: number;
  errors: number;
  latency: LatencySummary;
}

async function hammer(
  name: string,
  concurrency: number,
  seconds: number,
  call: (i: number) => Promise<number>,
): Promise<ProbeFigure> {
  const h = newHistogram();
  let requests = 0;
  let errors = 0;
  let n = 0;
  const until = Date.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        const t = performance.now();
        const status = await call(n++);
        recordMs(h, performance.now() - t);
        requests++;
        if (status === 0 || status >= 400) errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return {
    name,
    concurrency,
    seconds: Math.round(elapsed * 10) / 10,
    requests,
    perSec: Math.round(requests / elapsed),
    errors,
    latency: summarize(h),
  };
}

export async function runProbes(
  http: HttpClient,
  market: MarketView,
  token: string,
  opts: { concurrency: number; seconds: number; symbol: string; log: (line: string) => void },
): Promise<ProbeFigure[]> {
  const auth = { authorization: `Bearer ${token}`, "cf-connecting-ip": "10.251.0.1" };
  const out: ProbeFigure[] = [];
  const run = async (name: string, call: (i: number) => Promise<number>) => {
    // A short warm-up, then the measurement.
    await hammer(name, opts.concurrency, 1, call);
    const f = await hammer(name, opts.concurrency, opts.seconds, call);
    opts.log(
      `probe ${name}: ${f.perSec}/s with ${f.concurrency} in flight, p50 ${f.latency.p50Ms} ms, ${f.errors} errors`,
    );
    out.push(f);
  };
  await run("GET /health (no object)", async () => (await http.request("GET", "/health")).status);
  await run(
    "GET /v2/account (one UserSession)",
    async () => (await http.request("GET", "/v2/account", { headers: auth })).status,
  );
  const info = market.of(opts.symbol);
  // IOC far below the market: each order goes through the account and the book and is canceled there
  // (nothing rests, so the account's 500-open-orders cap is never reached).
  const price = market.price(opts.symbol, Math.ceil(info.referenceTicks * 0.93));
  await run(`POST /v2/orders (one UserSession + the ${opts.symbol} OrderBook)`, async () => {
    const r = await http.request("POST", "/v2/orders", {
      headers: auth,
      body: {
        symbol: opts.symbol,
        side: "buy",
        type: "limit",
        time_in_force: "ioc",
        qty: "1",
        limit_price: price,
      },
    });
    return r.status;
  });
  await http.request("DELETE", "/v2/orders", { headers: auth });
  return out;
}
