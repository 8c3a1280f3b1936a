import { integer, jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";

/**
 * Queue messages that could not be processed (global database). Keep in step with
 * migrations/global/0002_dead_letters.sql; see docs/runbooks/database.md for what to do with them.
 */
export const deadLetters = pgTable("dead_letters", {
  messageId: text("message_id").primaryKey(),
  queue: text("queue").notNull(),
  eventId: text("event_id"),
  reason: text("reason").notNull(),
  attempts: integer("attempts").notNull(),
  body: jsonb("body"),
  receivedAt: timestamp("received_at", { withTimezone: true }).notNull().defaultNow(),
  resolvedAt: timestamp("resolved_at", { withTimezone: true }),
});
