/**
 * Correctness at the end of a run, per trader, from what the trader was told during the run (order acks,
 * trade_updates fills) against what the server reports afterwards:
 *
 * - orders: every acknowledged order is listed by `GET /v2/orders?status=all`; orders this trader
 *   canceled (204) are `canceled`, replaced ones `replaced`; each order's `filled_qty` equals the fills
 *   the trader received for it; placements that got no answer are looked up by client order id;
 * - fills: no execution id twice for one trader; the account's FILL activities match the fills received
 *   (count and quantity per order); across traders an execution id appears at most twice, as one buy and
 *   one sell of the same quantity and price;
 * - ledger: starting_cash + realized_pl − fees = cash + Σ cost_basis, exactly (micro-USD), and every
 *   position's quantity = shares granted + bought − sold according to the fills received.
 */
import { parseMicros } from "../../shared/decimal.ts";
import type { HttpClient } from "./http.ts";
import type { MarketView } from "./market.ts";
import type { Trader } from "./trader.ts";

export interface AccountBody {
  cash: string;
  starting_cash: string;
  realized_pl: string;
  fees: string;
}

export interface PositionBody {
  symbol: string;
  qty: string;
  cost_basis: string;
}

export interface ServerOrder {
  id: string;
  client_order_id: string;
  symbol: string;
  status: string;
  filled_qty: string;
}

export interface ActivityBody {
  id: string;
  order_id: string;
  symbol: string;
  side: string;
  qty: string;
}

function micros(s: string): number {
  const r = parseMicros(s, { allowNegative: true });
  if (!r.ok) throw new Error(`not a money amount: ${s}`);
  return r.value;
}

/** starting + realized − fees − (cash + Σ basis), in micro-USD: 0 when the ledger balances. */
export function ledgerDifference(account: AccountBody, positions: readonly PositionBody[]): number {
  const left = micros(account.starting_cash) + micros(account.realized_pl) - micros(account.fees);
  let right = micros(account.cash);
  for (const p of positions) right += micros(p.cost_basis);
  return left - right;
}

export interface CrossFill {
  trader: number;
  side: string;
  qtyLots: number;
  priceTicks: number;
}

/**
 * Execution ids seen by more than one side that do not pair up as one buy and one sell of the same
 * quantity at the same price (or that appear more than twice).
 */
export function crossTraderConflicts(fills: ReadonlyMap<string, CrossFill[]>): string[] {
  const bad: string[] = [];
  for (const [id, list] of fills) {
    if (list.length === 1) continue;
    const [a, b] = list as [CrossFill, CrossFill];
    if (list.length > 2 || a.side === b.side || a.qtyLots !== b.qtyLots || a.priceTicks !== b.priceTicks) {
      bad.push(id);
    }
  }
  return bad;
}

export interface TraderCheck {
  index: number;
  ackedOrders: number;
  lostOrders: string[];
  statusMismatches: string[];
  filledQtyMismatches: string[];
  unansweredFound: number;
  unansweredMissing: number;
  fillsReceived: number;
  duplicateFills: number;
  activities: number;
  duplicateActivities: number;
  activityMismatch: boolean;
  ledgerDiffMicros: number;
  positionMismatches: string[];
  error: string | null;
}

async function getJson<T>(http: HttpClient, t: Trader, path: string): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const r = await http.request("GET", path, { headers: t.headers() });
    if (r.status === 200) return r.body as T;
    if (attempt >= 3) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
  }
}

async function allOrders(http: HttpClient, t: Trader): Promise<ServerOrder[]> {
  const byId = new Map<string, ServerOrder>();
  let after: string | null = null;
  for (let page = 0; page < 50; page++) {
    const q: string = after ? `&after=${encodeURIComponent(after)}` : "";
    const list = await getJson<(ServerOrder & { created_at: string })[]>(
      http,
      t,
      `/v2/orders?status=all&limit=500&direction=asc${q}`,
    );
    for (const o of list) byId.set(o.id, o);
    if (list.length < 500) break;
    // `after` is exclusive by time: step back a millisecond and de-duplicate by id.
    after = new Date(Date.parse((list.at(-1) as { created_at: string }).created_at) - 1).toISOString();
  }
  return [...byId.values()];
}

async function allFillActivities(http: HttpClient, t: Trader): Promise<ActivityBody[]> {
  const out: ActivityBody[] = [];
  let token: string | null = null;
  for (let page = 0; page < 100; page++) {
    const q: string = token ? `&page_token=${encodeURIComponent(token)}` : "";
    const list = await getJson<ActivityBody[]>(
      http,
      t,
      `/v2/account/activities/FILL?direction=asc&page_size=100${q}`,
    );
    out.push(...list);
    if (list.length < 100) break;
    token = (list.at(-1) as ActivityBody).id;
  }
  return out;
}

export async function checkTrader(
  http: HttpClient,
  t: Trader,
  market: MarketView,
  withFills: boolean,
): Promise<TraderCheck> {
  const result: TraderCheck = {
    index: t.creds.index,
    ackedOrders: t.acked.size,
    lostOrders: [],
    statusMismatches: [],
    filledQtyMismatches: [],
    unansweredFound: 0,
    unansweredMissing: 0,
    fillsReceived: t.fills.size,
    duplicateFills: t.duplicateFills,
    activities: 0,
    duplicateActivities: 0,
    activityMismatch: false,
    ledgerDiffMicros: 0,
    positionMismatches: [],
    error: null,
  };
  try {
    const orders = await allOrders(http, t);
    const byId = new Map(orders.map((o) => [o.id, o]));
    const byClientId = new Map(orders.map((o) => [o.client_order_id, o]));
    for (const a of t.acked.values()) {
      const o = byId.get(a.id);
      if (!o) {
        result.lostOrders.push(a.id);
        continue;
      }
      if (a.replacedBy !== null && o.status !== "replaced")
        result.statusMismatches.push(`${a.id}: replaced → ${o.status}`);
      else if (a.canceledByUs && o.status !== "canceled")
        result.statusMismatches.push(`${a.id}: canceled → ${o.status}`);
      if (withFills) {
        const received = t.filledByOrder.get(a.id) ?? 0;
        const server = market.lots(o.symbol, o.filled_qty);
        if (received !== server)
          result.filledQtyMismatches.push(`${a.id}: received ${received}, server ${server}`);
      }
    }
    for (const u of t.unanswered) {
      if (byClientId.has(u.clientOrderId)) result.unansweredFound++;
      else result.unansweredMissing++;
    }

    const activities = await allFillActivities(http, t);
    result.activities = activities.length;
    result.duplicateActivities = activities.length - new Set(activities.map((a) => a.id)).size;
    if (withFills) {
      const perOrder = new Map<string, number>();
      for (const a of activities)
        perOrder.set(a.order_id, (perOrder.get(a.order_id) ?? 0) + market.lots(a.symbol, a.qty));
      const mismatch =
        activities.length !== t.fills.size ||
        [...perOrder].some(([id, lots]) => (t.filledByOrder.get(id) ?? 0) !== lots) ||
        [...t.filledByOrder].some(([id, lots]) => (perOrder.get(id) ?? 0) !== lots);
      result.activityMismatch = mismatch;
    }

    const account = await getJson<AccountBody>(http, t, "/v2/account");
    const positions = await getJson<PositionBody[]>(http, t, "/v2/positions");
    result.ledgerDiffMicros = ledgerDifference(account, positions);
    if (withFills) {
      const symbols = new Set([...t.granted.keys(), ...t.held.keys(), ...positions.map((p) => p.symbol)]);
      for (const s of symbols) {
        if (!market.info.has(s)) continue;
        const server = positions.find((p) => p.symbol === s);
        const serverLots = server ? market.lots(s, server.qty) : 0;
        const expected = t.held.get(s) ?? 0;
        if (serverLots !== expected)
          result.positionMismatches.push(`${s}: expected ${expected}, server ${serverLots}`);
      }
    }
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
  }
  return result;
}

export interface ChecksSummary {
  traders: number;
  tradersChecked: number;
  checkErrors: number;
  ackedOrders: number;
  lostOrders: number;
  statusMismatches: number;
  filledQtyMismatches: number;
  unansweredPlacements: number;
  unansweredFound: number;
  fillsReceived: number;
  duplicateFills: number;
  activities: number;
  duplicateActivities: number;
  activityMismatches: number;
  ledgerImbalanced: number;
  positionMismatches: number;
  crossTraderConflicts: number;
  ok: boolean;
  examples: string[];
}

export function summarizeChecks(
  checks: readonly TraderCheck[],
  conflicts: readonly string[],
  withFills: boolean,
): ChecksSummary {
  const sum = (f: (c: TraderCheck) => number) => checks.reduce((a, c) => a + f(c), 0);
  const examples: string[] = [];
  for (const c of checks) {
    if (examples.length >= 10) break;
    if (c.error) examples.push(`trader ${c.index}: ${c.error}`);
    for (const x of c.lostOrders.slice(0, 2))
      examples.push(`trader ${c.index}: acknowledged order ${x} not listed`);
    for (const x of c.statusMismatches.slice(0, 2)) examples.push(`trader ${c.index}: status ${x}`);
    for (const x of c.filledQtyMismatches.slice(0, 2)) examples.push(`trader ${c.index}: filled_qty ${x}`);
    for (const x of c.positionMismatches.slice(0, 2)) examples.push(`trader ${c.index}: position ${x}`);
    if (c.ledgerDiffMicros !== 0)
      examples.push(`trader ${c.index}: ledger off by ${c.ledgerDiffMicros} µUSD`);
    if (c.activityMismatch) examples.push(`trader ${c.index}: FILL activities ≠ fills received`);
  }
  for (const id of conflicts.slice(0, 3)) examples.push(`execution ${id}: sides do not pair up`);
  const s: ChecksSummary = {
    traders: checks.length,
    tradersChecked: checks.filter((c) => c.error === null).length,
    checkErrors: checks.filter((c) => c.error !== null).length,
    ackedOrders: sum((c) => c.ackedOrders),
    lostOrders: sum((c) => c.lostOrders.length),
    statusMismatches: sum((c) => c.statusMismatches.length),
    filledQtyMismatches: sum((c) => c.filledQtyMismatches.length),
    unansweredPlacements: sum((c) => c.unansweredFound + c.unansweredMissing),
    unansweredFound: sum((c) => c.unansweredFound),
    fillsReceived: sum((c) => c.fillsReceived),
    duplicateFills: sum((c) => c.duplicateFills),
    activities: sum((c) => c.activities),
    duplicateActivities: sum((c) => c.duplicateActivities),
    activityMismatches: checks.filter((c) => c.activityMismatch).length,
    ledgerImbalanced: checks.filter((c) => c.ledgerDiffMicros !== 0).length,
    positionMismatches: sum((c) => c.positionMismatches.length),
    crossTraderConflicts: conflicts.length,
    ok: false,
    examples,
  };
  s.ok =
    s.checkErrors === 0 &&
    s.lostOrders === 0 &&
    s.statusMismatches === 0 &&
    s.duplicateFills === 0 &&
    s.duplicateActivities === 0 &&
    s.ledgerImbalanced === 0 &&
    s.crossTraderConflicts === 0 &&
    (!withFills || (s.filledQtyMismatches === 0 && s.activityMismatches === 0 && s.positionMismatches === 0));
  return s;
}
