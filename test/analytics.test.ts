// Analytics against the real local stack (docs/analytics.md):
// - the `analytics` processor of the trade-events consumer, fed hand-made batches (duplicated, reordered,
//   split, concurrent) through the same Neon driver and proxy the worker uses, counts every fact once;
// - per-user figures computed from what the history consumer wrote equal a brute-force recomputation over
//   the same events, and, through the real API of `wrangler dev`, over the fills the activities API returns;
// - `GET /admin/analytics` sums the rollups, validates its query and is for admins only.
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { withClient } from "../scripts/stack/pg.ts";
import type { DataPoint } from "../shared/analytics/datapoints.ts";
import { MINUTE_MS, minuteOf } from "../shared/analytics/facts.ts";
import { latencyBucket } from "../shared/analytics/latency.ts";
import { reportRange } from "../shared/analytics/platform.ts";
import { computeUserAnalytics } from "../shared/analytics/user.ts";
import { parseMicros } from "../shared/decimal.ts";
import { type AccountEvent, accountEventIds } from "../shared/history/events.ts";
import type { OrderRecord } from "../shared/orders/lifecycle.ts";
import {
  bufferApiCall,
  flushApiCallsToPostgres,
  flushBufferToRedis,
} from "../workers/analytics/api-calls.ts";
import { platformReport } from "../workers/analytics/platform.ts";
import { loadUserAnalytics } from "../workers/analytics/user.ts";
import { analyticsProcessor } from "../workers/consumers/analytics-processor.ts";
import { historyProcessor } from "../workers/consumers/history-processor.ts";
import { consumeTradeEvents, type TradeEventProcessor } from "../workers/consumers/trade-events.ts";
import { db } from "../workers/db/index.ts";
import type { Env } from "../workers/env.ts";
import { adminToken, api, freshIp, newTrader, type Trader } from "./client.ts";
import {
  averageCostRealized,
  type BruteInput,
  bruteEquity,
  bruteInputFromEvents,
  bruteSymbols,
} from "./support/analytics-brute.ts";
import { prng, type SimSession, simulateSession } from "./support/history-sim.ts";

const stackEnv = inject("stackEnv");
const shardUrls = JSON.parse(stackEnv.SHARD_DATABASE_URLS ?? "[]") as string[];
const points: DataPoint[] = [];
const env = {
  ...stackEnv,
  ANALYTICS: { writeDataPoint: (p: DataPoint) => points.push(p) },
} as unknown as Env;

const query = <R>(url: string, text: string, values: unknown[] = []) =>
  withClient(url, async (c) => (await c.query<R>(text, values)).rows);

/** A hand-made MessageBatch; returns the bodies the consumer retried. */
async function consume(bodies: readonly unknown[], processors: TradeEventProcessor[]) {
  const retried: unknown[] = [];
  const messages = bodies.map((body, i) => ({
    id: `m-${i}-${crypto.randomUUID().slice(0, 8)}`,
    timestamp: new Date(),
    body,
    attempts: 1,
    ack: () => {},
    retry: () => retried.push(body),
  }));
  const pending: Promise<unknown>[] = [];
  await consumeTradeEvents(
    { queue: "trade-events", messages } as unknown as MessageBatch<unknown>,
    env,
    { waitUntil: (p) => pending.push(p) },
    processors,
  );
  await Promise.all(pending);
  return retried;
}

async function deliver(events: readonly unknown[], processors: TradeEventProcessor[]) {
  for (let i = 0; i < events.length; i += 100)
    expect(await consume(events.slice(i, i + 100), processors)).toEqual([]);
}

function shuffle<T>(items: readonly T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const shardOf = (userId: string) => db(env).shardOf(userId);
function usersOnBothShards(perShard: number): string[] {
  const picked = new Map<number, string[]>();
  while ([0, 1].some((s) => (picked.get(s)?.length ?? 0) < perShard)) {
    const id = crypto.randomUUID();
    const list = picked.get(shardOf(id)) ?? [];
    if (list.length < perShard) list.push(id);
    picked.set(shardOf(id), list);
  }
  return [...(picked.get(0) ?? []), ...(picked.get(1) ?? [])];
}

/**
 * A simulated session in a window of time no other test uses (the platform counters are global), plus, per
 * user, an order the book rejected (two snapshots: pending_new, then rejected).
 */
function session(seed: number, steps = 60): SimSession & { from: number; to: number } {
  // A random day in ~270 years, so sessions of other runs against the same database (the report counts
  // every fact in its range) practically never share a day with this one.
  const start = minuteOf(Date.UTC(2019, 0, 1) + Math.floor(Math.random() * 100_000) * 86_400_000);
  const sim = simulateSession({ userIds: usersOnBothShards(2), steps, seed, start });
  let last = Math.max(...sim.events.map((e) => e.ts));
  for (const userId of sim.userIds) {
    const template = sim.events.find((e) => e.userId === userId && e.type === "account.order");
    if (template?.type !== "account.order") continue;
    const seq = Math.max(...sim.events.filter((e) => e.userId === userId).map((e) => e.seq));
    const id = crypto.randomUUID();
    last += 61_000;
    const order: OrderRecord = {
      ...template.order,
      id,
      clientOrderId: `rej-${id}`,
      status: "pending_new",
      filledQtyLots: 0,
      filledValue: 0,
      createdAt: last,
      updatedAt: last,
      submittedAt: last,
      filledAt: null,
      canceledAt: null,
    };
    const snapshot = (n: number, o: OrderRecord): AccountEvent => ({
      ...template,
      id: accountEventIds.order(id, seq + n),
      seq: seq + n,
      ts: last + n * 1_000,
      order: o,
    });
    sim.events.push(snapshot(1, order));
    sim.events.push(
      snapshot(2, {
        ...order,
        status: "rejected",
        reason: "fok_unfillable",
        failedAt: last + 2_000,
        updatedAt: last + 2_000,
      }),
    );
  }
  return { ...sim, from: start, to: minuteOf(last) + 3 * MINUTE_MS };
}

/** What the counters must hold for these events: brute force over the raw events. */
function expectedCounters(events: readonly AccountEvent[]) {
  const out = new Map<string, bigint>();
  const add = (metric: string, minute: number, dim: string, value: number) => {
    const key = `${metric}|${new Date(minute).toISOString()}|${dim}`;
    out.set(key, (out.get(key) ?? 0n) + BigInt(value));
  };
  const orders = new Map<string, Extract<AccountEvent, { type: "account.order" }>["order"]>();
  const rejected = new Map<string, Extract<AccountEvent, { type: "account.order" }>["order"]>();
  const fills = new Map<string, Extract<AccountEvent, { type: "account.fill" }>>();
  for (const e of events) {
    if (e.type === "account.order") {
      orders.set(e.order.id, e.order);
      if (e.order.status === "rejected") rejected.set(e.order.id, e.order);
    }
    if (e.type === "account.fill") fills.set(e.id, e);
  }
  for (const o of orders.values()) add("orders", minuteOf(o.createdAt), o.symbol, 1);
  for (const o of rejected.values())
    add("rejections", minuteOf(o.failedAt ?? o.updatedAt), o.reason ?? "", 1);
  for (const f of fills.values()) {
    add("account_fills", minuteOf(f.fill.at), f.fill.symbol, 1);
    add("fees", minuteOf(f.fill.at), f.fill.symbol, f.fill.feeMicros);
  }
  const active = new Set<string>();
  for (const e of events)
    if (e.type === "account.order" || e.type === "account.fill")
      active.add(`${new Date(minuteOf(e.ts)).toISOString()}|${e.userId}`);
  return {
    counters: [...out].map(([k, v]) => `${k}|${v}`).sort(),
    active: [...active].sort(),
    orders: orders.size,
    rejections: rejected.size,
    fills: fills.size,
    fees: [...fills.values()].reduce((s, f) => s + BigInt(f.fill.feeMicros), 0n),
    users: new Set(events.map((e) => e.userId)).size,
  };
}

async function storedCounters(from: number, to: number, users: readonly string[]) {
  const rows = await query<{ metric: string; minute: Date; dim: string; value: string }>(
    stackEnv.DATABASE_URL as string,
    "SELECT metric, minute, dim, value FROM analytics_minute WHERE minute >= $1 AND minute < $2",
    [new Date(from), new Date(to)],
  );
  const active = await query<{ minute: Date; user_id: string }>(
    stackEnv.DATABASE_URL as string,
    "SELECT minute, user_id FROM analytics_active_users WHERE user_id = ANY($1)",
    [users],
  );
  return {
    counters: rows.map((r) => `${r.metric}|${r.minute.toISOString()}|${r.dim}|${r.value}`).sort(),
    active: active.map((r) => `${r.minute.toISOString()}|${r.user_id}`).sort(),
  };
}

/** Drops what the history consumer wrote for simulated users (they have no UserSession to reconcile with). */
async function forget(users: readonly string[]) {
  for (const url of shardUrls)
    for (const table of [
      "processed_events",
      "account_streams",
      "orders",
      "fills",
      "ledger_entries",
      "positions_snapshot",
      "account_daily",
    ])
      await query(url, `DELETE FROM ${table} WHERE user_id = ANY($1)`, [users]);
}

const simulated: string[] = [];
afterAll(async () => {
  if (simulated.length > 0) await forget(simulated);
});

describe("the analytics consumer", { timeout: 120_000 }, () => {
  it("counts each order, rejection, fill and active user once, however batches are duplicated, reordered, split or concurrent", async () => {
    const sim = session(31);
    const expected = expectedCounters(sim.events);
    expect(expected.rejections).toBe(sim.userIds.length);
    const rand = prng(73);
    const noisy = shuffle([...sim.events, ...sim.events.filter(() => rand() < 0.3)], rand);
    const batches: AccountEvent[][] = [];
    for (let i = 0; i < noisy.length; ) {
      const size = 10 + Math.floor(rand() * 60);
      batches.push(noisy.slice(i, i + size));
      i += size;
    }
    // Two consumers at once on overlapping batches, then each batch once more (a redelivery).
    await Promise.all([
      (async () => {
        for (const b of batches.slice(0, Math.ceil(batches.length * 0.6)))
          await deliver(b, [analyticsProcessor]);
      })(),
      (async () => {
        for (const b of [...batches].reverse().slice(0, Math.ceil(batches.length * 0.6)))
          await deliver(b, [analyticsProcessor]);
      })(),
    ]);
    for (const b of batches) if (rand() < 0.5) await deliver(b, [analyticsProcessor]);
    const stored = await storedCounters(sim.from, sim.to, sim.userIds);
    expect(stored.counters).toEqual(expected.counters);
    expect(stored.active).toEqual(expected.active);

    await deliver(sim.events, [analyticsProcessor]);
    expect(await storedCounters(sim.from, sim.to, sim.userIds)).toEqual(stored);
  });

  it("writes one Analytics Engine data point per new order, rejection and fill, never one per delivery", async () => {
    const sim = session(32);
    const expected = expectedCounters(sim.events);
    points.length = 0;
    await deliver(sim.events, [analyticsProcessor]);
    await deliver(shuffle(sim.events, prng(5)), [analyticsProcessor]);
    const kinds = points.map((p) => `${p.blobs[0]}:${p.blobs[0] === "order" ? p.blobs[1] : ""}`);
    expect(kinds.filter((k) => k === "order:created")).toHaveLength(expected.orders);
    expect(kinds.filter((k) => k === "order:rejected")).toHaveLength(expected.rejections);
    expect(kinds.filter((k) => k === "fill:")).toHaveLength(expected.fills);
    const fill = points.find((p) => p.blobs[0] === "fill");
    expect(sim.userIds).toContain(fill?.indexes[0]);
  });

  it("feeds a platform report whose totals equal a brute-force count of the events", async () => {
    const sim = session(33);
    await deliver(sim.events, [analyticsProcessor]);
    const expected = expectedCounters(sim.events);
    const q = { from: new Date(sim.from).toISOString(), to: new Date(sim.to).toISOString(), interval: "1h" };
    const range = reportRange(q, Date.now());
    if (!range.ok) throw new Error(range.message);
    const report = await platformReport(env, range.range);
    expect(report.totals).toMatchObject({
      orders: expected.orders,
      rejections: expected.rejections,
      account_fills: expected.fills,
      fees: (Number(expected.fees) / 1e6).toString(),
      active_users: expected.users,
      fills: 0, // no book events in this session: matches come from market_bars
    });
    expect(report.rejection_reasons).toEqual([{ reason: "fok_unfillable", count: sim.userIds.length }]);
    expect(report.series.orders.reduce((a, b) => a + b, 0)).toBe(expected.orders);

    // The same report through the worker's API.
    const admin = await adminToken();
    const res = await api<typeof report>("GET", `/admin/analytics?${new URLSearchParams(q)}`, {
      token: admin,
      ip: freshIp(),
    });
    expect(res.status).toBe(200);
    expect({ ...res.body, generated_at: "" }).toEqual({ ...report, generated_at: "" });
  });

  it("gives per-user figures equal to a brute-force recomputation over the same events", async () => {
    const sim = session(34, 160);
    simulated.push(...sim.userIds);
    await deliver(sim.events, [historyProcessor, analyticsProcessor]);
    for (const userId of sim.userIds) {
      const data = await loadUserAnalytics(db(env).forUser(userId).$primary, userId);
      expect(data.through).toBe(Math.max(...sim.events.filter((e) => e.userId === userId).map((e) => e.seq)));
      const a = computeUserAnalytics(data.events, data.days);
      const input = bruteInputFromEvents(sim.events, userId);
      expectSymbols(a, input);
      const eq = bruteEquity(input);
      expect(a.equity.returns.map((r) => r.value)).toEqual(eq.returns);
      expect(a.equity.maxDrawdownMicros).toBe(eq.maxDrawdown);
      expectClose(a.equity.maxDrawdownRatio, eq.maxDrawdownRatio);
      expectClose(a.equity.sharpe, eq.sharpe);
    }
    // The sessions have grants, resets and days with gaps: the comparison covered them.
    expect(sim.events.some((e) => e.type === "account.reset")).toBe(true);
    expect(new Set(sim.events.map((e) => new Date(e.ts).toISOString().slice(0, 10))).size).toBeGreaterThan(2);
  });
});

function expectSymbols(a: ReturnType<typeof computeUserAnalytics>, input: BruteInput) {
  const brute = bruteSymbols(input);
  expect(a.bySymbol.map((s) => s.symbol).sort()).toEqual(
    [...brute.keys()].filter((s) => brute.get(s)?.trades).sort(),
  );
  for (const s of a.bySymbol) {
    const b = brute.get(s.symbol);
    expect({
      trades: s.trades,
      buys: s.buys,
      sells: s.sells,
      volume: s.volumeLots,
      turnover: s.turnoverMicros,
      realized: s.realizedPlMicros,
      fees: s.feesMicros,
      closing: s.closingTrades,
      winning: s.winningTrades,
      heldLots: s.heldLots,
      heldMs: s.heldLotMs,
    }).toEqual(b);
  }
}

function expectClose(actual: number | null, expected: number | null) {
  if (actual === null || expected === null) expect(actual).toBe(expected);
  else expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(expected)));
}

describe("API-call counters", () => {
  it("reach Postgres once per call, however often a minute is flushed from Redis", async () => {
    const route = `/test/${crypto.randomUUID()}`;
    const now = Date.now();
    const record = (status: number, durationMs: number, times: number) => {
      for (let i = 0; i < times; i++)
        bufferApiCall(
          env,
          () => {},
          { method: "GET", route, status, durationMs, errorCode: status >= 400 ? `http_${status}` : "" },
          now,
        );
    };
    const rows = async () => ({
      calls: await query<{ status: number; bucket: number; calls: string }>(
        stackEnv.DATABASE_URL as string,
        "SELECT status, bucket, calls FROM api_call_minute WHERE route = $1 ORDER BY status, bucket",
        [route],
      ),
      errors: await query<{ status: number; code: string; calls: string }>(
        stackEnv.DATABASE_URL as string,
        "SELECT status, code, calls FROM api_error_minute WHERE route = $1",
        [route],
      ),
    });
    record(200, 3, 7);
    record(503, 250, 2);
    await flushBufferToRedis(env);
    const first = await flushApiCallsToPostgres(env, now);
    await flushApiCallsToPostgres(env, now);
    expect(await rows()).toEqual({
      calls: [
        { status: 200, bucket: latencyBucket(3), calls: "7" },
        { status: 503, bucket: latencyBucket(250), calls: "2" },
      ],
      errors: [{ status: 503, code: "http_503", calls: "2" }],
    });
    // More calls in the same (open) minute: the stored count follows Redis, it is not added twice.
    record(200, 3, 3);
    await flushBufferToRedis(env);
    await flushApiCallsToPostgres(env, now);
    await flushApiCallsToPostgres(env, now);
    expect((await rows()).calls[0]).toEqual({ status: 200, bucket: latencyBucket(3), calls: "10" });
    console.log(
      `[analytics] Redis → Postgres flush of ${first.minutes} minutes, ${first.callRows} rows: ${first.ms} ms`,
    );
  });
});

// --- through the real API ----------------------------------------------------------------------------------

// This file trades ACME only (no other test file does, so the platform figures of ACME are all ours).
const SYMBOL = "ACME";
const micros = (s: unknown) => {
  const r = parseMicros(String(s), { allowNegative: true });
  if (!r.ok) throw new Error(`not a decimal: ${String(s)}`);
  return BigInt(r.value);
};
const limit = (side: "buy" | "sell", qty: number, price: string, tif = "gtc") => ({
  symbol: SYMBOL,
  side,
  type: "limit",
  time_in_force: tif,
  qty: String(qty),
  limit_price: price,
});

interface Activity {
  id: string;
  transaction_time: string;
  side: "buy" | "sell";
  symbol: string;
  price: string;
  qty: string;
  order_id: string;
}
interface UserView {
  as_of: { applied_through: number; latest_seq: number; complete: boolean };
  summary: Record<string, string | number | null>;
  by_symbol: Record<string, string | number | null>[];
  by_day: Record<string, string | number | null>[];
  most_traded: string[];
}

describe("analytics through the API", { timeout: 120_000 }, () => {
  let admin: string;
  let alice: Trader;
  let bob: Trader;
  let carol: Trader;
  const started = Date.now();
  const grants = new Map<string, { qty: number; price: string }>();

  beforeAll(async () => {
    admin = await adminToken();
    [alice, bob, carol] = await Promise.all([
      newTrader("an-alice"),
      newTrader("an-bob"),
      newTrader("an-carol"),
    ]);
    grants.set(bob.id, { qty: 50, price: "100.00" });
    grants.set(carol.id, { qty: 20, price: "101.00" });
    for (const t of [bob, carol]) {
      const g = grants.get(t.id) as { qty: number; price: string };
      const res = await api("POST", `/admin/users/${t.id}/grants`, {
        token: admin,
        ip: freshIp(),
        body: { symbol: SYMBOL, qty: String(g.qty), price: g.price },
      });
      expect(res.status).toBe(200);
    }
    const ok = async (t: Trader, body: unknown, status = 200) => {
      const res = await t.call<{ status: string; code?: string }>("POST", "/v2/orders", body);
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      return res.body;
    };
    await ok(bob, limit("sell", 10, "100.50"));
    expect((await ok(alice, limit("buy", 10, "100.50"))).status).toBe("filled");
    await ok(carol, limit("sell", 5, "101.00"));
    await ok(alice, limit("buy", 5, "101.00"));
    await ok(alice, limit("sell", 8, "102.00"));
    await ok(bob, limit("buy", 8, "102.00"));
    await ok(alice, limit("sell", 3, "99.00"));
    await ok(carol, limit("buy", 3, "99.00"));
    await ok(bob, limit("sell", 20, "100.00"));
    await ok(carol, limit("buy", 7, "100.00"));
    await ok(alice, limit("buy", 13, "100.00"));
    // Rejected by the book (an order on record), refused by risk, refused by validation.
    expect((await ok(alice, limit("buy", 50, "100.00", "fok"), 422)).code).toBe("fok_unfillable");
    expect((await ok(carol, limit("buy", 100_000, "100.00"), 403)).code).toBe("insufficient_buying_power");
    expect((await ok(alice, { ...limit("buy", 1, "100.00"), side: "hold" }, 422)).code).toBe(
      "validation_failed",
    );
  });

  afterAll(async () => {
    await Promise.all([alice, bob, carol].map((t) => t?.call("DELETE", "/v2/orders")));
  });

  async function caughtUp(t: Trader): Promise<UserView> {
    let view: UserView | undefined;
    await vi.waitFor(
      async () => {
        const res = await t.call<UserView>("GET", "/v1/analytics/me");
        expect(res.status).toBe(200);
        expect(res.body.as_of.complete).toBe(true);
        view = res.body;
      },
      { timeout: 30_000, interval: 250 },
    );
    return view as UserView;
  }

  async function bruteFromApi(t: Trader): Promise<BruteInput> {
    const acts = (await t.call<Activity[]>("GET", "/v2/account/activities/FILL?direction=asc&page_size=100"))
      .body;
    const sorted = [...acts].sort(
      (a, b) => a.transaction_time.localeCompare(b.transaction_time) || a.id.localeCompare(b.id),
    );
    const fills = sorted.map((a, i) => ({
      seq: i + 1,
      at: Date.parse(a.transaction_time),
      orderId: a.order_id,
      symbol: a.symbol,
      side: a.side,
      qty: Number(a.qty),
      notional: (micros(a.price) * BigInt(Number(a.qty) * 1_000_000)) / 1_000_000n,
    }));
    const g = grants.get(t.id);
    // When the grant happened: the ledger's timestamp of the grant event (the API does not show grants).
    const grantAt = g
      ? Number(
          (
            await query<{ at: Date }>(
              shardUrls[shardOf(t.id)] as string,
              "SELECT min(at) AS at FROM ledger_entries WHERE user_id = $1 AND kind = 'grant'",
              [t.id],
            )
          )[0]?.at.getTime(),
        )
      : 0;
    const grantList = g
      ? [{ seq: 0, symbol: SYMBOL, qty: g.qty, valueMicros: micros(g.price) * BigInt(g.qty) }]
      : [];
    const realized = averageCostRealized(fills, grantList);
    const days = await query<{ day: string; equity: string | null; contributions: string }>(
      shardUrls[shardOf(t.id)] as string,
      "SELECT to_char(day, 'YYYY-MM-DD') AS day, equity_micros AS equity, contributions_micros AS contributions FROM account_daily WHERE user_id = $1",
      [t.id],
    );
    return {
      fills: fills.map((f, i) => ({ ...f, fee: 0n, realized: realized[i] as bigint })),
      lots: g ? [{ seq: 0, at: grantAt, symbol: SYMBOL, qty: g.qty }] : [],
      resets: [],
      days: days.map((d) => ({
        day: d.day,
        equity: d.equity === null ? null : BigInt(d.equity),
        contributions: BigInt(d.contributions),
      })),
    };
  }

  it("gives each trader figures equal to a brute-force computation over the fills the activities API returns", async () => {
    for (const t of [alice, bob, carol]) {
      const view = await caughtUp(t);
      const input = await bruteFromApi(t);
      const brute = bruteSymbols(input).get(SYMBOL);
      const row = view.by_symbol.find((r) => r.symbol === SYMBOL);
      if (!brute || !row) throw new Error(`no ${SYMBOL} figures for ${t.email}`);
      expect(row).toMatchObject({
        trades: brute.trades,
        buys: brute.buys,
        sells: brute.sells,
        volume: brute.volume.toString(),
        turnover: usd(brute.turnover),
        realized_pnl: usd(brute.realized),
        closing_trades: brute.closing,
        winning_trades: brute.winning,
      });
      expect(Number(row.win_rate ?? Number.NaN)).toBeCloseTo(
        brute.closing ? brute.winning / brute.closing : Number.NaN,
        4,
      );
      if (brute.heldLots > 0n) {
        // Served exactly, rounded half up to milliseconds: within half a millisecond of the exact mean.
        const exactMs = Number(brute.heldMs) / Number(brute.heldLots);
        expect(Math.abs(Number(row.avg_holding_seconds) * 1000 - exactMs)).toBeLessThanOrEqual(0.5 + 1e-9);
      } else expect(row.avg_holding_seconds).toBeNull();
      // Fees and realized PnL add up to what the live account says.
      const account = (await t.call<Record<string, string>>("GET", "/v2/account")).body;
      expect(micros(view.summary.fees)).toBe(micros(account.fees));
      expect(micros(view.summary.realized_pnl)).toBe(micros(account.realized_pl));
      expect(view.most_traded).toEqual([SYMBOL]);
      // The equity curve: the daily rows, brute-forced.
      const eq = bruteEquity(input);
      expect(view.summary.return_days).toBe(eq.returns.length);
      expect(micros(view.summary.max_drawdown)).toBe(eq.maxDrawdown);
      expect(view.summary.sharpe).toBe(eq.sharpe === null ? null : eq.sharpe.toFixed(4));
      const ratio = view.summary.max_drawdown_ratio;
      if (eq.maxDrawdownRatio === null) expect(ratio).toBeNull();
      else expect(Number(ratio)).toBeCloseTo(eq.maxDrawdownRatio, 6);
    }
    // The scenario has a loss, a win and a multi-fill closing order, so the figures are not trivial.
    const aliceView = await caughtUp(alice);
    expect(aliceView.summary).toMatchObject({ closing_trades: 2, winning_trades: 1, win_rate: "0.5000" });
    const bobView = await caughtUp(bob);
    expect(bobView.by_symbol[0]).toMatchObject({ sells: 3, closing_trades: 2 });
  });

  it("reports the platform's orders, fills, volume, rejections, refusals, users and API latency", async () => {
    let report: Record<string, unknown> & {
      volume_by_symbol: { symbol: string; fills: number; volume: string; notional: string; orders: number }[];
      rejection_reasons: { reason: string; count: number }[];
      refused_orders: { code: string; count: number }[];
      routes: {
        method: string;
        route: string;
        calls: number;
        p50_ms: number;
        p95_ms: number;
        p99_ms: number;
      }[];
      totals: { active_users: number; api_calls: number };
    };
    const from = new Date(started - 1_000).toISOString();
    await vi.waitFor(
      async () => {
        const res = await api<typeof report>(
          "GET",
          `/admin/analytics?from=${encodeURIComponent(from)}&interval=1m`,
          {
            token: admin,
            ip: freshIp(),
          },
        );
        expect(res.status).toBe(200);
        report = res.body;
        expect(report.volume_by_symbol.find((s) => s.symbol === SYMBOL)).toEqual({
          symbol: SYMBOL,
          fills: 6,
          volume: "46",
          // 10 × 100.50 + 5 × 101 + 8 × 102 + 3 × 99 + 20 × 100
          notional: "4623",
          orders: 12,
          series: expect.any(Object),
        });
        expect(report.rejection_reasons).toEqual(
          expect.arrayContaining([{ reason: "fok_unfillable", count: expect.any(Number) }]),
        );
        const refused = new Map(report.refused_orders.map((r) => [r.code, r.count]));
        expect(refused.get("insufficient_buying_power")).toBeGreaterThanOrEqual(1);
        expect(refused.get("validation_failed")).toBeGreaterThanOrEqual(1);
        expect(report.totals.active_users).toBeGreaterThanOrEqual(3);
        const orders = report.routes.find((r) => r.method === "POST" && r.route === "/v2/orders");
        expect(orders?.calls).toBeGreaterThanOrEqual(14);
        expect(orders && orders.p50_ms <= orders.p95_ms && orders.p95_ms <= orders.p99_ms).toBe(true);
      },
      { timeout: 30_000, interval: 500 },
    );
  });

  it("answers bad windows and intervals with 400 invalid_query", async () => {
    for (const qs of [
      "interval=2m",
      "from=yesterday",
      "to=2026-11-20T10:00:00",
      "from=2026-11-20T10:00:00Z&to=2026-11-20T09:00:00Z",
      "from=2026-01-01&to=2026-03-01&interval=1m",
      "from=2020-01-01&to=2026-01-01&interval=1d",
    ]) {
      const res = await api<{ code: string; message: string; request_id: string }>(
        "GET",
        `/admin/analytics?${qs}`,
        {
          token: admin,
          ip: freshIp(),
        },
      );
      expect(res.status, qs).toBe(400);
      expect(res.body).toMatchObject({
        code: "invalid_query",
        message: expect.any(String),
        request_id: expect.any(String),
      });
    }
  });

  it("shows platform figures to admins only, and each trader only their own figures", async () => {
    expect((await alice.call("GET", "/admin/analytics")).status).toBe(403);
    expect((await api("GET", "/admin/analytics", { ip: freshIp() })).status).toBe(401);
    expect((await api("GET", "/v1/analytics/me", { ip: freshIp() })).status).toBe(401);
    const fresh = await newTrader("an-new");
    const view = (await fresh.call<UserView>("GET", "/v1/analytics/me")).body;
    expect(view.summary).toMatchObject({
      trades: 0,
      realized_pnl: "0",
      win_rate: null,
      avg_holding_seconds: null,
    });
    expect(view.by_symbol).toEqual([]);
  });

  it("documents the analytics routes in the OpenAPI document", async () => {
    const doc = (await api<{ paths: Record<string, Record<string, unknown>> }>("GET", "/openapi.json")).body;
    expect(Object.keys(doc.paths["/v1/analytics/me"] ?? {})).toEqual(["get"]);
    expect(Object.keys(doc.paths["/admin/analytics"] ?? {})).toEqual(["get"]);
    expect(Object.keys(doc.paths["/admin/dashboard"] ?? {})).toEqual(["get"]);
  });
});

const usd = (m: bigint) => {
  const negative = m < 0n;
  const abs = negative ? -m : m;
  const frac = (abs % 1_000_000n).toString().padStart(6, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${abs / 1_000_000n}${frac ? `.${frac}` : ""}`;
};
