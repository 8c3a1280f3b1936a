import { sql } from "drizzle-orm";
import { bigserial, index, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * Tables of the global database (`prepx`). Keep in step with migrations/global/*.sql.
 */

/** email (lowercased) → user id: the only place emails are unique, and how login finds the shard. */
export const emailDirectory = pgTable("email_directory", {
  email: text("email").primaryKey(),
  userId: uuid("user_id").notNull().unique(),
  /** Shard at registration time (a copy; routing uses the shard map). */
  shard: integer("shard").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * API keys of every user. Lives globally, secret hash included, because key authentication starts
 * from nothing but the key id; see docs/auth.md for why not per shard.
 */
export const apiKeys = pgTable(
  "api_keys",
  {
    keyId: text("key_id").primaryKey(),
    userId: uuid("user_id").notNull(),
    shard: integer("shard").notNull(),
    name: text("name").notNull(),
    /** SHA-256 (hex) of the secret; the secret itself is shown once and never stored. */
    secretHash: text("secret_hash").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [index("api_keys_user_idx").on(t.userId, t.createdAt)],
);

/** Who did what, when, under which request id: every admin action. Append only. */
export const auditLog = pgTable(
  "audit_log",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
    actorUserId: uuid("actor_user_id").notNull(),
    actorVia: text("actor_via").notNull(),
    actorKeyId: text("actor_key_id"),
    action: text("action").notNull(),
    target: text("target").notNull(),
    details: jsonb("details").notNull().default(sql`'{}'::jsonb`),
    requestId: text("request_id").notNull(),
    ip: text("ip"),
  },
  (t) => [index("audit_log_at_idx").on(t.at), index("audit_log_actor_idx").on(t.actorUserId, t.at)],
);
