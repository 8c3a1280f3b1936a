/**
 * The dead-letter queue consumer (`trade-events-dlq`). Two kinds of message end up here:
 * - poison messages the trade-events consumer sent itself, wrapped in a {@link DeadLetterEnvelope} that
 *   says why (schema violation);
 * - messages the Queue moved after `max_retries` failed attempts, as they were.
 *
 * Each one is logged as an alert (`{"level":"error","alert":"dlq",…}`: page on it) and stored in the global
 * `dead_letters` table for an operator to inspect and replay (docs/runbooks/database.md). Storing is
 * idempotent (keyed by message id); if Postgres is unreachable the batch is retried.
 */
import { storableBody } from "../../shared/queue-pack.ts";
import { db } from "../db/index.ts";
import { deadLetters } from "../db/schema/dead-letters.ts";
import type { Env } from "../env.ts";
import { errorText } from "./errors.ts";
import { isDeadLetterEnvelope, retryDelaySeconds } from "./trade-events.ts";

export async function consumeDeadLetters(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: { waitUntil(promise: Promise<unknown>): void },
): Promise<void> {
  const origin = batch.queue.replace(/-dlq$/, "");
  const rows = batch.messages.map((m) => {
    const body = m.body;
    if (isDeadLetterEnvelope(body)) {
      return {
        messageId: body.messageId,
        queue: body.queue,
        eventId: body.eventId,
        reason: `poison: ${body.reason}`,
        attempts: body.attempts,
        body: body.body ?? null,
      };
    }
    const id = (body as { id?: unknown } | null)?.id;
    return {
      messageId: m.id,
      queue: origin,
      eventId: typeof id === "string" ? id : null,
      reason: "retries exhausted",
      attempts: m.attempts,
      // A book's packed events are stored as the JSON pack of their messages.
      body: storableBody(body) ?? null,
    };
  });
  for (const r of rows) {
    console.error(
      JSON.stringify({
        level: "error",
        alert: "dlq",
        msg: "dead letter",
        queue: r.queue,
        messageId: r.messageId,
        eventId: r.eventId,
        reason: r.reason,
      }),
    );
  }
  try {
    const dbs = db(env, (p) => ctx.waitUntil(p));
    await dbs.global.insert(deadLetters).values(rows).onConflictDoNothing();
    batch.ackAll();
  } catch (error) {
    console.error(
      JSON.stringify({
        level: "error",
        alert: "dlq",
        msg: "dead letters not stored",
        error: errorText(error),
      }),
    );
    batch.retryAll({ delaySeconds: retryDelaySeconds(batch.messages[0]?.attempts ?? 1) });
  }
}
