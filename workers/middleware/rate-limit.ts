import { Ratelimit } from "@upstash/ratelimit";
import type { Context, MiddlewareHandler, Next } from "hono";
import { authConfig } from "../auth/config.ts";
import type { AuthBindings } from "../auth/types.ts";
import type { AppBindings, Env, Logger } from "../env.ts";
import { ApiError } from "../errors.ts";
import { redisClient } from "../lib/redis.ts";
import { TIMED_OUT, within } from "../lib/within.ts";

/**
 * Rate limits with `@upstash/ratelimit` sliding windows in Redis. Every limited response carries
 * `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the window frees up,
 * IETF draft "RateLimit header fields"); a refused request gets 429 `rate_limited` with `Retry-After`.
 *
 * The limits come from vars (wrangler.toml) so a load test can raise them:
 * - `RATE_LIMIT_AUTH_PER_MINUTE` per client IP on `/v1/auth/*` (default 100),
 * - `RATE_LIMIT_LOGIN_FAILURES_PER_15_MINUTES` failed logins per account (default 10),
 * - `RATE_LIMIT_TRADING_PER_MINUTE` per user on trading routes (default 1,200), counted by `requireTrader`
 *   (workers/auth/middleware.ts) in the same Redis call that checks the access token's revocation.
 *
 * If Redis is slow (over `REDIS_TIMEOUT_MS`) or down, requests pass and a warning is logged:
 * limits protect capacity, and an outage of the limiter should not become an outage of trading.
 */

type Duration = `${number} ${"ms" | "s" | "m" | "h" | "d"}`;
const REDIS_TIMEOUT_MS = 1000;

// One ephemeral cache per limiter and isolate: identifiers known to be blocked are refused
// without a Redis round trip until their window resets.
const ephemeralCaches = new Map<string, Map<string, number>>();
const limiters = new Map<string, Ratelimit>();

/** @internal A limiter for (name, limit, window) on this env's Redis; reused across requests. */
export function limiter(env: Env, name: string, limit: number, window: Duration): Ratelimit {
  const id = `${name}|${limit}|${window}|${env.UPSTASH_REDIS_REST_URL}`;
  let instance = limiters.get(id);
  if (!instance) {
    let cache = ephemeralCaches.get(name);
    if (!cache) {
      cache = new Map();
      ephemeralCaches.set(name, cache);
    }
    instance = new Ratelimit({
      redis: redisClient(env),
      limiter: Ratelimit.slidingWindow(limit, window),
      prefix: `rl:${name}`,
      ephemeralCache: cache,
      timeout: REDIS_TIMEOUT_MS,
      analytics: false,
    });
    limiters.set(id, instance);
  }
  return instance;
}

export interface LimitState {
  limit: number;
  remaining: number;
  /** Unix milliseconds when the window frees up. */
  reset: number;
}

/** The `RateLimit-*` headers (and `Retry-After` when refused) for a limiter answer. */
export function rateLimitHeaders(
  state: LimitState,
  refused: boolean,
  now = Date.now(),
): Record<string, string> {
  const resetSeconds = Math.max(0, Math.ceil((state.reset - now) / 1000));
  const headers: Record<string, string> = {
    "RateLimit-Limit": String(state.limit),
    "RateLimit-Remaining": String(Math.max(0, state.remaining)),
    "RateLimit-Reset": String(resetSeconds),
  };
  if (refused) headers["Retry-After"] = String(Math.max(1, resetSeconds));
  return headers;
}

export function rateLimited(headers: Record<string, string>, message: string): ApiError {
  return new ApiError(429, "rate_limited", message, { headers });
}

/** The client address Cloudflare saw; `unknown` locally when no proxy sets it. */
export function clientIp(c: Context): string {
  return c.req.header("CF-Connecting-IP") ?? c.req.header("X-Real-IP") ?? "unknown";
}

interface RateLimitOptions<B extends AppBindings | AuthBindings> {
  /** Names the Redis keys (`rl:<name>:…`). */
  name: string;
  limit: (env: Env) => number;
  window: Duration;
  /** Whom to count; undefined skips the limit for this request. */
  identify: (c: Context<B>) => string | undefined;
  message: string;
}

/**
 * A sliding-window rate-limit middleware.
 *
 * @example
 * const perIp = rateLimit({ name: "quotes", limit: () => 600, window: "60 s", identify: clientIp, message: "slow down" });
 */
export function rateLimit<B extends AppBindings | AuthBindings>(
  opts: RateLimitOptions<B>,
): MiddlewareHandler<B> {
  return async (c, next) => {
    const identifier = opts.identify(c);
    if (identifier === undefined) return next();
    const limit = opts.limit(c.env);
    let state: LimitState | undefined;
    let refused = false;
    try {
      const result = await limiter(c.env, opts.name, limit, opts.window).limit(identifier);
      c.executionCtx.waitUntil(result.pending);
      if (result.reason === "timeout") {
        c.get("log").warn("rate limiter timed out; request allowed", { limiter: opts.name });
      } else {
        state = { limit: result.limit, remaining: result.remaining, reset: result.reset };
        refused = !result.success;
      }
    } catch (err) {
      warnLimiterUnavailable(c.get("log"), opts.name, err);
    }
    await enforceLimit(c, state, refused, opts.message, next);
  };
}

/**
 * A limiter's answer within `timeoutMs`, or `undefined` (with a warning) when it fails or is slower: the
 * fail-open policy `rateLimit` gets from @upstash/ratelimit's own timeout, for limiters that call Redis
 * themselves (`requireTrader`). A call that timed out is handed to `keepAlive` (`waitUntil`), so it still
 * completes and its count is not lost.
 */
export async function limiterAnswer<T>(
  limiter: string,
  call: Promise<T>,
  log: Logger,
  keepAlive: (pending: Promise<unknown>) => void,
  timeoutMs = REDIS_TIMEOUT_MS,
): Promise<T | undefined> {
  try {
    const answer = await within(call, timeoutMs);
    if (answer !== TIMED_OUT) return answer;
    log.warn("rate limiter timed out; request allowed", { limiter });
    keepAlive(call.catch(() => undefined));
    return undefined;
  } catch (err) {
    warnLimiterUnavailable(log, limiter, err);
    return undefined;
  }
}

/** A limiter that could not answer lets its request through, with a warning. */
function warnLimiterUnavailable(log: Logger, limiter: string, err: unknown): void {
  log.warn("rate limiter unavailable; request allowed", {
    limiter,
    error: err instanceof Error ? err.message : String(err),
  });
}

/**
 * Apply a limiter's answer: a refused request is a 429 with the `RateLimit-*` headers and `Retry-After`;
 * otherwise the handler runs and its answer gets the headers. No state (the limiter could not answer):
 * the request passes without them.
 */
export async function enforceLimit(
  c: Context,
  state: LimitState | undefined,
  refused: boolean,
  message: string,
  next: Next,
): Promise<void> {
  if (state && refused) throw rateLimited(rateLimitHeaders(state, true), message);
  await next();
  // An inner limiter that already answered (e.g. the per-account login limit behind the per-IP
  // one) is the policy the client hit; its headers stay.
  if (state && !c.res.headers.has("RateLimit-Limit")) {
    for (const [k, v] of Object.entries(rateLimitHeaders(state, false))) c.res.headers.set(k, v);
  }
}

/** Per client IP on the auth routes (register, login, refresh, logout): brute force and sign-up floods. */
export const authRateLimit: MiddlewareHandler<AppBindings> = rateLimit<AppBindings>({
  name: "auth_ip",
  limit: (env) => authConfig(env).authPerMinute,
  window: "60 s",
  identify: clientIp,
  message: "too many authentication requests from this address; retry later",
});

/**
 * Failed logins per account (the email), over 15 minutes. Checked before the password is even
 * looked at, so an attacker who hits the limit learns nothing more from further guesses; the
 * owner is locked out for the rest of the window too (documented trade-off in docs/auth.md).
 */
export const loginFailures = {
  limiter: (env: Env) => limiter(env, "login_fail", authConfig(env).loginFailuresPer15Minutes, "15 m"),

  /** Throws 429 when the account has no failed attempts left; fails open if Redis is down. */
  async assertNotLocked(c: Context<AppBindings>, email: string): Promise<void> {
    let state: LimitState | undefined;
    try {
      state = await loginFailures.limiter(c.env).getRemaining(email);
    } catch (err) {
      c.get("log").warn("login failure limiter unavailable", {
        error: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    if (state.remaining <= 0) {
      throw rateLimited(
        rateLimitHeaders(state, true),
        "too many failed logins for this account; retry later",
      );
    }
  },

  /** Counts one failed attempt. */
  async record(c: Context<AppBindings>, email: string): Promise<void> {
    try {
      const result = await loginFailures.limiter(c.env).limit(email);
      c.executionCtx.waitUntil(result.pending);
    } catch (err) {
      c.get("log").warn("login failure limiter unavailable", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  },
};
