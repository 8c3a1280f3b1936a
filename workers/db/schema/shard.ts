import { sql } from "drizzle-orm";
import { char, index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import type { Role } from "../../auth/types.ts";

/**
 * Tables of every user shard (`prepx_shard_<n>`). Keep in step with migrations/shard/*.sql.
 */

export interface NotificationPreferences {
  email: boolean;
  push: boolean;
  sms: boolean;
  order_fills: boolean;
  order_cancellations: boolean;
  margin_alerts: boolean;
}

export const DEFAULT_NOTIFICATION_PREFERENCES: NotificationPreferences = {
  email: true,
  push: true,
  sms: false,
  order_fills: true,
  order_cancellations: true,
  margin_alerts: true,
};

export type UserStatus = "active" | "closed";

export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey(),
    /** Lowercased. Unique through the global email directory, not here (a closed account keeps its row). */
    email: text("email").notNull(),
    displayName: text("display_name").notNull(),
    passwordHash: text("password_hash").notNull(),
    role: text("role").$type<Role>().notNull().default("trader"),
    baseCurrency: char("base_currency", { length: 3 }).notNull().default("USD"),
    notificationPreferences: jsonb("notification_preferences")
      .$type<NotificationPreferences>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    status: text("status").$type<UserStatus>().notNull().default("active"),
    /** Millisecond precision, so a JavaScript Date round-trips exactly (list cursors depend on it). */
    createdAt: timestamp("created_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    closedAt: timestamp("closed_at", { withTimezone: true }),
  },
  (t) => [index("users_created_idx").on(t.createdAt, t.id)],
);

/**
 * Rotating refresh tokens. A family is one login; each use marks the token used and adds its
 * successor to the family. Presenting a used token revokes the family.
 */
export const refreshTokens = pgTable(
  "refresh_tokens",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id").notNull(),
    familyId: uuid("family_id").notNull(),
    /** SHA-256 (hex) of the token. */
    tokenHash: text("token_hash").notNull().unique(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    usedAt: timestamp("used_at", { withTimezone: true }),
    replacedBy: uuid("replaced_by"),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [index("refresh_tokens_family_idx").on(t.familyId), index("refresh_tokens_user_idx").on(t.userId)],
);
