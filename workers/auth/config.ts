import type { Env } from "../env.ts";

/** Defaults when a variable is absent or not a positive integer. */
export const DEFAULTS = {
  accessTokenTtlSeconds: 15 * 60,
  refreshTokenTtlSeconds: 30 * 24 * 60 * 60,
  authPerMinute: 100,
  loginFailuresPer15Minutes: 10,
  tradingPerMinute: 1200,
} as const;

function positiveInt(value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}

export interface AuthConfig {
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  authPerMinute: number;
  loginFailuresPer15Minutes: number;
  tradingPerMinute: number;
}

/** Token lifetimes and rate limits from the worker's vars (wrangler.toml, overridable per environment). */
export function authConfig(env: Partial<Env>): AuthConfig {
  return {
    accessTokenTtlSeconds: positiveInt(env.ACCESS_TOKEN_TTL_SECONDS, DEFAULTS.accessTokenTtlSeconds),
    refreshTokenTtlSeconds: positiveInt(env.REFRESH_TOKEN_TTL_SECONDS, DEFAULTS.refreshTokenTtlSeconds),
    authPerMinute: positiveInt(env.RATE_LIMIT_AUTH_PER_MINUTE, DEFAULTS.authPerMinute),
    loginFailuresPer15Minutes: positiveInt(
      env.RATE_LIMIT_LOGIN_FAILURES_PER_15_MINUTES,
      DEFAULTS.loginFailuresPer15Minutes,
    ),
    tradingPerMinute: positiveInt(env.RATE_LIMIT_TRADING_PER_MINUTE, DEFAULTS.tradingPerMinute),
  };
}
