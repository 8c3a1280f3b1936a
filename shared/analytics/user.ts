/**
 * Per-user trading analytics (issue: analytics), computed from a user's history as the shard holds it:
 * the fills (each with the fee and the average-cost realized PnL the account model booked), the lots a
 * user received without trading (grants, opening balances), resets, and the daily equity rows.
 *
 * Definitions (docs/analytics.md has the long form):
 * - **trades**: fills of the user (one execution = one trade per side); **volume**: lots traded;
 *   **turnover**: traded notional (price × quantity), buys and sells, in micro-USD.
 * - **realized PnL**: the sum of the fills' realized PnL (average cost, before fees); **net** = realized −
 *   fees.
 * - **closing trade**: an order with at least one fill that reduced an open position (in this long-only
 *   market: a sell). Its PnL is the realized PnL of those fills. **win rate** = closing trades with PnL
 *   > 0 ÷ closing trades (a break-even close is not a win).
 * - **holding time**: lots are matched first in, first out (FIFO) per symbol: a lot is acquired by a
 *   buy fill, a grant or an opening balance, and released by a closing fill; a reset empties every queue.
 *   Average holding time = Σ (lots × (release time − acquisition time)) ÷ Σ lots released, over lots that
 *   were matched (a lot released with no recorded acquisition is left out).
 * - **daily returns** (since the latest reset; a reset restarts the equity curve): for each UTC day `d`
 *   with an equity row, `r_d = (E_d − E_prev − C_d) ÷ (E_prev + C_d)` where `E` is the equity at the day's
 *   last event, `E_prev` the previous equity (0 before the first day; the reset day's closing equity after
 *   a reset) and `C_d` the capital contributed since then (starting cash, grants): contributions are not
 *   returns. Calendar days without events between two equity days have return 0 (nothing changed).
 * - **max drawdown**: the largest fall from a peak of the PnL curve `P_d = E_d − E_base − ΣC` (money,
 *   exact), and of the compounded return index `Π(1 + r)` as a fraction of its peak (ratio).
 * - **Sharpe-like ratio**: mean(r) ÷ sample stdev(r) × √252 over the daily returns; null with fewer than
 *   two returns or no variation. No risk-free rate.
 *
 * Pure: no I/O. Money sums in bigint, so long histories stay exact; ratios are floating point.
 */

/** A fill of the user, as the `fills` table holds it. */
export interface AnalyticsFill {
  kind: "fill";
  /** The account event seq (the order in which the account applied its events). */
  seq: number;
  /** When the book matched it, ms since the epoch. */
  at: number;
  orderId: string;
  symbol: string;
  side: "buy" | "sell";
  qtyLots: number;
  lotSize: string;
  notionalMicros: number;
  feeMicros: number;
  realizedPlMicros: number;
  /** Position after the fill, signed lots (≥ 0 in the long-only market). */
  positionQtyLots: number;
}

/** Lots received without a trade: a grant, or the positions of an opening balance. */
export interface AnalyticsLots {
  kind: "lots";
  seq: number;
  at: number;
  symbol: string;
  qtyLots: number;
}

/** A reset of the account: positions and the equity curve start over. */
export interface AnalyticsReset {
  kind: "reset";
  seq: number;
  at: number;
}

export type AnalyticsEvent = AnalyticsFill | AnalyticsLots | AnalyticsReset;

/** One `account_daily` row. */
export interface AnalyticsDay {
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  /** Equity after the day's last event, micro-USD; null when unknown. */
  equityMicros: number | null;
  /** Capital contributed that day (starting cash, grants), micro-USD. */
  contributionsMicros: number;
}

export interface TradeFigures {
  trades: number;
  buys: number;
  sells: number;
  turnoverMicros: bigint;
  realizedPlMicros: bigint;
  feesMicros: bigint;
  closingTrades: number;
  winningTrades: number;
  /** Lots matched FIFO from acquisition to release, and Σ lots × ms held. */
  heldLots: bigint;
  heldLotMs: bigint;
}

export interface SymbolFigures extends TradeFigures {
  symbol: string;
  volumeLots: bigint;
  lotSize: string;
}

export interface DayFigures {
  day: string;
  trades: number;
  turnoverMicros: bigint;
  realizedPlMicros: bigint;
  feesMicros: bigint;
  equityMicros: number | null;
  /** The day's return (see the module doc), or null when the day has none. */
  return: number | null;
}

export interface EquityFigures {
  /** First day of the equity curve (the reset day after a reset), or null without equity rows. */
  since: string | null;
  /** Daily returns in day order, calendar gaps included as 0. */
  returns: { day: string; value: number }[];
  maxDrawdownMicros: bigint;
  /** Largest fall of the return index from its peak, as a fraction; null without returns. */
  maxDrawdownRatio: number | null;
  sharpe: number | null;
}

export interface UserAnalytics {
  totals: TradeFigures;
  /** Most traded first: by trades, then turnover, then symbol. */
  bySymbol: SymbolFigures[];
  byDay: DayFigures[];
  equity: EquityFigures;
}

/** Symbols listed as "most traded". */
export const MOST_TRADED_COUNT = 5;
/** Trading days per year, for the annualised Sharpe-like ratio. */
export const TRADING_DAYS_PER_YEAR = 252;

const DAY_MS = 86_400_000;
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
const nextDay = (day: string): string => utcDay(Date.parse(`${day}T00:00:00Z`) + DAY_MS);

const emptyFigures = (): TradeFigures => ({
  trades: 0,
  buys: 0,
  sells: 0,
  turnoverMicros: 0n,
  realizedPlMicros: 0n,
  feesMicros: 0n,
  closingTrades: 0,
  winningTrades: 0,
  heldLots: 0n,
  heldLotMs: 0n,
});

/** Event order: by seq; at equal seq (never in real data) fills last. */
const bySeq = (a: AnalyticsEvent, b: AnalyticsEvent) => a.seq - b.seq;

interface Lot {
  lots: number;
  at: number;
}

/** Computes {@link UserAnalytics} from a user's events (any order) and daily rows (any order). */
export function computeUserAnalytics(
  events: readonly AnalyticsEvent[],
  days: readonly AnalyticsDay[],
): UserAnalytics {
  const symbols = new Map<string, SymbolFigures>();
  const dayFigures = new Map<string, DayFigures>();
  const queues = new Map<string, { dir: 1 | -1; lots: Lot[] }>();
  /** Orders with a closing fill: symbol and the realized PnL of their closing fills. */
  const closing = new Map<string, { symbol: string; pnl: bigint }>();
  let lastReset: AnalyticsReset | null = null;

  const symbolOf = (symbol: string, lotSize: string): SymbolFigures => {
    let s = symbols.get(symbol);
    if (!s) {
      s = { symbol, volumeLots: 0n, lotSize, ...emptyFigures() };
      symbols.set(symbol, s);
    }
    return s;
  };
  const dayOf = (day: string): DayFigures => {
    let d = dayFigures.get(day);
    if (!d) {
      d = {
        day,
        trades: 0,
        turnoverMicros: 0n,
        realizedPlMicros: 0n,
        feesMicros: 0n,
        equityMicros: null,
        return: null,
      };
      dayFigures.set(day, d);
    }
    return d;
  };
  const acquire = (symbol: string, dir: 1 | -1, lots: number, at: number) => {
    if (lots <= 0) return;
    const q = queues.get(symbol);
    if (!q || q.dir !== dir) queues.set(symbol, { dir, lots: [{ lots, at }] });
    else q.lots.push({ lots, at });
  };
  /** Releases `lots` first in, first out; returns [lots matched, Σ lots × ms held]. */
  const release = (symbol: string, lots: number, at: number): [bigint, bigint] => {
    const q = queues.get(symbol);
    let matched = 0n;
    let lotMs = 0n;
    let left = lots;
    while (q && left > 0 && q.lots.length > 0) {
      const head = q.lots[0] as Lot;
      const take = Math.min(head.lots, left);
      matched += BigInt(take);
      lotMs += BigInt(take) * BigInt(at - head.at);
      head.lots -= take;
      left -= take;
      if (head.lots === 0) q.lots.shift();
    }
    return [matched, lotMs];
  };

  for (const e of [...events].sort(bySeq)) {
    if (e.kind === "reset") {
      queues.clear();
      if (lastReset === null || e.seq > lastReset.seq) lastReset = e;
      continue;
    }
    if (e.kind === "lots") {
      acquire(e.symbol, 1, e.qtyLots, e.at);
      continue;
    }
    const s = symbolOf(e.symbol, e.lotSize);
    const d = dayOf(utcDay(e.at));
    const dir = e.side === "buy" ? 1 : -1;
    s.trades++;
    if (dir === 1) s.buys++;
    else s.sells++;
    s.volumeLots += BigInt(e.qtyLots);
    s.turnoverMicros += BigInt(e.notionalMicros);
    s.realizedPlMicros += BigInt(e.realizedPlMicros);
    s.feesMicros += BigInt(e.feeMicros);
    d.trades++;
    d.turnoverMicros += BigInt(e.notionalMicros);
    d.realizedPlMicros += BigInt(e.realizedPlMicros);
    d.feesMicros += BigInt(e.feeMicros);

    const before = e.positionQtyLots - dir * e.qtyLots;
    const closes = before !== 0 && Math.sign(before) !== dir;
    const closedLots = closes ? Math.min(e.qtyLots, Math.abs(before)) : 0;
    if (closedLots > 0) {
      const [matched, lotMs] = release(e.symbol, closedLots, e.at);
      s.heldLots += matched;
      s.heldLotMs += lotMs;
      const order = closing.get(e.orderId) ?? { symbol: e.symbol, pnl: 0n };
      order.pnl += BigInt(e.realizedPlMicros);
      closing.set(e.orderId, order);
    }
    acquire(e.symbol, dir, e.qtyLots - closedLots, e.at);
  }

  for (const { symbol, pnl } of closing.values()) {
    const s = symbols.get(symbol);
    if (!s) continue;
    s.closingTrades++;
    if (pnl > 0n) s.winningTrades++;
  }

  const equity = equityFigures(days, lastReset === null ? null : utcDay(lastReset.at));
  const returns = new Map(equity.returns.map((r) => [r.day, r.value]));
  for (const row of days) {
    if (row.equityMicros !== null) dayOf(row.day).equityMicros = row.equityMicros;
  }
  for (const d of dayFigures.values()) d.return = returns.get(d.day) ?? null;

  const bySymbol = [...symbols.values()].sort(
    (a, b) =>
      b.trades - a.trades ||
      (b.turnoverMicros > a.turnoverMicros ? 1 : b.turnoverMicros < a.turnoverMicros ? -1 : 0) ||
      (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0),
  );
  const totals = emptyFigures();
  for (const s of bySymbol) {
    totals.trades += s.trades;
    totals.buys += s.buys;
    totals.sells += s.sells;
    totals.turnoverMicros += s.turnoverMicros;
    totals.realizedPlMicros += s.realizedPlMicros;
    totals.feesMicros += s.feesMicros;
    totals.closingTrades += s.closingTrades;
    totals.winningTrades += s.winningTrades;
    totals.heldLots += s.heldLots;
    totals.heldLotMs += s.heldLotMs;
  }
  const byDay = [...dayFigures.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  return { totals, bySymbol, byDay, equity };
}

/**
 * The equity curve's figures from the daily rows, starting at `resetDay` (the day of the latest reset)
 * when there was one.
 */
export function equityFigures(days: readonly AnalyticsDay[], resetDay: string | null): EquityFigures {
  const rows = [...days]
    .filter((d) => resetDay === null || d.day >= resetDay)
    .sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  const empty: EquityFigures = {
    since: null,
    returns: [],
    maxDrawdownMicros: 0n,
    maxDrawdownRatio: null,
    sharpe: null,
  };
  if (rows.length === 0) return empty;

  let prevEquity = 0n;
  let prevDay: string | null = null;
  let since: string = (rows[0] as AnalyticsDay).day;
  let rest = rows;
  if (resetDay !== null) {
    // After a reset the curve starts at the closing equity of the reset day (the first known one).
    const i = rows.findIndex((r) => r.equityMicros !== null);
    const base = rows[i];
    if (base?.equityMicros == null) return { ...empty, since: resetDay };
    prevEquity = BigInt(base.equityMicros);
    prevDay = base.day;
    since = base.day;
    rest = rows.slice(i + 1);
  }

  const returns: { day: string; value: number }[] = [];
  let contributed = 0n;
  let pnl = 0n;
  let peakPnl = 0n;
  let maxDrawdownMicros = 0n;
  let index = 1;
  let peakIndex = 1;
  let maxDrawdownRatio = 0;
  const addReturn = (day: string, value: number) => {
    returns.push({ day, value });
    index *= 1 + value;
    if (index > peakIndex) peakIndex = index;
    const drawdown = peakIndex > 0 ? (peakIndex - index) / peakIndex : 0;
    if (drawdown > maxDrawdownRatio) maxDrawdownRatio = drawdown;
  };

  for (const row of rest) {
    if (prevDay !== null) for (let d = nextDay(prevDay); d < row.day; d = nextDay(d)) addReturn(d, 0);
    prevDay = row.day;
    contributed += BigInt(row.contributionsMicros);
    if (row.equityMicros === null) continue;
    const equity = BigInt(row.equityMicros);
    const gain = equity - prevEquity - contributed;
    const capital = prevEquity + contributed;
    if (capital > 0n) addReturn(row.day, Number(gain) / Number(capital));
    pnl += gain;
    if (pnl > peakPnl) peakPnl = pnl;
    if (peakPnl - pnl > maxDrawdownMicros) maxDrawdownMicros = peakPnl - pnl;
    prevEquity = equity;
    contributed = 0n;
  }

  return {
    since,
    returns,
    maxDrawdownMicros,
    maxDrawdownRatio: returns.length > 0 ? maxDrawdownRatio : null,
    sharpe: sharpeRatio(returns.map((r) => r.value)),
  };
}

/** mean ÷ sample stdev × √252; null with fewer than two values or (numerically) no variation. */
export function sharpeRatio(values: readonly number[]): number | null {
  const n = values.length;
  if (n < 2) return null;
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  let squares = 0;
  for (const v of values) squares += (v - mean) * (v - mean);
  const stdev = Math.sqrt(squares / (n - 1));
  if (!(stdev > 1e-12)) return null;
  return (mean / stdev) * Math.sqrt(TRADING_DAYS_PER_YEAR);
}
