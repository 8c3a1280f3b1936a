/**
 * The per-user figures against a brute-force recomputation: random long-only histories (buys, sells that
 * close, grants, resets, orders filled in several parts), in shuffled order, with random daily equity
 * rows. The brute force is deliberately naive: one queue entry per lot (not per fill), an O(n²) drawdown,
 * every figure computed in its own pass.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { renderUserAnalytics } from "./render.ts";
import {
  type AnalyticsDay,
  type AnalyticsEvent,
  type AnalyticsFill,
  computeUserAnalytics,
  equityFigures,
  sharpeRatio,
  utcDay,
} from "./user.ts";

const RUNS = Number(process.env.ANALYTICS_RUNS ?? 300);
const SYMBOLS = ["ACME", "BOLT", "CRUX"];
const START = Date.UTC(2026, 10, 20, 9, 30);

type Step =
  | {
      op: "buy" | "sell";
      symbol: number;
      qty: number;
      pnl: number;
      sameOrder: boolean;
      dt: number;
      fee: number;
    }
  | { op: "grant"; symbol: number; qty: number; dt: number }
  | { op: "reset"; dt: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constantFrom("buy" as const, "sell" as const),
      symbol: fc.nat({ max: SYMBOLS.length - 1 }),
      qty: fc.integer({ min: 1, max: 12 }),
      pnl: fc.oneof(
        fc.constant(0),
        fc.integer({ min: -2, max: 2 }),
        fc.integer({ min: -5_000_000, max: 5_000_000 }),
      ),
      sameOrder: fc.boolean(),
      dt: fc.integer({ min: 0, max: 6 * 3_600_000 }),
      fee: fc.integer({ min: 0, max: 20_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("grant" as const),
      symbol: fc.nat({ max: SYMBOLS.length - 1 }),
      qty: fc.integer({ min: 1, max: 30 }),
      dt: fc.integer({ min: 0, max: 3_600_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("reset" as const), dt: fc.integer({ min: 0, max: 86_400_000 }) }),
  },
);

/** Turns steps into a consistent long-only history (sells never exceed the position). */
function history(steps: readonly Step[]): AnalyticsEvent[] {
  const events: AnalyticsEvent[] = [];
  const position = new Map<string, number>();
  let seq = 0;
  let at = START;
  let order = 0;
  let last = null as { symbol: string; side: string; id: string } | null;
  for (const s of steps) {
    at += s.dt;
    seq += 1;
    if (s.op === "reset") {
      position.clear();
      events.push({ kind: "reset", seq, at });
      last = null;
      continue;
    }
    const symbol = SYMBOLS[s.symbol] as string;
    if (s.op === "grant") {
      position.set(symbol, (position.get(symbol) ?? 0) + s.qty);
      events.push({ kind: "lots", seq, at, symbol, qtyLots: s.qty });
      continue;
    }
    const held = position.get(symbol) ?? 0;
    const qty = s.op === "sell" ? Math.min(s.qty, held) : s.qty;
    if (qty === 0) continue;
    const after = s.op === "buy" ? held + qty : held - qty;
    position.set(symbol, after);
    const previous: { symbol: string; side: string; id: string } | null = last;
    const continues: boolean = s.sameOrder && previous?.symbol === symbol && previous.side === s.op;
    const orderId: string = continues && previous ? previous.id : `o${++order}`;
    last = { symbol, side: s.op, id: orderId };
    events.push({
      kind: "fill",
      seq,
      at,
      orderId,
      symbol,
      side: s.op,
      qtyLots: qty,
      lotSize: "1",
      notionalMicros: qty * 100_000_000 + s.pnl * (s.op === "sell" ? 1 : 0),
      feeMicros: s.fee,
      realizedPlMicros: s.op === "sell" ? s.pnl : 0,
      positionQtyLots: after,
    });
  }
  return events;
}

const dayRow: fc.Arbitrary<{ gap: number; equity: number | null; contributions: number }> = fc.record({
  gap: fc.integer({ min: 1, max: 4 }),
  equity: fc.option(fc.integer({ min: 1_000_000, max: 200_000_000_000 }), { freq: 8 }),
  contributions: fc.oneof(
    { weight: 4, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 100_000_000_000 }) },
  ),
});

function days(
  rows: readonly { gap: number; equity: number | null; contributions: number }[],
): AnalyticsDay[] {
  let t = START;
  return rows.map((r, i) => {
    t += (i === 0 ? 0 : r.gap) * 86_400_000;
    return {
      day: utcDay(t),
      equityMicros: r.equity,
      contributionsMicros: i === 0 ? 100_000_000_000 : r.contributions,
    };
  });
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let a = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const j = a % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

// --- the brute force --------------------------------------------------------------------------------------

function bruteTrades(events: readonly AnalyticsEvent[]) {
  const ordered = [...events].sort((a, b) => a.seq - b.seq);
  const fills = ordered.filter((e): e is AnalyticsFill => e.kind === "fill");
  const perSymbol = new Map<
    string,
    { trades: number; volume: bigint; turnover: bigint; realized: bigint; fees: bigint }
  >();
  for (const f of fills) {
    const s = perSymbol.get(f.symbol) ?? { trades: 0, volume: 0n, turnover: 0n, realized: 0n, fees: 0n };
    s.trades++;
    s.volume += BigInt(f.qtyLots);
    s.turnover += BigInt(f.notionalMicros);
    s.realized += BigInt(f.realizedPlMicros);
    s.fees += BigInt(f.feeMicros);
    perSymbol.set(f.symbol, s);
  }
  // Closing trades: sell orders (long-only), PnL summed per order.
  const orders = new Map<string, { symbol: string; pnl: bigint }>();
  for (const f of fills.filter((f) => f.side === "sell")) {
    const o = orders.get(f.orderId) ?? { symbol: f.symbol, pnl: 0n };
    o.pnl += BigInt(f.realizedPlMicros);
    orders.set(f.orderId, o);
  }
  // Holding: one queue entry per lot.
  const queues = new Map<string, number[]>();
  const held = new Map<string, { lots: bigint; ms: bigint }>();
  for (const e of ordered) {
    if (e.kind === "reset") {
      queues.clear();
      continue;
    }
    const q = queues.get(e.symbol) ?? [];
    queues.set(e.symbol, q);
    if (e.kind === "lots" || e.side === "buy") {
      for (let i = 0; i < e.qtyLots; i++) q.push(e.at);
      continue;
    }
    const h = held.get(e.symbol) ?? { lots: 0n, ms: 0n };
    for (let i = 0; i < e.qtyLots && q.length > 0; i++) {
      const acquired = q.shift() as number;
      h.lots += 1n;
      h.ms += BigInt(e.at - acquired);
    }
    held.set(e.symbol, h);
  }
  return { perSymbol, orders, held };
}

function bruteEquity(rows: readonly AnalyticsDay[], resetDay: string | null) {
  const sorted = [...rows]
    .filter((r) => resetDay === null || r.day >= resetDay)
    .sort((a, b) => a.day.localeCompare(b.day));
  const calendar: { day: string; row: AnalyticsDay | undefined }[] = [];
  if (sorted.length > 0) {
    const byDay = new Map(sorted.map((r) => [r.day, r]));
    const first = Date.parse(`${sorted[0]?.day}T00:00:00Z`);
    const last = Date.parse(`${sorted.at(-1)?.day}T00:00:00Z`);
    for (let t = first; t <= last; t += 86_400_000)
      calendar.push({ day: utcDay(t), row: byDay.get(utcDay(t)) });
  }
  let start = 0;
  let prev = 0n;
  if (resetDay !== null) {
    start = calendar.findIndex((c) => c.row !== undefined && c.row.equityMicros !== null);
    if (start === -1) return { returns: [] as number[], pnl: [0n], index: [1] };
    prev = BigInt(calendar[start]?.row?.equityMicros ?? 0);
    start += 1;
  }
  const returns: number[] = [];
  const pnl: bigint[] = [0n];
  const index: number[] = [1];
  let pending = 0n;
  let cumulative = 0n;
  let started = resetDay !== null;
  for (const { row } of calendar.slice(start)) {
    if (row === undefined) {
      if (started) {
        returns.push(0);
        index.push(index.at(-1) as number);
      }
      continue;
    }
    started = true;
    pending += BigInt(row.contributionsMicros);
    if (row.equityMicros === null) continue;
    const e = BigInt(row.equityMicros);
    const capital = prev + pending;
    if (capital > 0n) {
      const r = Number(e - prev - pending) / Number(capital);
      returns.push(r);
      index.push((index.at(-1) as number) * (1 + r));
    }
    cumulative += e - prev - pending;
    pnl.push(cumulative);
    prev = e;
    pending = 0n;
  }
  return { returns, pnl, index };
}

const maxFallBig = (xs: readonly bigint[]) => {
  let worst = 0n;
  for (let i = 0; i < xs.length; i++)
    for (let j = i + 1; j < xs.length; j++) {
      const fall = (xs[i] as bigint) - (xs[j] as bigint);
      if (fall > worst) worst = fall;
    }
  return worst;
};
const maxFallRatio = (xs: readonly number[]) => {
  let worst = 0;
  for (let i = 0; i < xs.length; i++)
    for (let j = i + 1; j < xs.length; j++) {
      const peak = Math.max(...xs.slice(0, i + 1));
      const fall = (peak - (xs[j] as number)) / peak;
      if (fall > worst) worst = fall;
    }
  return worst;
};

function bruteSharpe(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  if (Math.sqrt(variance) <= 1e-12) return null;
  return (mean / Math.sqrt(variance)) * Math.sqrt(252);
}

const close = (a: number | null, b: number | null) =>
  a === null || b === null ? a === b : Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

describe("per-user analytics", () => {
  it("equal a brute-force recomputation over random histories, whatever the order of the rows", () => {
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 80 }),
        fc.array(dayRow, { maxLength: 25 }),
        fc.integer(),
        (steps, dayRows, seed) => {
          const events = history(steps);
          const daily = days(dayRows);
          const a = computeUserAnalytics(shuffled(events, seed), shuffled(daily, seed + 1));
          const brute = bruteTrades(events);

          expect(a.bySymbol.map((s) => s.symbol).sort()).toEqual([...brute.perSymbol.keys()].sort());
          for (const s of a.bySymbol) {
            const b = brute.perSymbol.get(s.symbol);
            expect(b).toBeDefined();
            expect([s.trades, s.volumeLots, s.turnoverMicros, s.realizedPlMicros, s.feesMicros]).toEqual([
              b?.trades,
              b?.volume,
              b?.turnover,
              b?.realized,
              b?.fees,
            ]);
            const closes = [...brute.orders.values()].filter((o) => o.symbol === s.symbol);
            expect(s.closingTrades).toBe(closes.length);
            expect(s.winningTrades).toBe(closes.filter((o) => o.pnl > 0n).length);
            const h = brute.held.get(s.symbol) ?? { lots: 0n, ms: 0n };
            expect([s.heldLots, s.heldLotMs]).toEqual([h.lots, h.ms]);
          }
          // Most traded first.
          for (let i = 1; i < a.bySymbol.length; i++) {
            expect((a.bySymbol[i - 1]?.trades ?? 0) >= (a.bySymbol[i]?.trades ?? 0)).toBe(true);
          }
          expect(a.totals.trades).toBe(events.filter((e) => e.kind === "fill").length);

          const resets = events.filter((e) => e.kind === "reset");
          const resetDay = resets.length > 0 ? utcDay((resets.at(-1) as { at: number }).at) : null;
          const be = bruteEquity(daily, resetDay);
          expect(a.equity.returns.map((r) => r.value)).toEqual(be.returns);
          expect(a.equity.maxDrawdownMicros).toBe(maxFallBig(be.pnl));
          expect(
            close(a.equity.maxDrawdownRatio, be.returns.length > 0 ? maxFallRatio(be.index) : null),
          ).toBe(true);
          expect(close(a.equity.sharpe, bruteSharpe(be.returns))).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("render money exactly and ratios with fixed precision", () => {
    const fill = (over: Partial<AnalyticsFill>): AnalyticsFill => ({
      kind: "fill",
      seq: 1,
      at: START,
      orderId: "o1",
      symbol: "ACME",
      side: "buy",
      qtyLots: 3,
      lotSize: "1",
      notionalMicros: 300_000_000,
      feeMicros: 450_000,
      realizedPlMicros: 0,
      positionQtyLots: 3,
      ...over,
    });
    const events: AnalyticsEvent[] = [
      fill({}),
      fill({
        seq: 2,
        at: START + 1_500,
        orderId: "o2",
        side: "sell",
        qtyLots: 1,
        realizedPlMicros: 2_500_000,
        positionQtyLots: 2,
      }),
      fill({
        seq: 3,
        at: START + 2_000,
        orderId: "o3",
        side: "sell",
        qtyLots: 1,
        realizedPlMicros: -1,
        positionQtyLots: 1,
      }),
      fill({
        seq: 4,
        at: START + 3_001,
        orderId: "o4",
        side: "sell",
        qtyLots: 1,
        realizedPlMicros: 7,
        positionQtyLots: 0,
      }),
    ];
    const view = renderUserAnalytics(computeUserAnalytics(events, []));
    expect(view.summary).toMatchObject({
      trades: 4,
      realized_pnl: "2.500006",
      fees: "1.8",
      net_pnl: "0.700006",
      turnover: "1200",
      closing_trades: 3,
      winning_trades: 2,
      win_rate: "0.6667",
      // (1.5 s + 2 s + 3.001 s) / 3 = 2.167 s
      avg_holding_seconds: "2.167",
      sharpe: null,
      max_drawdown: "0",
    });
    expect(view.by_symbol).toEqual([expect.objectContaining({ symbol: "ACME", volume: "6", trades: 4 })]);
    expect(view.most_traded).toEqual(["ACME"]);
  });

  it("measure returns net of contributions and restart the curve at the last reset", () => {
    const d = (day: string, equity: number | null, contributions = 0): AnalyticsDay => ({
      day,
      equityMicros: equity,
      contributionsMicros: contributions,
    });
    // 100 contributed, 110 at the close (+10 %), a quiet day, then a grant of 50 and 150 at the close (−6.25 %).
    const e = equityFigures(
      [d("2026-11-20", 110, 100), d("2026-11-22", 110), d("2026-11-23", 150, 50)],
      null,
    );
    expect(e.returns).toEqual([
      { day: "2026-11-20", value: 0.1 },
      { day: "2026-11-21", value: 0 },
      { day: "2026-11-22", value: 0 },
      { day: "2026-11-23", value: -10 / 160 },
    ]);
    expect(e.maxDrawdownMicros).toBe(10n);
    expect(e.maxDrawdownRatio).toBeCloseTo(0.0625, 12);
    expect(e.since).toBe("2026-11-20");
    // After a reset on the 22nd, the curve starts at that day's closing equity.
    const r = equityFigures(
      [d("2026-11-20", 110, 100), d("2026-11-22", 100), d("2026-11-23", 120)],
      "2026-11-22",
    );
    expect(r.since).toBe("2026-11-22");
    expect(r.returns).toEqual([{ day: "2026-11-23", value: 0.2 }]);
    expect(sharpeRatio([0.01, 0.01])).toBeNull();
    expect(sharpeRatio([0.01, 0.03])).toBeCloseTo((0.02 / Math.SQRT2 / 0.01) * Math.sqrt(252), 9);
  });
});
