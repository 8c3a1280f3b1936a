/**
 * The analytics part of the every-minute scheduled run (wrangler.toml `[triggers]`, workers/index.ts):
 * copy the API-call counters from Redis to Postgres, and once an hour prune counted-fact keys older than
 * the redelivery horizon (a message older than that cannot come back; replaying older history would
 * count it again, see docs/analytics.md).
 */
import { sql } from "drizzle-orm";
import { db } from "../db/index.ts";
import type { Env } from "../env.ts";
import { flushApiCallsToPostgres } from "./api-calls.ts";

/** Fact keys are kept this long (Queues retain a message at most 14 days). */
export const FACT_RETENTION_DAYS = 30;

export async function runAnalyticsJobs(env: Env, now = new Date()): Promise<void> {
  try {
    const report = await flushApiCallsToPostgres(env, now.getTime());
    console.log(JSON.stringify({ level: "info", msg: "api-call counters flushed", ...report }));
  } catch (error) {
    console.warn(
      JSON.stringify({
        level: "warn",
        msg: "api-call counters not flushed",
        error: error instanceof Error ? error.message : String(error),
      }),
    );
  }
  if (now.getUTCMinutes() !== 17) return;
  try {
    await db(env).global.execute(
      sql`DELETE FROM analytics_facts WHERE minute < now() - make_interval(days => ${FACT_RETENTION_DAYS})`,
    );
  } catch (error) {
    console.warn(
      JSON.stringify({
        level: "warn",
        msg: "analytics facts not pruned",
        error: error instanceof Error ? error.message : String(error),
      }),
    );
  }
}
