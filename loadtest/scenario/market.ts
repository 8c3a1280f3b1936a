/**
 * What the simulated traders know about prices: one book socket per symbol keeps the full L2 book
 * (`BookSocket` with a replica), and orders are priced off its best bid and ask, else the catalog's
 * reference price. Prices are handled in ticks of the symbol's tick size, quantities in lots.
 */
import { formatSteps, parseInSteps, parseStep, type Step } from "../../shared/decimal.ts";
import { findSymbol } from "../../shared/symbols.ts";
import type { BookSocket } from "./streams.ts";

export interface SymbolInfo {
  symbol: string;
  tick: Step;
  lot: Step;
  referenceTicks: number;
}

export function symbolInfo(symbol: string): SymbolInfo {
  const spec = findSymbol(symbol);
  if (!spec) throw new Error(`unknown symbol ${symbol} (the catalog lists only shared/symbols.ts)`);
  const tick = parseStep(spec.tickSize);
  const lot = parseStep(spec.lotSize);
  if (!tick.ok || !lot.ok) throw new Error(`bad steps for ${symbol}`);
  const ref = parseInSteps(spec.referencePrice, tick.value);
  if (!ref.ok) throw new Error(`bad reference price for ${symbol}`);
  return { symbol, tick: tick.value, lot: lot.value, referenceTicks: ref.value };
}

export class MarketView {
  readonly info = new Map<string, SymbolInfo>();
  private readonly books = new Map<string, BookSocket>();

  constructor(symbols: readonly string[]) {
    for (const s of symbols) this.info.set(s, symbolInfo(s));
  }

  attach(symbol: string, socket: BookSocket): void {
    this.books.set(symbol, socket);
  }

  of(symbol: string): SymbolInfo {
    const i = this.info.get(symbol);
    if (!i) throw new Error(`symbol ${symbol} is not in this run`);
    return i;
  }

  ticks(symbol: string, price: string): number | null {
    const r = parseInSteps(price, this.of(symbol).tick);
    return r.ok ? r.value : null;
  }

  price(symbol: string, ticks: number): string {
    return formatSteps(Math.max(1, ticks), this.of(symbol).tick);
  }

  lots(symbol: string, qty: string): number {
    const r = parseInSteps(qty, this.of(symbol).lot);
    return r.ok ? r.value : 0;
  }

  qty(symbol: string, lots: number): string {
    return formatSteps(lots, this.of(symbol).lot, { trimZeros: true });
  }

  /** Best bid and ask in ticks (null when that side is empty or the book is not known yet). */
  top(symbol: string): { bid: number | null; ask: number | null } {
    const replica = this.books.get(symbol)?.replica;
    if (!replica?.synced) return { bid: null, ask: null };
    const bid = replica.bids(1)[0];
    const ask = replica.asks(1)[0];
    return {
      bid: bid ? this.ticks(symbol, bid[0]) : null,
      ask: ask ? this.ticks(symbol, ask[0]) : null,
    };
  }

  /** Mid of the book, else the one side there is, else the last trade, else the reference price. */
  mid(symbol: string): number {
    const { bid, ask } = this.top(symbol);
    if (bid !== null && ask !== null) return Math.round((bid + ask) / 2);
    if (bid !== null) return bid;
    if (ask !== null) return ask;
    const last = this.books.get(symbol)?.replica?.trades.at(-1);
    if (last) {
      const t = this.ticks(symbol, last.price);
      if (t !== null) return t;
    }
    return this.of(symbol).referenceTicks;
  }
}
