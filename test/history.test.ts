// Trades through the real HTTP surface of `wrangler dev` end up in Postgres (orders, fills,
// ledger on each user's shard) through the UserSession outbox and the trade-events Queue consumer, and
// history reads move from the UserSession to the read replica once Postgres has caught up.
import { execFile } from "node:child_process";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { REPO_ROOT } from "../scripts/stack/index.ts";
import { withClient } from "../scripts/stack/pg.ts";
import { runSeeds } from "../scripts/stack/seed.ts";
import { DEMO_USERS, demoUsersSeeder } from "../scripts/stack/seed-users.ts";
import { parseMicros } from "../shared/decimal.ts";
import {
  type Balances,
  balancesFromLedger,
  compareBalances,
  type LedgerSum,
} from "../shared/history/ledger.ts";
import { moduloShardMap, shardOf } from "../workers/db/shards.ts";
import { api, baseUrl, freshIp, newTrader, type Trader } from "./client.ts";
import { prng } from "./support/history-sim.ts";

// This file trades EPIC only and cancels what it leaves open.
const SYMBOL = "EPIC";
const stackEnv = inject("stackEnv");
const shardUrls = JSON.parse(stackEnv.SHARD_DATABASE_URLS ?? "[]") as string[];
const shardIndexOf = (userId: string) => shardOf(userId, moduloShardMap(shardUrls.length));
let adminToken: string;
let alice: Trader;
let bob: Trader;
let carol: Trader;

type Order = { id: string; status: string } & Record<string, unknown>;

const admin = (method: string, path: string, body?: unknown) =>
  api<Record<string, unknown>>(method, path, { token: adminToken, body, ip: freshIp() });

const query = <R>(url: string, text: string, values: unknown[] = []) =>
  withClient(url, async (c) => (await c.query<R>(text, values)).rows);

const limit = (side: "buy" | "sell", qty: number, price: string) => ({
  symbol: SYMBOL,
  side,
  type: "limit",
  time_in_force: "gtc",
  qty: String(qty),
  limit_price: price,
});

interface ReconcileResult {
  user_id: string;
  status: string;
  session_seq: number;
  applied_through: number | null;
  differences: unknown[];
}

/** Polls the reconciliation endpoint until every user is `ok` (Postgres caught up and adds up). */
async function reconciled(users: Trader[]): Promise<ReconcileResult[]> {
  let last: ReconcileResult[] = [];
  await vi.waitFor(
    async () => {
      const res = await admin("POST", "/admin/reconcile", { user_ids: users.map((u) => u.id) });
      expect(res.status).toBe(200);
      last = (res.body as { results: ReconcileResult[] }).results;
      expect(last.map((r) => r.status)).toEqual(users.map(() => "ok"));
    },
    { timeout: 20_000, interval: 250 },
  );
  return last;
}

const micros = (s: unknown) => {
  const r = parseMicros(String(s), { allowNegative: true });
  if (!r.ok) throw new Error(`not a decimal: ${s}`);
  return r.value;
};

/** The account as the public API shows it, in the ledger's terms. */
async function liveBalances(t: Trader): Promise<Balances> {
  const account = (await t.call<Record<string, string>>("GET", "/v2/account")).body;
  const positions = (await t.call<Record<string, string>[]>("GET", "/v2/positions")).body;
  return {
    cashMicros: micros(account.cash),
    startingCashMicros: micros(account.starting_cash),
    realizedPlMicros: micros(account.realized_pl),
    feesMicros: micros(account.fees),
    positions: positions
      .map((p) => ({
        symbol: p.symbol as string,
        qtyLots: Number(p.qty),
        costBasisMicros: micros(p.cost_basis),
        tickSize: "",
        lotSize: "",
      }))
      .sort((a, b) => (a.symbol < b.symbol ? -1 : 1)),
  };
}

beforeAll(async () => {
  await runSeeds({
    globalUrl: stackEnv.DATABASE_URL ?? "",
    shardUrls,
    seeders: [demoUsersSeeder],
    log: () => {},
  });
  const adminUser = DEMO_USERS.find((u) => u.role === "admin")!;
  const login = await api<{ access_token: string }>("POST", "/v1/auth/login", {
    ip: freshIp(),
    body: { email: adminUser.email, password: adminUser.password },
  });
  expect(login.status).toBe(200);
  adminToken = login.body.access_token;
  [alice, bob, carol] = await Promise.all([newTrader("h-alice"), newTrader("h-bob"), newTrader("h-carol")]);
  for (const [t, qty, price] of [
    [bob, "80", "75.00"],
    [carol, "10", "74.00"],
  ] as const) {
    expect((await admin("POST", `/admin/users/${t.id}/grants`, { symbol: SYMBOL, qty, price })).status).toBe(
      200,
    );
  }
});

afterAll(async () => {
  await Promise.all([alice, bob, carol].map((t) => t?.call("DELETE", "/v2/orders")));
});

describe("the system of record", () => {
  it("records a random trading session on each user's shard, and every ledger adds up to its live account", async () => {
    const rand = prng(2026);
    const price = () => (75 + (Math.floor(rand() * 81) - 40) / 100).toFixed(2);
    for (let i = 0; i < 8; i++) {
      const p = price();
      const qty = 1 + Math.floor(rand() * 5);
      expect((await bob.call<Order>("POST", "/v2/orders", limit("sell", qty, p))).status).toBe(200);
      expect((await alice.call<Order>("POST", "/v2/orders", limit("buy", qty, p))).status).toBe(200);
    }
    // An order that rests and is replaced, then canceled; a sell back; a reset after trading.
    const resting = await alice.call<Order>("POST", "/v2/orders", limit("buy", 2, "72.00"));
    const replaced = await alice.call<Order>("PATCH", `/v2/orders/${resting.body.id}`, { qty: "1" });
    expect(replaced.status).toBe(200);
    expect((await alice.call("DELETE", `/v2/orders/${replaced.body.id}`)).status).toBe(204);
    await carol.call("POST", "/v2/orders", limit("buy", 2, "75.60"));
    await alice.call("POST", "/v2/orders", limit("sell", 2, "75.60"));
    await carol.call("POST", "/v2/orders", limit("sell", 3, "74.70"));
    await alice.call("POST", "/v2/orders", limit("buy", 3, "74.70"));
    await carol.call("DELETE", "/v2/orders");
    expect((await carol.call("POST", "/v2/account/reset")).status).toBe(200);

    const traders = [alice, bob, carol];
    const results = await reconciled(traders);
    for (const [i, t] of traders.entries()) {
      expect(results[i]?.applied_through).toBe(results[i]?.session_seq);
      const home = shardIndexOf(t.id);
      for (const [shard, url] of shardUrls.entries()) {
        const [{ n }] = (await query<{ n: string }>(
          url,
          "SELECT count(*) AS n FROM ledger_entries WHERE user_id = $1",
          [t.id],
        )) as [{ n: string }];
        if (shard === home) expect(Number(n)).toBeGreaterThan(0);
        else expect(Number(n)).toBe(0);
      }
      const url = shardUrls[home] as string;
      const sums = await query<LedgerSum>(
        url,
        "SELECT account, symbol, asset, sum(amount) AS amount FROM ledger_entries WHERE user_id = $1 GROUP BY 1, 2, 3",
        [t.id],
      );
      expect(compareBalances(await liveBalances(t), balancesFromLedger(sums))).toEqual([]);
      const unbalanced = await query(
        url,
        "SELECT event_id, asset FROM ledger_entries WHERE user_id = $1 GROUP BY 1, 2 HAVING sum(amount) <> 0",
        [t.id],
      );
      expect(unbalanced).toEqual([]);
      // Orders in every state are there, with the status the user sees.
      const orders = await query<{ id: string; status: string }>(
        url,
        "SELECT id, status FROM orders WHERE user_id = $1",
        [t.id],
      );
      const seen = (await t.call<Order[]>("GET", "/v2/orders?status=all&limit=500")).body;
      expect(new Map(orders.map((o) => [o.id, o.status]))).toEqual(
        new Map(seen.map((o) => [o.id, o.status])),
      );
    }
    const statuses = new Set(
      (
        await query<{ status: string }>(
          shardUrls[shardIndexOf(alice.id)] as string,
          "SELECT status FROM orders WHERE user_id = $1",
          [alice.id],
        )
      ).map((r) => r.status),
    );
    expect([...statuses]).toEqual(expect.arrayContaining(["filled", "replaced", "canceled"]));
    const positions = await query<{ symbol: string; qty_lots: string }>(
      shardUrls[shardIndexOf(carol.id)] as string,
      "SELECT symbol, qty_lots FROM positions_snapshot WHERE user_id = $1",
      [carol.id],
    );
    expect(positions).toEqual([{ symbol: SYMBOL, qty_lots: "0" }]);
  });

  it("answers history reads at once from the UserSession, then the same page from the read replica", async () => {
    const dave = await newTrader("h-dave");
    await bob.call("POST", "/v2/orders", limit("sell", 1, "75.10"));
    const bought = await dave.call<Order>("POST", "/v2/orders", limit("buy", 1, "75.10"));
    expect(bought.body.status).toBe("filled");

    const paths = ["/v2/orders?status=closed", "/v2/account/activities"];
    const first = await Promise.all(paths.map((p) => dave.call<Record<string, unknown>[]>("GET", p)));
    // Read-your-writes, whichever source answered.
    expect(first[0]?.body.map((o) => o.id)).toContain(bought.body.id);
    expect(first[1]?.body).toEqual([expect.objectContaining({ order_id: bought.body.id, qty: "1" })]);

    await reconciled([dave]);
    for (const [i, path] of paths.entries()) {
      await vi.waitFor(
        async () => {
          const later = await dave.call<unknown[]>("GET", path);
          expect(later.headers.get("x-prepx-history-source")).toBe("postgres");
          expect(later.body).toEqual(first[i]?.body);
        },
        { timeout: 10_000, interval: 200 },
      );
    }
  });

  it("reconciles every user of this test run with `npm run db:reconcile`", async () => {
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(
        process.execPath,
        ["scripts/reconcile.ts", "--url", baseUrl, "--wait", "20"],
        {
          cwd: REPO_ROOT,
          env: { ...process.env, ADMIN_TOKEN: adminToken, SHARD_DATABASE_URLS: stackEnv.SHARD_DATABASE_URLS },
        },
        (error, stdout, stderr) =>
          resolve({ code: error ? (error.code as number) : 0, out: stdout + stderr }),
      );
    });
    expect(run.out).toMatch(/\[reconcile\] \d+ users .* 0 mismatch, 0 pending/);
    expect(run.code).toBe(0);
  });

  it("gives a daily portfolio history from Postgres that ends with today's equity", async () => {
    const res = await alice.call<Record<string, unknown[] | string>>(
      "GET",
      "/v2/account/portfolio/history?timeframe=1D&period=1W",
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-prepx-history-source")).toBe("postgres");
    expect(res.body.timeframe).toBe("1D");
    const today = Math.floor(Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`) / 1000);
    expect((res.body.timestamp as number[]).at(-1)).toBe(today);
    expect((res.body.equity as string[]).at(-1)).toMatch(/^\d+(\.\d+)?$/);
    const [day] = await query<{ fill_count: number }>(
      shardUrls[shardIndexOf(alice.id)] as string,
      "SELECT fill_count FROM account_daily WHERE user_id = $1 AND day = current_date",
      [alice.id],
    );
    expect(day?.fill_count).toBeGreaterThanOrEqual(8);
  });
});
