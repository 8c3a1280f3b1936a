import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { alpacaBar } from "./alpaca-data.ts";
import {
  aggregateBars,
  type Bar,
  type BarTrade,
  bucketStart,
  mergeBars,
  parseTimeframe,
  TIMEFRAME_MS,
  TIMEFRAMES,
  vwapString,
} from "./bars.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 2, 13, 58);

/** Trades with unique seqs (ascending in generation order) at times within a few days of T0. */
const trades = fc
  .array(
    fc.record({
      dt: fc.integer({ min: 0, max: 3 * DAY }),
      priceTicks: fc.integer({ min: 1, max: 2 ** 36 - 1 }),
      qtyLots: fc.integer({ min: 1, max: 2 ** 40 - 1 }),
    }),
    { maxLength: 120 },
  )
  .chain((rows) =>
    fc.shuffledSubarray(
      rows.map((r, i) => ({
        seq: 1_000 + i * 3,
        ts: T0 + r.dt,
        priceTicks: r.priceTicks,
        qtyLots: r.qtyLots,
      })),
      { minLength: rows.length, maxLength: rows.length },
    ),
  );

/** The obvious, slow way: group, sort each group by seq, read off the values. */
function bruteForce(list: readonly BarTrade[], tf: (typeof TIMEFRAMES)[number]) {
  const ms = TIMEFRAME_MS[tf];
  const groups = new Map<number, BarTrade[]>();
  for (const t of list) {
    const start = Math.floor(t.ts / ms) * ms;
    groups.set(start, [...(groups.get(start) ?? []), t]);
  }
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([start, g]) => {
      const bySeq = [...g].sort((a, b) => a.seq - b.seq);
      let volume = 0n;
      let notional = 0n;
      for (const t of g) {
        volume += BigInt(t.qtyLots);
        notional += BigInt(t.priceTicks) * BigInt(t.qtyLots);
      }
      return {
        start,
        open: bySeq[0]?.priceTicks,
        close: bySeq[bySeq.length - 1]?.priceTicks,
        high: Math.max(...g.map((t) => t.priceTicks)),
        low: Math.min(...g.map((t) => t.priceTicks)),
        volume,
        notional,
        trades: g.length,
      };
    });
}

const essentials = (bars: Bar[]) =>
  bars.map((b) => ({
    start: b.start,
    open: b.open,
    close: b.close,
    high: b.high,
    low: b.low,
    volume: b.volume,
    notional: b.notional,
    trades: b.trades,
  }));

describe("bar aggregation", () => {
  it("matches a brute-force computation from the trades, for every timeframe", () => {
    fc.assert(
      fc.property(trades, (list) => {
        for (const tf of TIMEFRAMES)
          expect(essentials(aggregateBars(list, tf))).toEqual(bruteForce(list, tf));
      }),
      { numRuns: 200 },
    );
  });

  it("gives the same bars however the trades are split into batches and merged", () => {
    fc.assert(
      fc.property(trades, fc.array(fc.boolean(), { maxLength: 120 }), (list, split) => {
        const a = list.filter((_, i) => split[i] === true);
        const b = list.filter((_, i) => split[i] !== true);
        for (const tf of TIMEFRAMES) {
          const merged = new Map<number, Bar>();
          for (const bar of [...aggregateBars(b, tf), ...aggregateBars(a, tf)]) {
            const prev = merged.get(bar.start);
            merged.set(bar.start, prev ? mergeBars(prev, bar) : bar);
          }
          expect([...merged.values()].sort((x, y) => x.start - y.start)).toEqual(aggregateBars(list, tf));
        }
      }),
      { numRuns: 100 },
    );
  });

  it("counts a trade delivered twice once", () => {
    const t: BarTrade = { seq: 7, ts: T0, priceTicks: 10_000, qtyLots: 5 };
    expect(aggregateBars([t, t, { ...t }], "1m")).toEqual(aggregateBars([t], "1m"));
  });

  it("aligns buckets to the UTC epoch, days to midnight", () => {
    const ts = Date.UTC(2026, 10, 2, 13, 58, 41, 512);
    expect(bucketStart("1m", ts)).toBe(Date.UTC(2026, 10, 2, 13, 58));
    expect(bucketStart("5m", ts)).toBe(Date.UTC(2026, 10, 2, 13, 55));
    expect(bucketStart("15m", ts)).toBe(Date.UTC(2026, 10, 2, 13, 45));
    expect(bucketStart("1h", ts)).toBe(Date.UTC(2026, 10, 2, 13));
    expect(bucketStart("1d", ts)).toBe(Date.UTC(2026, 10, 2));
  });

  it("computes VWAP exactly from the integer sums, rounded half up at 4 extra decimals", () => {
    // (100.00 × 1 + 100.01 × 2) / 3 = 100.006666… → "100.006667"
    const bars = aggregateBars(
      [
        { seq: 1, ts: T0, priceTicks: 10_000, qtyLots: 1 },
        { seq: 2, ts: T0 + 1, priceTicks: 10_001, qtyLots: 2 },
      ],
      "1m",
    );
    expect(vwapString(bars[0] as Bar, { tickSize: "0.01" })).toBe("100.006667");
    fc.assert(
      fc.property(trades, (list) => {
        for (const bar of aggregateBars(list, "1d")) {
          // VWAP lies within [low, high].
          const v = vwapString(bar, { tickSize: "0.01" });
          const [int, frac] = v.split(".") as [string, string];
          const units = BigInt(int + frac); // 10^-6
          expect(units >= BigInt(bar.low) * 10_000n && units <= BigInt(bar.high) * 10_000n).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("renders a bar in Alpaca's shape", () => {
    const [bar] = aggregateBars(
      [
        { seq: 3, ts: T0 + 5_000, priceTicks: 7_512, qtyLots: 10 },
        { seq: 4, ts: T0 + 9_000, priceTicks: 7_498, qtyLots: 30 },
        { seq: 5, ts: T0 + 20_000, priceTicks: 7_505, qtyLots: 10 },
      ],
      "1m",
    );
    expect(alpacaBar(bar as Bar, { tickSize: "0.01", lotSize: "1" })).toEqual({
      t: "2026-11-02T13:58:00Z",
      o: 75.12,
      h: 75.12,
      l: 74.98,
      c: 75.05,
      v: 50,
      n: 3,
      vw: 75.022,
    });
  });

  it("understands Alpaca's timeframe spellings", () => {
    expect(parseTimeframe("1Min")).toBe("1m");
    expect(parseTimeframe("5Min")).toBe("5m");
    expect(parseTimeframe("15T")).toBe("15m");
    expect(parseTimeframe("1Hour")).toBe("1h");
    expect(parseTimeframe("1Day")).toBe("1d");
    expect(parseTimeframe("2Min")).toBeNull();
    expect(parseTimeframe("1Week")).toBeNull();
  });
});
