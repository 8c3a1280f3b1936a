import { describe, expect, it } from "vitest";
import {
  barNotionalMicros,
  buildPlatformReport,
  type PlatformRows,
  parseInstant,
  reportRange,
} from "./platform.ts";

const NOW = Date.UTC(2026, 10, 20, 14, 37, 30);
const MIN = 60_000;

const empty: PlatformRows = {
  counters: [],
  bars: [],
  active: [],
  activeTotal: { users: 0, bots: 0 },
  latencySeries: [],
  latencyRoutes: [],
  errors: [],
};
const units = () => ({ tickSize: "0.01", lotSize: "1" });

describe("the report window", () => {
  it("defaults to the last hour by minute, aligned to whole minutes", () => {
    const r = reportRange({}, NOW);
    if (!r.ok) throw new Error(r.message);
    expect(r.range.from).toBe(Date.UTC(2026, 10, 20, 13, 37));
    expect(r.range.to).toBe(Date.UTC(2026, 10, 20, 14, 38));
    expect(r.range.buckets).toHaveLength(61);
  });

  it("aligns days to UTC midnight and accepts dates and zoned date-times", () => {
    const r = reportRange({ from: "2026-11-01", to: "2026-11-20T15:00:00+01:00", interval: "1d" }, NOW);
    if (!r.ok) throw new Error(r.message);
    expect(new Date(r.range.from).toISOString()).toBe("2026-11-01T00:00:00.000Z");
    expect(new Date(r.range.to).toISOString()).toBe("2026-11-21T00:00:00.000Z");
    expect(r.range.buckets).toHaveLength(20);
  });

  it("refuses bad dates, intervals, inverted and oversized windows", () => {
    const bad = [
      { from: "yesterday" },
      { to: "2026-11-20T14:00:00" }, // no time zone
      { from: "2026-13-45" },
      { interval: "2m" },
      { from: "2026-11-20T14:00:00Z", to: "2026-11-20T13:00:00Z" },
      { from: "2026-01-01", to: "2026-11-01", interval: "1d" },
      { from: "2026-11-01", to: "2026-11-20", interval: "1m" },
    ];
    for (const q of bad) expect(reportRange(q, NOW).ok, JSON.stringify(q)).toBe(false);
    expect(parseInstant("2026-11-20T14:00:00.123Z")).toBe(Date.UTC(2026, 10, 20, 14, 0, 0, 123));
  });
});

describe("the platform report", () => {
  it("places every row in its interval, sums totals and converts bar notional to USD exactly", () => {
    const r = reportRange({ from: "2026-11-20T14:00:00Z", to: "2026-11-20T14:15:00Z", interval: "5m" }, NOW);
    if (!r.ok) throw new Error(r.message);
    const t0 = r.range.from;
    const report = buildPlatformReport(
      r.range,
      {
        counters: [
          { t: t0, metric: "orders", dim: "ACME", value: "3" },
          { t: String(t0 + 10 * MIN), metric: "orders", dim: "BOLT", value: 2 },
          { t: t0, metric: "rejections", dim: "price_band", value: "1" },
          { t: t0 + 5 * MIN, metric: "rejections", dim: "price_band", value: "2" },
          { t: t0 + 5 * MIN, metric: "rejections", dim: "halted", value: "1" },
          { t: t0, metric: "fees", dim: "ACME", value: "1500000" },
          { t: t0 + 60 * MIN, metric: "orders", dim: "ACME", value: "99" }, // outside: ignored
        ],
        bars: [
          { t: t0, symbol: "ACME", fills: "2", volume_lots: "7", notional: "70001" },
          { t: t0 + 10 * MIN, symbol: "BOLT", fills: "1", volume_lots: "1", notional: "4250" },
        ],
        active: [{ t: t0, users: "2", bots: "1" }],
        activeTotal: { users: "3", bots: "1" },
        latencySeries: [
          { t: t0, bucket: 4, calls: "9", server_errors: "0", client_errors: "1" },
          { t: t0, bucket: 27, calls: "1", server_errors: "1", client_errors: "0" },
        ],
        latencyRoutes: [
          {
            method: "POST",
            route: "/v2/orders",
            bucket: 4,
            calls: "9",
            server_errors: "0",
            client_errors: "1",
          },
          { method: "GET", route: "/health", bucket: 27, calls: "1", server_errors: "1", client_errors: "0" },
        ],
        errors: [
          { method: "POST", route: "/v2/orders", status: 403, code: "insufficient_buying_power", calls: "4" },
          { method: "GET", route: "/health", status: 503, code: "http_503", calls: "1" },
        ],
      },
      units,
      NOW,
    );
    expect(report.buckets).toEqual([
      "2026-11-20T14:00:00.000Z",
      "2026-11-20T14:05:00.000Z",
      "2026-11-20T14:10:00.000Z",
    ]);
    expect(report.series.orders).toEqual([3, 0, 2]);
    expect(report.series.rejections).toEqual([1, 3, 0]);
    expect(report.series.fills).toEqual([2, 0, 1]);
    expect(report.series.notional).toEqual(["700.01", "0", "42.5"]);
    expect(report.series.active_users).toEqual([2, 0, 0]);
    expect(report.series.api_p50_ms).toEqual([2, null, null]);
    expect(report.totals).toMatchObject({
      orders: 5,
      rejections: 4,
      fills: 3,
      notional: "742.51",
      fees: "1.5",
    });
    expect(report.totals).toMatchObject({
      active_users: 3,
      active_bots: 1,
      api_calls: 10,
      api_server_errors: 1,
    });
    expect(report.volume_by_symbol.map((s) => [s.symbol, s.fills, s.volume, s.notional, s.orders])).toEqual([
      ["ACME", 2, "7", "700.01", 3],
      ["BOLT", 1, "1", "42.5", 2],
    ]);
    expect(report.rejection_reasons).toEqual([
      { reason: "price_band", count: 3 },
      { reason: "halted", count: 1 },
    ]);
    expect(report.refused_orders).toEqual([{ code: "insufficient_buying_power", status: 403, count: 4 }]);
    expect(report.routes[0]).toEqual({
      method: "POST",
      route: "/v2/orders",
      calls: 9,
      server_errors: 0,
      client_errors: 1,
      p50_ms: 2,
      p95_ms: 2,
      p99_ms: 2,
    });
  });

  it("has zeros, not gaps, where nothing happened", () => {
    const r = reportRange({ interval: "15m" }, NOW);
    if (!r.ok) throw new Error(r.message);
    const report = buildPlatformReport(r.range, empty, units, NOW);
    expect(report.series.orders.every((v) => v === 0)).toBe(true);
    expect(report.series.api_p95_ms.every((v) => v === null)).toBe(true);
    expect(report.totals.notional).toBe("0");
  });

  it("converts ticks × lots of any tick and lot size to micro-dollars", () => {
    expect(barNotionalMicros(12_345n, { tickSize: "0.01", lotSize: "1" })).toBe(123_450_000n);
    expect(barNotionalMicros(3n, { tickSize: "0.05", lotSize: "0.001" })).toBe(150n);
    expect(barNotionalMicros(1n, { tickSize: "0.0001", lotSize: "0.0001" })).toBe(0n);
  });
});
