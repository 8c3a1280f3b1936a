import type { OrderBook } from "../durable-objects/order-book.ts";
import type { UserSession } from "../durable-objects/user-session.ts";

/**
 * Bindings of the edge worker (see wrangler.toml). Secrets are listed in `.dev.vars.example`.
 */
export interface Env {
  ORDER_BOOK: DurableObjectNamespace<OrderBook>;
  USER_SESSION: DurableObjectNamespace<UserSession>;
  TRADE_EVENTS: Queue<unknown>;

  ENVIRONMENT: string;
  STARTING_CASH: string;
  RATE_LIMIT_AUTH_PER_MINUTE: string;
  RATE_LIMIT_LOGIN_FAILURES_PER_15_MINUTES: string;
  RATE_LIMIT_TRADING_PER_MINUTE: string;
  CORS_ORIGINS: string;

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
}

export type AppBindings = { Bindings: Env; Variables: { requestId: string; log: Logger } };

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}
