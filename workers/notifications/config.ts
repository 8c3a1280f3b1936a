/**
 * Notification settings of the worker, from vars and secrets (documented in wrangler.toml and
 * .dev.vars.example). Providers are chosen by secrets: a channel whose provider is not configured uses the
 * recording sink in development and test, and is skipped (`channel_not_configured`) in production, so
 * nothing is ever sent by accident from a laptop and nothing is silently faked in production.
 */
import type { Env } from "../env.ts";

/** Environments where the sink and /dev/outbox exist. */
export const DEV_ENVIRONMENTS: ReadonlySet<string> = new Set(["development", "test"]);

export const isDevEnvironment = (env: Pick<Env, "ENVIRONMENT">) => DEV_ENVIRONMENTS.has(env.ENVIRONMENT);

/**
 * `max_retries` of the `notifications` consumer in wrangler.toml: after this many retries the Queue moves
 * a message to `notifications-dlq`. The consumer needs it to say so in its log line on the last attempt
 * (test/notifications.test.ts checks the two agree).
 */
export const NOTIFICATIONS_MAX_RETRIES = 5;

function positiveInt(value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : fallback;
}

export interface NotificationConfig {
  /** External deliveries (push, email, SMS) per user per minute; security events are exempt. */
  perUserPerMinute: number;
  /** Provider failures retry after base × 2^(attempt−1) seconds, at most max. */
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  /** A claimed delivery whose consumer died is retried after this long (see docs, "Exactly when"). */
  claimLeaseSeconds: number;
  /** Provider HTTP timeout. */
  providerTimeoutMs: number;
}

export function notificationConfig(env: Partial<Env>): NotificationConfig {
  return {
    perUserPerMinute: positiveInt(env.NOTIFICATIONS_PER_USER_PER_MINUTE, 20) || 20,
    retryBaseSeconds: positiveInt(env.NOTIFICATIONS_RETRY_BASE_SECONDS, 30),
    retryMaxSeconds: positiveInt(env.NOTIFICATIONS_RETRY_MAX_SECONDS, 15 * 60),
    claimLeaseSeconds: positiveInt(env.NOTIFICATIONS_CLAIM_LEASE_SECONDS, 120),
    providerTimeoutMs: 10_000,
  };
}

/** Retry delay after the n-th failed attempt (n ≥ 1). */
export function backoffSeconds(config: NotificationConfig, attempts: number): number {
  return Math.min(config.retryMaxSeconds, config.retryBaseSeconds * 2 ** Math.max(0, attempts - 1));
}
