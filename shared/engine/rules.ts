import {
  type DecimalResult,
  formatSteps,
  MICRO_SCALE,
  parseInSteps,
  parseStep,
  type Step,
} from "../decimal.ts";
import { MAX_PRICE_BAND_BPS, MAX_QTY_LOTS } from "./limits.ts";
import type { SymbolRules } from "./types.ts";

export type RulesResult = { ok: true } | { ok: false; problem: string };

/**
 * Check a symbol's rules (configuration, so a plain description of the problem is enough).
 * `new MatchingEngine(rules)` throws on rules that fail this check.
 */
export function validateSymbolRules(rules: SymbolRules): RulesResult {
  const bad = (problem: string): RulesResult => ({ ok: false, problem });
  if (typeof rules !== "object" || rules === null) return bad("rules must be an object");
  if (typeof rules.symbol !== "string" || rules.symbol.length === 0) return bad("symbol must be a string");
  if (!parseStep(rules.tickSize).ok) return bad(`tickSize must be a positive decimal string`);
  if (!parseStep(rules.lotSize).ok) return bad(`lotSize must be a positive decimal string`);
  const { minQtyLots, maxQtyLots, minNotionalTicksLots, priceBandBps } = rules;
  if (!Number.isSafeInteger(minQtyLots) || minQtyLots < 1) return bad("minQtyLots must be an integer ≥ 1");
  if (!Number.isSafeInteger(maxQtyLots) || maxQtyLots < minQtyLots || maxQtyLots > MAX_QTY_LOTS) {
    return bad(`maxQtyLots must be an integer in [minQtyLots, ${MAX_QTY_LOTS}]`);
  }
  if (!Number.isSafeInteger(minNotionalTicksLots) || minNotionalTicksLots < 0) {
    return bad("minNotionalTicksLots must be an integer ≥ 0");
  }
  if (!Number.isSafeInteger(priceBandBps) || priceBandBps < 0 || priceBandBps > MAX_PRICE_BAND_BPS) {
    return bad(`priceBandBps must be an integer in [0, ${MAX_PRICE_BAND_BPS}]`);
  }
  return { ok: true };
}

function stepOf(size: string): Step {
  const step = parseStep(size);
  if (!step.ok) throw new RangeError(`invalid step size: ${size}`);
  return step.value;
}

export type PriceParseReason = "invalid_price" | "off_tick" | "out_of_range";
export type QtyParseReason = "invalid_qty" | "qty_not_lot_multiple" | "out_of_range";

/**
 * Parse a decimal price string into ticks ("150.25" with tick "0.01" → 15025).
 * Reasons use the engine's reject codes: "invalid_price" (malformed or ≤ 0), "off_tick", "out_of_range".
 */
export function priceToTicks(
  rules: Pick<SymbolRules, "tickSize">,
  price: unknown,
): { ok: true; value: number } | { ok: false; reason: PriceParseReason } {
  const parsed = parseInSteps(price, stepOf(rules.tickSize));
  if (!parsed.ok) {
    const reason =
      parsed.reason === "not_step_multiple" || parsed.reason === "too_many_decimals"
        ? "off_tick"
        : parsed.reason === "out_of_range"
          ? "out_of_range"
          : "invalid_price";
    return { ok: false, reason };
  }
  if (parsed.value <= 0) return { ok: false, reason: "invalid_price" };
  return parsed;
}

/** Format ticks as a decimal price string with the tick's decimals (15025 → "150.25"). */
export function ticksToPrice(rules: Pick<SymbolRules, "tickSize">, ticks: number): string {
  return formatSteps(ticks, stepOf(rules.tickSize));
}

/** Parse a decimal quantity string into lots ("2.5" with lot "0.5" → 5). */
export function qtyToLots(
  rules: Pick<SymbolRules, "lotSize">,
  qty: unknown,
): { ok: true; value: number } | { ok: false; reason: QtyParseReason } {
  const parsed = parseInSteps(qty, stepOf(rules.lotSize));
  if (!parsed.ok) {
    const reason =
      parsed.reason === "not_step_multiple" || parsed.reason === "too_many_decimals"
        ? "qty_not_lot_multiple"
        : parsed.reason === "out_of_range"
          ? "out_of_range"
          : "invalid_qty";
    return { ok: false, reason };
  }
  if (parsed.value <= 0) return { ok: false, reason: "invalid_qty" };
  return parsed;
}

/** Format lots as a decimal quantity string with the lot size's decimals. */
export function lotsToQty(rules: Pick<SymbolRules, "lotSize">, lots: number, trimZeros = false): string {
  return formatSteps(lots, stepOf(rules.lotSize), { trimZeros });
}

/**
 * Exact cash value of `qtyLots` at `priceTicks`, in micro-units (6 decimals).
 * Fails with "out_of_range" when it is not a safe integer and with "too_many_decimals" when tick × lot is
 * finer than a micro-unit and the value is not a whole number of micro-units (the caller decides rounding).
 */
export function notionalMicros(
  rules: Pick<SymbolRules, "tickSize" | "lotSize">,
  priceTicks: number,
  qtyLots: number,
): DecimalResult {
  const tick = stepOf(rules.tickSize);
  const lot = stepOf(rules.lotSize);
  if (!Number.isSafeInteger(priceTicks) || !Number.isSafeInteger(qtyLots)) {
    return { ok: false, reason: "out_of_range" };
  }
  const a = priceTicks * tick.units;
  const b = qtyLots * lot.units;
  const product = a * b;
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || !Number.isSafeInteger(product)) {
    return { ok: false, reason: "out_of_range" };
  }
  const scale = tick.scale + lot.scale;
  if (scale <= MICRO_SCALE) {
    const value = product * 10 ** (MICRO_SCALE - scale);
    if (!Number.isSafeInteger(value)) return { ok: false, reason: "out_of_range" };
    return { ok: true, value: value === 0 ? 0 : value };
  }
  const divisor = 10 ** (scale - MICRO_SCALE);
  if (product % divisor !== 0) return { ok: false, reason: "too_many_decimals" };
  const value = product / divisor;
  return { ok: true, value: value === 0 ? 0 : value };
}
