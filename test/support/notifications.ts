// Helpers for the notification tests: hand-made queue batches that record what the consumer did with each
// message, a recording queue producer, and Postgres reads of the delivery rows.
import { inject } from "vitest";
import { withClient } from "../../scripts/stack/pg.ts";
import type { NotificationJob } from "../../shared/notifications/types.ts";
import { db } from "../../workers/db/index.ts";
import type { Env } from "../../workers/env.ts";

export const stackEnv = inject("stackEnv");

export type Outcome = { state: "ack" } | { state: "retry"; delaySeconds: number | undefined };

/** A MessageBatch as the Queue delivers it, recording ack / retry per message. */
export function batchOf(bodies: readonly unknown[], opts: { queue?: string; attempts?: number } = {}) {
  const outcome = new Map<string, Outcome>();
  const messages = bodies.map((body, i) => {
    const id = `msg-${i}-${crypto.randomUUID().slice(0, 8)}`;
    return {
      id,
      timestamp: new Date(),
      body,
      attempts: opts.attempts ?? 1,
      ack: () => outcome.set(id, { state: "ack" }),
      retry: (o?: { delaySeconds?: number }) =>
        outcome.set(id, { state: "retry", delaySeconds: o?.delaySeconds }),
    };
  });
  const batch = {
    queue: opts.queue ?? "notifications",
    messages,
    ackAll: () => {
      for (const m of messages) m.ack();
    },
    retryAll: (o?: { delaySeconds?: number }) => {
      for (const m of messages) m.retry(o);
    },
  } as unknown as MessageBatch<unknown>;
  return {
    batch,
    outcomes: () => messages.map((m) => outcome.get(m.id)),
  };
}

/** A Queue producer binding that records what was sent (with its delay). */
export function recordingQueue() {
  const sent: { body: unknown; delaySeconds: number }[] = [];
  const queue = {
    async send(body: unknown, o?: { delaySeconds?: number }) {
      sent.push({ body, delaySeconds: o?.delaySeconds ?? 0 });
    },
    async sendBatch(messages: { body: unknown; delaySeconds?: number }[]) {
      for (const m of messages) sent.push({ body: m.body, delaySeconds: m.delaySeconds ?? 0 });
    },
  };
  return { queue: queue as unknown as Queue<unknown>, sent };
}

/** The worker's env as the consumer sees it: the test stack's databases and Redis, plus `extra`. */
export function consumerEnv(extra: Record<string, unknown> = {}): Env {
  return { ...stackEnv, ...extra } as unknown as Env;
}

const shardUrls = JSON.parse(stackEnv.SHARD_DATABASE_URLS ?? "[]") as string[];

export async function query<R>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  return withClient(url, async (c) => (await c.query<R>(text, values)).rows);
}

export const shardUrlOf = (userId: string) => shardUrls[db(consumerEnv()).shardOf(userId)] as string;

export interface DeliveryRow {
  channel: string;
  status: string;
  reason: string | null;
  attempts: number;
}

/** The delivery rows of a notification, by channel. */
export async function deliveries(
  userId: string,
  notificationId: string,
): Promise<Record<string, DeliveryRow>> {
  const rows = await query<DeliveryRow>(
    shardUrlOf(userId),
    "SELECT channel, status, reason, attempts FROM notification_deliveries WHERE notification_id = $1 ORDER BY channel",
    [notificationId],
  );
  return Object.fromEntries(rows.map((r) => [r.channel, r]));
}

/** A price-alert job for `userId` with a fresh id. */
export function alertJob(userId: string, over: Partial<NotificationJob> = {}): NotificationJob {
  const at = Date.now();
  return {
    v: 1,
    id: `test:${crypto.randomUUID()}`,
    userId,
    type: "price_alert",
    vars: {
      symbol: "ACME",
      direction: "above",
      target: "101",
      price: "101.5",
      at: String(at),
      alert_id: "test",
    },
    at,
    ...over,
  };
}
