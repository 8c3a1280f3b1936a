import { describe, expect, it } from "vitest";
import { type AlertState, evaluateAlert, isCandidate, type TradePrint } from "./alerts.ts";

const alert = (over: Partial<AlertState> = {}): AlertState => ({
  id: "a1",
  direction: "above",
  targetTicks: 10_100,
  frequency: "once",
  status: "active",
  armed: true,
  lastSeq: 0,
  triggerCount: 0,
  lastTriggeredAt: null,
  lastTriggerPriceTicks: null,
  ...over,
});

/** Trades at these prices with seq 1, 2, 3, … */
const prints = (...prices: number[]): TradePrint[] =>
  prices.map((p, i) => ({ eventId: `ACME:${i + 1}`, seq: i + 1, priceTicks: p, ts: 1_000 + i }));

const seqs = (r: { firings: TradePrint[] }) => r.firings.map((t) => t.seq);

describe("price alert evaluation", () => {
  it("fires a one-time 'above' alert on the first trade at or above the target, then never again", () => {
    const r = evaluateAlert(alert(), prints(10_000, 10_100, 10_200));
    expect(seqs(r)).toEqual([2]);
    expect(r.state).toMatchObject({
      status: "triggered",
      triggerCount: 1,
      lastTriggerPriceTicks: 10_100,
      lastSeq: 2,
    });
    expect(evaluateAlert(r.state, prints(10_000, 10_100, 10_200, 10_300, 10_400)).firings).toEqual([]);
  });

  it("fires a 'below' alert at or below the target", () => {
    expect(
      seqs(evaluateAlert(alert({ direction: "below", targetTicks: 9_900 }), prints(10_000, 9_950, 9_900))),
    ).toEqual([3]);
  });

  it("fires a repeating alert once per crossing: it re-arms only on the other side", () => {
    const r = evaluateAlert(
      alert({ frequency: "repeating" }),
      prints(10_150, 10_200, 10_100, 10_000, 10_050, 10_100, 10_300),
    );
    expect(seqs(r)).toEqual([1, 6]);
    expect(r.state).toMatchObject({ status: "active", armed: false, triggerCount: 2, lastSeq: 7 });
  });

  it("gives the same result for shuffled and duplicated trades, and nothing for a redelivery", () => {
    const trades = prints(10_000, 10_150, 9_000, 10_100, 10_000);
    const reference = evaluateAlert(alert({ frequency: "repeating" }), trades);
    const noisy = [
      trades[3],
      trades[0],
      trades[4],
      trades[1],
      trades[1],
      trades[2],
      trades[0],
    ] as TradePrint[];
    const shuffled = evaluateAlert(alert({ frequency: "repeating" }), noisy);
    expect(shuffled.firings).toEqual(reference.firings);
    expect(shuffled.state).toEqual(reference.state);
    const again = evaluateAlert(reference.state, trades);
    expect(again.firings).toEqual([]);
    expect(again.changed).toBe(false);
  });

  it("skips a late batch of older trades once it has seen newer ones", () => {
    const late = prints(10_200, 10_000); // seq 1 (would fire), seq 2
    const seenNewer = alert({ frequency: "repeating", lastSeq: 5 });
    expect(evaluateAlert(seenNewer, late).firings).toEqual([]);
  });

  it("loads only alerts a batch's price range can change", () => {
    expect(isCandidate(alert(), 9_000, 10_099)).toBe(false);
    expect(isCandidate(alert(), 9_000, 10_100)).toBe(true);
    expect(isCandidate(alert({ direction: "below", targetTicks: 9_000 }), 9_001, 9_500)).toBe(false);
    expect(isCandidate(alert({ direction: "below", targetTicks: 9_000 }), 8_999, 9_500)).toBe(true);
    // A disarmed repeating alert changes when a trade re-arms it.
    expect(isCandidate(alert({ armed: false }), 10_100, 10_500)).toBe(false);
    expect(isCandidate(alert({ armed: false }), 10_099, 10_500)).toBe(true);
  });
});
