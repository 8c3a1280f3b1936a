/**
 * Queue consumers of the worker, by queue name (wrangler.toml `[[queues.consumers]]`).
 * Add a queue: bind it in wrangler.toml and add a case here.
 */
import type { Env } from "../env.ts";
import { consumeDeadLetters } from "./dead-letters.ts";
import { consumeNotifications, NOTIFICATIONS_DLQ, NOTIFICATIONS_QUEUE } from "./notifications.ts";
import { consumeNotificationDeadLetters } from "./notifications-dlq.ts";
import { consumeTradeEvents } from "./trade-events.ts";

export const TRADE_EVENTS_QUEUE = "trade-events";
export const TRADE_EVENTS_DLQ = "trade-events-dlq";

export async function handleQueue(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: ExecutionContext,
): Promise<void> {
  const waitUntil = { waitUntil: (p: Promise<unknown>) => ctx.waitUntil(p) };
  switch (batch.queue) {
    case TRADE_EVENTS_QUEUE:
      await consumeTradeEvents(batch, env, waitUntil);
      return;
    case TRADE_EVENTS_DLQ:
      await consumeDeadLetters(batch, env, waitUntil);
      return;
    case NOTIFICATIONS_QUEUE:
      await consumeNotifications(batch, env, waitUntil);
      return;
    case NOTIFICATIONS_DLQ:
      await consumeNotificationDeadLetters(batch, env, waitUntil);
      return;
    default:
      // A queue bound without a consumer here: keep its messages (they end in its DLQ) and say so.
      console.error(JSON.stringify({ level: "error", msg: "no consumer for queue", queue: batch.queue }));
      batch.retryAll({ delaySeconds: 60 });
  }
}
