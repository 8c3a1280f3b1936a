/**
 * The `notifications-dlq` consumer. Two kinds of message end up here: jobs the Queue moved after
 * `max_retries` failed attempts (a provider kept failing), and poison the consumer sent itself (schema,
 * template). Each failing delivery of a moved job is marked `dead` in the user's shard (so
 * `GET /v1/notifications` says so), an alert line `{"level":"error","alert":"dlq",…}` names the
 * notification, and the message is stored in the global `dead_letters` table by the same code as the
 * trade-events DLQ (workers/consumers/dead-letters.ts), for an operator to inspect and replay.
 */
import { parseNotificationJob } from "../../shared/notifications/types.ts";
import { db } from "../db/index.ts";
import type { Env } from "../env.ts";
import { markDead } from "../notifications/store.ts";
import { consumeDeadLetters } from "./dead-letters.ts";
import { errorText } from "./errors.ts";
import { isDeadLetterEnvelope } from "./trade-events.ts";

export async function consumeNotificationDeadLetters(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: { waitUntil(promise: Promise<unknown>): void },
): Promise<void> {
  for (const message of batch.messages) {
    if (isDeadLetterEnvelope(message.body)) continue; // poison: logged when sent, stored below
    const parsed = parseNotificationJob(message.body);
    if (!parsed.ok) continue;
    const job = parsed.job;
    let dead = 0;
    try {
      dead = await markDead(db(env).forUser(job.userId), job.id, "retries exhausted");
    } catch (error) {
      console.error(
        JSON.stringify({
          level: "error",
          msg: "dead notification not marked",
          notificationId: job.id,
          error: errorText(error),
        }),
      );
    }
    console.error(
      JSON.stringify({
        level: "error",
        alert: "dlq",
        msg: "notification undeliverable: retries exhausted, moved to the dead-letter queue",
        queue: batch.queue,
        notificationId: job.id,
        userId: job.userId,
        type: job.type,
        deadDeliveries: dead,
        attempts: message.attempts,
      }),
    );
  }
  await consumeDeadLetters(batch, env, ctx);
}
