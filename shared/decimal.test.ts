import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  formatDecimal,
  formatMicros,
  formatSteps,
  MAX_SCALE,
  parseDecimal,
  parseInSteps,
  parseMicros,
  parseStep,
} from "./decimal.ts";

const safeInt = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
const scale = fc.integer({ min: 0, max: MAX_SCALE });

describe("parseDecimal", () => {
  it("parses decimal strings into integer units of the scale", () => {
    expect(parseDecimal("12.34", 2)).toEqual({ ok: true, value: 1234 });
    expect(parseDecimal("12.3", 2)).toEqual({ ok: true, value: 1230 });
    expect(parseDecimal("12", 2)).toEqual({ ok: true, value: 1200 });
    expect(parseDecimal("0.01", 2)).toEqual({ ok: true, value: 1 });
    expect(parseDecimal("007.50", 2)).toEqual({ ok: true, value: 750 });
    expect(parseDecimal("1.500", 2)).toEqual({ ok: true, value: 150 });
    expect(parseDecimal("42", 0)).toEqual({ ok: true, value: 42 });
  });

  it("rejects malformed strings with a reason instead of throwing", () => {
    const bad = [
      "",
      " 1",
      "1 ",
      "+1",
      "1e3",
      "1.",
      ".5",
      "1..2",
      "1,000",
      "0x10",
      "NaN",
      "Infinity",
      "-",
      "1.2.3",
      "١",
    ];
    for (const input of bad) expect(parseDecimal(input, 2)).toEqual({ ok: false, reason: "invalid_format" });
    for (const input of [12, null, undefined, {}, 1n]) {
      expect(parseDecimal(input, 2)).toEqual({ ok: false, reason: "invalid_format" });
    }
  });

  it("rejects more significant decimals than the scale allows", () => {
    expect(parseDecimal("1.005", 2)).toEqual({ ok: false, reason: "too_many_decimals" });
    expect(parseDecimal("1.5", 0)).toEqual({ ok: false, reason: "too_many_decimals" });
  });

  it("handles negatives only when asked, and never returns negative zero", () => {
    expect(parseDecimal("-1.5", 2)).toEqual({ ok: false, reason: "negative_not_allowed" });
    expect(parseDecimal("-1.5", 2, { allowNegative: true })).toEqual({ ok: true, value: -150 });
    const zero = parseDecimal("-0.00", 2, { allowNegative: true });
    expect(zero.ok && Object.is(zero.value, 0)).toBe(true);
  });

  it("accepts exactly the safe integer range", () => {
    expect(parseDecimal("90071992547409.91", 2)).toEqual({ ok: true, value: Number.MAX_SAFE_INTEGER });
    expect(parseDecimal("90071992547409.92", 2)).toEqual({ ok: false, reason: "out_of_range" });
    expect(parseDecimal("-9007199254740991", 0, { allowNegative: true })).toEqual({
      ok: true,
      value: -Number.MAX_SAFE_INTEGER,
    });
    expect(parseDecimal("123456789012345678901234567890", 0)).toEqual({ ok: false, reason: "out_of_range" });
    expect(parseDecimal("0000000000000000000000001", 0)).toEqual({ ok: true, value: 1 });
  });
});

describe("formatDecimal", () => {
  it("formats with exactly `scale` decimals, or trimmed", () => {
    expect(formatDecimal(1234, 2)).toBe("12.34");
    expect(formatDecimal(5, 2)).toBe("0.05");
    expect(formatDecimal(-5, 2)).toBe("-0.05");
    expect(formatDecimal(1200, 2)).toBe("12.00");
    expect(formatDecimal(1200, 2, { trimZeros: true })).toBe("12");
    expect(formatDecimal(1250, 3, { trimZeros: true })).toBe("1.25");
    expect(formatDecimal(0, 0)).toBe("0");
  });

  it("throws a RangeError on a non-safe integer (a programming error, not user input)", () => {
    expect(() => formatDecimal(1.5, 2)).toThrow(RangeError);
    expect(() => formatDecimal(2 ** 53, 2)).toThrow(RangeError);
  });

  it("round-trips every safe integer at every scale", () => {
    fc.assert(
      fc.property(safeInt, scale, fc.boolean(), (units, s, trimZeros) => {
        const text = formatDecimal(units, s, { trimZeros });
        expect(parseDecimal(text, s, { allowNegative: true })).toEqual({
          ok: true,
          value: units === 0 ? 0 : units,
        });
      }),
      { numRuns: 2_000 },
    );
  });

  it("gives back canonical strings unchanged", () => {
    const canonical = fc
      .tuple(fc.boolean(), fc.bigInt({ min: 1n, max: 10n ** 12n }), fc.integer({ min: 0, max: 3 }))
      .map(([negative, digits, s]) => {
        const text = digits.toString().padStart(s + 1, "0");
        const body = s === 0 ? text : `${text.slice(0, text.length - s)}.${text.slice(text.length - s)}`;
        return { text: negative ? `-${body}` : body, s };
      });
    fc.assert(
      fc.property(canonical, ({ text, s }) => {
        const parsed = parseDecimal(text, s, { allowNegative: true });
        expect(parsed.ok).toBe(true);
        if (parsed.ok) expect(formatDecimal(parsed.value, s)).toBe(text);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("micro-units", () => {
  it("parses and formats cash with 6 decimals", () => {
    expect(parseMicros("1.5")).toEqual({ ok: true, value: 1_500_000 });
    expect(parseMicros("0.000001")).toEqual({ ok: true, value: 1 });
    expect(parseMicros("0.0000001")).toEqual({ ok: false, reason: "too_many_decimals" });
    expect(parseMicros("-2", { allowNegative: true })).toEqual({ ok: true, value: -2_000_000 });
    expect(formatMicros(1_500_000)).toBe("1.500000");
    expect(formatMicros(1_500_000, { trimZeros: true })).toBe("1.5");
  });
});

describe("steps (tick and lot sizes)", () => {
  it("parses a step and whole numbers of steps", () => {
    expect(parseStep("0.05")).toEqual({ ok: true, value: { units: 5, scale: 2 } });
    expect(parseStep("0.010")).toEqual({ ok: true, value: { units: 1, scale: 2 } });
    expect(parseStep("10")).toEqual({ ok: true, value: { units: 10, scale: 0 } });
    expect(parseStep("0")).toEqual({ ok: false, reason: "invalid_step" });
    expect(parseStep("-1")).toEqual({ ok: false, reason: "negative_not_allowed" });
    const tick = { units: 5, scale: 2 };
    expect(parseInSteps("1.25", tick)).toEqual({ ok: true, value: 25 });
    expect(parseInSteps("1.26", tick)).toEqual({ ok: false, reason: "not_step_multiple" });
    expect(parseInSteps("1.255", tick)).toEqual({ ok: false, reason: "too_many_decimals" });
    expect(formatSteps(25, tick)).toBe("1.25");
  });

  it("round-trips whole numbers of steps", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 999 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 0, max: 1e9 }),
        (units, s, count) => {
          const step = { units, scale: s };
          expect(parseInSteps(formatSteps(count, step), step)).toEqual({ ok: true, value: count });
        },
      ),
      { numRuns: 1_000 },
    );
  });
});
