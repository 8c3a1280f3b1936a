/**
 * Notification jobs: how causes become messages of the `notifications` Queue, with stable ids.
 */

import { lotsToQty } from "../../shared/engine/rules.ts";
import type { AccountEvent } from "../../shared/history/events.ts";
import {
  NOTIFICATION_JOB_VERSION,
  type NotificationJob,
  type NotificationType,
  notificationIds,
} from "../../shared/notifications/types.ts";
import { averagePrice } from "../../shared/orders/alpaca.ts";
import { findSymbol } from "../../shared/symbols.ts";
import type { Env } from "../env.ts";

/** A Queue `sendBatch` takes at most 100 messages. */
const MAX_BATCH = 100;
/** Cloudflare Queues delay a message by at most 12 hours. */
export const MAX_DELAY_SECONDS = 12 * 60 * 60;

export class QueueNotBoundError extends Error {
  override name = "QueueNotBoundError";
}

/** Sends jobs to the `notifications` Queue, 100 per `sendBatch`. */
export async function enqueueJobs(
  env: Pick<Env, "NOTIFICATIONS">,
  jobs: readonly NotificationJob[],
  delaySeconds = 0,
): Promise<void> {
  if (jobs.length === 0) return;
  const queue = env.NOTIFICATIONS;
  if (!queue) throw new QueueNotBoundError("the NOTIFICATIONS queue is not bound");
  const delay = Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.ceil(delaySeconds)));
  for (let i = 0; i < jobs.length; i += MAX_BATCH) {
    await queue.sendBatch(
      jobs.slice(i, i + MAX_BATCH).map((body) => ({
        body,
        contentType: "json" as const,
        ...(delay > 0 ? { delaySeconds: delay } : {}),
      })),
    );
  }
}

const ORDER_TYPES: Readonly<Partial<Record<string, NotificationType>>> = {
  filled: "order_filled",
  partially_filled: "order_partially_filled",
  canceled: "order_canceled",
  rejected: "order_rejected",
};

/**
 * The notification of an order snapshot (`account.order` event), or null for states nobody is told about
 * (pending_new, new, replaced, expired). The id names the order, its state and how much had filled, so the
 * same state saved twice, or redelivered, is one notification; each partial fill is its own.
 */
export function orderJob(event: AccountEvent): NotificationJob | null {
  if (event.type !== "account.order") return null;
  const o = event.order;
  const type = ORDER_TYPES[o.status];
  if (!type) return null;
  const units = findSymbol(o.symbol) ?? { tickSize: "0.01", lotSize: "1" };
  const vars: Record<string, string> = {
    symbol: o.symbol,
    side: o.side,
    qty: lotsToQty(units, o.qtyLots, true),
    filled_qty: lotsToQty(units, o.filledQtyLots, true),
    avg_price: o.filledQtyLots > 0 ? averagePrice(units, o.filledValue, o.filledQtyLots) : "0",
    order_id: o.id,
    client_order_id: o.clientOrderId,
  };
  if (type === "order_rejected") vars.reason = o.reason ?? "rejected";
  return {
    v: NOTIFICATION_JOB_VERSION,
    id: notificationIds.order(o.id, o.status, o.filledQtyLots),
    userId: event.userId,
    type,
    vars,
    at: o.updatedAt || event.ts,
  };
}

/** A security event of a user (a login, an API key), with the request's origin. */
export function securityJob(
  type: "security_login" | "security_api_key",
  userId: string,
  causeId: string,
  vars: Record<string, string>,
  at = Date.now(),
): NotificationJob {
  return {
    v: NOTIFICATION_JOB_VERSION,
    id: type === "security_login" ? notificationIds.login(causeId) : notificationIds.apiKey(causeId),
    userId,
    type,
    vars: { ...vars, at: String(at) },
    at,
  };
}
