/**
 * Price alerts: when a trade of the symbol crosses a user's alert price.
 *
 * - `above` fires on a trade at or above the target, `below` at or below it.
 * - `once` fires on the first such trade and is done (`triggered`).
 * - `repeating` fires, then disarms until a trade on the other side of the target (strictly below for
 *   `above`, strictly above for `below`) re-arms it: one notification per crossing, not one per trade.
 * - Trades are evaluated in the book's sequence order. An alert remembers the last sequence number it
 *   evaluated; trades at or before it are skipped, so a redelivered batch changes nothing and a batch that
 *   arrives after a later one cannot replay an old crossing into a repeating alert's state.
 *
 * Pure: the consumer loads the candidate alerts, calls {@link evaluateAlert}, sends the firings and saves
 * the new state in one transaction (workers/notifications/alerts.ts).
 */

export type AlertDirection = "above" | "below";
export type AlertFrequency = "once" | "repeating";
export type AlertStatus = "active" | "triggered";

export interface AlertState {
  id: string;
  direction: AlertDirection;
  targetTicks: number;
  frequency: AlertFrequency;
  status: AlertStatus;
  armed: boolean;
  /** Highest trade sequence number evaluated (0 before any). */
  lastSeq: number;
  triggerCount: number;
  lastTriggeredAt: number | null;
  lastTriggerPriceTicks: number | null;
}

/** One trade print of the symbol: the book's fill event. */
export interface TradePrint {
  /** The book's event id `${symbol}:${seq}`. */
  eventId: string;
  seq: number;
  priceTicks: number;
  ts: number;
}

export interface AlertEvaluation {
  state: AlertState;
  /** The trades that fired the alert, in order. */
  firings: TradePrint[];
  /** Whether the state differs from the input (and must be saved). */
  changed: boolean;
}

const reaches = (a: Pick<AlertState, "direction" | "targetTicks">, price: number) =>
  a.direction === "above" ? price >= a.targetTicks : price <= a.targetTicks;

const otherSide = (a: Pick<AlertState, "direction" | "targetTicks">, price: number) =>
  a.direction === "above" ? price < a.targetTicks : price > a.targetTicks;

/**
 * Runs the trades of one symbol (any order, duplicates allowed) through one alert.
 *
 * @example
 * evaluateAlert({ ...alert, direction: "above", targetTicks: 10100, frequency: "repeating" },
 *   [{ eventId: "ACME:5", seq: 5, priceTicks: 10150, ts }, { eventId: "ACME:6", seq: 6, priceTicks: 10000, ts },
 *    { eventId: "ACME:7", seq: 7, priceTicks: 10100, ts }]).firings.map((t) => t.seq); // [5, 7]
 */
export function evaluateAlert(alert: AlertState, trades: readonly TradePrint[]): AlertEvaluation {
  const state: AlertState = { ...alert };
  const firings: TradePrint[] = [];
  const ordered = [...new Map(trades.map((t) => [t.seq, t])).values()].sort((a, b) => a.seq - b.seq);
  for (const trade of ordered) {
    if (state.status !== "active") break;
    if (trade.seq <= state.lastSeq) continue;
    state.lastSeq = trade.seq;
    if (state.armed && reaches(state, trade.priceTicks)) {
      firings.push(trade);
      state.triggerCount++;
      state.lastTriggeredAt = trade.ts;
      state.lastTriggerPriceTicks = trade.priceTicks;
      if (state.frequency === "once") state.status = "triggered";
      else state.armed = false;
    } else if (!state.armed && otherSide(state, trade.priceTicks)) {
      state.armed = true;
    }
  }
  const changed =
    state.lastSeq !== alert.lastSeq ||
    state.armed !== alert.armed ||
    state.status !== alert.status ||
    state.triggerCount !== alert.triggerCount;
  return { state, firings, changed };
}

/**
 * Whether any of a symbol's trades in [minTicks, maxTicks] can change this alert: a fire (the range reaches
 * the target) or a re-arm (a disarmed repeating alert and a trade on the other side). The consumer puts the
 * same condition in SQL to load (and lock) only these alerts.
 */
export function isCandidate(
  alert: Pick<AlertState, "direction" | "targetTicks" | "armed">,
  minTicks: number,
  maxTicks: number,
): boolean {
  if (alert.armed)
    return alert.direction === "above" ? maxTicks >= alert.targetTicks : minTicks <= alert.targetTicks;
  return alert.direction === "above" ? minTicks < alert.targetTicks : maxTicks > alert.targetTicks;
}
