import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { coinbaseAdapter } from "./coinbase.ts";
import { isoToMs, toSteps } from "./scale.ts";
import { applyFeedEvent, emptyFeedState, type FeedEvent, feedReferencePrice } from "./types.ts";

const frames = readFileSync(new URL("../fixtures/coinbase-btc-usd.jsonl", import.meta.url), "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l) as Record<string, unknown>);

const adapter = coinbaseAdapter({
  product: "BTC-USD",
  symbol: "EPIC",
  tickSize: "0.01",
  lotSize: "1",
  priceScale: "0.001",
  qtyScale: "1000",
});

describe("Coinbase feed adapter", () => {
  const events = frames.flatMap((f) => adapter.normalize(f));

  it("turns every ticker into a quote and every match into a trade, and ignores the rest", () => {
    const tickers = frames.filter((f) => f.type === "ticker" && f.product_id === "BTC-USD").length;
    const matches = frames.filter(
      (f) => (f.type === "match" || f.type === "last_match") && f.product_id === "BTC-USD",
    ).length;
    expect(events.filter((e) => e.kind === "quote")).toHaveLength(tickers);
    expect(events.filter((e) => e.kind === "trade")).toHaveLength(matches);
    expect(events.every((e) => e.symbol === "EPIC" && e.source === "coinbase")).toBe(true);
    // subscriptions, heartbeats, the error and the ETH-USD trade produce nothing.
    for (const f of frames) {
      if (
        f.type === "heartbeat" ||
        f.type === "subscriptions" ||
        f.type === "error" ||
        f.product_id === "ETH-USD"
      ) {
        expect(adapter.normalize(f)).toEqual([]);
      }
    }
  });

  it("scales prices and sizes exactly onto the symbol's ticks and lots", () => {
    expect(adapter.normalize(frames[1])).toEqual([
      {
        kind: "trade",
        symbol: "EPIC",
        source: "coinbase",
        id: "coinbase:BTC-USD:652340110",
        sourceSeq: 95013277410,
        ts: Date.UTC(2026, 10, 26, 18, 40, 0, 123),
        // 67012.35 × 0.001 = 67.01235 → 67.01 → 6701 ticks
        priceTicks: 6_701,
        // 0.0015 × 1000 = 1.5 lots → rounded half up to 2
        qtyLots: 2,
        // Coinbase's side is the maker's: a sell maker means a buying taker.
        takerSide: "buy",
      },
    ]);
    expect(adapter.normalize(frames[2])).toEqual([
      {
        kind: "quote",
        symbol: "EPIC",
        source: "coinbase",
        sourceSeq: 95013277420,
        ts: Date.UTC(2026, 10, 26, 18, 40, 0, 169),
        bidTicks: 6_701, // 67012.32 × 0.001
        bidLots: 56, // 0.056363 × 1000 = 56.363
        askTicks: 6_701,
        askLots: 90,
      },
    ]);
  });

  it("keeps the newest best bid and offer and drops a message that arrives out of order", () => {
    let state = emptyFeedState();
    for (const e of events) state = applyFeedEvent(state, e);
    expect(state.stale).toBe(1);
    const newest = events
      .filter((e): e is Extract<FeedEvent, { kind: "quote" }> => e.kind === "quote")
      .reduce((a, b) => (b.sourceSeq > a.sourceSeq ? b : a));
    expect([state.bid, state.ask]).toEqual([newest.bidTicks, newest.askTicks]);
    expect(state.lastTrade?.id).toBe(
      events.filter((e) => e.kind === "trade").reduce((a, b) => (b.sourceSeq > a.sourceSeq ? b : a)).id,
    );
    const ref = feedReferencePrice(state);
    expect(ref).toBe(Math.floor(((state.bid ?? 0) + (state.ask ?? 0)) / 2));
    // EPIC follows BTC-USD / 1000: around 67.
    expect(ref).toBeGreaterThan(6_600);
    expect(ref).toBeLessThan(6_800);
  });

  it("subscribes to the ticker, matches and heartbeat channels of its product", () => {
    expect(JSON.parse(adapter.subscribeFrames()[0] as string)).toEqual({
      type: "subscribe",
      product_ids: ["BTC-USD"],
      channels: ["ticker", "matches", "heartbeat"],
    });
  });

  it("ignores malformed messages instead of throwing", () => {
    for (const junk of [null, 1, "x", [], { type: "match", product_id: "BTC-USD" }, { type: "ticker" }]) {
      expect(adapter.normalize(junk)).toEqual([]);
    }
    expect(adapter.normalize({ ...frames[1], price: "1e5" } as Record<string, unknown>)).toEqual([]);
  });
});

describe("exact scaling", () => {
  it("rounds value × factor to whole steps half up, with no float in between", () => {
    expect(toSteps("67012.345", "0.001", "0.01")).toBe(6_701);
    expect(toSteps("0.005", "1", "0.01")).toBe(1);
    expect(toSteps("0.0049999", "1", "0.01")).toBe(0);
    expect(toSteps("1.15", "1", "0.05")).toBe(23);
    expect(toSteps("x", "1", "0.01")).toBeNull();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 12 }), fc.integer({ min: 0, max: 6 }), (units, scale) => {
        const s = (units / 10 ** scale).toFixed(scale);
        // At factor 1 and a step equal to the value's own precision, the steps are the digits.
        expect(toSteps(s, "1", (1 / 10 ** scale).toFixed(scale))).toBe(units);
      }),
    );
  });

  it("reads ISO times with microseconds to the millisecond", () => {
    expect(isoToMs("2026-11-26T18:40:00.123456Z")).toBe(Date.UTC(2026, 10, 26, 18, 40, 0, 123));
    expect(isoToMs("2026-11-26T18:40:00Z")).toBe(Date.UTC(2026, 10, 26, 18, 40, 0));
    expect(isoToMs("yesterday")).toBeNull();
  });
});
