/**
 * Delivery channels behind one interface: in-app (the user's UserSession pushes a
 * `notifications` stream message to their `/stream` sockets), Web Push (RFC 8291 + VAPID, WebCrypto),
 * email (a Resend-shaped HTTP API) and SMS (a Twilio-shaped HTTP API), and the recording sink used in
 * development and test when a provider is not configured.
 *
 * A channel never throws: it answers sent, a retryable failure (network, timeout, 408 / 425 / 429 / 5xx) or
 * a permanent one (any other 4xx: the address or the request is wrong and retrying will not help).
 */
import { sql } from "drizzle-orm";
import type { SkipReason } from "../../shared/notifications/policy.ts";
import type { RenderedMessage } from "../../shared/notifications/templates.ts";
import type { Channel, NotificationType } from "../../shared/notifications/types.ts";
import { encryptWebPush, type VapidKeys, vapidAuthorization } from "../../shared/notifications/web-push.ts";
import { db } from "../db/index.ts";
import { rowsOf } from "../db/recordset.ts";
import type { Env } from "../env.ts";
import { isDevEnvironment, notificationConfig } from "./config.ts";

export interface PushSubscriptionRow {
  id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
}

/** One message for one channel of one user. */
export interface Delivery {
  notificationId: string;
  userId: string;
  type: NotificationType;
  /** When the cause happened (ms). */
  at: number;
  message: RenderedMessage;
  data: Record<string, string>;
  to: { email?: string; phone?: string; subscriptions?: PushSubscriptionRow[] };
}

export type DeliveryResult =
  | { ok: true; providerId?: string; goneSubscriptions?: string[] }
  | { ok: false; retryable: true; error: string; goneSubscriptions?: string[] }
  | { ok: false; retryable: false; reason: SkipReason; error: string; goneSubscriptions?: string[] };

export interface NotificationChannel {
  readonly channel: Channel;
  /** Who carries it: "user-session", "web-push", "resend", "twilio", "sink". */
  readonly provider: string;
  send(delivery: Delivery): Promise<DeliveryResult>;
}

/** The configured channel per name; a missing one is not available (skipped as `channel_not_configured`). */
export type ChannelSet = Partial<Record<Channel, NotificationChannel>>;

const RETRYABLE_STATUS = new Set([408, 425, 429]);

/** A provider's HTTP answer as a delivery result. */
async function fromResponse(
  res: Response,
  idOf: (body: unknown) => string | undefined,
): Promise<DeliveryResult> {
  const text = await res.text().catch(() => "");
  if (res.ok) {
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {}
    const providerId = idOf(body);
    return providerId === undefined ? { ok: true } : { ok: true, providerId };
  }
  const error = `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`;
  if (RETRYABLE_STATUS.has(res.status) || res.status >= 500) return { ok: false, retryable: true, error };
  return { ok: false, retryable: false, reason: "rejected_by_provider", error };
}

function networkFailure(error: unknown): DeliveryResult {
  return {
    ok: false,
    retryable: true,
    error: (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 300),
  };
}

const trimSlash = (url: string) => url.replace(/\/+$/, "");

/** In-app: an RPC to the user's UserSession, which writes to every socket listening to `notifications`. */
export function inAppChannel(env: Env): NotificationChannel {
  return {
    channel: "in_app",
    provider: "user-session",
    async send(d) {
      if (d.message.channel !== "in_app") throw new Error("in-app channel got another channel's message");
      try {
        const stub = env.USER_SESSION.get(env.USER_SESSION.idFromName(d.userId));
        const { sockets } = await stub.pushNotification(d.userId, {
          id: d.notificationId,
          type: d.type,
          title: d.message.title,
          body: d.message.body,
          data: d.data,
          at: new Date(d.at).toISOString(),
        });
        return { ok: true, providerId: `sockets:${sockets}` };
      } catch (error) {
        return networkFailure(error);
      }
    },
  };
}

/**
 * Web Push to every subscription of the user. One success is a success (retrying would repeat it on that
 * device); 404 / 410 mean the subscription is gone and is deleted by the consumer.
 */
export function webPushChannel(
  keys: VapidKeys,
  subject: string,
  timeoutMs: number,
  fetcher: typeof fetch = fetch,
): NotificationChannel {
  return {
    channel: "push",
    provider: "web-push",
    async send(d) {
      if (d.message.channel !== "push") throw new Error("push channel got another channel's message");
      const payload = new TextEncoder().encode(
        JSON.stringify({ id: d.notificationId, type: d.type, title: d.message.title, body: d.message.body }),
      );
      const gone: string[] = [];
      const failures: DeliveryResult[] = [];
      let delivered = 0;
      for (const sub of d.to.subscriptions ?? []) {
        let res: Response;
        try {
          const body = await encryptWebPush(payload, { p256dh: sub.p256dh, auth: sub.auth });
          res = await fetcher(sub.endpoint, {
            method: "POST",
            body,
            headers: {
              authorization: await vapidAuthorization(sub.endpoint, keys, subject, Date.now()),
              "content-encoding": "aes128gcm",
              "content-type": "application/octet-stream",
              ttl: "86400",
              urgency: d.type.startsWith("security_") ? "high" : "normal",
            },
            signal: AbortSignal.timeout(timeoutMs),
          });
        } catch (error) {
          failures.push(networkFailure(error));
          continue;
        }
        if (res.status === 404 || res.status === 410) {
          gone.push(sub.id);
          await res.body?.cancel();
          continue;
        }
        const result = await fromResponse(res, () => undefined);
        if (result.ok) delivered++;
        else failures.push(result);
      }
      if (delivered > 0)
        return { ok: true, providerId: `subscriptions:${delivered}`, goneSubscriptions: gone };
      const retryable = failures.find((f) => !f.ok && f.retryable);
      if (retryable && !retryable.ok) return { ...retryable, goneSubscriptions: gone };
      const permanent = failures[0];
      if (permanent && !permanent.ok) return { ...permanent, goneSubscriptions: gone };
      return {
        ok: false,
        retryable: false,
        reason: "subscription_gone",
        error: "every push subscription is gone",
        goneSubscriptions: gone,
      };
    },
  };
}

/** Email through a Resend-shaped API: `POST {base}/emails`, bearer key, idempotency key = notification id. */
export function resendEmailChannel(
  opts: { baseUrl: string; apiKey: string; from: string; timeoutMs: number },
  fetcher: typeof fetch = fetch,
): NotificationChannel {
  return {
    channel: "email",
    provider: "resend",
    async send(d) {
      if (d.message.channel !== "email") throw new Error("email channel got another channel's message");
      if (!d.to.email) return { ok: false, retryable: false, reason: "no_email", error: "no address" };
      try {
        const res = await fetcher(`${trimSlash(opts.baseUrl)}/emails`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${opts.apiKey}`,
            "content-type": "application/json",
            "idempotency-key": `${d.notificationId}:email`.slice(0, 256),
          },
          body: JSON.stringify({
            from: opts.from,
            to: [d.to.email],
            subject: d.message.subject,
            text: d.message.text,
            html: d.message.html,
          }),
          signal: AbortSignal.timeout(opts.timeoutMs),
        });
        return await fromResponse(res, (b) => (b as { id?: string } | null)?.id);
      } catch (error) {
        return networkFailure(error);
      }
    },
  };
}

/** SMS through a Twilio-shaped API: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, basic auth. */
export function twilioSmsChannel(
  opts: { baseUrl: string; accountSid: string; authToken: string; from: string; timeoutMs: number },
  fetcher: typeof fetch = fetch,
): NotificationChannel {
  return {
    channel: "sms",
    provider: "twilio",
    async send(d) {
      if (d.message.channel !== "sms") throw new Error("sms channel got another channel's message");
      if (!d.to.phone) return { ok: false, retryable: false, reason: "no_phone", error: "no number" };
      try {
        const res = await fetcher(
          `${trimSlash(opts.baseUrl)}/2010-04-01/Accounts/${encodeURIComponent(opts.accountSid)}/Messages.json`,
          {
            method: "POST",
            headers: {
              authorization: `Basic ${btoa(`${opts.accountSid}:${opts.authToken}`)}`,
              "content-type": "application/x-www-form-urlencoded",
            },
            body: new URLSearchParams({ To: d.to.phone, From: opts.from, Body: d.message.text }).toString(),
            signal: AbortSignal.timeout(opts.timeoutMs),
          },
        );
        return await fromResponse(res, (b) => (b as { sid?: string } | null)?.sid);
      } catch (error) {
        return networkFailure(error);
      }
    },
  };
}

/**
 * Development and test: records what would have been sent in the global `notification_sink` table, shown
 * at /dev/outbox. Never used in production (see {@link channelsFor}).
 */
export function sinkChannel(env: Env, channel: Exclude<Channel, "in_app">): NotificationChannel {
  return {
    channel,
    provider: "sink",
    async send(d) {
      const m = d.message;
      const recipient =
        channel === "email"
          ? (d.to.email ?? "")
          : channel === "sms"
            ? (d.to.phone ?? "")
            : (d.to.subscriptions ?? []).map((s) => s.endpoint).join(" ");
      const subject = m.channel === "email" ? m.subject : m.channel === "push" ? m.title : null;
      const body =
        m.channel === "email" ? m.text : m.channel === "sms" ? m.text : m.channel === "push" ? m.body : "";
      const html = m.channel === "email" ? m.html : null;
      try {
        const result = await db(env).global.execute<{ id: string }>(sql`
          INSERT INTO notification_sink (notification_id, user_id, channel, recipient, subject, body, html)
          VALUES (${d.notificationId}, ${d.userId}, ${channel}, ${recipient}, ${subject}, ${body}, ${html})
          RETURNING id`);
        const id = rowsOf<{ id: string }>(result)[0]?.id;
        return { ok: true, providerId: `sink:${id ?? "?"}` };
      } catch (error) {
        return networkFailure(error);
      }
    },
  };
}

/** The VAPID keys of the worker, or null when Web Push is not configured. */
export function vapidKeysOf(env: Env): VapidKeys | null {
  return env.VAPID_PUBLIC_KEY && env.VAPID_PRIVATE_KEY
    ? { publicKey: env.VAPID_PUBLIC_KEY, privateKey: env.VAPID_PRIVATE_KEY }
    : null;
}

/**
 * The channels of this environment: a configured provider, else the sink in development / test, else none
 * (production without keys: the channel is skipped, never faked).
 */
export function channelsFor(env: Env, fetcher: typeof fetch = fetch): ChannelSet {
  const config = notificationConfig(env);
  const dev = isDevEnvironment(env);
  const set: ChannelSet = { in_app: inAppChannel(env) };

  const vapid = vapidKeysOf(env);
  if (vapid)
    set.push = webPushChannel(
      vapid,
      env.VAPID_SUBJECT ?? "mailto:ops@prepx.dev",
      config.providerTimeoutMs,
      fetcher,
    );
  else if (dev) set.push = sinkChannel(env, "push");

  if (env.EMAIL_PROVIDER === "resend" && env.EMAIL_API_KEY) {
    set.email = resendEmailChannel(
      {
        baseUrl: env.EMAIL_API_BASE_URL || "https://api.resend.com",
        apiKey: env.EMAIL_API_KEY,
        from: env.EMAIL_FROM || "PrepX <notifications@prepx.dev>",
        timeoutMs: config.providerTimeoutMs,
      },
      fetcher,
    );
  } else if (dev) set.email = sinkChannel(env, "email");

  if (env.SMS_PROVIDER === "twilio" && env.SMS_ACCOUNT_SID && env.SMS_AUTH_TOKEN && env.SMS_FROM) {
    set.sms = twilioSmsChannel(
      {
        baseUrl: env.SMS_API_BASE_URL || "https://api.twilio.com",
        accountSid: env.SMS_ACCOUNT_SID,
        authToken: env.SMS_AUTH_TOKEN,
        from: env.SMS_FROM,
        timeoutMs: config.providerTimeoutMs,
      },
      fetcher,
    );
  } else if (dev) set.sms = sinkChannel(env, "sms");
  return set;
}
