/**
 * The default symbol catalog: the instruments a fresh PrepX Edge lists.
 *
 * Pure data plus lookups. The OrderBook Durable Object of a symbol configures itself from its entry on
 * first wake; the Postgres seed writes the same rows into the `symbols` table.
 *
 * Integer fields use the engine's units (see `shared/engine/types.ts`): quantities in lots, notional in
 * price ticks × quantity lots. With tick "0.01" and lot "1", `minNotionalTicksLots: 100` means $1.00.
 *
 * @example
 * ```ts
 * const acme = findSymbol("ACME");            // SymbolSpec | undefined
 * if (acme) new MatchingEngine(symbolRules(acme), { referencePrice: referencePriceTicks(acme) });
 * ```
 */
import { formatSteps, parseInSteps, parseStep } from "./decimal.ts";
import type { SymbolRules } from "./engine/types.ts";

export interface SymbolSpec extends SymbolRules {
  /** Display name of the instrument. */
  name: string;
  /** Starting reference price (centre of the price band) as a decimal string on the tick grid. */
  referencePrice: string;
}

const common = {
  tickSize: "0.01",
  lotSize: "1",
  minQtyLots: 1,
  maxQtyLots: 1_000_000,
  minNotionalTicksLots: 100,
  priceBandBps: 1000,
} as const;

/** Every symbol listed by default, in alphabetical order. */
export const DEFAULT_SYMBOLS: readonly SymbolSpec[] = Object.freeze([
  { symbol: "ACME", name: "Acme Corporation", referencePrice: "100.00", ...common },
  { symbol: "BOLT", name: "Bolt Energy Systems", referencePrice: "42.50", ...common },
  { symbol: "CRUX", name: "Crux Biotherapeutics", referencePrice: "250.00", ...common },
  { symbol: "DYNA", name: "Dynamo Robotics", referencePrice: "12.34", ...common },
  { symbol: "EPIC", name: "Epic Interactive", referencePrice: "75.00", ...common },
]);

const bySymbol = new Map(DEFAULT_SYMBOLS.map((s) => [s.symbol, s]));

/** The catalog entry of `symbol` (exact, upper case), or `undefined` when it is not listed. */
export function findSymbol(symbol: string): SymbolSpec | undefined {
  return bySymbol.get(symbol);
}

/** Symbols look like "ACME", "BRK.B" or "X-1": 1–16 upper-case letters, digits, "." or "-", letter first. */
export const SYMBOL_PATTERN = /^[A-Z][A-Z0-9.-]{0,15}$/;

/** The engine's view of a symbol (its trading rules without the catalog's extra fields). */
export function symbolRules(spec: SymbolSpec): SymbolRules {
  return {
    symbol: spec.symbol,
    tickSize: spec.tickSize,
    lotSize: spec.lotSize,
    minQtyLots: spec.minQtyLots,
    maxQtyLots: spec.maxQtyLots,
    minNotionalTicksLots: spec.minNotionalTicksLots,
    priceBandBps: spec.priceBandBps,
  };
}

/** The reference price of a spec in ticks; throws on a catalog entry that is off its own tick grid. */
export function referencePriceTicks(
  spec: Pick<SymbolSpec, "symbol" | "tickSize" | "referencePrice">,
): number {
  const tick = parseStep(spec.tickSize);
  if (!tick.ok) throw new RangeError(`${spec.symbol}: invalid tick size ${spec.tickSize}`);
  const ticks = parseInSteps(spec.referencePrice, tick.value);
  if (!ticks.ok || ticks.value <= 0) {
    throw new RangeError(`${spec.symbol}: reference price ${spec.referencePrice} is not on the tick grid`);
  }
  return ticks.value;
}

/** Minimum order notional of a spec in USD, as a decimal string ("1.00"), for the Postgres seed. */
export function minNotionalUsd(
  spec: Pick<SymbolSpec, "tickSize" | "lotSize" | "minNotionalTicksLots">,
): string {
  const tick = parseStep(spec.tickSize);
  const lot = parseStep(spec.lotSize);
  if (!tick.ok || !lot.ok) throw new RangeError("invalid tick or lot size");
  return formatSteps(spec.minNotionalTicksLots, {
    units: tick.value.units * lot.value.units,
    scale: tick.value.scale + lot.value.scale,
  });
}
