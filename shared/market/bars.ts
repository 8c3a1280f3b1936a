/**
 * OHLCV bars from trades: the pure aggregation that the bars processor, the data stream and the tests
 * share. Prices are ticks and quantities lots (integers); sums are exact (`bigint` where they can exceed
 * 2^53); VWAP is a decimal string computed from the exact sums.
 *
 * A bar covers `[start, start + ms)` of one timeframe, aligned to the UTC epoch (1d bars to UTC
 * midnight). Within a symbol, trades are ordered by their engine sequence number `seq`: the bar's open is
 * the trade with the lowest seq in it, its close the one with the highest (the bucket comes from `ts`).
 *
 * @example
 * ```ts
 * const bars = aggregateBars(trades, "1m");        // sorted by start
 * vwapString(bars[0], { tickSize: "0.01" });       // "101.253333"
 * ```
 */
import { formatDecimal, parseStep } from "../decimal.ts";

/** The timeframes PrepX stores. */
export const TIMEFRAMES = ["1m", "5m", "15m", "1h", "1d"] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

export const TIMEFRAME_MS: Readonly<Record<Timeframe, number>> = {
  "1m": 60_000,
  "5m": 300_000,
  "15m": 900_000,
  "1h": 3_600_000,
  "1d": 86_400_000,
};

/** Alpaca's timeframe spellings ("1Min", "5Min", "15Min", "1Hour", "1Day", also "1T", "1H", "1D"). */
export function parseTimeframe(input: string): Timeframe | null {
  const m = /^([0-9]{1,2})(Min|T|Hour|H|Day|D)$/.exec(input.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = m[2];
  if (unit === "Min" || unit === "T") {
    if (n === 1) return "1m";
    if (n === 5) return "5m";
    if (n === 15) return "15m";
    if (n === 60) return "1h";
    return null;
  }
  if (unit === "Hour" || unit === "H") return n === 1 ? "1h" : n === 24 ? "1d" : null;
  return n === 1 ? "1d" : null;
}

/** One trade as the bars need it. */
export interface BarTrade {
  /** The engine's sequence number of the fill: orders trades within a symbol. */
  seq: number;
  /** ms since epoch. */
  ts: number;
  priceTicks: number;
  qtyLots: number;
}

export interface Bar {
  timeframe: Timeframe;
  /** Start of the bucket, ms since epoch. */
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  /** Seq of the opening and closing trades (to merge bars built from different batches). */
  openSeq: number;
  closeSeq: number;
  /** Σ qty, lots. */
  volume: bigint;
  /** Number of trades. */
  trades: number;
  /** Σ price × qty, ticks × lots (exact). */
  notional: bigint;
}

/** The start of the `timeframe` bucket that contains `ts`. */
export function bucketStart(timeframe: Timeframe, ts: number): number {
  const ms = TIMEFRAME_MS[timeframe];
  return ts - (((ts % ms) + ms) % ms);
}

/** A bar holding a single trade. */
export function barOf(timeframe: Timeframe, t: BarTrade): Bar {
  return {
    timeframe,
    start: bucketStart(timeframe, t.ts),
    open: t.priceTicks,
    high: t.priceTicks,
    low: t.priceTicks,
    close: t.priceTicks,
    openSeq: t.seq,
    closeSeq: t.seq,
    volume: BigInt(t.qtyLots),
    trades: 1,
    notional: BigInt(t.priceTicks) * BigInt(t.qtyLots),
  };
}

/**
 * Two bars of the same bucket built from disjoint sets of trades, as one. Associative and commutative, so
 * bars can be built incrementally in any batch order (what the Postgres upsert does).
 */
export function mergeBars(a: Bar, b: Bar): Bar {
  if (a.timeframe !== b.timeframe || a.start !== b.start) throw new RangeError("bars of different buckets");
  const first = a.openSeq <= b.openSeq ? a : b;
  const last = a.closeSeq >= b.closeSeq ? a : b;
  return {
    timeframe: a.timeframe,
    start: a.start,
    open: first.open,
    openSeq: first.openSeq,
    close: last.close,
    closeSeq: last.closeSeq,
    high: Math.max(a.high, b.high),
    low: Math.min(a.low, b.low),
    volume: a.volume + b.volume,
    trades: a.trades + b.trades,
    notional: a.notional + b.notional,
  };
}

/**
 * The bars of `timeframe` for a set of trades of one symbol, sorted by start. Trades with the same seq
 * are the same trade and count once (delivery is at-least-once).
 */
export function aggregateBars(trades: readonly BarTrade[], timeframe: Timeframe): Bar[] {
  const seen = new Set<number>();
  const buckets = new Map<number, Bar>();
  for (const t of trades) {
    if (seen.has(t.seq)) continue;
    seen.add(t.seq);
    const bar = barOf(timeframe, t);
    const existing = buckets.get(bar.start);
    buckets.set(bar.start, existing ? mergeBars(existing, bar) : bar);
  }
  return [...buckets.values()].sort((x, y) => x.start - y.start);
}

/** Decimals of VWAP beyond the tick's own decimals. */
export const VWAP_EXTRA_DECIMALS = 4;

/**
 * VWAP = Σ price·qty / Σ qty as a decimal price string with the tick's decimals plus
 * {@link VWAP_EXTRA_DECIMALS}, rounded half away from zero. Exact: integer division of the sums.
 */
export function vwapString(bar: Pick<Bar, "notional" | "volume">, units: { tickSize: string }): string {
  const tick = parseStep(units.tickSize);
  if (!tick.ok) throw new RangeError(`invalid tick size ${units.tickSize}`);
  if (bar.volume <= 0n) throw new RangeError("VWAP of an empty bar");
  const scale = tick.value.scale + VWAP_EXTRA_DECIMALS;
  // price units (10^-scale) = notional × tickUnits × 10^extra / volume, rounded half up (all positive).
  const numerator = bar.notional * BigInt(tick.value.units) * 10n ** BigInt(VWAP_EXTRA_DECIMALS);
  const q = (2n * numerator + bar.volume) / (2n * bar.volume);
  if (q > BigInt(Number.MAX_SAFE_INTEGER)) return formatBig(q, scale);
  return formatDecimal(Number(q), scale);
}

function formatBig(units: bigint, scale: number): string {
  const digits = units.toString().padStart(scale + 1, "0");
  return scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}
