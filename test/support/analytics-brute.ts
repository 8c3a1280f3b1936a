// Brute-force recomputations of the analytics figures, for the integration tests: naive on purpose (one
// queue entry per lot, O(n²) drawdown, one pass per figure) and independent of shared/analytics.
import type { AccountEvent, Balances } from "../../shared/history/events.ts";

export interface BruteFill {
  seq: number;
  at: number;
  orderId: string;
  symbol: string;
  side: "buy" | "sell";
  qty: number;
  notional: bigint;
  fee: bigint;
  realized: bigint;
}
export interface BruteLots {
  seq: number;
  at: number;
  symbol: string;
  qty: number;
}
export interface BruteDay {
  day: string;
  equity: bigint | null;
  contributions: bigint;
}
export interface BruteInput {
  fills: BruteFill[];
  lots: BruteLots[];
  resets: { seq: number; at: number }[];
  days: BruteDay[];
}

export interface BruteSymbol {
  trades: number;
  buys: number;
  sells: number;
  volume: bigint;
  turnover: bigint;
  realized: bigint;
  fees: bigint;
  closing: number;
  winning: number;
  heldLots: bigint;
  heldMs: bigint;
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function bruteSymbols(input: BruteInput): Map<string, BruteSymbol> {
  const out = new Map<string, BruteSymbol>();
  const get = (symbol: string) => {
    let s = out.get(symbol);
    if (!s) {
      s = {
        trades: 0,
        buys: 0,
        sells: 0,
        volume: 0n,
        turnover: 0n,
        realized: 0n,
        fees: 0n,
        closing: 0,
        winning: 0,
        heldLots: 0n,
        heldMs: 0n,
      };
      out.set(symbol, s);
    }
    return s;
  };
  for (const f of input.fills) {
    const s = get(f.symbol);
    s.trades++;
    if (f.side === "buy") s.buys++;
    else s.sells++;
    s.volume += BigInt(f.qty);
    s.turnover += f.notional;
    s.realized += f.realized;
    s.fees += f.fee;
  }
  const sellOrders = new Map<string, { symbol: string; pnl: bigint }>();
  for (const f of input.fills) {
    if (f.side !== "sell") continue;
    const o = sellOrders.get(f.orderId) ?? { symbol: f.symbol, pnl: 0n };
    o.pnl += f.realized;
    sellOrders.set(f.orderId, o);
  }
  for (const o of sellOrders.values()) {
    const s = get(o.symbol);
    s.closing++;
    if (o.pnl > 0n) s.winning++;
  }
  type Step = { seq: number; at: number; kind: "in" | "out" | "reset"; symbol: string; qty: number };
  const steps: Step[] = [
    ...input.fills.map((f) => ({ ...f, kind: f.side === "buy" ? ("in" as const) : ("out" as const) })),
    ...input.lots.map((l) => ({ ...l, kind: "in" as const })),
    ...input.resets.map((r) => ({ ...r, kind: "reset" as const, symbol: "", qty: 0 })),
  ].sort((a, b) => a.seq - b.seq);
  let queues = new Map<string, number[]>();
  for (const st of steps) {
    if (st.kind === "reset") {
      queues = new Map();
      continue;
    }
    const q = queues.get(st.symbol) ?? [];
    queues.set(st.symbol, q);
    if (st.kind === "in") for (let i = 0; i < st.qty; i++) q.push(st.at);
    else {
      const s = get(st.symbol);
      for (let i = 0; i < st.qty && q.length > 0; i++) {
        s.heldLots += 1n;
        s.heldMs += BigInt(st.at - (q.shift() as number));
      }
    }
  }
  return out;
}

export function bruteEquity(input: BruteInput) {
  const lastReset = [...input.resets].sort((a, b) => a.seq - b.seq).at(-1);
  const from = lastReset ? day(lastReset.at) : null;
  const rows = input.days
    .filter((d) => from === null || d.day >= from)
    .sort((a, b) => a.day.localeCompare(b.day));
  const returns: number[] = [];
  const pnl: bigint[] = [0n];
  const index: number[] = [1];
  if (rows.length === 0) return { returns, maxDrawdown: 0n, maxDrawdownRatio: null, sharpe: null };
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const calendar: string[] = [];
  for (let t = Date.parse(`${rows[0]?.day}T00:00:00Z`); day(t) <= (rows.at(-1)?.day ?? ""); t += 86_400_000) {
    calendar.push(day(t));
  }
  let prev = 0n;
  let i = 0;
  if (from !== null) {
    i = calendar.findIndex((d) => byDay.get(d)?.equity != null);
    if (i < 0) return { returns, maxDrawdown: 0n, maxDrawdownRatio: null, sharpe: null };
    prev = byDay.get(calendar[i] as string)?.equity ?? 0n;
    i++;
  }
  let pending = 0n;
  let cumulative = 0n;
  let started = from !== null;
  for (const d of calendar.slice(i)) {
    const row = byDay.get(d);
    if (!row) {
      if (started) {
        returns.push(0);
        index.push(index.at(-1) as number);
      }
      continue;
    }
    started = true;
    pending += row.contributions;
    if (row.equity === null) continue;
    if (prev + pending > 0n) {
      const r = Number(row.equity - prev - pending) / Number(prev + pending);
      returns.push(r);
      index.push((index.at(-1) as number) * (1 + r));
    }
    cumulative += row.equity - prev - pending;
    pnl.push(cumulative);
    prev = row.equity;
    pending = 0n;
  }
  let maxDrawdown = 0n;
  let maxDrawdownRatio = 0;
  for (let a = 0; a < pnl.length; a++)
    for (let b = a + 1; b < pnl.length; b++) {
      const fall = (pnl[a] as bigint) - (pnl[b] as bigint);
      if (fall > maxDrawdown) maxDrawdown = fall;
    }
  for (let b = 1; b < index.length; b++) {
    const peak = Math.max(...index.slice(0, b + 1));
    maxDrawdownRatio = Math.max(maxDrawdownRatio, (peak - (index[b] as number)) / peak);
  }
  let sharpe: number | null = null;
  if (returns.length >= 2) {
    const mean = returns.reduce((x, y) => x + y, 0) / returns.length;
    const sd = Math.sqrt(returns.reduce((x, y) => x + (y - mean) ** 2, 0) / (returns.length - 1));
    if (sd > 1e-12) sharpe = (mean / sd) * Math.sqrt(252);
  }
  return { returns, maxDrawdown, maxDrawdownRatio: returns.length > 0 ? maxDrawdownRatio : null, sharpe };
}

const sameBalances = (a: Balances, b: Balances) =>
  a.cashMicros === b.cashMicros &&
  a.startingCashMicros === b.startingCashMicros &&
  a.realizedPlMicros === b.realizedPlMicros &&
  a.feesMicros === b.feesMicros &&
  JSON.stringify(a.positions.map((p) => [p.symbol, p.qtyLots, p.costBasisMicros])) ===
    JSON.stringify(b.positions.map((p) => [p.symbol, p.qtyLots, p.costBasisMicros]));

const bookValue = (b: Balances) =>
  BigInt(b.cashMicros) + b.positions.reduce((s, p) => s + BigInt(p.costBasisMicros), 0n);

/** The brute-force input of one user, straight from the account events a UserSession published. */
export function bruteInputFromEvents(events: readonly AccountEvent[], userId: string): BruteInput {
  const mine = events.filter((e) => e.userId === userId && e.seq > 0);
  const input: BruteInput = { fills: [], lots: [], resets: [], days: [] };
  const days = new Map<string, { equity: bigint | null; equitySeq: number; contributions: bigint }>();
  for (const e of mine) {
    if (e.type === "account.order") continue;
    const d = days.get(day(e.ts)) ?? { equity: null, equitySeq: 0, contributions: 0n };
    days.set(day(e.ts), d);
    let equity: bigint | null = null;
    if (e.type === "account.fill") {
      const f = e.fill;
      input.fills.push({
        seq: e.seq,
        at: f.at,
        orderId: f.orderId,
        symbol: f.symbol,
        side: f.side,
        qty: f.qtyLots,
        notional: BigInt(f.notionalMicros),
        fee: BigInt(f.feeMicros),
        realized: BigInt(f.realizedPlMicros),
      });
      equity = e.equityMicros === null ? null : BigInt(e.equityMicros);
    } else if (e.type === "account.grant") {
      input.lots.push({ seq: e.seq, at: e.ts, symbol: e.grant.symbol, qty: e.grant.qtyLots });
      d.contributions += BigInt(e.grant.valueMicros);
      equity = e.equityMicros === null ? null : BigInt(e.equityMicros);
    } else if (e.type === "account.opened") {
      for (const p of e.balances.positions)
        input.lots.push({ seq: e.seq, at: e.ts, symbol: p.symbol, qty: p.qtyLots });
      d.contributions += BigInt(e.balances.startingCashMicros);
      equity = bookValue(e.balances);
    } else if (e.type === "account.reset") {
      // A reset of an account already in its starting state changes nothing (no ledger lines): not a restart.
      if (!sameBalances(e.before, e.after)) input.resets.push({ seq: e.seq, at: e.ts });
      d.contributions += BigInt(e.after.startingCashMicros - e.before.startingCashMicros);
      equity = bookValue(e.after);
    }
    if (equity !== null && e.seq > d.equitySeq) {
      d.equity = equity;
      d.equitySeq = e.seq;
    }
  }
  input.days = [...days].map(([d, v]) => ({ day: d, equity: v.equity, contributions: v.contributions }));
  return input;
}

/**
 * Realized PnL of sells at average cost, as the account model books it: selling c of q lots releases
 * floor(basis × c / q) of the basis (all of it when the position closes).
 */
export function averageCostRealized(
  fills: readonly Omit<BruteFill, "realized" | "fee">[],
  grants: readonly { seq: number; symbol: string; qty: number; valueMicros: bigint }[],
): bigint[] {
  const steps = [
    ...fills.map((f, i) => ({ kind: "fill" as const, i, f, seq: f.seq })),
    ...grants.map((g) => ({ kind: "grant" as const, g, seq: g.seq })),
  ].sort((a, b) => a.seq - b.seq);
  const pos = new Map<string, { qty: bigint; basis: bigint }>();
  const realized: bigint[] = fills.map(() => 0n);
  for (const st of steps) {
    if (st.kind === "grant") {
      const p = pos.get(st.g.symbol) ?? { qty: 0n, basis: 0n };
      pos.set(st.g.symbol, { qty: p.qty + BigInt(st.g.qty), basis: p.basis + st.g.valueMicros });
      continue;
    }
    const f = st.f;
    const p = pos.get(f.symbol) ?? { qty: 0n, basis: 0n };
    const q = BigInt(f.qty);
    if (f.side === "buy") pos.set(f.symbol, { qty: p.qty + q, basis: p.basis + f.notional });
    else {
      const released = q === p.qty ? p.basis : (p.basis * q) / p.qty;
      realized[st.i] = f.notional - released;
      pos.set(f.symbol, { qty: p.qty - q, basis: p.basis - released });
    }
  }
  return realized;
}
