import type { MarketDataHub } from "../durable-objects/market-data-hub.ts";
import type { MarketMaker } from "../durable-objects/market-maker.ts";
import type { OrderBook } from "../durable-objects/order-book.ts";
import type { UserSession } from "../durable-objects/user-session.ts";

/**
 * Bindings of the edge worker (see wrangler.toml). Secrets are listed in `.dev.vars.example`.
 */
export interface Env {
  ORDER_BOOK: DurableObjectNamespace<OrderBook>;
  USER_SESSION: DurableObjectNamespace<UserSession>;
  TRADE_EVENTS: Queue<unknown>;
  /** Simulated market per symbol: reference-price simulator, market maker and noise takers. */
  MARKET_MAKER: DurableObjectNamespace<MarketMaker>;
  /** The Alpaca-shaped market-data stream. */
  MARKET_DATA_HUB: DurableObjectNamespace<MarketDataHub>;
  /** Dead-letter queue of trade-events: the consumer sends poison messages here. */
  TRADE_EVENTS_DLQ?: Queue<unknown>;
  /** Notification jobs (docs/notifications.md), and their dead-letter queue. */
  NOTIFICATIONS?: Queue<unknown>;
  NOTIFICATIONS_DLQ?: Queue<unknown>;
  /**
   * Workers Analytics Engine dataset `prepx_events`: one data point per order, fill, login and API call
   * (docs/analytics.md). Locally a no-op simulator; optional so a missing binding only loses data points.
   */
  ANALYTICS?: AnalyticsEngineDataset;

  ENVIRONMENT: string;
  STARTING_CASH: string;
  RATE_LIMIT_AUTH_PER_MINUTE: string;
  RATE_LIMIT_LOGIN_FAILURES_PER_15_MINUTES: string;
  RATE_LIMIT_TRADING_PER_MINUTE: string;
  CORS_ORIGINS: string;
  /** Lowest level of log line written: "debug" | "info" | "warn" | "error" (default "info"). */
  LOG_LEVEL?: string;

  /** Primary (writer) connection string of the global database. */
  DATABASE_URL?: string;
  /** Read replica of the global database; falls back to the primary. */
  DATABASE_REPLICA_URL?: string;
  /** JSON array of shard connection strings (primary), indexed by shard number. */
  SHARD_DATABASE_URLS?: string;
  /** JSON array of shard read-replica connection strings, same order. */
  SHARD_REPLICA_URLS?: string;
  /** Local development only: host:port of the WebSocket/HTTP proxy in front of plain Postgres. */
  NEON_LOCAL_PROXY?: string;

  UPSTASH_REDIS_REST_URL?: string;
  UPSTASH_REDIS_REST_TOKEN?: string;

  /** JSON array of {kid, secret} HS256 keys; the first signs, all verify. */
  JWT_SIGNING_KEYS?: string;
  /** Access-token lifetime in seconds (default 900). */
  ACCESS_TOKEN_TTL_SECONDS?: string;
  /** Refresh-token lifetime in seconds (default 2592000, 30 days). */
  REFRESH_TOKEN_TTL_SECONDS?: string;
  /** Optional JSON override of the user shard map, see workers/db/shards.ts and docs/auth.md. */
  SHARD_MAP?: string;

  /** "false" keeps the simulated market from starting by itself (tests); see docs/market-data.md. */
  MARKET_SIM_ENABLED?: string;
  /** Comma-separated symbols the market starts by itself (default: every listed symbol). */
  MARKET_SYMBOLS?: string;
  /** Time between two market ticks per symbol, ms (default 1500). */
  MARKET_TICK_MS?: string;
  /** Seed prefix of the reference-price simulators (default "prepx"). */
  MARKET_SEED?: string;
  /** Redis TTL of cached latest quotes / snapshots, ms (defaults 2000 / 3000). */
  MARKET_QUOTE_CACHE_MS?: string;
  MARKET_SNAPSHOT_CACHE_MS?: string;

  // Notifications (docs/notifications.md). A channel without a provider uses the recording sink in
  // development / test and is skipped in production.
  /** External deliveries per user per minute (default 20); retry back-off base and cap in seconds. */
  NOTIFICATIONS_PER_USER_PER_MINUTE?: string;
  NOTIFICATIONS_RETRY_BASE_SECONDS?: string;
  NOTIFICATIONS_RETRY_MAX_SECONDS?: string;
  NOTIFICATIONS_CLAIM_LEASE_SECONDS?: string;
  /** "resend": a Resend-shaped email API at EMAIL_API_BASE_URL (default https://api.resend.com). */
  EMAIL_PROVIDER?: string;
  EMAIL_API_KEY?: string;
  EMAIL_API_BASE_URL?: string;
  EMAIL_FROM?: string;
  /** "twilio": a Twilio-shaped SMS API at SMS_API_BASE_URL (default https://api.twilio.com). */
  SMS_PROVIDER?: string;
  SMS_ACCOUNT_SID?: string;
  SMS_AUTH_TOKEN?: string;
  SMS_FROM?: string;
  SMS_API_BASE_URL?: string;
  /** Web Push (VAPID, RFC 8292): base64url raw public key and private scalar, and a contact URI. */
  VAPID_PUBLIC_KEY?: string;
  VAPID_PRIVATE_KEY?: string;
  VAPID_SUBJECT?: string;
  /** "off" stops recording API calls into the Redis latency counters (docs/analytics.md); default on. */
  ANALYTICS_API_CALLS?: string;
}

export type AppBindings = { Bindings: Env; Variables: { requestId: string; log: Logger } };

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}
