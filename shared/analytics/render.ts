/**
 * The wire shape of `GET /v1/analytics/me`: money and quantities as exact decimal strings, ratios as
 * fixed-precision decimal strings (null when undefined). Pure.
 */
import { exactRatio, formatLots, formatRatio, formatUsd } from "./format.ts";
import { MOST_TRADED_COUNT, type TradeFigures, type UserAnalytics } from "./user.ts";

/** Decimals of the ratios on the wire. */
export const RATIO_DECIMALS = { winRate: 4, sharpe: 4, drawdown: 6, dailyReturn: 6 } as const;

export interface TradeFiguresView {
  trades: number;
  buys: number;
  sells: number;
  turnover: string;
  realized_pnl: string;
  fees: string;
  net_pnl: string;
  closing_trades: number;
  winning_trades: number;
  win_rate: string | null;
  avg_holding_seconds: string | null;
}

export interface SymbolView extends TradeFiguresView {
  symbol: string;
  volume: string;
}

export interface DayView {
  day: string;
  trades: number;
  turnover: string;
  realized_pnl: string;
  fees: string;
  net_pnl: string;
  equity: string | null;
  return: string | null;
}

export interface UserAnalyticsView {
  currency: "USD";
  summary: TradeFiguresView & {
    max_drawdown: string;
    max_drawdown_ratio: string | null;
    sharpe: string | null;
    return_days: number;
    equity_since: string | null;
  };
  most_traded: string[];
  by_symbol: SymbolView[];
  by_day: DayView[];
}

/** Average holding time in seconds with millisecond precision (exact, half up). */
export const holdingSeconds = (f: Pick<TradeFigures, "heldLots" | "heldLotMs">): string | null =>
  exactRatio(f.heldLotMs, f.heldLots * 1000n, 3);

function tradeView(f: TradeFigures): TradeFiguresView {
  return {
    trades: f.trades,
    buys: f.buys,
    sells: f.sells,
    turnover: formatUsd(f.turnoverMicros),
    realized_pnl: formatUsd(f.realizedPlMicros),
    fees: formatUsd(f.feesMicros),
    net_pnl: formatUsd(f.realizedPlMicros - f.feesMicros),
    closing_trades: f.closingTrades,
    winning_trades: f.winningTrades,
    win_rate: exactRatio(BigInt(f.winningTrades), BigInt(f.closingTrades), RATIO_DECIMALS.winRate),
    avg_holding_seconds: holdingSeconds(f),
  };
}

export function renderUserAnalytics(a: UserAnalytics): UserAnalyticsView {
  return {
    currency: "USD",
    summary: {
      ...tradeView(a.totals),
      max_drawdown: formatUsd(a.equity.maxDrawdownMicros),
      max_drawdown_ratio: formatRatio(a.equity.maxDrawdownRatio, RATIO_DECIMALS.drawdown),
      sharpe: formatRatio(a.equity.sharpe, RATIO_DECIMALS.sharpe),
      return_days: a.equity.returns.length,
      equity_since: a.equity.since,
    },
    most_traded: a.bySymbol.slice(0, MOST_TRADED_COUNT).map((s) => s.symbol),
    by_symbol: a.bySymbol.map((s) => ({
      symbol: s.symbol,
      volume: formatLots(s.volumeLots, s.lotSize),
      ...tradeView(s),
    })),
    by_day: a.byDay.map((d) => ({
      day: d.day,
      trades: d.trades,
      turnover: formatUsd(d.turnoverMicros),
      realized_pnl: formatUsd(d.realizedPlMicros),
      fees: formatUsd(d.feesMicros),
      net_pnl: formatUsd(d.realizedPlMicros - d.feesMicros),
      equity: d.equityMicros === null ? null : formatUsd(BigInt(d.equityMicros)),
      return: formatRatio(d.return, RATIO_DECIMALS.dailyReturn),
    })),
  };
}
