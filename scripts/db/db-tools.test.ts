// The operator tools against a real local Postgres: the monolith importer (idempotent) and the
// logical backup / restore (identical row counts and ledger sums after a restore into empty databases).
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { drizzle } from "drizzle-orm/node-postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { balancesFromLedger, type LedgerSum } from "../../shared/history/ledger.ts";
import { simulateSession } from "../../test/support/history-sim.ts";
import { applyAccountEvents } from "../../workers/consumers/history.ts";
import { moduloShardMap, shardOf } from "../../workers/db/shards.ts";
import { type Stack, startTestStack } from "../stack/index.ts";
import { escapeIdentifier, Pool, withClient } from "../stack/pg.ts";
import { silentLog } from "../stack/util.ts";
import { backup, restore } from "./backup.ts";
import { importMonolith, type MonolithExport, stableUuid } from "./import-monolith.ts";

let stack: Stack;
const query = <R>(url: string, text: string, values: unknown[] = []) =>
  withClient(url, async (c) => (await c.query<R>(text, values)).rows);
const shardIndexOf = (userId: string) => shardOf(userId, moduloShardMap(2));

beforeAll(async () => {
  stack = await startTestStack({ replica: false, log: silentLog });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

const ann = "0b6c5a0e-1f2d-4c3b-8a7e-5d4c3b2a1f00";
const ben = "7e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b";

function exportFile(extraSession = false): MonolithExport {
  return {
    format: "prepx-monolith-export",
    version: 1,
    exported_at: "2026-10-31T23:00:00Z",
    users: [
      {
        id: ann,
        email: "Ann@Example.com",
        display_name: "Ann",
        role: "trader",
        created_at: "2025-02-01T10:00:00Z",
        password_hash: null,
        sessions: [
          {
            id: "s-1",
            started_at: "2025-03-03T14:30:00Z",
            ended_at: "2025-03-03T21:00:00Z",
            starting_cash: "100000.00",
            orders: [
              {
                id: "o-1",
                client_order_id: "c-1",
                symbol: "ACME",
                side: "buy",
                type: "limit",
                time_in_force: "day",
                qty: "10",
                limit_price: "100.00",
                status: "filled",
                created_at: "2025-03-03T14:31:00Z",
              },
              {
                id: "o-2",
                symbol: "ACME",
                side: "sell",
                type: "market",
                time_in_force: "day",
                qty: "4",
                status: "filled",
                created_at: "2025-03-03T15:00:00Z",
              },
            ],
            fills: [
              {
                id: "f-1",
                order_id: "o-1",
                price: "100.00",
                qty: "10",
                fee: "0.15",
                at: "2025-03-03T14:31:01Z",
              },
              {
                id: "f-2",
                order_id: "o-2",
                price: "110.00",
                qty: "4",
                fee: "0.07",
                at: "2025-03-03T15:00:01Z",
              },
            ],
          },
          ...(extraSession
            ? [
                {
                  id: "s-2",
                  started_at: "2025-04-01T14:30:00Z",
                  starting_cash: "50000",
                  orders: [
                    {
                      id: "o-3",
                      symbol: "BOLT",
                      side: "buy" as const,
                      type: "limit" as const,
                      time_in_force: "gtc" as const,
                      qty: "3",
                      limit_price: "42.50",
                      status: "partially_filled" as const,
                      created_at: "2025-04-01T14:31:00Z",
                    },
                  ],
                  fills: [
                    { id: "f-3", order_id: "o-3", price: "42.50", qty: "2", at: "2025-04-01T14:32:00Z" },
                  ],
                },
              ]
            : []),
        ],
      },
      {
        id: ben,
        email: "ben@example.com",
        display_name: "Ben",
        created_at: "2025-02-02T10:00:00Z",
        sessions: [],
      },
      {
        id: "11111111-2222-4333-8444-555555555555",
        email: "demo@prepx.dev",
        display_name: "Not the demo user",
        created_at: "2025-02-02T10:00:00Z",
        sessions: [],
      },
    ],
  };
}

const targets = () => ({ globalUrl: stack.urls.database, shardUrls: stack.urls.shards });

describe("the monolith importer", () => {
  it("loads users, orders, fills and a balanced ledger for each closed session", async () => {
    const report = await importMonolith(exportFile(), targets());
    expect(report.users).toEqual({
      created: 2,
      existing: 0,
      skipped: [
        { id: "11111111-2222-4333-8444-555555555555", reason: expect.stringContaining("another user") },
      ],
    });
    const home = stack.urls.shards[shardIndexOf(ann)] as string;
    const [user] = await query<{ email: string; password_hash: string }>(
      home,
      "SELECT email, password_hash FROM users WHERE id = $1",
      [ann],
    );
    expect(user).toEqual({ email: "ann@example.com", password_hash: "imported$locked" });
    const [dir] = await query<{ user_id: string; shard: number }>(
      stack.urls.database,
      "SELECT user_id, shard FROM email_directory WHERE email = 'ann@example.com'",
    );
    expect(dir).toEqual({ user_id: ann, shard: shardIndexOf(ann) });
    const orders = await query<{ id: string; status: string; filled_qty_lots: string; source: string }>(
      home,
      "SELECT id, status, filled_qty_lots, source FROM orders WHERE user_id = $1 ORDER BY created_at",
      [ann],
    );
    expect(orders).toEqual([
      {
        id: stableUuid(`prepx-import:${ann}:o-1`),
        status: "filled",
        filled_qty_lots: "10",
        source: "import",
      },
      { id: stableUuid(`prepx-import:${ann}:o-2`), status: "filled", filled_qty_lots: "4", source: "import" },
    ]);
    const fills = await query<{ realized_pl_micros: string; fee_micros: string; position_qty_lots: string }>(
      home,
      "SELECT realized_pl_micros, fee_micros, position_qty_lots FROM fills WHERE user_id = $1 ORDER BY at",
      [ann],
    );
    // Sell 4 of 10 bought at 100 for 110: +40 realized, 6 left.
    expect(fills).toEqual([
      { realized_pl_micros: "0", fee_micros: "150000", position_qty_lots: "10" },
      { realized_pl_micros: "40000000", fee_micros: "70000", position_qty_lots: "6" },
    ]);
    // A closed session nets to zero in every account.
    const sums = await query<LedgerSum>(
      home,
      "SELECT account, symbol, asset, sum(amount) AS amount FROM ledger_entries WHERE user_id = $1 GROUP BY 1, 2, 3",
      [ann],
    );
    expect(balancesFromLedger(sums)).toEqual({
      cashMicros: 0,
      startingCashMicros: 0,
      realizedPlMicros: 0,
      feesMicros: 0,
      positions: [],
    });
    const [day] = await query<{ realized_pl_micros: string; fill_count: number }>(
      home,
      "SELECT realized_pl_micros, fill_count FROM account_daily WHERE user_id = $1 AND day = '2025-03-03'",
      [ann],
    );
    expect(day).toEqual({ realized_pl_micros: "40000000", fill_count: 2 });
  });

  it("changes nothing when run again, and adds only what is new when the file grew", async () => {
    const count = async () =>
      Promise.all(
        stack.urls.shards.map((url) =>
          query<{ n: string }>(
            url,
            "SELECT (SELECT count(*) FROM ledger_entries) + (SELECT count(*) FROM orders) AS n",
          ),
        ),
      );
    const before = await count();
    const again = await importMonolith(exportFile(), targets());
    expect(again.users).toMatchObject({ created: 0, existing: 2 });
    expect(again.events.applied).toBe(0);
    expect(again.events.duplicates).toBeGreaterThan(0);
    expect(await count()).toEqual(before);

    const grown = await importMonolith(exportFile(true), targets());
    expect(grown.events.applied).toBe(4); // s-2: opened, one fill, one order, closed
    const [{ n }] = (await query<{ n: string }>(
      stack.urls.shards[shardIndexOf(ann)] as string,
      "SELECT count(*) AS n FROM orders WHERE user_id = $1",
      [ann],
    )) as [{ n: string }];
    expect(Number(n)).toBe(3);
  });
});

describe("backup and restore", () => {
  it("restores into empty databases with identical row counts and ledger sums", {
    timeout: 60_000,
  }, async () => {
    // Live history as the consumer writes it, on both shards, next to the imported one.
    // Two users on each shard (random ids land on either; four of them all on one shard 1 time in 8).
    const users: string[] = [];
    for (const shard of [0, 1]) {
      for (let found = 0; found < 2; ) {
        const id = crypto.randomUUID();
        if (shardIndexOf(id) !== shard) continue;
        users.push(id);
        found++;
      }
    }
    const sim = simulateSession({ userIds: users, steps: 40, seed: 5 });
    for (const [i, url] of stack.urls.shards.entries()) {
      const pool = new Pool({ connectionString: url, max: 1 });
      try {
        const events = sim.events.filter((e) => shardIndexOf(e.userId) === i);
        await drizzle({ client: pool as never }).transaction((tx) => applyAccountEvents(tx, events));
      } finally {
        await pool.end();
      }
    }
    await query(
      stack.urls.database,
      "INSERT INTO audit_log (actor_user_id, actor_via, action, target, request_id) VALUES ($1, 'jwt', 'test', 'x', 'r')",
      [users[0]],
    );

    const dir = path.join(stack.dataDir, "backup");
    const manifest = await backup(targets(), dir, () => {});
    expect(manifest.databases.map((d) => d.key)).toEqual(["global", "shard_0", "shard_1"]);

    // A new, empty place: three fresh databases in the same cluster.
    const names = ["restored", "restored_shard_0", "restored_shard_1"];
    for (const name of names) {
      await query(stack.urls.admin, `CREATE DATABASE ${escapeIdentifier(name)} OWNER prepx`);
    }
    const url = (name: string) => stack.urls.database.replace(/\/prepx$/, `/${name}`);
    const into = {
      globalUrl: url(names[0] as string),
      shardUrls: [url(names[1] as string), url(names[2] as string)],
    };
    const report = await restore(dir, into, { log: () => {} });
    expect(report.databases).toHaveLength(3);

    const snapshot = async (t: { globalUrl: string; shardUrls: string[] }) => {
      const out: Record<string, unknown> = {};
      for (const [key, u] of [["global", t.globalUrl], ...t.shardUrls.map((s, i) => [`shard_${i}`, s])] as [
        string,
        string,
      ][]) {
        const tables = await query<{ tablename: string }>(
          u,
          "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY 1",
        );
        for (const { tablename } of tables) {
          const [{ n }] = (await query<{ n: string }>(
            u,
            `SELECT count(*) AS n FROM ${escapeIdentifier(tablename)}`,
          )) as [{ n: string }];
          out[`${key}.${tablename}`] = Number(n);
        }
        if (key !== "global") {
          out[`${key}.ledger`] = await query(
            u,
            "SELECT user_id, account, symbol, asset, sum(amount)::text AS amount FROM ledger_entries GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
          );
        }
      }
      return out;
    };
    const source = await snapshot(targets());
    expect(source["shard_0.ledger_entries"]).toBeGreaterThan(0);
    expect(source["shard_1.ledger_entries"]).toBeGreaterThan(0);
    expect(await snapshot(into)).toEqual(source);

    // Sequences continue after the restored rows.
    await query(
      into.globalUrl,
      "INSERT INTO audit_log (actor_user_id, actor_via, action, target, request_id) VALUES ($1, 'jwt', 'after', 'x', 'r')",
      [users[0]],
    );

    // A second restore refuses non-empty targets, and --clean replaces them.
    await expect(restore(dir, into, { log: () => {} })).rejects.toThrow(/not empty/);
    await restore(dir, into, { clean: true, log: () => {} });
    expect(await snapshot(into)).toEqual(source);

    // A damaged file is refused before anything is touched.
    const file = path.join(dir, "shard_0", "ledger_entries.copy");
    await writeFile(file, `${await readFile(file, "utf8")}x`);
    await expect(restore(dir, into, { clean: true, log: () => {} })).rejects.toThrow(/checksum/);
  });
});
