/**
 * Double-entry postings of account events, and the balances a set of postings adds up to.
 *
 * Every cash and position movement is booked as lines that sum to zero per asset:
 *
 * | account        | symbol | asset  | holds                                                       |
 * |----------------|--------|--------|-------------------------------------------------------------|
 * | `cash`         | –      | USD    | cash held (reserved cash included), micro-USD               |
 * | `position`     | SYM    | USD    | average-cost basis of the position, micro-USD               |
 * | `position`     | SYM    | SYM    | lots held                                                   |
 * | `fees`         | –      | USD    | fees paid (an expense: positive)                             |
 * | `realized_pnl` | –      | USD    | realized PnL (income: a gain is negative, a credit)          |
 * | `capital`      | –      | USD    | contributed capital: starting cash and granted value (credit) |
 * | `capital`      | SYM    | SYM    | lots contributed by grants, or taken away by resets          |
 * | `market`       | SYM    | SYM    | lots bought from / sold to other traders                     |
 *
 * With this sign convention (debits positive) the account model's ledger identity
 * `startingCash + realized − fees = cash + Σ basis` is exactly "the USD lines of every event sum to zero",
 * and the balances of an account are plain sums: cash = Σ cash, basis = Σ position/USD, lots =
 * Σ position/SYM, realized = −Σ realized_pnl, fees = Σ fees, starting cash = −Σ capital/USD.
 *
 * Pure: no I/O. Sums are taken in bigint, so a long history cannot lose precision.
 */
import type { Account } from "../account/types.ts";
import type { AccountEvent, Balances, HistoryFill, HistoryGrant, PositionBalance } from "./events.ts";

export type { Balances, PositionBalance } from "./events.ts";

export const USD = "USD";

export type LedgerAccount = "cash" | "position" | "fees" | "realized_pnl" | "capital" | "market";

export interface LedgerLine {
  account: LedgerAccount;
  /** The instrument the line is about (`position`, `market`, lots of `capital`), else null. */
  symbol: string | null;
  /** "USD" (micro-USD) or a symbol (lots of it). */
  asset: string;
  amount: number;
}

const line = (account: LedgerAccount, symbol: string | null, asset: string, amount: number): LedgerLine => ({
  account,
  symbol,
  asset,
  amount,
});

/** Opening lines of a set of balances: what an empty ledger needs to hold exactly these balances. */
export function openingLines(b: Balances): LedgerLine[] {
  const lines: LedgerLine[] = [
    line("cash", null, USD, b.cashMicros),
    line("capital", null, USD, -b.startingCashMicros),
    line("realized_pnl", null, USD, -b.realizedPlMicros),
    line("fees", null, USD, b.feesMicros),
  ];
  for (const p of b.positions) {
    lines.push(line("position", p.symbol, USD, p.costBasisMicros));
    lines.push(line("position", p.symbol, p.symbol, p.qtyLots));
    lines.push(line("capital", p.symbol, p.symbol, -p.qtyLots));
  }
  return compact(lines);
}

export function fillLines(f: HistoryFill): LedgerLine[] {
  // A buy adds its notional to the basis; a sell releases notional − realized of it.
  const basisDelta = f.side === "buy" ? f.notionalMicros : -(f.notionalMicros - f.realizedPlMicros);
  const lots = f.side === "buy" ? f.qtyLots : -f.qtyLots;
  return compact([
    line("cash", null, USD, f.cashDeltaMicros),
    line("position", f.symbol, USD, basisDelta),
    line("fees", null, USD, f.feeMicros),
    line("realized_pnl", null, USD, -f.realizedPlMicros),
    line("position", f.symbol, f.symbol, lots),
    line("market", f.symbol, f.symbol, -lots),
  ]);
}

export function grantLines(g: HistoryGrant): LedgerLine[] {
  return compact([
    line("position", g.symbol, USD, g.valueMicros),
    line("capital", null, USD, -g.valueMicros),
    line("position", g.symbol, g.symbol, g.qtyLots),
    line("capital", g.symbol, g.symbol, -g.qtyLots),
  ]);
}

/** A reset closes everything the account held (`before`) and opens the new epoch (`after`). */
export function resetLines(before: Balances, after: Balances): LedgerLine[] {
  const closing = openingLines(before).map((l) => ({ ...l, amount: -l.amount }));
  return compact([...closing, ...openingLines(after)]);
}

/** The ledger lines of an account event (none for order snapshots: reservations are not movements). */
export function ledgerLines(event: AccountEvent): LedgerLine[] {
  switch (event.type) {
    case "account.opened":
      return openingLines(event.balances);
    case "account.fill":
      return fillLines(event.fill);
    case "account.grant":
      return grantLines(event.grant);
    case "account.reset":
      return resetLines(event.before, event.after);
    case "account.order":
      return [];
  }
}

/** Merges lines with the same account, symbol and asset, and drops zeros; order is stable. */
function compact(lines: LedgerLine[]): LedgerLine[] {
  const merged = new Map<string, LedgerLine>();
  for (const l of lines) {
    const key = `${l.account}\u0000${l.symbol ?? ""}\u0000${l.asset}`;
    const prev = merged.get(key);
    merged.set(key, prev ? { ...prev, amount: prev.amount + l.amount } : { ...l });
  }
  return [...merged.values()].filter((l) => l.amount !== 0).map((l) => ({ ...l, amount: l.amount + 0 }));
}

/** Assets whose lines do not sum to zero (empty when the postings balance). */
export function unbalancedAssets(lines: readonly LedgerLine[]): string[] {
  const sums = new Map<string, bigint>();
  for (const l of lines) sums.set(l.asset, (sums.get(l.asset) ?? 0n) + BigInt(l.amount));
  return [...sums].filter(([, s]) => s !== 0n).map(([asset]) => asset);
}

/** A ledger sum, as Postgres returns it (`sum(amount)` of bigint is numeric: a decimal string). */
export interface LedgerSum {
  account: string;
  symbol: string | null;
  asset: string;
  amount: bigint | number | string;
}

/** The account balances a set of ledger sums adds up to (positions sorted by symbol, flat ones left out). */
export function balancesFromLedger(sums: readonly LedgerSum[]): Balances {
  let cash = 0n;
  let capital = 0n;
  let realized = 0n;
  let fees = 0n;
  const positions = new Map<string, { qty: bigint; basis: bigint }>();
  const position = (symbol: string) => {
    let p = positions.get(symbol);
    if (!p) {
      p = { qty: 0n, basis: 0n };
      positions.set(symbol, p);
    }
    return p;
  };
  for (const s of sums) {
    const amount = BigInt(s.amount);
    if (s.account === "cash" && s.asset === USD) cash += amount;
    else if (s.account === "capital" && s.asset === USD) capital += amount;
    else if (s.account === "realized_pnl") realized += amount;
    else if (s.account === "fees") fees += amount;
    else if (s.account === "position" && s.symbol !== null) {
      if (s.asset === USD) position(s.symbol).basis += amount;
      else position(s.symbol).qty += amount;
    }
  }
  const list: PositionBalance[] = [...positions]
    .filter(([, p]) => p.qty !== 0n || p.basis !== 0n)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([symbol, p]) => ({
      symbol,
      qtyLots: Number(p.qty),
      costBasisMicros: Number(p.basis),
      tickSize: "",
      lotSize: "",
    }));
  return {
    cashMicros: Number(cash),
    startingCashMicros: Number(-capital),
    realizedPlMicros: Number(-realized),
    feesMicros: Number(fees),
    positions: list,
  };
}

export interface BalanceDifference {
  /** `cash`, `starting_cash`, `realized_pl`, `fees`, `position:SYM:qty_lots`, `position:SYM:cost_basis`. */
  field: string;
  live: number;
  ledger: number;
}

/** Where the live account (the UserSession) and the ledger disagree; empty when they agree exactly. */
export function compareBalances(live: Balances, ledger: Balances): BalanceDifference[] {
  const out: BalanceDifference[] = [];
  const check = (field: string, a: number, b: number) => {
    if (a !== b) out.push({ field, live: a, ledger: b });
  };
  check("cash", live.cashMicros, ledger.cashMicros);
  check("starting_cash", live.startingCashMicros, ledger.startingCashMicros);
  check("realized_pl", live.realizedPlMicros, ledger.realizedPlMicros);
  check("fees", live.feesMicros, ledger.feesMicros);
  const symbols = new Set([...live.positions, ...ledger.positions].map((p) => p.symbol));
  for (const symbol of [...symbols].sort()) {
    const a = live.positions.find((p) => p.symbol === symbol);
    const b = ledger.positions.find((p) => p.symbol === symbol);
    check(`position:${symbol}:qty_lots`, a?.qtyLots ?? 0, b?.qtyLots ?? 0);
    check(`position:${symbol}:cost_basis`, a?.costBasisMicros ?? 0, b?.costBasisMicros ?? 0);
  }
  return out;
}

/** The ledger terms of a live account (what the UserSession holds), in the shape of {@link Balances}. */
export function balancesOf(account: Account): Balances {
  return {
    cashMicros: account.cashMicros,
    startingCashMicros: account.startingCashMicros,
    realizedPlMicros: account.realizedPlMicros,
    feesMicros: account.feesMicros,
    positions: [...account.positions.values()]
      .sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0))
      .map((p) => ({
        symbol: p.symbol,
        qtyLots: p.qtyLots,
        costBasisMicros: p.costBasisMicros,
        tickSize: p.units.tickSize,
        lotSize: p.units.lotSize,
      })),
  };
}
