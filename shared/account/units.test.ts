import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ceilDiv,
  chargeFee,
  feeBound,
  feeNumerator,
  feeRatesOf,
  notionalOf,
  symbolUnitsOf,
} from "./units.ts";

describe("symbolUnitsOf", () => {
  it.each([
    ["0.01", "1", 10_000],
    ["0.01", "0.001", 10],
    ["0.05", "0.0001", 5],
    ["0.0001", "0.01", 1],
    ["1", "0.000001", 1],
    ["10", "0.0000001", 1],
    ["0.25", "100", 25_000_000],
  ])("values one tick of %s × one lot of %s at %i micro-USD", (tick, lot, micros) => {
    expect(symbolUnitsOf(tick, lot)).toMatchObject({ ok: true, value: { microsPerTickLot: micros } });
  });

  it.each([
    ["0.0001", "0.001"],
    ["0.000001", "0.5"],
    ["0", "1"],
    ["-0.01", "1"],
    ["abc", "1"],
  ])("refuses tick %s × lot %s", (tick, lot) => {
    expect(symbolUnitsOf(tick, lot).ok).toBe(false);
  });
});

describe("fees", () => {
  const units = symbolUnitsOf("0.01", "0.001");
  if (!units.ok) throw new Error("fixture");

  it("compile to null when zero, so fee-free symbols do no fee arithmetic", () => {
    expect(feeRatesOf(undefined, units.value.lot)).toEqual({ ok: true, value: null });
    expect(feeRatesOf({ notionalBps: "0.0000", perUnit: "0" }, units.value.lot)).toEqual({
      ok: true,
      value: null,
    });
  });

  it("refuse rates above 10 % or finer than their scale", () => {
    expect(feeRatesOf({ notionalBps: "1000.0001" }, units.value.lot).ok).toBe(false);
    expect(feeRatesOf({ notionalBps: "0.00001" }, units.value.lot).ok).toBe(false);
    expect(feeRatesOf({ perUnit: "0.0000001" }, units.value.lot).ok).toBe(false);
    expect(feeRatesOf({ perUnit: "-1" }, units.value.lot).ok).toBe(false);
  });

  it("canonicalise their decimal strings", () => {
    const r = feeRatesOf({ notionalBps: "2.50", perUnit: "0.0050" }, units.value.lot);
    expect(r.ok && r.value).toMatchObject({ notionalBps: "2.5", perUnit: "0.005" });
  });

  it("charged fill by fill add up to ceil(exact total fee) however an order is split, within the bound reserved", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000_000 }), // bps in 1e-4 bp
        fc.integer({ min: 0, max: 50_000 }), // micro-USD per unit
        fc.array(
          fc.record({
            price: fc.integer({ min: 1, max: 1_000_000 }),
            qty: fc.integer({ min: 1, max: 5_000 }),
          }),
          {
            minLength: 1,
            maxLength: 30,
          },
        ),
        (bps4, perUnitMicros, fills) => {
          const bps = `${Math.floor(bps4 / 10_000)}.${String(bps4 % 10_000).padStart(4, "0")}`;
          const perUnit = `0.${String(perUnitMicros).padStart(6, "0")}`;
          const rates = feeRatesOf({ notionalBps: bps, perUnit }, units.value.lot);
          if (!rates.ok) throw new Error(rates.problem);
          if (rates.value === null) return;
          const r = rates.value;
          const maxPrice = Math.max(...fills.map((f) => f.price));
          const totalQty = fills.reduce((s, f) => s + f.qty, 0);
          // The reservation at the highest price bounds every remaining fee.
          let credit = 0n;
          let charged = 0;
          let exact = 0n;
          let remaining = totalQty;
          for (const f of fills) {
            const bound = feeBound(
              r,
              feeNumerator(r, notionalOf(units.value, maxPrice, remaining), remaining),
              credit,
            );
            const n = feeNumerator(r, notionalOf(units.value, f.price, f.qty), f.qty);
            const c = chargeFee(r, n, credit);
            expect(c.credit >= 0n && c.credit < r.denominator).toBe(true);
            const boundAfter = feeBound(
              r,
              feeNumerator(r, notionalOf(units.value, maxPrice, remaining - f.qty), remaining - f.qty),
              c.credit,
            );
            expect(c.feeMicros + boundAfter).toBeLessThanOrEqual(bound);
            charged += c.feeMicros;
            credit = c.credit;
            exact += n;
            remaining -= f.qty;
          }
          expect(BigInt(charged)).toBe(ceilDiv(exact, r.denominator));
        },
      ),
      { numRuns: 300 },
    );
  });
});
