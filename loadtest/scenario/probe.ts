/**
 * `--probe`: per-object capacity figures for the capacity model, measured end to end through the API:
 * a trivial route (`GET /health`, no object), account reads of ONE user (one UserSession object) and order
 * placements of ONE user (its UserSession and one OrderBook), each with `concurrency` requests in flight for
 * `seconds`. A Durable Object runs one request at a time, so the single-user rates are the objects'
 * throughput including the edge worker's share (auth, rate limit) of each request.
 */
import WebSocket from "ws";
import { HttpClient } from "./http.ts";
import type { MarketView } from "./market.ts";
import { type LatencySummary, newHistogram, recordMs, summarize } from "./metrics.ts";
import { scanBookFrame } from "./streams.ts";

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

export interface BookProbe {
  /** One order per `submit` RPC, one in flight (durable before each reply). */
  singleOrdersPerSec: number;
  /** `submitMany` batches of 100, one in flight. */
  batchedOrdersPerSec: number;
  /** No-op RPC round trips per second, one in flight. */
  pingRpcPerSec: number;
  /** Messages delivered per second by one book to `sockets` subscribers (batches of 10 orders). */
  fanoutMsgsPerSec: number;
  fanoutSockets: number;
  fanoutGaps: number;
}

/**
 * The OrderBook's own rates (the development-only `/v2/dev/book/*` routes drive it from inside the
 * worker, as `npm run bench:book` does, but on this run's server instead of `wrangler dev`): single and
 * batched orders, a no-op RPC baseline, and fan-out to `sockets` book-stream subscribers.
 */
export async function runBookProbes(
  baseUrl: string,
  opts: { sockets: number; batches: number; log: (line: string) => void },
): Promise<BookProbe> {
  // The in-worker benchmarks answer only when done: a patient client of their own.
  const http = new HttpClient({ baseUrl, connections: 4, timeoutMs: 300_000 });
  const tag = Date.now().toString(36).toUpperCase().slice(-5);
  const post = async <T>(path: string, body: unknown): Promise<T> => {
    const r = await http.request("POST", path, { body });
    if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as T;
  };
  const bench = async (symbol: string, count: number, batch: number) => {
    await post(`/v2/dev/book/${symbol}/configure`, { like: "ACME" });
    await post(`/v2/dev/book/${symbol}/bench`, {
      count: Math.min(500, count),
      batch,
      concurrency: 1,
      idPrefix: "w",
    });
    return post<{ ordersPerSec: number }>(`/v2/dev/book/${symbol}/bench`, {
      count,
      batch,
      concurrency: 1,
      idPrefix: "m",
      seed: 2,
    });
  };
  const single = await bench(`LTS${tag}`, 2_000, 1);
  opts.log(`probe OrderBook, one order per RPC: ${single.ordersPerSec} orders/s`);
  const batched = await bench(`LTB${tag}`, 20_000, 100);
  opts.log(`probe OrderBook, batches of 100: ${batched.ordersPerSec} orders/s`);
  await post(`/v2/dev/book/LTP${tag}/configure`, { like: "ACME" });
  await post(`/v2/dev/book/LTP${tag}/bench-ping`, { count: 500, concurrency: 1 });
  const ping = await post<{ perSec: number }>(`/v2/dev/book/LTP${tag}/bench-ping`, {
    count: 3_000,
    concurrency: 1,
  });
  opts.log(`probe RPC round trip (no-op): ${ping.perSec}/s`);

  // Fan-out: subscribers on a fresh book, then a flow of batches of 10 orders from inside the worker.
  const symbol = `LTF${tag}`;
  await post(`/v2/dev/book/${symbol}/configure`, { like: "ACME" });
  const ws = baseUrl.replace(/^http/, "ws");
  const sockets: { socket: WebSocket; seq: number; count: number; gaps: number }[] = [];
  for (let i = 0; i < opts.sockets; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, opts.sockets - i) }, async () => {
        const socket = new WebSocket(`${ws}/v2/stream/book/${symbol}?depth=10`, { perMessageDeflate: false });
        const s = { socket, seq: -1, count: 0, gaps: 0 };
        sockets.push(s);
        await new Promise<void>((resolve, reject) => {
          socket.once("error", reject);
          socket.on("message", (data: Buffer) => {
            for (const m of scanBookFrame(data.toString("utf8"))) {
              if (m.type === "snapshot") {
                s.seq = m.seq;
                resolve();
              } else if (m.type !== "other") {
                s.count++;
                if (m.seq !== s.seq + 1) s.gaps++;
                s.seq = m.seq;
              }
            }
          });
        });
      }),
    );
  }
  const started = performance.now();
  await post(`/v2/dev/book/${symbol}/bench`, {
    count: opts.batches * 10,
    batch: 10,
    concurrency: 1,
    idPrefix: "f",
    seed: 4,
  });
  const status = (await http.request("GET", `/v2/dev/book/${symbol}/status`)).body as { mdSeq: number };
  const deadline = Date.now() + 120_000;
  while (sockets.some((s) => s.seq < status.mdSeq) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - started) / 1000;
  const messages = sockets.reduce((a, s) => a + s.count, 0);
  const gaps = sockets.reduce((a, s) => a + s.gaps, 0);
  for (const s of sockets) s.socket.close(1000);
  http.close();
  const fanout = Math.round(messages / seconds);
  opts.log(
    `probe fan-out: ${status.mdSeq} messages × ${sockets.length} sockets in ${seconds.toFixed(1)} s = ${fanout} msgs/s, ${gaps} gaps`,
  );
  return {
    singleOrdersPerSec: single.ordersPerSec,
    batchedOrdersPerSec: batched.ordersPerSec,
    pingRpcPerSec: ping.perSec,
    fanoutMsgsPerSec: fanout,
    fanoutSockets: sockets.length,
    fanoutGaps: gaps,
  };
}
