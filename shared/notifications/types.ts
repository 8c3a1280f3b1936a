/**
 * Notifications: what can be notified, through which channels, and the job that travels on the
 * `notifications` Queue from the producers (the trade-events processor, the auth routes) to the consumer.
 *
 * Pure: types, defaults and zod schemas; no Workers, Node, Postgres or Redis APIs.
 */
import { z } from "zod";

/** Every kind of notification, one template set each (see templates.ts). */
export const NOTIFICATION_TYPES = [
  "order_filled",
  "order_partially_filled",
  "order_canceled",
  "order_rejected",
  "price_alert",
  "buying_power_low",
  "security_login",
  "security_api_key",
] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

/** Security events ignore quiet hours and the per-user rate limit: a user must hear about them at once. */
export const CRITICAL_TYPES: ReadonlySet<NotificationType> = new Set(["security_login", "security_api_key"]);

/**
 * Channels, in the order the consumer tries them. `in_app` is the user's `/stream` WebSocket (stream
 * `notifications`) plus the history at `GET /v1/notifications`; the others leave the platform.
 */
export const CHANNELS = ["in_app", "push", "email", "sms"] as const;
export type Channel = (typeof CHANNELS)[number];
export const EXTERNAL_CHANNELS: ReadonlySet<Channel> = new Set(["push", "email", "sms"]);

export const LANGUAGES = ["en", "es"] as const;
export type Language = (typeof LANGUAGES)[number];

/**
 * Which channels each type uses when the user has not said otherwise. In-app and Web Push for
 * everything; email for what matters beyond the trading screen (alerts, buying power, security); SMS only
 * for security events (and only once the user has given a phone number and switched SMS on).
 */
export const DEFAULT_TYPE_CHANNELS: Readonly<Record<NotificationType, Readonly<Record<Channel, boolean>>>> = {
  order_filled: { in_app: true, push: true, email: false, sms: false },
  order_partially_filled: { in_app: true, push: true, email: false, sms: false },
  order_canceled: { in_app: true, push: true, email: false, sms: false },
  order_rejected: { in_app: true, push: true, email: false, sms: false },
  price_alert: { in_app: true, push: true, email: true, sms: false },
  buying_power_low: { in_app: true, push: true, email: true, sms: false },
  security_login: { in_app: true, push: true, email: true, sms: true },
  security_api_key: { in_app: true, push: true, email: true, sms: true },
};

/** Master switches per channel, before per-type choices. SMS is opt-in. */
export const DEFAULT_CHANNELS: Readonly<Record<Channel, boolean>> = {
  in_app: true,
  push: true,
  email: true,
  sms: false,
};

/** Quiet hours as minutes after local midnight; `start > end` spans midnight (22:00–07:00). */
export interface QuietHours {
  start: number;
  end: number;
}

/** A user's notification settings as the consumer uses them (stored in `notification_preferences`). */
export interface NotificationSettings {
  language: Language;
  /** IANA time zone of quiet hours and of times in messages. */
  timezone: string;
  quietHours: QuietHours | null;
  channels: Record<Channel, boolean>;
  /** Per type and channel, overriding {@link DEFAULT_TYPE_CHANNELS}. */
  types: Partial<Record<NotificationType, Partial<Record<Channel, boolean>>>>;
  /** Where email goes; null = the account's email. */
  email: string | null;
  /** E.164 number for SMS; null = no SMS. */
  phone: string | null;
  /** Warn when buying power falls below this (micro-USD); null = no warning. */
  buyingPowerThresholdMicros: number | null;
}

export const DEFAULT_SETTINGS: NotificationSettings = {
  language: "en",
  timezone: "UTC",
  quietHours: null,
  channels: { ...DEFAULT_CHANNELS },
  types: {},
  email: null,
  phone: null,
  buyingPowerThresholdMicros: null,
};

/**
 * The coarse switches of the profile (`PATCH /v1/me` `notification_preferences`, which predates this
 * module). They still apply: a channel or category switched off there is off whatever the detailed
 * preferences say (see docs/notifications.md, "Preferences").
 */
export interface ProfileSwitches {
  email?: boolean;
  push?: boolean;
  sms?: boolean;
  order_fills?: boolean;
  order_cancellations?: boolean;
  margin_alerts?: boolean;
}

/** The template variables each type needs (checked by the producer's tests and the renderer). */
export const TYPE_VARIABLES: Readonly<Record<NotificationType, readonly string[]>> = {
  order_filled: ["symbol", "side", "qty", "filled_qty", "avg_price", "order_id"],
  order_partially_filled: ["symbol", "side", "qty", "filled_qty", "avg_price", "order_id"],
  order_canceled: ["symbol", "side", "qty", "filled_qty", "order_id"],
  order_rejected: ["symbol", "side", "qty", "reason", "order_id"],
  price_alert: ["symbol", "direction", "target", "price", "at", "alert_id"],
  buying_power_low: ["buying_power", "threshold", "at"],
  security_login: ["at", "ip", "user_agent"],
  security_api_key: ["at", "key_id", "name"],
};

/** Version of {@link NotificationJob}. */
export const NOTIFICATION_JOB_VERSION = 1;

/**
 * One notification to deliver: a message of the `notifications` Queue.
 *
 * `id` is stable and derived from what caused it (an order's state, an alert and the trade that crossed
 * it, a login), so a producer that runs twice produces the same id, and the consumer delivers each
 * (id, channel) at most once.
 */
export interface NotificationJob {
  v: typeof NOTIFICATION_JOB_VERSION;
  id: string;
  userId: string;
  type: NotificationType;
  /** Template variables: decimal strings, ids, ISO-free millisecond times (`at`). */
  vars: Record<string, string>;
  /** When the cause happened (ms since epoch). */
  at: number;
  /** Only these channels (a delivery deferred past quiet hours comes back with the deferred ones). */
  channels?: Channel[];
}

export const notificationJobSchema = z.object({
  v: z.literal(NOTIFICATION_JOB_VERSION),
  id: z.string().min(1).max(300),
  userId: z.guid(),
  type: z.enum(NOTIFICATION_TYPES),
  vars: z.record(z.string().max(64), z.string().max(500)),
  at: z.number().int().min(0),
  channels: z.array(z.enum(CHANNELS)).min(1).max(CHANNELS.length).optional(),
});

/** Parses a queue message body as a job; `{ ok: false, error }` names what is wrong (poison). */
export function parseNotificationJob(
  body: unknown,
): { ok: true; job: NotificationJob } | { ok: false; error: string } {
  const parsed = notificationJobSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `${issue?.path.join(".") || "(body)"}: ${issue?.message ?? "invalid"}` };
  }
  const job = parsed.data as NotificationJob;
  const missing = TYPE_VARIABLES[job.type].filter((name) => job.vars[name] === undefined);
  if (missing.length > 0) return { ok: false, error: `vars: missing ${missing.join(", ")} for ${job.type}` };
  return { ok: true, job };
}

/**
 * Stable notification ids. Each names its cause, so a redelivered or replayed cause maps to the same id.
 *
 * @example
 * notificationIds.order("6f0c…", "partially_filled", 40);  // "order:6f0c…:partially_filled:40"
 * notificationIds.alert("a1…", "ACME:1207");               // "alert:a1…:ACME:1207"
 */
export const notificationIds = {
  /** An order reaching a state; partial fills are told apart by the filled quantity. */
  order: (orderId: string, status: string, filledQtyLots: number) =>
    `order:${orderId}:${status}:${filledQtyLots}`,
  /** An alert crossed by one trade (the book's event id `${symbol}:${seq}`). */
  alert: (alertId: string, tradeEventId: string) => `alert:${alertId}:${tradeEventId}`,
  /** The n-th time a user's buying power fell below their threshold. */
  buyingPower: (userId: string, crossing: number) => `bp:${userId}:${crossing}`,
  login: (loginId: string) => `login:${loginId}`,
  apiKey: (keyId: string) => `apikey:${keyId}`,
} as const;
