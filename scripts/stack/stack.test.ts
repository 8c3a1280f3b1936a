import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { NeonDbError, neon, neonConfig, Pool } from "@neondatabase/serverless";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import ws from "ws";
import { type Stack, startStack, startTestStack } from "./index.ts";
import { loadMigrations, migrate, migrateDatabase } from "./migrate.ts";
import { escapeIdentifier, withClient } from "./pg.ts";
import { RedisConnection } from "./resp.ts";
import { SEED_SYMBOLS } from "./seed.ts";
import { waitFor } from "./util.ts";

/**
 * The whole local stack, started once on free ports in a throw-away dir under .data/test, driven by the
 * same client libraries the worker uses in production.
 */
let stack: Stack;
const stackLog: string[] = [];

beforeAll(async () => {
  try {
    stack = await startTestStack({ log: (line) => stackLog.push(line) });
  } catch (err) {
    throw new Error(`${(err as Error).message}\nstack log:\n${stackLog.join("\n")}`);
  }
  // What workers/lib/db.ts does when NEON_LOCAL_PROXY is set.
  const proxy = stack.env.NEON_LOCAL_PROXY;
  neonConfig.webSocketConstructor = ws;
  neonConfig.wsProxy = (host, port) => `${proxy}/v1?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineConnect = false;
  neonConfig.pipelineTLS = false;
  neonConfig.fetchEndpoint = () => `http://${proxy}/sql`;
}, 90_000);

afterAll(async () => {
  await stack?.stop();
}, 30_000);

describe("Neon driver through the local proxy", () => {
  it("runs parameterised queries over WebSocket with Pool", async () => {
    const pool = new Pool({ connectionString: stack.urls.database });
    try {
      const { rows } = await pool.query("SELECT $1::int + $2::int AS sum, current_user AS who", [2, 3]);
      expect(rows).toEqual([{ sum: 5, who: "prepx" }]);
    } finally {
      await pool.end();
    }
  });

  it("commits and rolls back transactions over WebSocket", async () => {
    const pool = new Pool({ connectionString: stack.urls.database });
    try {
      await pool.query("CREATE TABLE ws_tx (id int PRIMARY KEY)");
      const client = await pool.connect();
      await client.query("BEGIN");
      await client.query("INSERT INTO ws_tx VALUES (1)");
      await client.query("ROLLBACK");
      await client.query("BEGIN");
      await client.query("INSERT INTO ws_tx VALUES (2)");
      await client.query("COMMIT");
      client.release();
      const { rows } = await pool.query("SELECT id FROM ws_tx ORDER BY id");
      expect(rows).toEqual([{ id: 2 }]);
    } finally {
      await pool.end();
    }
  });

  it("round-trips NULL, json, timestamptz and int8 values over both WebSocket and HTTP", async () => {
    const sql = neon(stack.urls.database);
    const pool = new Pool({ connectionString: stack.urls.database });
    const at = new Date("2026-03-04T05:06:07.089Z");
    const doc = { side: "buy", qty: "10", nested: { ok: true, list: [1, "two", null] } };
    const big = "9007199254740993"; // 2^53 + 1: must survive as a string
    try {
      await sql`CREATE TABLE roundtrip (id int8 PRIMARY KEY, doc jsonb, at timestamptz, note text)`;
      await sql`INSERT INTO roundtrip VALUES (${big}, ${doc}, ${at}, ${null})`;
      await pool.query("INSERT INTO roundtrip VALUES ($1, $2, $3, $4)", ["2", JSON.stringify(doc), at, null]);

      const viaHttp = await sql`SELECT id, doc, at, note FROM roundtrip ORDER BY id`;
      const viaWs = (await pool.query("SELECT id, doc, at, note FROM roundtrip ORDER BY id")).rows;
      for (const rows of [viaHttp, viaWs]) {
        expect(rows).toEqual([
          { id: "2", doc, at, note: null },
          { id: big, doc, at, note: null },
        ]);
        expect(rows[0]?.at).toBeInstanceOf(Date);
      }
    } finally {
      await pool.end();
    }
  });

  it("returns full results, array mode and Postgres errors over HTTP like Neon", async () => {
    const sql = neon(stack.urls.database);
    const full = await sql.query("SELECT $1::text AS a, 2::int AS b", ["x"], { fullResults: true });
    expect(full.rows).toEqual([{ a: "x", b: 2 }]);
    expect(full.fields.map((f) => [f.name, f.dataTypeID])).toEqual([
      ["a", 25],
      ["b", 23],
    ]);
    expect(full.command).toBe("SELECT");
    expect(await sql.query("SELECT 1 AS one, 'two' AS two", [], { arrayMode: true })).toEqual([[1, "two"]]);

    const error = await sql`SELECT * FROM no_such_table`.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NeonDbError);
    expect((error as NeonDbError).code).toBe("42P01");
    // Neon's endpoint uses the extended protocol: one statement per query.
    await expect(sql.query("SELECT 1; SELECT 2")).rejects.toThrow(/multiple commands/);
  });

  it("runs HTTP transactions atomically, with isolation level and read-only options", async () => {
    const sql = neon(stack.urls.database);
    await sql`CREATE TABLE http_tx (id int PRIMARY KEY)`;
    const [, count] = await sql.transaction([
      sql`INSERT INTO http_tx VALUES (1), (2)`,
      sql`SELECT count(*)::int AS n FROM http_tx`,
    ]);
    expect(count).toEqual([{ n: 2 }]);

    const failed = sql.transaction([
      sql`INSERT INTO http_tx VALUES (3)`,
      sql`INSERT INTO http_tx VALUES (1)`,
    ]);
    await expect(failed).rejects.toMatchObject({ code: "23505" });
    expect(await sql`SELECT id FROM http_tx ORDER BY id`).toEqual([{ id: 1 }, { id: 2 }]);

    const [[level]] = (await sql.transaction([sql`SHOW transaction_isolation`], {
      isolationLevel: "Serializable",
      readOnly: true,
    })) as [[{ transaction_isolation: string }]];
    expect(level.transaction_isolation).toBe("serializable");
    const readOnly = sql.transaction([sql`INSERT INTO http_tx VALUES (9)`], { readOnly: true });
    await expect(readOnly).rejects.toMatchObject({ code: "25006" });
  });

  it("refuses to proxy to hosts other than this machine", async () => {
    const sql = neon("postgres://prepx:prepx@example.com:5432/prepx");
    await expect(sql`SELECT 1`).rejects.toThrow(/not allowed/);
  });
});

describe("Postgres read replica", () => {
  it("shows a row written on the primary within a few seconds", async () => {
    const primary = neon(stack.urls.database);
    const replica = neon(stack.urls.databaseReplica);
    await primary`CREATE TABLE replicated (id int PRIMARY KEY, note text)`;
    await primary`INSERT INTO replicated VALUES (1, 'from the primary')`;
    const rows = await waitFor(
      "row did not reach the replica",
      async () => {
        const found = await replica`SELECT note FROM replicated WHERE id = 1`.catch(() => []);
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 5000, intervalMs: 50 },
    );
    expect(rows).toEqual([{ note: "from the primary" }]);
    expect(await replica`SELECT pg_is_in_recovery() AS standby`).toEqual([{ standby: true }]);
  });

  it("rejects writes", async () => {
    const replica = neon(stack.urls.databaseReplica);
    await expect(replica`CREATE TABLE nope (id int)`).rejects.toMatchObject({ code: "25006" });
  });

  it("replicates every shard database", async () => {
    expect(stack.urls.shards).toHaveLength(2);
    for (const url of stack.urls.shardReplicas) {
      const tables = await neon(url)`SELECT to_regclass('processed_events') IS NOT NULL AS ok`;
      expect(tables).toEqual([{ ok: true }]);
    }
  });
});

describe("Upstash REST shim", () => {
  const redis = () => new Redis({ url: stack.urls.upstash, token: stack.upstashToken });

  it("serves GET/SET/INCR with the default base64 response encoding", async () => {
    const r = redis();
    expect(await r.set("greeting", "héllo ✓ wörld")).toBe("OK");
    expect(await r.get("greeting")).toBe("héllo ✓ wörld");
    expect(await r.incr("counter")).toBe(1);
    expect(await r.incrby("counter", 41)).toBe(42);
    expect(await r.get("missing")).toBeNull();
    await r.set("order", { id: "o-1", qty: 3 });
    expect(await r.get("order")).toEqual({ id: "o-1", qty: 3 });
    expect(await r.type("greeting")).toBe("string");
  });

  it("runs pipelines and MULTI/EXEC transactions", async () => {
    const r = redis();
    const p = r.pipeline();
    p.set("p:a", "1");
    p.incr("p:a");
    p.get("p:a");
    p.lpush("p:list", "x", "y");
    p.lrange("p:list", 0, -1);
    expect(await p.exec()).toEqual(["OK", 2, 2, 2, ["y", "x"]]);

    const tx = r.multi();
    tx.set("t:a", "10");
    tx.decr("t:a");
    tx.get("t:a");
    expect(await tx.exec()).toEqual(["OK", 9, 9]);
  });

  it("supports hashes, sets and sorted sets", async () => {
    const r = redis();
    expect(await r.hset("h:user", { name: "Ada", plan: "pro", logins: 3 })).toBe(3);
    expect(await r.hget("h:user", "name")).toBe("Ada");
    expect(await r.hgetall("h:user")).toEqual({ name: "Ada", plan: "pro", logins: 3 });
    expect(await r.hincrby("h:user", "logins", 2)).toBe(5);
    await r.sadd("s:tags", "a", "b");
    expect((await r.smembers("s:tags")).sort()).toEqual(["a", "b"]);
    await r.zadd("z:scores", { score: 2, member: "bob" }, { score: 1, member: "amy" });
    expect(await r.zrange("z:scores", 0, -1, { withScores: true })).toEqual(["amy", 1, "bob", 2]);
  });

  it("reports Redis errors and rejects a wrong token", async () => {
    const r = redis();
    await r.set("plain", "x");
    await expect(r.hget("plain", "f")).rejects.toThrow(/WRONGTYPE/);
    const intruder = new Redis({ url: stack.urls.upstash, token: "wrong-token", retry: false });
    await expect(intruder.get("plain")).rejects.toThrow(/Unauthorized/);
  });

  it("lets @upstash/ratelimit's slidingWindow allow the limit and block the rest", async () => {
    const limiter = new Ratelimit({
      redis: redis(),
      limiter: Ratelimit.slidingWindow(3, "20 s"),
      prefix: "test-rl",
      ephemeralCache: false,
    });
    const results = [];
    for (let i = 0; i < 5; i++) results.push((await limiter.limit("trader-1")).success);
    expect(results).toEqual([true, true, true, false, false]);
    const other = await limiter.limit("trader-2");
    expect(other.success).toBe(true);
    expect(other.remaining).toBe(2);

    // The first call taught the shim the client's script sha; the others went through EVALSHA.
    const conn = await RedisConnection.connect(stack.ports.redis);
    try {
      const info = String(await conn.call("INFO", "commandstats"));
      const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
      expect(calls("eval")).toBe(1);
      expect(calls("evalsha")).toBeGreaterThanOrEqual(6);
    } finally {
      conn.close();
    }
  });
});

describe("stack lifecycle", () => {
  it("refuses a second stack on a data dir that is in use", async () => {
    await expect(startStack({ dataDir: stack.dataDir, ports: "auto", log: () => {} })).rejects.toThrow(
      /already running/,
    );
  });
});

describe("migrations and seed", () => {
  it("applied the global and shard migrations and seeded the symbols", async () => {
    const symbols = await neon(
      stack.urls.database,
    )`SELECT symbol, tick_size, reference_price FROM symbols ORDER BY symbol`;
    expect(symbols.map((s) => s.symbol)).toEqual(SEED_SYMBOLS.map((s) => s.symbol));
    expect(symbols[0]).toEqual({ symbol: "ACME", tick_size: "0.01", reference_price: "100.00" });
  });

  it("is a no-op the second time", async () => {
    const reports = await migrate({
      globalUrl: stack.urls.database,
      shardUrls: stack.urls.shards,
      log: () => {},
    });
    expect(reports.map((r) => [r.database, r.applied])).toEqual([
      ["prepx", []],
      ["prepx_shard_0", []],
      ["prepx_shard_1", []],
    ]);
  });

  it("applies new files in name order, once, each all-or-nothing, and refuses edited ones", async () => {
    const url = stack.urls.database.replace(/\/prepx$/, "/scratch_migrations");
    await withClient(stack.urls.admin, (db) =>
      db.query(`CREATE DATABASE ${escapeIdentifier("scratch_migrations")} OWNER prepx`),
    );
    const dir = await mkdtemp(path.join(os.tmpdir(), "prepx-migrations-"));
    try {
      await mkdir(path.join(dir, "meta"));
      await writeFile(path.join(dir, "meta", "_journal.json"), "{}");
      await writeFile(path.join(dir, "0002_b.sql"), "INSERT INTO steps VALUES ('b');");
      await writeFile(
        path.join(dir, "0001_a.sql"),
        "CREATE TABLE steps (name text);\n--> statement-breakpoint\nINSERT INTO steps VALUES ('a');",
      );
      const run = async () => migrateDatabase(url, await loadMigrations(dir), "global", () => {});

      expect((await run()).applied).toEqual(["0001_a.sql", "0002_b.sql"]);
      expect((await run()).applied).toEqual([]);

      await writeFile(
        path.join(dir, "0003_bad.sql"),
        "INSERT INTO steps VALUES ('c');\nSELECT * FROM nowhere;",
      );
      await expect(run()).rejects.toThrow(/0003_bad\.sql failed on scratch_migrations \(line 2\)/);
      const steps = await neon(url)`SELECT name FROM steps ORDER BY name`;
      expect(steps).toEqual([{ name: "a" }, { name: "b" }]);

      await rm(path.join(dir, "0003_bad.sql"));
      await writeFile(path.join(dir, "0002_b.sql"), "INSERT INTO steps VALUES ('B');");
      await expect(run()).rejects.toThrow(/0002_b\.sql was changed after it was applied/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
