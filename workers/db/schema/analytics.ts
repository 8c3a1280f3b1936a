import {
  bigint,
  boolean,
  index,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";

/**
 * Platform analytics rollups of the global database. Keep in step with migrations/global/0005_analytics.sql;
 * see docs/analytics.md. The writers use set-wise SQL (workers/consumers/analytics-processor.ts,
 * workers/analytics/api-calls.ts); these definitions document the tables and type ad-hoc reads.
 */

const minute = () => timestamp("minute", { withTimezone: true }).notNull();
const count = (name: string) => bigint(name, { mode: "number" }).notNull();

/** Counted facts, once per key: the dedupe of at-least-once delivery. */
export const analyticsFacts = pgTable(
  "analytics_facts",
  { key: text("key").primaryKey(), minute: minute() },
  (t) => [index("analytics_facts_minute_idx").on(t.minute)],
);

/** Per-minute counters by metric and dimension (symbol or rejection reason). */
export const analyticsMinute = pgTable(
  "analytics_minute",
  {
    metric: text("metric").notNull(),
    minute: minute(),
    dim: text("dim").notNull().default(""),
    value: count("value"),
  },
  (t) => [primaryKey({ columns: [t.metric, t.minute, t.dim] })],
);

/** (minute, user) pairs of users whose orders or fills changed that minute. */
export const analyticsActiveUsers = pgTable(
  "analytics_active_users",
  { minute: minute(), userId: uuid("user_id").notNull(), bot: boolean("bot").notNull() },
  (t) => [primaryKey({ columns: [t.minute, t.userId] })],
);

/** API calls per minute, route, status and latency bucket. */
export const apiCallMinute = pgTable(
  "api_call_minute",
  {
    minute: minute(),
    method: text("method").notNull(),
    route: text("route").notNull(),
    status: smallint("status").notNull(),
    bucket: smallint("bucket").notNull(),
    calls: count("calls"),
  },
  (t) => [primaryKey({ columns: [t.minute, t.method, t.route, t.status, t.bucket] })],
);

/** Error answers per minute, route, status and error code. */
export const apiErrorMinute = pgTable(
  "api_error_minute",
  {
    minute: minute(),
    method: text("method").notNull(),
    route: text("route").notNull(),
    status: smallint("status").notNull(),
    code: text("code").notNull(),
    calls: count("calls"),
  },
  (t) => [primaryKey({ columns: [t.minute, t.method, t.route, t.status, t.code] })],
);
