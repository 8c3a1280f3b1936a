/**
 * PrepX market data in the shapes of Alpaca's market-data API (v2 stocks) and data stream.
 *
 * Alpaca's data API writes prices and sizes as JSON numbers, and SDKs read them as numbers, so these
 * shapes do too. They are written from the exact decimal strings (`Number("101.25")`): every price on a
 * tick grid with up to 15 significant digits prints back as the same decimal, so the JSON text is exact.
 * Sums that may exceed a safe integer (volume) are exact up to 2^53 − 1 lots and clamped beyond it. Timestamps are RFC 3339 in UTC.
 */
import { lotsToQty, ticksToPrice } from "../engine/rules.ts";
import type { Side } from "../engine/types.ts";
import { type Bar, vwapString } from "./bars.ts";

export interface Units {
  tickSize: string;
  lotSize: string;
}

/** Exchange code of PrepX trades and quotes (Alpaca's `x`, `bx`, `ax`). */
export const PREPX_EXCHANGE = "PX";
/** Alpaca's tape field `z`; PrepX has one tape. */
export const PREPX_TAPE = "P";

export interface AlpacaBar {
  t: string;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  n: number;
  vw: number;
}

export interface AlpacaTrade {
  t: string;
  x: string;
  p: number;
  s: number;
  c: string[];
  i: number;
  z: string;
  /** PrepX: the side that took liquidity. */
  tks?: Side;
}

export interface AlpacaQuote {
  t: string;
  bx: string;
  bp: number;
  bs: number;
  ax: string;
  ap: number;
  as: number;
  c: string[];
  z: string;
}

/** RFC 3339, ms precision, "Z". */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

/** RFC 3339 without fractional seconds, as Alpaca writes bar times ("2021-02-01T16:01:00Z"). */
export function rfc3339Seconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

const num = (decimal: string) => Number(decimal);
/** A bigint sum as a number, clamped to 2^53 − 1 (the documented limit of the JSON shapes). */
const big = (v: bigint) => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Number.MAX_SAFE_INTEGER);

export function alpacaBar(bar: Bar, units: Units): AlpacaBar {
  return {
    t: rfc3339Seconds(bar.start),
    o: num(ticksToPrice(units, bar.open)),
    h: num(ticksToPrice(units, bar.high)),
    l: num(ticksToPrice(units, bar.low)),
    c: num(ticksToPrice(units, bar.close)),
    v: num(lotsToQty(units, big(bar.volume), true)),
    n: bar.trades,
    vw: num(vwapString(bar, units)),
  };
}

export interface TradeRecord {
  /** The fill's engine sequence number (unique per symbol): Alpaca's trade id `i`. */
  seq: number;
  ts: number;
  priceTicks: number;
  qtyLots: number;
  takerSide: Side;
}

export function alpacaTrade(trade: TradeRecord, units: Units): AlpacaTrade {
  return {
    t: rfc3339(trade.ts),
    x: PREPX_EXCHANGE,
    p: num(ticksToPrice(units, trade.priceTicks)),
    s: num(lotsToQty(units, trade.qtyLots, true)),
    c: ["@"],
    i: trade.seq,
    z: PREPX_TAPE,
    tks: trade.takerSide,
  };
}

export interface QuoteRecord {
  ts: number;
  bid: [priceTicks: number, qtyLots: number] | null;
  ask: [priceTicks: number, qtyLots: number] | null;
}

/** An empty side is price 0 and size 0, as Alpaca reports a missing side. */
export function alpacaQuote(quote: QuoteRecord, units: Units): AlpacaQuote {
  return {
    t: rfc3339(quote.ts),
    bx: PREPX_EXCHANGE,
    bp: quote.bid ? num(ticksToPrice(units, quote.bid[0])) : 0,
    bs: quote.bid ? num(lotsToQty(units, quote.bid[1], true)) : 0,
    ax: PREPX_EXCHANGE,
    ap: quote.ask ? num(ticksToPrice(units, quote.ask[0])) : 0,
    as: quote.ask ? num(lotsToQty(units, quote.ask[1], true)) : 0,
    c: ["R"],
    z: PREPX_TAPE,
  };
}

/** Same top of book (prices and sizes), ignoring the time. */
export function sameQuote(a: QuoteRecord | null, b: QuoteRecord | null): boolean {
  if (a === null || b === null) return a === b;
  const eq = (x: [number, number] | null, y: [number, number] | null) =>
    x === null || y === null ? x === y : x[0] === y[0] && x[1] === y[1];
  return eq(a.bid, b.bid) && eq(a.ask, b.ask);
}

/** Alpaca's snapshot of one symbol. Missing parts are null. */
export interface AlpacaSnapshot {
  latestTrade: AlpacaTrade | null;
  latestQuote: AlpacaQuote | null;
  minuteBar: AlpacaBar | null;
  dailyBar: AlpacaBar | null;
  prevDailyBar: AlpacaBar | null;
}
