import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyTrade, FLAT, type PositionAmounts, releasedBasis } from "./position.ts";
import { type SymbolUnits, symbolUnitsOf } from "./units.ts";

function unitsOf(tick: string, lot: string): SymbolUnits {
  const u = symbolUnitsOf(tick, lot);
  if (!u.ok) throw new Error(u.problem);
  return u.value;
}

const CENT = unitsOf("0.01", "1"); // 10,000 micros per tick × lot
const MICRO = unitsOf("0.000001", "1"); // 1 micro

const trade = fc.record({
  side: fc.constantFrom("buy" as const, "sell" as const),
  price: fc.integer({ min: 1, max: 50_000 }),
  qty: fc.integer({ min: 1, max: 1_000 }),
});

describe("applyTrade", () => {
  it("opens, adds to and closes a long position at average cost", () => {
    const units = CENT;
    let p: PositionAmounts = FLAT;
    p = applyTrade(p, "buy", 10_000, 10, units).position;
    p = applyTrade(p, "buy", 13_000, 10, units).position;
    expect(p).toEqual({ qtyLots: 20, costBasisMicros: 2_300_000_000 });
    const sold = applyTrade(p, "sell", 12_000, 5, units);
    expect(sold.realizedPlMicros).toBe(600_000_000 - 575_000_000);
    expect(sold.position).toEqual({ qtyLots: 15, costBasisMicros: 1_725_000_000 });
  });

  it("flips a long through zero in one fill: realizes the closing leg and opens a short at the fill price", () => {
    const long = applyTrade(FLAT, "buy", 10_000, 10, CENT).position;
    const flip = applyTrade(long, "sell", 9_000, 15, CENT);
    expect(flip.closedLots).toBe(10);
    expect(flip.openedLots).toBe(5);
    expect(flip.realizedPlMicros).toBe(-100_000_000); // (90 − 100) × 10
    expect(flip.position).toEqual({ qtyLots: -5, costBasisMicros: -450_000_000 });
    expect(flip.cashDeltaMicros).toBe(1_350_000_000);
  });

  it("flips a short through zero the other way", () => {
    const short = applyTrade(FLAT, "sell", 10_000, 4, CENT).position;
    const flip = applyTrade(short, "buy", 8_000, 6, CENT);
    expect(flip.realizedPlMicros).toBe(80_000_000); // (100 − 80) × 4
    expect(flip.position).toEqual({ qtyLots: 2, costBasisMicros: 160_000_000 });
  });

  it("keeps the ledger identity exactly over any sequence of trades, flips included", () => {
    fc.assert(
      fc.property(fc.array(trade, { maxLength: 60 }), fc.constantFrom(CENT, MICRO), (trades, units) => {
        let p: PositionAmounts = FLAT;
        let cash = 0;
        let realized = 0;
        for (const t of trades) {
          const e = applyTrade(p, t.side, t.price, t.qty, units);
          cash += e.cashDeltaMicros;
          realized += e.realizedPlMicros;
          p = e.position;
          // Basis and quantity share their sign; flat means no basis.
          expect(Math.sign(p.costBasisMicros)).toBe(Math.sign(p.qtyLots));
          expect(e.closedLots + e.openedLots).toBe(t.qty);
          expect(realized).toBe(cash + p.costBasisMicros);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("releases the whole basis, and nothing more, over any way of closing a position", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.array(fc.integer({ min: 1, max: 10_000 }), { minLength: 1 }),
        (qty, basisSeed, chunks) => {
          let open = qty;
          let basis = qty + (basisSeed % (Number.MAX_SAFE_INTEGER - qty)); // ≥ qty
          const total = basis;
          let released = 0;
          for (let i = 0; open > 0; i++) {
            const c = Math.min(open, chunks[i % chunks.length] as number);
            const r = releasedBasis(basis, open, c);
            expect(r).toBeGreaterThanOrEqual(0);
            expect(r).toBeLessThanOrEqual(basis);
            // floor of the proportional share (checked exactly in bigints)
            if (c < open) expect(BigInt(r)).toBe((BigInt(basis) * BigInt(c)) / BigInt(open));
            released += r;
            basis -= r;
            open -= c;
            if (open > 0) expect(basis).toBeGreaterThan(0);
          }
          expect(basis).toBe(0);
          expect(released).toBe(total);
        },
      ),
      { numRuns: 300 },
    );
  });
});
