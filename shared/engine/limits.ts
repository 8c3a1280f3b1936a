/**
 * Range limits of the engine's integers. All arithmetic is on JS numbers holding safe integers.
 *
 * - Prices are ticks in [1, MAX_PRICE_TICKS] (2^36 - 1 ≈ 6.9e10: with a 0.01 tick, up to ~$687M).
 * - Quantities are lots in [1, MAX_QTY_LOTS] (2^40 - 1 ≈ 1.1e12).
 * - The price band check computes |price - ref| × 10,000 and ref × bps; both stay below 2^53 because
 *   prices are < 2^36 and bps ≤ MAX_PRICE_BAND_BPS (100,000 = 1,000 %).
 * - Level totals and cumulative fills are sums of quantities; they stay exact while the total quantity
 *   resting on one side is below 2^53 lots (8,192 orders of the maximum size, or any realistic book).
 * - Notional checks multiply price × qty (< 2^76): the product is rounded above 2^53, but rounding is
 *   monotonic and `minNotionalTicksLots` is a safe integer, so `price × qty >= min` is still exact.
 */
export const MAX_PRICE_TICKS = 2 ** 36 - 1;
export const MAX_QTY_LOTS = 2 ** 40 - 1;
export const MAX_PRICE_BAND_BPS = 100_000;
