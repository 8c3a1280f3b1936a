/// <reference types="vite/client" />
// The MarketMaker Durable Object against real OrderBooks and UserSessions (workers pool).
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { type Account, checkInvariants } from "../shared/account/index.ts";
import type { MarketConfigPatch } from "../shared/market/config.ts";
import fixture from "../shared/market/fixtures/coinbase-btc-usd.jsonl?raw";
import { advance, initialState, priceTicksOf } from "../shared/market/simulator.ts";
import { initialMakerState, type MakerState } from "./market-maker/state.ts";
import { makerBotId, nextTickAfter, takerBotId, tickPhase } from "./market-maker.ts";
import type { UserSession } from "./user-session.ts";

// Storage is shared by the tests of this file: each starts from a clean DYNA market (see `fresh`).
const SYMBOL = "DYNA";
const maker = () => env.MARKET_MAKER.get(env.MARKET_MAKER.idFromName(SYMBOL));
const book = () => env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(SYMBOL));
const session = (id: string) => env.USER_SESSION.get(env.USER_SESSION.idFromName(id));

/** A quiet, slow market driven only by explicit ticks: no takers, a gentle path. */
const QUIET: MarketConfigPatch = {
  tickMs: 3_600_000,
  quote: {
    spreadTicks: 6,
    levels: 3,
    levelSpacingTicks: 2,
    levelSizeLots: 50,
    sizeStepLots: 10,
    skewTicksPerLevelSize: 0,
  },
  maker: { refillDelayMs: 0 },
  noise: { takers: 0 },
};

const ticks = (price: string) => Math.round(Number(price) * 100);

async function topOfBook() {
  const s = await book().snapshot(50);
  return {
    bids: s.bids.map((l) => [ticks(l[0] ?? ""), Number(l[1])] as const),
    asks: s.asks.map((l) => [ticks(l[0] ?? ""), Number(l[1])] as const),
  };
}

async function accountOf(id: string): Promise<Account> {
  return runInDurableObject(session(id), (instance: UserSession) => {
    const account = (instance as unknown as { account: Account | null }).account;
    if (!account) throw new Error(`no account for ${id}`);
    return account;
  });
}

async function configure(patch: MarketConfigPatch) {
  const done = await maker().configure(patch);
  if (!done.ok) throw new Error(`${done.code}: ${done.message}`);
  return done.value;
}

/** Until the book has delivered every event to the accounts (what the tick interval allows for in production). */
async function settle() {
  await vi.waitFor(async () => expect((await book().status()).outbox.pending).toBe(0), {
    timeout: 10_000,
    interval: 25,
  });
}

/** An empty DYNA book, a never-started maker and bots back at their starting cash with no shares. */
async function fresh() {
  // Cancel through the bots' own sessions (a cancel at the book directly would reach them only later).
  await maker().stop();
  await settle();
  for (const id of [makerBotId(SYMBOL), ...[1, 2, 3].map((n) => takerBotId(SYMBOL, n))]) {
    await session(id).resetAccount(id);
  }
  expect((await book().status()).openOrders).toBe(0);
  await runInDurableObject(maker(), async (instance, state) => {
    await state.storage.deleteAlarm();
    const m = instance as unknown as { state: MakerState; save(): void };
    m.state = initialMakerState(Date.now());
    m.save();
  });
}

describe("MarketMaker", () => {
  beforeEach(fresh);

  it("is switched off inside tests unless started explicitly", () => {
    expect(env.MARKET_SIM_ENABLED).toBe("false");
  });

  it("quotes the configured ladder around the reference price through its own account", async () => {
    await configure(QUIET);
    const report = await maker().tick();
    expect(report.error).toBeUndefined();
    const status = await maker().status();
    const reference = status.reference as number;
    expect((await book().status()).referencePrice).toBe(reference);

    const { bids, asks } = await topOfBook();
    expect(bids.map(([p]) => p)).toEqual([reference - 3, reference - 5, reference - 7]);
    expect(asks.map(([p]) => p)).toEqual([reference + 3, reference + 5, reference + 7]);
    expect(bids.map(([, q]) => q)).toEqual([50, 60, 70]);
    expect((asks[0]?.[0] as number) - (bids[0]?.[0] as number)).toBe(6);

    // The orders are the maker bot's own, placed through its UserSession like any user's.
    const orders = await session(makerBotId(SYMBOL)).getOrders(makerBotId(SYMBOL), {
      status: "open",
      limit: 50,
      direction: "asc",
    });
    expect(orders.ok && orders.value.length).toBe(6);
    expect(status.metrics.quoteRejects).toBe(0);

    // A second tick at an unchanged price sends nothing.
    const again = await maker().tick();
    if (again.reference === reference) expect(again.actions).toBe(0);
  });

  it("fills a user's market order against its quotes by price-time priority, with impact and partial depth", async () => {
    await configure(QUIET);
    await maker().tick();
    const before = await topOfBook();
    const reference = (await maker().status()).reference as number;
    const user = crypto.randomUUID();
    // 50 + 60 lots rest on the two best asks: 80 lots take all of the first and part of the second.
    const buy = await session(user).placeOrder(user, {
      symbol: SYMBOL,
      side: "buy",
      type: "market",
      time_in_force: "day",
      qty: "80",
    });
    expect(buy.ok).toBe(true);
    if (!buy.ok) return;
    expect(buy.value.status).toBe("filled");
    const avg = ticks(buy.value.filled_avg_price ?? "0");
    // (50 × (ref+3) + 30 × (ref+5)) / 80 = ref + 3.75
    expect(avg).toBeGreaterThanOrEqual(reference + 3);
    expect(avg).toBeLessThanOrEqual(reference + 4);
    const after = await topOfBook();
    expect(after.asks[0]).toEqual([before.asks[1]?.[0], 30]);

    // The maker learns of its fills through the book's outbox, then refills the side on its next tick.
    await vi.waitFor(async () => {
      const p = await session(makerBotId(SYMBOL)).getPosition(makerBotId(SYMBOL), SYMBOL);
      expect(p.ok && Number(p.value.qty)).toBeLessThan(
        (await maker().status()).config?.maker.inventoryGrantLots ?? 0,
      );
    });
    await maker().tick();
    const refilled = await topOfBook();
    expect(refilled.asks.slice(0, 3).map(([, q]) => q)).toEqual([50, 60, 70]);
  });

  it("waits for its refill delay before restoring depth a trade took", async () => {
    await configure({ ...QUIET, maker: { refillDelayMs: 3_600_000 } });
    await maker().tick();
    const user = crypto.randomUUID();
    const buy = await session(user).placeOrder(user, {
      symbol: SYMBOL,
      side: "buy",
      type: "market",
      time_in_force: "day",
      qty: "70",
    });
    expect(buy.ok).toBe(true);
    await vi.waitFor(async () => {
      const p = await session(makerBotId(SYMBOL)).getPosition(makerBotId(SYMBOL), SYMBOL);
      expect(p.ok && Number(p.value.qty)).toBeLessThan(
        (await maker().status()).config?.maker.inventoryGrantLots ?? 0,
      );
    });
    await maker().tick(); // sees the hit: the ask side pauses
    await maker().tick();
    const thin = await topOfBook();
    const askLots = thin.asks.reduce((s, [, q]) => s + q, 0);
    expect(askLots).toBe(50 + 60 + 70 - 70);
    // Bids were not hit: they stay full.
    expect(thin.bids.map(([, q]) => q)).toEqual([50, 60, 70]);

    await configure({ maker: { refillDelayMs: 0 } });
    await maker().tick();
    expect((await topOfBook()).asks.reduce((s, [, q]) => s + q, 0)).toBe(180);
  });

  it("keeps its spread and never breaches its account's risk limits while noise takers trade", {
    timeout: 60_000,
  }, async () => {
    await configure({
      ...QUIET,
      simulator: { annualVolatility: 5, jumpsPerDay: 2_000, jumpStdDev: 0.01 },
      tickMs: 60_000,
      noise: { takers: 3, tradeProbability: 1, minLots: 20, maxLots: 150, targetInventoryLots: 400 },
    });
    for (let i = 0; i < 15; i++) {
      const report = await maker().tick();
      expect(report.error).toBeUndefined();
      await settle();
      const { bids, asks } = await topOfBook();
      const bestBid = bids[0]?.[0];
      const bestAsk = asks[0]?.[0];
      if (bestBid !== undefined && bestAsk !== undefined) expect(bestAsk - bestBid).toBeGreaterThanOrEqual(6);
      // Let time pass on the simulated clock: jump the path a step per tick.
      await runInDurableObject(maker(), (instance) => {
        const state = (instance as unknown as { state: { config: { simulator: { startMs: number } } } })
          .state;
        state.config.simulator.startMs -= 60_000;
      });
    }
    const status = await maker().status();
    const m = status.metrics;
    console.log(
      `[maker] ${m.ticks} ticks: requote ${m.requoteMsAvg.toFixed(0)} ms avg / ${m.requoteMsMax} ms max, ` +
        `${m.quoteActions} actions (${m.quoteRejects} refused: ${JSON.stringify(m.rejectCodes)}), ${m.takerOrders} taker orders`,
    );
    expect(status.metrics.takerOrders).toBeGreaterThan(10);
    const risk = [
      "insufficient_buying_power",
      "insufficient_position",
      "max_position_notional",
      "max_order_notional",
    ];
    for (const code of risk) expect(status.metrics.rejectCodes[code] ?? 0).toBe(0);
    for (const id of [
      makerBotId(SYMBOL),
      takerBotId(SYMBOL, 1),
      takerBotId(SYMBOL, 2),
      takerBotId(SYMBOL, 3),
    ]) {
      const account = await accountOf(id);
      expect(checkInvariants(account)).toMatchObject({ ok: true });
      expect(account.cashMicros).toBeGreaterThanOrEqual(0);
      for (const p of account.positions.values()) expect(p.qtyLots).toBeGreaterThan(0);
    }
  });

  it("moves the book's reference price along its seeded path, and resumes it after a restart", async () => {
    await configure(QUIET);
    await maker().tick();
    await runInDurableObject(maker(), (instance) => {
      // 40 steps' worth of time passes.
      const state = (instance as unknown as { state: MakerState }).state;
      if (state.config) state.config.simulator.startMs -= 40 * state.config.simulator.stepMs;
    });
    await maker().tick();
    await evictDurableObject(maker());
    const status = await maker().status();
    const config = status.config!;
    const sim = status.simulator!;
    expect(sim.step).toBeGreaterThanOrEqual(40);
    const expected = priceTicksOf(
      config.simulator,
      advance(config.simulator, initialState(config.simulator), sim.step),
    );
    expect(sim.priceTicks).toBe(expected);
    expect((await book().status()).referencePrice).toBe(expected);
  });

  it("follows a real feed when one is configured, quoting around its best bid and offer", async () => {
    const frames = fixture
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as unknown);
    // BTC-USD ≈ 67,000 × 0.0002 ≈ 13.40: DYNA trades around its real counterpart.
    await configure({
      ...QUIET,
      feed: { product: "BTC-USD", priceScale: "0.0002", qtyScale: "1000", staleAfterMs: 3_600_000 },
    });
    const ingested = await maker().ingestFeed(frames);
    if (!ingested.ok) throw new Error(ingested.message);
    const fed = ingested.value;
    expect(fed.stale).toBe(1);
    expect(fed.reference).toBeGreaterThan(1_300);
    expect(fed.reference).toBeLessThan(1_370);
    await maker().tick();
    const status = await maker().status();
    expect(status.referenceSource).toBe("feed");
    expect(status.reference).toBe(fed.reference);
    expect((await book().status()).referencePrice).toBe(fed.reference);
    const { bids, asks } = await topOfBook();
    const bid = fed.bid as number;
    const ask = fed.ask as number;
    // The real spread is narrower than the maker's 6 ticks: it widens around the real quote.
    expect((asks[0]?.[0] as number) - (bids[0]?.[0] as number)).toBe(6);
    expect(bids[0]?.[0]).toBeLessThanOrEqual(bid);
    expect(asks[0]?.[0]).toBeGreaterThanOrEqual(ask);
  });

  it("cancels its quotes when stopped and stays stopped when the cron asks it to run", async () => {
    await configure(QUIET);
    await maker().tick();
    expect((await topOfBook()).bids.length).toBe(3);
    const stopped = await maker().stop();
    expect(stopped.mode).toBe("stopped");
    expect(await topOfBook()).toEqual({ bids: [], asks: [] });
    expect(await maker().ensureRunning()).toBe("stopped");
    expect(stopped.nextTickAt).toBeNull();
  });

  it("starts a market that was never started when the cron asks, with an alarm armed", async () => {
    const m = env.MARKET_MAKER.get(env.MARKET_MAKER.idFromName("EPIC"));
    expect(await m.ensureRunning()).toBe("running");
    const status = await m.status();
    expect(status.mode).toBe("running");
    expect(status.config?.tickMs).toBe(1_500);
    await m.stop();
  });

  it("refuses configs outside their ranges", async () => {
    expect(await maker().configure({ quote: { spreadTicks: 0 } })).toMatchObject({
      ok: false,
      status: 422,
      code: "invalid_config",
      message: expect.stringMatching(/spreadTicks/),
    });
    expect(await maker().configure({ tickMs: 5 })).toMatchObject({ ok: false, code: "invalid_config" });
    expect(await maker().ingestFeed([])).toMatchObject({ ok: false, code: "no_feed" });
  });
});

describe("maker tick schedule", () => {
  it("spreads the catalog's makers evenly over the tick period and keeps each on its own phase", () => {
    const phases = ["ACME", "BOLT", "CRUX", "DYNA", "EPIC"].map((s) => tickPhase(s, 1500));
    expect(phases).toEqual([0, 300, 600, 900, 1200]);
    const other = tickPhase("ZZZZ", 1500);
    expect(other).toBeGreaterThanOrEqual(0);
    expect(other).toBeLessThan(1500);
    for (const after of [0, 1, 299, 300, 301, 1_795_000_000_123]) {
      const at = nextTickAfter(after, 1500, 300);
      expect(at).toBeGreaterThanOrEqual(after);
      expect(at - after).toBeLessThan(1500);
      expect((((at - 300) % 1500) + 1500) % 1500).toBe(0);
    }
  });
});
