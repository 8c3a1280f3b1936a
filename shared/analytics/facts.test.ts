import { describe, expect, it } from "vitest";
import type { AccountEvent } from "../history/events.ts";
import { analyticsFacts, minuteOf } from "./facts.ts";

const USER = "0b6c5a0e-1f2d-4c3b-8a7e-5d4c3b2a1f00";
const T = Date.UTC(2026, 10, 20, 14, 30, 12, 345);

const base = { kind: "account" as const, v: 1 as const, userId: USER, epoch: 0 };
function order(seq: number, status: string, extra: Record<string, unknown> = {}): AccountEvent {
  return {
    ...base,
    id: `order:o1:${seq}`,
    seq,
    ts: T + seq * 60_000,
    type: "account.order",
    order: {
      id: "o1",
      clientOrderId: "c1",
      account: USER,
      symbol: "ACME",
      side: "buy",
      type: "limit",
      tif: "day",
      qtyLots: 1,
      notionalMicros: null,
      limitTicks: 100,
      stopTicks: null,
      filledQtyLots: 0,
      filledValue: 0,
      status,
      reason: status === "rejected" ? "price_band" : null,
      createdAt: T,
      updatedAt: T + seq * 60_000,
      submittedAt: T,
      filledAt: null,
      canceledAt: null,
      expiredAt: null,
      failedAt: status === "rejected" ? T + 120_000 : null,
      replacedAt: null,
      replacedBy: null,
      replaces: null,
      expiresAt: null,
      ...extra,
    },
  } as unknown as AccountEvent;
}

describe("analytics facts", () => {
  it("count an order once at its creation minute, and its rejection once at the rejection minute", () => {
    const { facts, activeUsers } = analyticsFacts([
      order(3, "rejected"),
      order(1, "pending_new"),
      order(2, "new"),
    ]);
    expect(facts.map((f) => [f.key, f.minute, f.counts])).toEqual([
      ["o:o1", minuteOf(T), [{ metric: "orders", dim: "ACME", value: 1 }]],
      ["r:o1", minuteOf(T + 120_000), [{ metric: "rejections", dim: "price_band", value: 1 }]],
    ]);
    expect(activeUsers.map((u) => u.minute)).toEqual([T + 180_000, T + 60_000, T + 120_000].map(minuteOf));
  });

  it("count each account fill with its fee, flag bots, and ignore other events", () => {
    const fill = {
      ...base,
      id: "fill:ACME:7:o1",
      seq: 4,
      ts: T,
      type: "account.fill",
      equityMicros: null,
      fill: { symbol: "ACME", feeMicros: 1234, at: T - 61_000 },
    } as unknown as AccountEvent;
    const opened = {
      ...base,
      id: "opened:x:1",
      seq: 1,
      ts: T,
      type: "account.opened",
    } as unknown as AccountEvent;
    const { facts, activeUsers } = analyticsFacts([fill, fill, opened], () => true);
    expect(facts).toEqual([
      {
        key: "f:fill:ACME:7:o1",
        minute: minuteOf(T - 61_000),
        counts: [
          { metric: "account_fills", dim: "ACME", value: 1 },
          { metric: "fees", dim: "ACME", value: 1234 },
        ],
        event: fill,
      },
    ]);
    expect(activeUsers).toEqual([{ minute: minuteOf(T), userId: USER, bot: true }]);
  });

  it("aligns minutes down, also before 1970", () => {
    expect(minuteOf(125_000)).toBe(120_000);
    expect(minuteOf(-1)).toBe(-60_000);
  });
});
