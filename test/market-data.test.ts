// The simulated market and the market-data API through the real HTTP / WebSocket surface of
// `wrangler dev`: an admin starts EPIC's market maker, a trader trades against it, the trades become bars
// through the queue, and the data API, the data stream and the caches answer in Alpaca's shapes.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { aggregateBars, type BarTrade, TIMEFRAMES, vwapString } from "../shared/market/bars.ts";
import { writeTradesAndBars } from "../workers/consumers/bars.ts";
import type { Env } from "../workers/env.ts";
import { readBars } from "../workers/lib/market/queries.ts";
import {
  adminToken as adminLogin,
  api,
  freshIp,
  type JsonSocket,
  newTrader,
  openSocket,
  type Trader,
} from "./client.ts";

// EPIC is used by no other test file; the market is stopped and orders canceled in afterAll.
const SYMBOL = "EPIC";
const SPREAD_TICKS = 4;
let trader: Trader;
let adminToken: string;
let keys: { key_id: string; secret_key: string };
/** Subscribed to EPIC's minute bars from the start, so one has closed by the time it is checked. */
let barSocket: JsonSocket;
let barSubscribedAt = 0;

type Quote = { t: string; bp: number; bs: number; ap: number; as: number; bx: string; ax: string };
type Bar = { t: string; o: number; h: number; l: number; c: number; v: number; n: number; vw: number };
type Trade = { t: string; p: number; s: number; i: number; x: string };
interface Metrics {
  ticks: number;
  ticksPerSec: number;
  requoteMsAvg: number;
  requoteMsMax: number;
  tickMsAvg: number;
  takerOrders: number;
  quoteActions: number;
  quoteRejects: number;
}
type Status = Record<string, unknown> & {
  mode: string;
  reference: number | null;
  metrics: Metrics;
  ladder: { bids: { price: number; qty: number }[]; asks: { price: number; qty: number }[] };
};

const admin = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) =>
  api<T>(method, path, { token: adminToken, body, ip: freshIp() });

async function until<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

beforeAll(async () => {
  adminToken = await adminLogin();
  trader = await newTrader("md");
  const key = await trader.call<{ key_id: string; secret_key: string }>("POST", "/v1/api-keys", {
    name: "data",
  });
  expect(key.status).toBe(201);
  keys = key.body;
  const started = await admin<Status>("POST", `/admin/market/${SYMBOL}/start`, {
    tickMs: 1_000,
    quote: { spreadTicks: SPREAD_TICKS, levels: 5 },
    noise: { takers: 2, tradeProbability: 0.5 },
  });
  expect(started.status).toBe(200);
  expect(started.body.mode).toBe("running");
  barSocket = await openSocket("/v2/sip", {
    "APCA-API-KEY-ID": keys.key_id,
    "APCA-API-SECRET-KEY": keys.secret_key,
  });
  barSocket.send({ action: "subscribe", bars: [SYMBOL] });
  await barSocket.next((m) => first(m)?.T === "subscription");
  barSubscribedAt = Date.now();
}, 120_000);

afterAll(async () => {
  await barSocket?.close();
  await admin("POST", `/admin/market/${SYMBOL}/stop`);
  await trader?.call("DELETE", "/v2/orders");
});

describe("the simulated market", () => {
  it("quotes both sides around the reference price with at least the configured spread", async () => {
    const quote = await until("a two-sided quote", async () => {
      const res = await trader.call<{ symbol: string; quote: Quote }>(
        "GET",
        `/v2/stocks/${SYMBOL}/quotes/latest`,
      );
      return res.status === 200 && res.body.quote.bp > 0 && res.body.quote.ap > 0 ? res.body : null;
    });
    expect(quote.symbol).toBe(SYMBOL);
    expect(Object.keys(quote.quote).sort()).toEqual(["ap", "as", "ax", "bp", "bs", "bx", "c", "t", "z"]);
    const spread = Math.round((quote.quote.ap - quote.quote.bp) * 100);
    expect(spread).toBeGreaterThanOrEqual(SPREAD_TICKS);
    const status = await admin<Status>("GET", `/admin/market/${SYMBOL}`);
    expect(status.body.mode).toBe("running");
    const ref = (status.body.reference ?? 0) / 100;
    expect(Math.abs((quote.quote.ap + quote.quote.bp) / 2 - ref)).toBeLessThan(0.5);
  });

  it("fills a trader's market order against the maker near the reference price", async () => {
    const status = await admin<Status>("GET", `/admin/market/${SYMBOL}`);
    const ref = status.body.reference ?? 0;
    const buy = await trader.call<Record<string, string>>("POST", "/v2/orders", {
      symbol: SYMBOL,
      side: "buy",
      type: "market",
      time_in_force: "day",
      qty: "10",
    });
    expect(buy.status).toBe(200);
    expect(buy.body.status).toBe("filled");
    const avg = Math.round(Number(buy.body.filled_avg_price) * 100);
    // Within the maker's spread plus a few ticks of movement since the status was read.
    expect(Math.abs(avg - ref)).toBeLessThanOrEqual(SPREAD_TICKS + 10);
    const position = await trader.call<Record<string, string>>("GET", `/v2/positions/${SYMBOL}`);
    expect(position.body.qty).toBe("10");
  });

  it("keeps ticking by itself, moving quotes and the tape", async () => {
    const before = await admin<Status>("GET", `/admin/market/${SYMBOL}`);
    await new Promise((r) => setTimeout(r, 3_500));
    const after = await admin<Status>("GET", `/admin/market/${SYMBOL}`);
    expect(after.body.metrics.ticks).toBeGreaterThan(before.body.metrics.ticks);
    expect(after.body.metrics.takerOrders).toBeGreaterThan(0);
    console.log(
      `[market] ${SYMBOL}: ${after.body.metrics.ticks} ticks, ${after.body.metrics.ticksPerSec.toFixed(2)} ticks/s, ` +
        `requote avg ${after.body.metrics.requoteMsAvg.toFixed(0)} ms (max ${after.body.metrics.requoteMsMax} ms), ` +
        `tick avg ${after.body.metrics.tickMsAvg.toFixed(0)} ms, taker orders ${after.body.metrics.takerOrders}, ` +
        `quote actions ${after.body.metrics.quoteActions} (refused ${after.body.metrics.quoteRejects})`,
    );
  });
});

describe("the market-data WebSocket", () => {
  let socket: JsonSocket;

  afterAll(async () => {
    await socket?.close();
  });

  it("authenticates with headers and streams quotes and trades of the subscribed symbol", async () => {
    socket = await openSocket("/v2/stream/data", { Authorization: `Bearer ${trader.token}` });
    const hello = await socket.next((m) => Array.isArray(m) || m.T === "success");
    expect(hello).toBeDefined();
    socket.send({ action: "subscribe", trades: [SYMBOL], quotes: [SYMBOL] });
    const sub = await socket.next((m) => first(m)?.T === "subscription");
    expect(first(sub)).toEqual({ T: "subscription", trades: [SYMBOL], quotes: [SYMBOL], bars: [] });
    const q = await socket.next((m) => first(m)?.T === "q", 15_000);
    expect(first(q)).toMatchObject({ T: "q", S: SYMBOL, bx: "PX", ax: "PX" });
    const t = await socket.next((m) => first(m)?.T === "t", 20_000);
    expect(first(t)).toMatchObject({ T: "t", S: SYMBOL, x: "PX", c: ["@"] });
  });

  it("stops sending a symbol's messages after unsubscribe", async () => {
    socket.send({ action: "unsubscribe", trades: [SYMBOL], quotes: [SYMBOL] });
    const sub = await socket.next(
      (m) => first(m)?.T === "subscription" && (first(m)?.trades as string[] | undefined)?.length === 0,
    );
    expect(first(sub)).toEqual({ T: "subscription", trades: [], quotes: [], bars: [] });
    const seen = socket.messages.length;
    await new Promise((r) => setTimeout(r, 3_000));
    const late = socket.messages.slice(seen).filter((m) => ["t", "q"].includes(String(first(m)?.T)));
    expect(late).toEqual([]);
  });

  it("authenticates with Alpaca's auth message (API key) and refuses bad credentials", async () => {
    const ws = await openSocket("/v2/iex");
    await ws.next((m) => first(m)?.msg === "connected");
    ws.send({ action: "subscribe", trades: [SYMBOL] });
    expect(first(await ws.next((m) => first(m)?.T === "error"))).toEqual({
      T: "error",
      code: 401,
      msg: "not authenticated",
    });
    ws.send({ action: "auth", key: keys.key_id, secret: keys.secret_key });
    expect(first(await ws.next((m) => first(m)?.msg === "authenticated"))).toEqual({
      T: "success",
      msg: "authenticated",
    });
    ws.send({ action: "subscribe", quotes: ["*"] });
    const sub = await ws.next((m) => first(m)?.T === "subscription");
    expect(first(sub)).toMatchObject({ quotes: ["*"] });
    await ws.close();

    const bad = await openSocket("/v2/iex");
    await bad.next((m) => first(m)?.msg === "connected");
    bad.send({ action: "auth", key: keys.key_id, secret: "wrong" });
    expect(first(await bad.next((m) => first(m)?.T === "error"))).toEqual({
      T: "error",
      code: 402,
      msg: "auth failed",
    });
    await bad.close();
  });
});

describe("the market-data WebSocket's minute bars", () => {
  it("sends each minute's bar after it closes, equal to the stored 1Min bar", {
    timeout: 150_000,
  }, async () => {
    // A minute closes at most 60 s after the subscription; the hub sends its bar 3 s later, or — when the
    // queue lags behind a busy machine — when it reaches Postgres, at the latest a minute after that.
    const wait = Math.max(1_000, barSubscribedAt + 130_000 - Date.now());
    const frame = await barSocket.next((m) => first(m)?.T === "b", wait);
    const bar = first(frame) as Record<string, unknown>;
    expect(bar).toMatchObject({ T: "b", S: SYMBOL });
    expect(Object.keys(bar).sort()).toEqual(["S", "T", "c", "h", "l", "n", "o", "t", "v", "vw"]);
    const stored = await trader.call<{ bars: Bar[] }>(
      "GET",
      `/v2/stocks/${SYMBOL}/bars?timeframe=1Min&start=${encodeURIComponent(String(bar.t))}&end=${encodeURIComponent(String(bar.t))}`,
    );
    const { T: _t, S: _s, ...fields } = bar;
    // Trades of that minute that reached Postgres after the bar was sent would only add to it.
    expect((stored.body.bars[0]?.n ?? 0) >= (fields.n as number)).toBe(true);
    if (stored.body.bars[0]?.n === fields.n) expect(stored.body.bars[0]).toEqual(fields);
  });
});

describe("the market-data REST API", () => {
  it("pages through trades in Alpaca's shape without gaps or repeats", async () => {
    await until("a few trades", async () => {
      const r = await trader.call<{ trades: Trade[] }>("GET", `/v2/stocks/${SYMBOL}/trades?limit=10`);
      return r.body.trades?.length >= 6;
    });
    const all = await trader.call<{ trades: Trade[]; next_page_token: string | null }>(
      "GET",
      `/v2/stocks/${SYMBOL}/trades?limit=10000`,
    );
    const cutoff = all.body.trades[5]?.t as string;
    const whole = all.body.trades.filter((t) => t.t <= cutoff);
    const paged: Trade[] = [];
    let token: string | null = null;
    do {
      const page: {
        status: number;
        body: { trades: Trade[]; symbol: string; next_page_token: string | null };
      } = await trader.call(
        "GET",
        `/v2/stocks/${SYMBOL}/trades?limit=2&end=${encodeURIComponent(cutoff)}${token ? `&page_token=${token}` : ""}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.symbol).toBe(SYMBOL);
      paged.push(...page.body.trades);
      token = page.body.next_page_token;
    } while (token);
    expect(paged.map((t) => t.i)).toEqual(whole.map((t) => t.i));
    expect(Object.keys(whole[0] ?? {}).sort()).toEqual(["c", "i", "p", "s", "t", "tks", "x", "z"]);
  });

  it("answers snapshots and latest trades in Alpaca's shape", async () => {
    const res = await trader.call<Record<string, Record<string, unknown>>>(
      "GET",
      `/v2/stocks/snapshots?symbols=${SYMBOL},DYNA`,
    );
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["DYNA", SYMBOL]);
    expect(Object.keys(res.body[SYMBOL] ?? {}).sort()).toEqual([
      "dailyBar",
      "latestQuote",
      "latestTrade",
      "minuteBar",
      "prevDailyBar",
    ]);
    const latest = await trader.call<{ symbol: string; trade: Trade }>(
      "GET",
      `/v2/stocks/${SYMBOL}/trades/latest`,
    );
    expect(latest.body.symbol).toBe(SYMBOL);
    expect(latest.body.trade.p).toBeGreaterThan(0);
    expect((await trader.call("GET", "/v2/stocks/NOPE/quotes/latest")).status).toBe(404);
    expect((await trader.call("GET", `/v2/stocks/${SYMBOL}/bars?timeframe=2Min`)).status).toBe(422);
    expect((await api("GET", `/v2/stocks/${SYMBOL}/quotes/latest`)).status).toBe(401);
  });

  it("serves repeated latest-quote reads from the caches and counts the hits", {
    timeout: 90_000,
  }, async () => {
    await admin("DELETE", "/admin/market-data/cache");
    const layers: Record<string, number> = {};
    const started = Date.now();
    const n = 30;
    const latency: Record<string, number[]> = {};
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await trader.call("GET", `/v2/stocks/${SYMBOL}/quotes/latest`);
      const layer = r.headers.get("X-PrepX-Cache") ?? "none";
      layers[layer] = (layers[layer] ?? 0) + 1;
      latency[layer] = [...(latency[layer] ?? []), performance.now() - t0];
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const elapsed = Date.now() - started;
    expect((layers.edge ?? 0) + (layers.redis ?? 0)).toBeGreaterThan(n / 2);
    const stats = await until("flushed cache counters", async () => {
      const s = await admin<{
        hitRates: { quote: { reads: number; edge: number; redis: number; any: number } };
      }>("GET", "/admin/market-data/cache");
      return s.body.hitRates.quote.reads >= n - 20 ? s.body : null;
    });
    console.log(
      `[cache] ${n} latest-quote reads in ${elapsed} ms while the market ticks every second: ` +
        `${JSON.stringify(layers)}; counters: ${JSON.stringify(stats.hitRates.quote)}; median ms by layer: ` +
        JSON.stringify(
          Object.fromEntries(Object.entries(latency).map(([k, v]) => [k, Math.round(median(v))])),
        ),
    );
    expect(stats.hitRates.quote.any).toBeGreaterThan(0.5);
  });
});

describe("bars", () => {
  it("are built from the trades through the queue, equal to a brute-force computation", {
    timeout: 90_000,
  }, async () => {
    // Stop the market so the set of trades is final, then wait for the queue to deliver the last ones.
    const stopped = await admin<Status>("POST", `/admin/market/${SYMBOL}/stop`);
    expect(stopped.body.mode).toBe("stopped");
    const day = new Date(Date.now() - (Date.now() % 86_400_000)).toISOString();
    const readTrades = async () =>
      (await trader.call<{ trades: Trade[] }>("GET", `/v2/stocks/${SYMBOL}/trades?limit=10000&start=${day}`))
        .body.trades;
    let trades = await readTrades();
    await until("the trade count to settle", async () => {
      await new Promise((r) => setTimeout(r, 1_500));
      const again = await readTrades();
      const settled = again.length === trades.length;
      trades = again;
      return settled;
    });
    expect(trades.length).toBeGreaterThan(5);
    const asBarTrades: BarTrade[] = trades.map((t) => ({
      seq: t.i,
      ts: Date.parse(t.t),
      priceTicks: Math.round(t.p * 100),
      qtyLots: t.s,
    }));
    const frames: Record<string, string> = {
      "1m": "1Min",
      "5m": "5Min",
      "15m": "15Min",
      "1h": "1Hour",
      "1d": "1Day",
    };
    for (const tf of TIMEFRAMES) {
      const expected = aggregateBars(asBarTrades, tf).map((b) => ({
        t: new Date(b.start).toISOString().replace(".000Z", "Z"),
        o: b.open / 100,
        h: b.high / 100,
        l: b.low / 100,
        c: b.close / 100,
        v: Number(b.volume),
        n: b.trades,
        vw: Number(vwapString(b, { tickSize: "0.01" })),
      }));
      const res = await until(`${tf} bars`, async () => {
        const r = await trader.call<{ bars: Bar[]; symbol: string; next_page_token: string | null }>(
          "GET",
          `/v2/stocks/${SYMBOL}/bars?timeframe=${frames[tf]}&start=${day}&limit=10000`,
        );
        return r.body.bars?.length === expected.length && r.body.bars.at(-1)?.n === expected.at(-1)?.n
          ? r.body
          : null;
      });
      expect(res.symbol).toBe(SYMBOL);
      expect(res.bars).toEqual(expected);
    }
  });

  it("count a trade once however often and in whatever batches it is delivered", async () => {
    const stackEnv = inject("stackEnv") as unknown as Env;
    // A day in 2001, far from the live bars of the other tests.
    const t0 = Date.UTC(2001, 0, 2, 10, 0, 0);
    const rows = Array.from({ length: 30 }, (_, i) => ({
      event_id: `DYNA:${9_000_000 + i}`,
      symbol: "DYNA",
      seq: 9_000_000 + i,
      fill_id: 900_000 + i,
      ts_ms: t0 + ((i * 7_919) % 600_000),
      price_ticks: 1_200 + ((i * 37) % 50),
      qty_lots: 1 + ((i * 13) % 40),
      taker_side: i % 2 === 0 ? "buy" : "sell",
    }));
    const first = await writeTradesAndBars(stackEnv, rows.slice(0, 20));
    expect(first.inserted).toBe(20);
    // Redelivery of a batch, overlapping batches in another grouping, and one in reverse order.
    expect((await writeTradesAndBars(stackEnv, rows.slice(0, 20))).inserted).toBe(0);
    expect((await writeTradesAndBars(stackEnv, [...rows.slice(10, 30)].reverse())).inserted).toBe(10);
    expect((await writeTradesAndBars(stackEnv, rows)).inserted).toBe(0);
    const expected = aggregateBars(
      rows.map((r) => ({ seq: r.seq, ts: r.ts_ms, priceTicks: r.price_ticks, qtyLots: r.qty_lots })),
      "1m",
    );
    const read = await until("the replica to catch up", async () => {
      const page = await readBars(stackEnv, "DYNA", "1m", {
        start: t0,
        end: t0 + 3_600_000,
        limit: 100,
        direction: "asc",
      });
      return page.bars.reduce((s, b) => s + b.trades, 0) === 30 ? page.bars : null;
    });
    expect(read).toEqual(expected);
  });
});

/** Data-stream frames are arrays of messages; tests look at the first. */
function first(m: unknown): Record<string, unknown> | undefined {
  return (Array.isArray(m) ? m[0] : m) as Record<string, unknown> | undefined;
}
