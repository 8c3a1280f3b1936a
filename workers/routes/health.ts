import { Hono } from "hono";
import type { AppBindings, Env } from "../env.ts";
import { httpSql, openPool, requireUrl } from "../lib/db.ts";
import { redisClient } from "../lib/redis.ts";
import { TIMED_OUT, within } from "../lib/within.ts";

interface CheckResult {
  ok: boolean;
  latency_ms: number;
  error?: string;
}

const CHECK_TIMEOUT_MS = 3000;

async function timed(fn: () => Promise<unknown>): Promise<CheckResult> {
  const started = Date.now();
  try {
    if ((await within(fn(), CHECK_TIMEOUT_MS)) === TIMED_OUT) {
      throw new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`);
    }
    return { ok: true, latency_ms: Date.now() - started };
  } catch (err) {
    return {
      ok: false,
      latency_ms: Date.now() - started,
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

/** Each readiness check names one dependency the API cannot serve traders without. */
export function readinessChecks(env: Env, waitUntil: (p: Promise<unknown>) => void) {
  return {
    postgres: () =>
      timed(async () => {
        const pool = openPool(env, requireUrl(env.DATABASE_URL, "DATABASE_URL"));
        try {
          await pool.query("select 1");
        } finally {
          waitUntil(pool.end());
        }
      }),
    postgres_replica: () =>
      timed(async () => {
        const sql = httpSql(
          env,
          requireUrl(env.DATABASE_REPLICA_URL ?? env.DATABASE_URL, "DATABASE_REPLICA_URL"),
        );
        await sql`select 1`;
      }),
    redis: () =>
      timed(async () => {
        const pong = await redisClient(env).ping();
        if (pong !== "PONG") throw new Error(`unexpected PING reply ${String(pong)}`);
      }),
    durable_object: () =>
      timed(async () => {
        const stub = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName("__health__"));
        const pong = await stub.ping();
        if (pong !== "pong") throw new Error("unexpected ping reply");
      }),
  };
}

export const health = new Hono<AppBindings>();

/** Liveness: the isolate is up. Touches nothing else. */
health.get("/health", (c) => c.json({ status: "ok" }));

/** Readiness: every dependency answers. 503 with the failing checks named when any does not. */
health.get("/ready", async (c) => {
  const checks = readinessChecks(c.env, (p) => c.executionCtx.waitUntil(p));
  const names = Object.keys(checks) as (keyof typeof checks)[];
  const results = await Promise.all(names.map((n) => checks[n]()));
  const body = Object.fromEntries(names.map((n, i) => [n, results[i]]));
  const ok = results.every((r) => r.ok);
  return c.json({ status: ok ? "ok" : "unavailable", checks: body }, ok ? 200 : 503);
});
