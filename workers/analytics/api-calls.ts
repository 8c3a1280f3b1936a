/**
 * API-call analytics (docs/analytics.md): every request becomes an Analytics Engine data point and a count
 * in a per-minute latency histogram per route, without a Postgres write per request.
 *
 * The path of one call:
 * 1. `apiCallAnalytics` (middleware, after the response is built): route pattern, method, status, error
 *    code, duration → an Analytics Engine data point (no I/O) and `+1` in this isolate's buffer, keyed by
 *    (minute, method, route, status, latency bucket) and, for errors, (minute, method, route, status, code).
 * 2. The first call after a flush arms a timer (`FLUSH_MS`) in that request's `waitUntil`; when it fires the
 *    buffer goes to Redis in **one pipelined request** (`HINCRBY an:api:<minute> <field> n` + `EXPIRE`).
 *    So Redis sees at most one request per second per isolate, whatever the traffic.
 * 3. `flushApiCallsToPostgres` (the scheduled job every minute, and `GET /admin/analytics` before it reads)
 *    copies the minutes since the last flush from Redis into `api_call_minute` / `api_error_minute` with
 *    `GREATEST(stored, redis)`: the Redis counter of a minute only grows, so re-flushing a minute, flushing an
 *    open minute or two flushes racing never count a call twice.
 *
 * What can be lost: the buffer of an isolate that dies before its timer fires (≤ 1 s of its calls), and
 * calls whose Redis write fails twice. Acceptable for operational figures; orders and fills are exact.
 */

import { sql } from "drizzle-orm";
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import {
  type ApiCall,
  apiCallPoint,
  type LoginOutcome,
  loginPoint,
} from "../../shared/analytics/datapoints.ts";
import { MINUTE_MS, minuteOf } from "../../shared/analytics/facts.ts";
import { latencyBucket } from "../../shared/analytics/latency.ts";
import { db } from "../db/index.ts";
import type { AppBindings, Env } from "../env.ts";
import { ApiError } from "../errors.ts";
import { redisClient } from "../lib/redis.ts";
import { writeDataPoint } from "./engine.ts";

/** The route of requests no endpoint matched (404s): one series, not one per random path. */
export const UNMATCHED_ROUTE = "(unmatched)";
/** How long an isolate buffers calls before one Redis write. */
export const FLUSH_MS = 1_000;
/** Buffered counters that trigger an immediate write. */
const FLUSH_AT_FIELDS = 2_000;
/** Most counters kept when Redis is down (older ones are dropped beyond this). */
const MAX_PENDING = 10_000;
/** Redis keys of a minute live this long (the Postgres flush normally copies them within a minute). */
const REDIS_TTL_SECONDS = 2 * 86_400;
/** How far back a flush looks when it has not run for a while. */
const CATCH_UP_MS = 3 * 3_600_000;
/** Minutes older than this are closed: later flushes start after them. */
const SETTLE_MS = 2 * MINUTE_MS;

export const API_KEY_PREFIX = "an:api:";
export const FLUSHED_KEY = "an:api:flushed";
const keyOf = (minute: number) => `${API_KEY_PREFIX}${minute}`;
const clean = (s: string) => (s.includes("|") ? s.replaceAll("|", "/") : s);

/** The route pattern that answered (`/v2/orders/:order_id`), or {@link UNMATCHED_ROUTE}. */
export function routeOf(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i];
    // `use()` middleware is registered for method "ALL"; endpoints (and their route middleware) by method.
    if (r && r.method !== "ALL") return r.path;
  }
  return UNMATCHED_ROUTE;
}

/** The error code of an error answer: the ApiError's code, else one derived from the status. */
export function errorCodeOf(c: Context, status: number): string {
  if (status < 400) return "";
  if (c.error instanceof ApiError) return c.error.code;
  if (status === 404) return "not_found";
  return `http_${status}`;
}

// --- the isolate's buffer --------------------------------------------------------------------------------

let pending = new Map<string, number>();
let armed = false;
let lastWarning = 0;

function bump(key: string, by = 1): void {
  if (pending.size >= MAX_PENDING && !pending.has(key)) return;
  pending.set(key, (pending.get(key) ?? 0) + by);
}

/** Counts one call in this isolate's buffer and makes sure a flush to Redis is scheduled. */
export function bufferApiCall(
  env: Env,
  waitUntil: (p: Promise<unknown>) => void,
  call: Pick<ApiCall, "method" | "route" | "status" | "durationMs" | "errorCode">,
  now = Date.now(),
): void {
  const minute = minuteOf(now);
  const route = clean(call.route);
  bump(`${minute}|h|${call.method}|${route}|${call.status}|${latencyBucket(call.durationMs)}`);
  if (call.errorCode) bump(`${minute}|e|${call.method}|${route}|${call.status}|${clean(call.errorCode)}`);
  if (pending.size >= FLUSH_AT_FIELDS) {
    waitUntil(flushBufferToRedis(env));
  } else if (!armed) {
    armed = true;
    waitUntil(new Promise((resolve) => setTimeout(resolve, FLUSH_MS)).then(() => flushBufferToRedis(env)));
  }
}

/** Writes the buffer to Redis in one pipeline; on failure the counts go back into the buffer once. */
export async function flushBufferToRedis(env: Env): Promise<number> {
  armed = false;
  const batch = pending;
  pending = new Map();
  if (batch.size === 0) return 0;
  try {
    const pipe = redisClient(env).pipeline();
    const minutes = new Set<string>();
    for (const [key, count] of batch) {
      const bar = key.indexOf("|");
      const minute = key.slice(0, bar);
      minutes.add(minute);
      pipe.hincrby(`${API_KEY_PREFIX}${minute}`, key.slice(bar + 1), count);
    }
    for (const minute of minutes) pipe.expire(`${API_KEY_PREFIX}${minute}`, REDIS_TTL_SECONDS);
    await pipe.exec();
    return batch.size;
  } catch (error) {
    for (const [key, count] of batch) bump(key, count);
    warnOnce("api-call counters not written to Redis; kept for the next flush", error);
    return 0;
  }
}

function warnOnce(msg: string, error: unknown): void {
  const now = Date.now();
  if (now - lastWarning < 60_000) return;
  lastWarning = now;
  console.warn(
    JSON.stringify({ level: "warn", msg, error: error instanceof Error ? error.message : String(error) }),
  );
}

/** @internal Test seam: what the buffer holds. */
export function pendingApiCalls(): ReadonlyMap<string, number> {
  return pending;
}

// --- the middleware ---------------------------------------------------------------------------------------

const loginUsers = new WeakMap<Context, string>();

/** Called by the login route on success, so the login data point carries the user id. */
export function noteLogin(c: Context, userId: string): void {
  loginUsers.set(c, userId);
}

const LOGIN_ROUTE = "/v1/auth/login";

function loginOutcome(status: number): LoginOutcome {
  if (status === 200) return "success";
  if (status === 401) return "invalid_credentials";
  if (status === 429) return "rate_limited";
  if (status === 400 || status === 422) return "invalid_request";
  return "error";
}

/**
 * Records every request (see the module doc). Registered right after `requestContext`, so it sees the
 * final status of every answer, errors included.
 */
export const apiCallAnalytics: MiddlewareHandler<AppBindings> = async (c, next) => {
  const started = Date.now();
  await next();
  try {
    const now = Date.now();
    const cf = (c.req.raw as { cf?: { colo?: unknown; country?: unknown } }).cf;
    const route = routeOf(c);
    const status = c.res.status;
    const principal = (c as unknown as Context<{ Variables: { principal?: { via: string } } }>).get(
      "principal",
    );
    const call: ApiCall = {
      method: c.req.method,
      route,
      status,
      durationMs: now - started,
      errorCode: errorCodeOf(c, status),
      colo: typeof cf?.colo === "string" ? cf.colo : "",
      auth: principal?.via ?? "",
      country: typeof cf?.country === "string" ? cf.country : "",
    };
    writeDataPoint(c.env, apiCallPoint(call));
    if (route === LOGIN_ROUTE && call.method === "POST") {
      writeDataPoint(
        c.env,
        loginPoint({
          outcome: loginOutcome(status),
          userId: loginUsers.get(c) ?? null,
          country: call.country,
        }),
      );
    }
    if (c.env.ANALYTICS_API_CALLS !== "off") {
      bufferApiCall(c.env, (p) => c.executionCtx.waitUntil(p), call, now);
    }
  } catch (error) {
    // Analytics never fails a request.
    warnOnce("api-call analytics failed", error);
  }
};

// --- Redis → Postgres -----------------------------------------------------------------------------------

interface CallRow {
  minute_ms: number;
  method: string;
  route: string;
  status: number;
  bucket: number;
  calls: number;
}
interface ErrorRow {
  minute_ms: number;
  method: string;
  route: string;
  status: number;
  code: string;
  calls: number;
}

/** Parses one minute's Redis hash into rows; malformed fields are skipped. */
export function parseMinuteHash(
  minute: number,
  hash: Record<string, unknown> | null,
): {
  calls: CallRow[];
  errors: ErrorRow[];
} {
  const calls: CallRow[] = [];
  const errors: ErrorRow[] = [];
  for (const [field, raw] of Object.entries(hash ?? {})) {
    const count = Number(raw);
    const parts = field.split("|");
    if (parts.length !== 5 || !Number.isSafeInteger(count) || count <= 0) continue;
    const [kind, method, route, statusText, last] = parts as [string, string, string, string, string];
    const status = Number(statusText);
    if (!Number.isInteger(status)) continue;
    if (kind === "h" && /^\d+$/.test(last)) {
      calls.push({ minute_ms: minute, method, route, status, bucket: Number(last), calls: count });
    } else if (kind === "e") {
      errors.push({ minute_ms: minute, method, route, status, code: last, calls: count });
    }
  }
  return { calls, errors };
}

export interface ApiFlushReport {
  minutes: number;
  callRows: number;
  errorRows: number;
  ms: number;
}

/**
 * Copies the per-minute API-call counters from Redis to Postgres: every minute after the last settled
 * flush, up to the current (still open) minute. Idempotent (see the module doc).
 */
export async function flushApiCallsToPostgres(env: Env, now = Date.now()): Promise<ApiFlushReport> {
  const started = performance.now();
  const redis = redisClient(env);
  const current = minuteOf(now);
  const flushed = Number((await redis.get<string | number>(FLUSHED_KEY)) ?? 0) || 0;
  const from = Math.max(flushed + MINUTE_MS, current - CATCH_UP_MS);
  const minutes: number[] = [];
  for (let m = minuteOf(from); m <= current; m += MINUTE_MS) minutes.push(m);
  const pipe = redis.pipeline();
  for (const m of minutes) pipe.hgetall(keyOf(m));
  const hashes = (await pipe.exec()) as (Record<string, unknown> | null)[];
  const calls: CallRow[] = [];
  const errors: ErrorRow[] = [];
  minutes.forEach((m, i) => {
    const parsed = parseMinuteHash(m, hashes[i] ?? null);
    calls.push(...parsed.calls);
    errors.push(...parsed.errors);
  });
  if (calls.length > 0 || errors.length > 0) {
    await db(env).global.execute(sql`
      WITH c AS (
        SELECT * FROM jsonb_to_recordset(${JSON.stringify(calls)}::jsonb)
          AS t(minute_ms bigint, method text, route text, status int, bucket int, calls bigint)
      ), ci AS (
        INSERT INTO api_call_minute AS a (minute, method, route, status, bucket, calls)
        SELECT to_timestamp(minute_ms / 1000), method, route, status, bucket, calls FROM c
        ON CONFLICT (minute, method, route, status, bucket) DO UPDATE SET calls = GREATEST(a.calls, excluded.calls)
        RETURNING 1
      ), e AS (
        SELECT * FROM jsonb_to_recordset(${JSON.stringify(errors)}::jsonb)
          AS t(minute_ms bigint, method text, route text, status int, code text, calls bigint)
      ), ei AS (
        INSERT INTO api_error_minute AS a (minute, method, route, status, code, calls)
        SELECT to_timestamp(minute_ms / 1000), method, route, status, code, calls FROM e
        ON CONFLICT (minute, method, route, status, code) DO UPDATE SET calls = GREATEST(a.calls, excluded.calls)
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM ci) AS calls, (SELECT count(*) FROM ei) AS errors`);
  }
  const settled = current - SETTLE_MS;
  if (settled > flushed) await redis.set(FLUSHED_KEY, String(settled));
  return {
    minutes: minutes.length,
    callRows: calls.length,
    errorRows: errors.length,
    ms: Math.round(performance.now() - started),
  };
}
