/**
 * The `notifications` Queue consumer: render, apply preferences, dedupe, rate-limit, send.
 *
 * Per batch, grouped by the users' shards (in parallel), each group costs a handful of statements:
 * 1. load the users with their preferences, profile switches and push subscriptions;
 * 2. record each notification in the user's history (`notifications`, once per id);
 * 3. plan every channel (shared/notifications/policy.ts): send, skip (opted out, no address, no provider)
 *    or defer (quiet hours: the job comes back on the queue, delayed, for those channels only);
 * 4. **claim** the deliveries to send in `notification_deliveries` (one row per notification id and
 *    channel): only rows that are new, failed, deferred or abandoned by a dead consumer are returned;
 *    a delivery that is sent, skipped, dead or in flight elsewhere is a duplicate and is not sent again;
 * 5. apply the per-user rate limit to claimed external deliveries of non-security types (Upstash sliding
 *    window): over the limit is skipped as `rate_limited` (a flood is dropped, not postponed);
 * 6. send through the channels, then record every outcome in one statement.
 *
 * A message is acknowledged unless one of its deliveries failed retryably; then it is retried with
 * exponential back-off (`message.retry({ delaySeconds })`) and, after `max_retries`, the Queue moves it to
 * `notifications-dlq` (workers/consumers/notifications-dlq.ts). Only the failed channels are sent again:
 * the others are claimed already. Schema-invalid messages (and templates that cannot render) are poison and
 * go to the DLQ at once. See docs/notifications.md for the exactly-once discussion.
 */
import { planDeliveries } from "../../shared/notifications/policy.ts";
import { render, TemplateError } from "../../shared/notifications/templates.ts";
import {
  type Channel,
  CRITICAL_TYPES,
  EXTERNAL_CHANNELS,
  type NotificationJob,
  parseNotificationJob,
} from "../../shared/notifications/types.ts";
import { db } from "../db/index.ts";
import type { Env } from "../env.ts";
import { limiter } from "../middleware/rate-limit.ts";
import {
  type ChannelSet,
  channelsFor,
  type Delivery,
  type DeliveryResult,
} from "../notifications/channels.ts";
import { backoffSeconds, NOTIFICATIONS_MAX_RETRIES, notificationConfig } from "../notifications/config.ts";
import { enqueueJobs, MAX_DELAY_SECONDS } from "../notifications/jobs.ts";
import {
  claimDeliveries,
  type DeliveryKey,
  type DeliveryOutcome,
  deleteSubscriptions,
  deliveryKey,
  loadRecipients,
  type Recipient,
  recordNotifications,
  recordOutcomes,
} from "../notifications/store.ts";
import { errorText } from "./errors.ts";
import type { DeadLetterEnvelope } from "./trade-events.ts";

export const NOTIFICATIONS_QUEUE = "notifications";
export const NOTIFICATIONS_DLQ = "notifications-dlq";

/** Test seams: the channels, the clock and the rate limiter. */
export interface NotificationConsumerDeps {
  channels(env: Env): ChannelSet;
  now(): number;
  /** Whether the user may receive one more external delivery now. Fails open. */
  allow(env: Env, userId: string, waitUntil: (p: Promise<unknown>) => void): Promise<boolean>;
}

export const DEFAULT_DEPS: NotificationConsumerDeps = {
  channels: (env) => channelsFor(env),
  now: () => Date.now(),
  async allow(env, userId, waitUntil) {
    try {
      const perMinute = notificationConfig(env).perUserPerMinute;
      const result = await limiter(env, "notify_user", perMinute, "60 s").limit(userId);
      waitUntil(result.pending);
      return result.success || result.reason === "timeout";
    } catch (error) {
      console.warn(
        JSON.stringify({
          level: "warn",
          msg: "notification rate limiter unavailable; allowed",
          error: errorText(error),
        }),
      );
      return true;
    }
  },
};

export interface NotificationReport {
  acked: number;
  retried: number;
  poison: number;
  sent: number;
  failed: number;
  skipped: number;
  deferred: number;
  /** Deliveries not sent because they were already sent (or in flight): redelivery and duplicate jobs. */
  duplicates: number;
  rateLimited: number;
}

interface Parsed {
  message: Message<unknown>;
  job: NotificationJob;
}

const newReport = (): NotificationReport => ({
  acked: 0,
  retried: 0,
  poison: 0,
  sent: 0,
  failed: 0,
  skipped: 0,
  deferred: 0,
  duplicates: 0,
  rateLimited: 0,
});

/** Consumes one batch of the `notifications` Queue. Never throws: every message ends acked or retried. */
export async function consumeNotifications(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: { waitUntil(promise: Promise<unknown>): void },
  deps: Partial<NotificationConsumerDeps> = {},
): Promise<NotificationReport> {
  const d: NotificationConsumerDeps = { ...DEFAULT_DEPS, ...deps };
  const report = newReport();
  const valid: Parsed[] = [];
  for (const message of batch.messages) {
    const parsed = parseNotificationJob(message.body);
    if (parsed.ok) valid.push({ message, job: parsed.job });
    else {
      report.poison++;
      await deadLetter(env, batch.queue, message, parsed.error);
    }
  }
  if (valid.length === 0) return report;

  let dbs: ReturnType<typeof db>;
  const byShard = new Map<number, Parsed[]>();
  try {
    dbs = db(env, (p) => ctx.waitUntil(p));
    for (const p of valid) {
      const shard = dbs.shardOf(p.job.userId);
      byShard.set(shard, [...(byShard.get(shard) ?? []), p]);
    }
  } catch (error) {
    console.error(
      JSON.stringify({ level: "error", msg: "notifications: no database", error: errorText(error) }),
    );
    const config = notificationConfig(env);
    for (const p of valid) retry(p, report, backoffSeconds(config, p.message.attempts), error);
    return report;
  }
  const channels = d.channels(env);
  await Promise.all(
    [...byShard].map(([shard, list]) =>
      consumeShard(env, dbs.shard(shard), list, channels, d, ctx, report, batch.queue),
    ),
  );
  return report;
}

function retry(
  p: Parsed,
  report: NotificationReport,
  delaySeconds: number,
  error: unknown,
  channel?: Channel,
): void {
  report.retried++;
  p.message.retry({ delaySeconds });
  const last = p.message.attempts > NOTIFICATIONS_MAX_RETRIES;
  const line = {
    level: last ? "error" : "warn",
    msg: last
      ? `notification delivery failed on its last attempt; the Queue moves it to ${NOTIFICATIONS_DLQ}`
      : "notification delivery failed; retried with back-off",
    notificationId: p.job.id,
    userId: p.job.userId,
    type: p.job.type,
    channel: channel ?? null,
    attempts: p.message.attempts,
    retryInSeconds: delaySeconds,
    error: errorText(error),
  };
  (last ? console.error : console.warn)(JSON.stringify(line));
}

async function consumeShard(
  env: Env,
  shardDb: ReturnType<ReturnType<typeof db>["shard"]>,
  list: Parsed[],
  channels: ChannelSet,
  d: NotificationConsumerDeps,
  ctx: { waitUntil(promise: Promise<unknown>): void },
  report: NotificationReport,
  queue: string,
): Promise<void> {
  const config = notificationConfig(env);
  const now = d.now();
  const available = new Set(Object.keys(channels) as Channel[]);
  let recipients: Map<string, Recipient>;
  try {
    recipients = await loadRecipients(shardDb, [...new Set(list.map((p) => p.job.userId))]);
  } catch (error) {
    for (const p of list) retry(p, report, backoffSeconds(config, p.message.attempts), error);
    return;
  }

  interface Work {
    p: Parsed;
    recipient: Recipient;
    sends: { channel: Channel; delivery: Delivery }[];
  }
  const work: Work[] = [];
  const outcomes: DeliveryOutcome[] = [];
  const deferredJobs = new Map<number, NotificationJob[]>();
  const deferredOf = new Map<Parsed, number>();
  const history = [];
  for (const p of list) {
    const { job } = p;
    const recipient = recipients.get(job.userId);
    if (!recipient?.active) {
      // No such user on its shard (deleted, or not a registered user), or a closed account: nothing to send.
      console.warn(
        JSON.stringify({
          level: "warn",
          msg: recipient
            ? "notification for a closed account dropped"
            : "notification for an unknown user dropped",
          notificationId: job.id,
          userId: job.userId,
        }),
      );
      p.message.ack();
      report.acked++;
      continue;
    }
    const ctxRender = { language: recipient.settings.language, timezone: recipient.settings.timezone };
    let inApp: ReturnType<typeof render>;
    const sends: Work["sends"] = [];
    try {
      inApp = render(job.type, "in_app", job.vars, ctxRender);
      const plan = planDeliveries({
        type: job.type,
        settings: recipient.settings,
        profile: recipient.profile,
        accountEmail: recipient.accountEmail,
        pushSubscriptions: recipient.subscriptions.length,
        available,
        ...(job.channels ? { only: job.channels } : {}),
        now,
      });
      const deferred: Channel[] = [];
      let until = 0;
      for (const [channel, decision] of plan) {
        const key: DeliveryKey = { notification_id: job.id, channel, user_id: job.userId };
        if (decision.action === "skip") {
          outcomes.push({ ...key, status: "skipped", reason: decision.reason });
          report.skipped++;
        } else if (decision.action === "defer") {
          outcomes.push({
            ...key,
            status: "deferred",
            reason: "quiet_hours",
            not_before: new Date(decision.until).toISOString(),
          });
          deferred.push(channel);
          until = Math.max(until, decision.until);
          report.deferred++;
        } else {
          sends.push({
            channel,
            delivery: {
              notificationId: job.id,
              userId: job.userId,
              type: job.type,
              at: job.at,
              message: render(job.type, channel, job.vars, ctxRender),
              data: job.vars,
              to: {
                email: recipient.settings.email ?? recipient.accountEmail,
                ...(recipient.settings.phone ? { phone: recipient.settings.phone } : {}),
                subscriptions: recipient.subscriptions,
              },
            },
          });
        }
      }
      if (deferred.length > 0) {
        const delay = Math.min(MAX_DELAY_SECONDS, Math.ceil((until - now) / 1000));
        deferredJobs.set(delay, [...(deferredJobs.get(delay) ?? []), { ...job, channels: deferred }]);
        deferredOf.set(p, delay);
      }
    } catch (error) {
      if (error instanceof TemplateError) {
        report.poison++;
        await deadLetter(env, queue, p.message, `template: ${error.message}`);
      } else {
        retry(p, report, backoffSeconds(config, p.message.attempts), error);
      }
      continue;
    }
    if (inApp.channel === "in_app") {
      history.push({
        id: job.id,
        user_id: job.userId,
        type: job.type,
        title: inApp.title,
        body: inApp.body,
        vars: job.vars,
        occurred_at: new Date(job.at).toISOString(),
      });
    }
    work.push({ p, recipient, sends });
  }
  if (work.length === 0) return;

  // History, then the deferred jobs (a failure retries the message; a duplicate deferred job is harmless:
  // its deliveries dedupe), then the claims.
  let claimed: Map<string, number>;
  const failedDeferrals = new Set<number>();
  try {
    await recordNotifications(shardDb, history);
    await Promise.all(
      [...deferredJobs].map(async ([delay, jobs]) => {
        try {
          await enqueueJobs(env, jobs, delay);
        } catch (error) {
          failedDeferrals.add(delay);
          console.warn(
            JSON.stringify({
              level: "warn",
              msg: "deferred notifications not enqueued",
              error: errorText(error),
            }),
          );
        }
      }),
    );
    claimed = await claimDeliveries(
      shardDb,
      work.flatMap((w) =>
        w.sends.map((s) => ({ notification_id: w.p.job.id, channel: s.channel, user_id: w.p.job.userId })),
      ),
      config.claimLeaseSeconds,
    );
  } catch (error) {
    for (const w of work) retry(w.p, report, backoffSeconds(config, w.p.message.attempts), error);
    return;
  }

  // Claimed deliveries only; each is sent by one message, even when a batch holds the same job twice.
  const todo: { w: Work; s: Work["sends"][number]; key: DeliveryKey }[] = [];
  for (const w of work) {
    for (const s of w.sends) {
      if (!claimed.delete(deliveryKey(w.p.job.id, s.channel))) {
        report.duplicates++;
        continue;
      }
      todo.push({ w, s, key: { notification_id: w.p.job.id, channel: s.channel, user_id: w.p.job.userId } });
    }
  }

  // Rate limit: per user in batch order, users in parallel. Over the limit is dropped, not postponed.
  const byUser = new Map<string, typeof todo>();
  for (const t of todo) byUser.set(t.key.user_id, [...(byUser.get(t.key.user_id) ?? []), t]);
  const allowed = new Set<(typeof todo)[number]>();
  await Promise.all(
    [...byUser.values()].map(async (items) => {
      for (const t of items) {
        const limited = EXTERNAL_CHANNELS.has(t.s.channel) && !CRITICAL_TYPES.has(t.w.p.job.type);
        if (!limited || (await d.allow(env, t.key.user_id, (p) => ctx.waitUntil(p)))) allowed.add(t);
        else {
          outcomes.push({ ...t.key, status: "skipped", reason: "rate_limited" });
          report.rateLimited++;
          report.skipped++;
        }
      }
    }),
  );

  // Send, in parallel.
  const failures = new Map<Parsed, { channel: Channel; error: string }>();
  const gone: string[] = [];
  await Promise.all(
    todo
      .filter((t) => allowed.has(t))
      .map(async ({ w, s, key }) => {
        const channel = channels[s.channel];
        let result: DeliveryResult;
        try {
          result = channel
            ? await channel.send(s.delivery)
            : { ok: false, retryable: false, reason: "channel_not_configured", error: "no channel" };
        } catch (error) {
          result = { ok: false, retryable: true, error: errorText(error) };
        }
        gone.push(...(result.goneSubscriptions ?? []));
        if (result.ok) {
          outcomes.push({ ...key, status: "sent", provider_id: result.providerId ?? null });
          report.sent++;
        } else if (result.retryable) {
          outcomes.push({ ...key, status: "failed", error: result.error });
          failures.set(w.p, { channel: s.channel, error: result.error });
          report.failed++;
        } else {
          outcomes.push({ ...key, status: "skipped", reason: result.reason, error: result.error });
          report.skipped++;
        }
      }),
  );

  try {
    await recordOutcomes(shardDb, outcomes);
    if (gone.length > 0) await deleteSubscriptions(shardDb, gone);
  } catch (error) {
    // The sends happened; their rows stay `sending` and a redelivery re-sends them only after the lease
    // (the at-least-once window of docs/notifications.md). Retrying keeps failed channels alive.
    console.error(
      JSON.stringify({ level: "error", msg: "notification outcomes not recorded", error: errorText(error) }),
    );
    for (const w of work) retry(w.p, report, backoffSeconds(config, w.p.message.attempts), error);
    return;
  }

  for (const w of work) {
    const failure = failures.get(w.p);
    const deferral = deferredOf.get(w.p);
    if (failure) {
      retry(w.p, report, backoffSeconds(config, w.p.message.attempts), failure.error, failure.channel);
    } else if (deferral !== undefined && failedDeferrals.has(deferral)) {
      retry(w.p, report, backoffSeconds(config, w.p.message.attempts), "deferred job not enqueued");
    } else {
      w.p.message.ack();
      report.acked++;
    }
  }
}

/** Poison: to the DLQ with the reason, acknowledged; retried if the DLQ cannot be reached. */
async function deadLetter(env: Env, queue: string, message: Message<unknown>, reason: string): Promise<void> {
  const eventId = (message.body as { id?: unknown } | null)?.id;
  const envelope: DeadLetterEnvelope = {
    deadLetter: 1,
    queue,
    messageId: message.id,
    eventId: typeof eventId === "string" ? eventId : null,
    reason,
    attempts: message.attempts,
    body: message.body,
  };
  console.error(
    JSON.stringify({
      level: "error",
      alert: "dlq",
      msg: "poison notification sent to the dead-letter queue",
      queue,
      messageId: message.id,
      eventId: envelope.eventId,
      reason,
    }),
  );
  try {
    if (!env.NOTIFICATIONS_DLQ) throw new Error("NOTIFICATIONS_DLQ is not bound");
    await env.NOTIFICATIONS_DLQ.send(envelope, { contentType: "json" });
    message.ack();
  } catch (error) {
    console.error(
      JSON.stringify({
        level: "error",
        msg: "dead-letter send failed",
        messageId: message.id,
        error: errorText(error),
      }),
    );
    message.retry({ delaySeconds: 30 });
  }
}
