/**
 * The user's notification API (docs/notifications.md): price alerts, preferences, Web Push
 * subscriptions and the notification history. Bearer token or API key, per-user rate limit, zod schemas
 * (also the OpenAPI document), JSON errors `{code, message, request_id}`.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import type { Context } from "hono";
import { formatMicros, parseMicros } from "../../shared/decimal.ts";
import { priceToTicks, ticksToPrice } from "../../shared/engine/rules.ts";
import { formatClock, isValidTimeZone, parseClock } from "../../shared/notifications/quiet-hours.ts";
import {
  CHANNELS,
  type Channel,
  DEFAULT_TYPE_CHANNELS,
  LANGUAGES,
  NOTIFICATION_TYPES,
  type NotificationSettings,
  type NotificationType,
} from "../../shared/notifications/types.ts";
import { base64UrlDecode } from "../../shared/notifications/web-push.ts";
import { findSymbol, SYMBOL_PATTERN } from "../../shared/symbols.ts";
import { requireTrader } from "../auth/middleware.ts";
import { AUTH_SECURITY, errorResponses } from "../auth/openapi.ts";
import type { AuthBindings } from "../auth/types.ts";
import { db } from "../db/index.ts";
import { rowsOf } from "../db/recordset.ts";
import { ApiError } from "../errors.ts";
import {
  alertView,
  countActiveAlerts,
  createAlert,
  deleteAlert,
  getAlert,
  listAlerts,
} from "../notifications/alerts.ts";
import { vapidKeysOf } from "../notifications/channels.ts";
import { isDevEnvironment } from "../notifications/config.ts";
import { settingsOf } from "../notifications/store.ts";
import { createRouter } from "../openapi.ts";
import { json } from "./helpers.ts";

/** At most this many active alerts per user. */
export const MAX_ACTIVE_ALERTS = 100;
/** At most this many push subscriptions (browsers, devices) per user. */
export const MAX_PUSH_SUBSCRIPTIONS = 10;

const TAG_ALERTS = "Price alerts";
const TAG_NOTIFICATIONS = "Notifications";

const body = <T extends z.ZodType>(schema: T) => ({
  body: { required: true, content: { "application/json": { schema } } },
});

function route<R extends Parameters<typeof createRoute>[0]>(config: R) {
  return createRoute({
    ...config,
    security: AUTH_SECURITY,
    middleware: [requireTrader] as const,
  });
}

const dbsOf = (c: Context<AuthBindings>) => db(c.env, (p) => c.executionCtx.waitUntil(p));

// ------------------------------------------------------------------------------------------------------
// Price alerts
// ------------------------------------------------------------------------------------------------------

const AlertSchema = z
  .object({
    id: z.uuid(),
    symbol: z.string().openapi({ example: "ACME" }),
    direction: z.enum(["above", "below"]),
    price: z.string().openapi({ example: "101.50" }),
    frequency: z.enum(["once", "repeating"]),
    status: z.enum(["active", "triggered"]).openapi({ description: "A `once` alert ends `triggered`" }),
    armed: z.boolean().openapi({
      description: "A repeating alert disarms when it fires and re-arms when a trade crosses back",
    }),
    trigger_count: z.number().int(),
    last_triggered_at: z.string().nullable().openapi({ format: "date-time" }),
    last_trigger_price: z.string().nullable(),
    created_at: z.string().openapi({ format: "date-time" }),
  })
  .openapi("PriceAlert");

const CreateAlertSchema = z
  .strictObject({
    symbol: z
      .string()
      .trim()
      .toUpperCase()
      .regex(SYMBOL_PATTERN, "not a symbol")
      .openapi({ example: "ACME" }),
    direction: z.enum(["above", "below"]).openapi({
      description: "`above`: fires on a trade at or above `price`; `below`: at or below",
    }),
    price: z
      .union([z.string().trim().max(32), z.number().finite()])
      .transform((v) => String(v))
      .openapi({ type: "string", example: "101.50", description: "On the symbol's tick grid" }),
    frequency: z
      .enum(["once", "repeating"])
      .default("once")
      .openapi({ description: "`once` (default) fires once; `repeating` fires on every crossing" }),
  })
  .openapi("CreatePriceAlertRequest");

const AlertIdParam = z.object({
  id: z
    .uuid()
    .openapi({ param: { name: "id", in: "path" }, example: "0b6c5a0e-1f2d-4c3b-8a7e-5d4c3b2a1f00" }),
});

const tickSizeOf = (symbol: string) => findSymbol(symbol)?.tickSize ?? "0.01";

export const notificationsRouter = createRouter();

notificationsRouter.openapi(
  route({
    method: "post",
    path: "/v1/alerts",
    tags: [TAG_ALERTS],
    summary: "Set a price alert",
    description:
      "Notifies you when a trade of `symbol` is at or above (`above`) or at or below (`below`) `price`. " +
      "`once` fires on the first such trade; `repeating` fires again each time the price crosses back and " +
      `forth. At most ${MAX_ACTIVE_ALERTS} active alerts per account.`,
    request: body(CreateAlertSchema),
    responses: {
      201: json(AlertSchema, "The alert, active"),
      ...errorResponses(400, 401, 409, 422, 429, 503),
    },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const spec = findSymbol(input.symbol);
    if (!spec) throw new ApiError(422, "unknown_symbol", `symbol ${input.symbol} is not traded here`);
    const ticks = priceToTicks(spec, input.price);
    if (!ticks.ok) {
      throw new ApiError(
        422,
        ticks.reason,
        ticks.reason === "off_tick"
          ? `price must be a multiple of the tick size ${spec.tickSize}`
          : "price must be a positive decimal",
      );
    }
    const dbs = dbsOf(c);
    const userId = c.var.principal.userId;
    if ((await countActiveAlerts(dbs.global, userId)) >= MAX_ACTIVE_ALERTS) {
      throw new ApiError(
        409,
        "alert_limit_reached",
        `at most ${MAX_ACTIVE_ALERTS} active alerts; delete some first`,
      );
    }
    const row = await createAlert(dbs.global, {
      userId,
      symbol: spec.symbol,
      direction: input.direction,
      targetTicks: ticks.value,
      targetPrice: ticksToPrice(spec, ticks.value),
      frequency: input.frequency,
    });
    return c.json(alertView(row, spec.tickSize), 201);
  },
);

notificationsRouter.openapi(
  route({
    method: "get",
    path: "/v1/alerts",
    tags: [TAG_ALERTS],
    summary: "Your price alerts",
    request: {
      query: z.object({
        status: z.enum(["active", "triggered", "all"]).default("all").openapi({ example: "active" }),
      }),
    },
    responses: {
      200: json(z.object({ alerts: z.array(AlertSchema) }), "Newest first"),
      ...errorResponses(401, 422, 429, 503),
    },
  }),
  async (c) => {
    const rows = await listAlerts(dbsOf(c).global, c.var.principal.userId, c.req.valid("query").status);
    return c.json({ alerts: rows.map((r) => alertView(r, tickSizeOf(r.symbol))) }, 200);
  },
);

notificationsRouter.openapi(
  route({
    method: "get",
    path: "/v1/alerts/{id}",
    tags: [TAG_ALERTS],
    summary: "One price alert",
    request: { params: AlertIdParam },
    responses: { 200: json(AlertSchema, "The alert"), ...errorResponses(401, 404, 422, 429, 503) },
  }),
  async (c) => {
    const row = await getAlert(dbsOf(c).global, c.var.principal.userId, c.req.valid("param").id);
    if (!row) throw new ApiError(404, "alert_not_found", "no such alert");
    return c.json(alertView(row, tickSizeOf(row.symbol)), 200);
  },
);

notificationsRouter.openapi(
  route({
    method: "delete",
    path: "/v1/alerts/{id}",
    tags: [TAG_ALERTS],
    summary: "Delete a price alert",
    request: { params: AlertIdParam },
    responses: { 204: { description: "Deleted" }, ...errorResponses(401, 404, 422, 429, 503) },
  }),
  async (c) => {
    const deleted = await deleteAlert(dbsOf(c).global, c.var.principal.userId, c.req.valid("param").id);
    if (!deleted) throw new ApiError(404, "alert_not_found", "no such alert");
    return c.body(null, 204);
  },
);

// ------------------------------------------------------------------------------------------------------
// Preferences
// ------------------------------------------------------------------------------------------------------

const channelFlags = (strict: boolean) => {
  const shape = Object.fromEntries(CHANNELS.map((ch) => [ch, z.boolean()])) as Record<Channel, z.ZodBoolean>;
  return strict ? z.strictObject(shape).partial() : z.object(shape);
};

const ClockSchema = z
  .string()
  .refine((s) => parseClock(s) !== null, "a time of day HH:MM (00:00–23:59)")
  .openapi({ example: "22:00" });

const PreferencesSchema = z
  .object({
    language: z.enum(LANGUAGES),
    timezone: z.string().openapi({ example: "Europe/Madrid" }),
    quiet_hours: z.object({ start: z.string(), end: z.string() }).nullable(),
    channels: channelFlags(false),
    types: z.object(
      Object.fromEntries(NOTIFICATION_TYPES.map((t) => [t, channelFlags(false)])) as Record<
        NotificationType,
        ReturnType<typeof channelFlags>
      >,
    ),
    email: z.string().nullable().openapi({ description: "Where email goes; null = the account's email" }),
    account_email: z.string(),
    phone: z.string().nullable(),
    buying_power_threshold: z.string().nullable(),
  })
  .openapi("NotificationPreferencesDetail");

const PreferencesPatchSchema = z
  .strictObject({
    language: z.enum(LANGUAGES).openapi({ description: "Language of every message" }),
    timezone: z.string().max(64).refine(isValidTimeZone, "not an IANA time zone").openapi({
      description: "Time zone of quiet hours and of times in messages",
      example: "Europe/Madrid",
    }),
    quiet_hours: z
      .strictObject({ start: ClockSchema, end: ClockSchema })
      .refine((q) => q.start !== q.end, "start and end must differ")
      .nullable()
      .openapi({
        description:
          "Push, email and SMS wait until the end of quiet hours (in-app and security events do not); null = none",
      }),
    channels: channelFlags(true).openapi({ description: "Master switch per channel" }),
    types: z
      .strictObject(
        Object.fromEntries(NOTIFICATION_TYPES.map((t) => [t, channelFlags(true)])) as Record<
          NotificationType,
          ReturnType<typeof channelFlags>
        >,
      )
      .partial()
      .openapi({ description: 'Per notification type and channel, e.g. {"order_filled": {"email": true}}' }),
    email: z.email().max(254).nullable(),
    phone: z
      .string()
      .regex(/^\+[1-9]\d{6,14}$/, "an E.164 number such as +34600123456")
      .nullable(),
    buying_power_threshold: z
      .string()
      .max(32)
      .refine((s) => {
        const p = parseMicros(s);
        return p.ok && p.value > 0;
      }, "a positive decimal amount in USD")
      .nullable()
      .openapi({
        description: "Warn when buying power falls below this (USD); null = never",
        example: "5000",
      }),
  })
  .partial()
  .openapi("NotificationPreferencesPatch");

interface PreferencesStorage {
  language: string;
  timezone: string;
  quiet_start: number | null;
  quiet_end: number | null;
  channels: Record<string, boolean>;
  types: Record<string, Record<string, boolean>>;
  email: string | null;
  phone: string | null;
  bp_threshold_micros: number | null;
}

async function readPreferences(c: Context<AuthBindings>) {
  const userId = c.var.principal.userId;
  const result = await dbsOf(c)
    .forUser(userId)
    .execute(sql`
      SELECT u.email AS account_email, p.language, p.timezone, p.quiet_start, p.quiet_end, p.channels, p.types,
        p.email, p.phone, p.bp_threshold_micros
      FROM users u LEFT JOIN notification_preferences p ON p.user_id = u.id WHERE u.id = ${userId}`);
  const row = rowsOf<Partial<PreferencesStorage> & { account_email: string }>(result)[0];
  if (!row) throw new ApiError(404, "not_found", "account not found");
  const stored: PreferencesStorage | null =
    row.language === null || row.language === undefined ? null : (row as PreferencesStorage);
  return { accountEmail: row.account_email, stored, settings: settingsOf(stored) };
}

function preferencesView(settings: NotificationSettings, accountEmail: string) {
  const types = Object.fromEntries(
    NOTIFICATION_TYPES.map((t) => [
      t,
      Object.fromEntries(CHANNELS.map((ch) => [ch, settings.types[t]?.[ch] ?? DEFAULT_TYPE_CHANNELS[t][ch]])),
    ]),
  ) as Record<NotificationType, Record<Channel, boolean>>;
  return {
    language: settings.language,
    timezone: settings.timezone,
    quiet_hours: settings.quietHours
      ? { start: formatClock(settings.quietHours.start), end: formatClock(settings.quietHours.end) }
      : null,
    channels: settings.channels,
    types,
    email: settings.email,
    account_email: accountEmail,
    phone: settings.phone,
    buying_power_threshold:
      settings.buyingPowerThresholdMicros === null
        ? null
        : formatMicros(settings.buyingPowerThresholdMicros, { trimZeros: true }),
  };
}

notificationsRouter.openapi(
  route({
    method: "get",
    path: "/v1/notifications/preferences",
    tags: [TAG_NOTIFICATIONS],
    summary: "Your notification preferences",
    description:
      "Every type × channel with its effective value (your choice, else the default). The profile's " +
      "coarse switches (`PATCH /v1/me` `notification_preferences`) also apply.",
    responses: { 200: json(PreferencesSchema, "Preferences"), ...errorResponses(401, 404, 429, 503) },
  }),
  async (c) => {
    const { settings, accountEmail } = await readPreferences(c);
    return c.json(preferencesView(settings, accountEmail), 200);
  },
);

notificationsRouter.openapi(
  route({
    method: "put",
    path: "/v1/notifications/preferences",
    tags: [TAG_NOTIFICATIONS],
    summary: "Change notification preferences",
    description:
      "Fields you leave out keep their value; `types` merge per type and channel. Changing the buying-power " +
      "level re-arms its warning.",
    request: body(PreferencesPatchSchema),
    responses: {
      200: json(PreferencesSchema, "The new preferences"),
      ...errorResponses(400, 401, 404, 422, 429, 503),
    },
  }),
  async (c) => {
    const patch = c.req.valid("json");
    const userId = c.var.principal.userId;
    const { settings, accountEmail, stored } = await readPreferences(c);
    const next: PreferencesStorage = {
      language: patch.language ?? settings.language,
      timezone: patch.timezone ?? settings.timezone,
      quiet_start: settings.quietHours?.start ?? null,
      quiet_end: settings.quietHours?.end ?? null,
      channels: { ...(stored?.channels ?? {}), ...(patch.channels ?? {}) },
      types: structuredClone(stored?.types ?? {}),
      email: patch.email !== undefined ? patch.email : settings.email,
      phone: patch.phone !== undefined ? patch.phone : settings.phone,
      bp_threshold_micros: settings.buyingPowerThresholdMicros,
    };
    if (patch.quiet_hours !== undefined) {
      next.quiet_start = patch.quiet_hours === null ? null : parseClock(patch.quiet_hours.start);
      next.quiet_end = patch.quiet_hours === null ? null : parseClock(patch.quiet_hours.end);
    }
    for (const [type, flags] of Object.entries(patch.types ?? {})) {
      next.types[type] = { ...(next.types[type] ?? {}), ...(flags as Record<string, boolean>) };
    }
    let thresholdChanged = false;
    if (patch.buying_power_threshold !== undefined) {
      const micros =
        patch.buying_power_threshold === null
          ? null
          : (parseMicros(patch.buying_power_threshold) as { value: number }).value;
      thresholdChanged = micros !== next.bp_threshold_micros;
      next.bp_threshold_micros = micros;
    }
    await dbsOf(c)
      .forUser(userId)
      .execute(sql`
        INSERT INTO notification_preferences AS p (user_id, language, timezone, quiet_start, quiet_end, channels, types,
          email, phone, bp_threshold_micros)
        VALUES (${userId}, ${next.language}, ${next.timezone}, ${next.quiet_start}, ${next.quiet_end},
          ${JSON.stringify(next.channels)}::jsonb, ${JSON.stringify(next.types)}::jsonb, ${next.email}, ${next.phone},
          ${next.bp_threshold_micros})
        ON CONFLICT (user_id) DO UPDATE SET language = excluded.language, timezone = excluded.timezone,
          quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end, channels = excluded.channels,
          types = excluded.types, email = excluded.email, phone = excluded.phone,
          bp_threshold_micros = excluded.bp_threshold_micros,
          bp_below = CASE WHEN ${thresholdChanged} THEN false ELSE p.bp_below END, updated_at = now()`);
    return c.json(preferencesView(settingsOf(next), accountEmail), 200);
  },
);

// ------------------------------------------------------------------------------------------------------
// Web Push subscriptions
// ------------------------------------------------------------------------------------------------------

const SubscriptionSchema = z
  .object({ id: z.uuid(), endpoint: z.string(), created_at: z.string().openapi({ format: "date-time" }) })
  .openapi("PushSubscription");

const decodesTo = (length: number, first?: number) => (s: string) => {
  try {
    const b = base64UrlDecode(s);
    return b.length === length && (first === undefined || b[0] === first);
  } catch {
    return false;
  }
};

const SubscribeSchema = z
  .object({
    endpoint: z.url().max(1024).openapi({ example: "https://fcm.googleapis.com/fcm/send/abc…" }),
    expirationTime: z.number().nullable().optional(),
    keys: z.object({
      p256dh: z.string().max(128).refine(decodesTo(65, 4), "a base64url P-256 public key (65 bytes)"),
      auth: z.string().max(64).refine(decodesTo(16), "a base64url 16-byte secret"),
    }),
  })
  .openapi("PushSubscriptionRequest", { description: "The browser's `PushSubscription.toJSON()`" });

notificationsRouter.openapi(
  route({
    method: "get",
    path: "/v1/notifications/push-subscriptions",
    tags: [TAG_NOTIFICATIONS],
    summary: "Your Web Push subscriptions, and the VAPID key to subscribe with",
    responses: {
      200: json(
        z.object({
          vapid_public_key: z.string().nullable().openapi({
            description: "`applicationServerKey` for `pushManager.subscribe`; null when not configured",
          }),
          subscriptions: z.array(SubscriptionSchema),
        }),
        "Subscriptions",
      ),
      ...errorResponses(401, 429, 503),
    },
  }),
  async (c) => {
    const userId = c.var.principal.userId;
    const result = await dbsOf(c)
      .forUser(userId)
      .execute(
        sql`SELECT id, endpoint, created_at FROM push_subscriptions WHERE user_id = ${userId} ORDER BY created_at`,
      );
    return c.json(
      {
        vapid_public_key: vapidKeysOf(c.env)?.publicKey ?? null,
        subscriptions: rowsOf<{ id: string; endpoint: string; created_at: string }>(result).map((r) => ({
          id: r.id,
          endpoint: r.endpoint,
          created_at: new Date(r.created_at).toISOString(),
        })),
      },
      200,
    );
  },
);

notificationsRouter.openapi(
  route({
    method: "post",
    path: "/v1/notifications/push-subscriptions",
    tags: [TAG_NOTIFICATIONS],
    summary: "Subscribe a browser or device to Web Push",
    description: `Idempotent per endpoint. At most ${MAX_PUSH_SUBSCRIPTIONS} per account; endpoints must be https.`,
    request: body(SubscribeSchema),
    responses: {
      201: json(SubscriptionSchema, "Subscribed"),
      ...errorResponses(400, 401, 409, 422, 429, 503),
    },
  }),
  async (c) => {
    const input = c.req.valid("json");
    const url = new URL(input.endpoint);
    if (url.protocol !== "https:" && !(isDevEnvironment(c.env) && url.protocol === "http:")) {
      throw new ApiError(422, "invalid_endpoint", "a push endpoint must be an https URL");
    }
    const userId = c.var.principal.userId;
    const shard = dbsOf(c).forUser(userId);
    const result = await shard.execute(sql`
      WITH existing AS (SELECT count(*) AS n FROM push_subscriptions WHERE user_id = ${userId} AND endpoint <> ${input.endpoint})
      INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth)
      SELECT ${crypto.randomUUID()}, ${userId}, ${input.endpoint}, ${input.keys.p256dh}, ${input.keys.auth}
      FROM existing WHERE existing.n < ${MAX_PUSH_SUBSCRIPTIONS}
      ON CONFLICT (user_id, endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth
      RETURNING id, endpoint, created_at`);
    const row = rowsOf<{ id: string; endpoint: string; created_at: string }>(result)[0];
    if (!row) {
      throw new ApiError(
        409,
        "subscription_limit_reached",
        `at most ${MAX_PUSH_SUBSCRIPTIONS} push subscriptions; remove one first`,
      );
    }
    return c.json(
      { id: row.id, endpoint: row.endpoint, created_at: new Date(row.created_at).toISOString() },
      201,
    );
  },
);

notificationsRouter.openapi(
  route({
    method: "delete",
    path: "/v1/notifications/push-subscriptions",
    tags: [TAG_NOTIFICATIONS],
    summary: "Unsubscribe an endpoint from Web Push",
    request: body(z.strictObject({ endpoint: z.url().max(1024) }).openapi("PushUnsubscribeRequest")),
    responses: { 204: { description: "Removed" }, ...errorResponses(400, 401, 404, 422, 429, 503) },
  }),
  async (c) => {
    const userId = c.var.principal.userId;
    const result = await dbsOf(c)
      .forUser(userId)
      .execute(
        sql`DELETE FROM push_subscriptions WHERE user_id = ${userId} AND endpoint = ${c.req.valid("json").endpoint} RETURNING id`,
      );
    if (rowsOf(result).length === 0)
      throw new ApiError(404, "subscription_not_found", "no subscription with that endpoint");
    return c.body(null, 204);
  },
);

// ------------------------------------------------------------------------------------------------------
// History
// ------------------------------------------------------------------------------------------------------

const DeliverySchema = z
  .object({
    channel: z.enum(CHANNELS),
    status: z.enum(["sending", "sent", "failed", "deferred", "skipped", "dead"]),
    reason: z
      .string()
      .nullable()
      .openapi({ description: "Why skipped or deferred (`opted_out`, `quiet_hours`, …)" }),
    attempts: z.number().int(),
    sent_at: z.string().nullable(),
    not_before: z.string().nullable(),
  })
  .openapi("NotificationDelivery");

const NotificationSchema = z
  .object({
    id: z.string(),
    type: z.enum(NOTIFICATION_TYPES),
    title: z.string(),
    body: z.string(),
    data: z.record(z.string(), z.string()),
    occurred_at: z.string().openapi({ format: "date-time" }),
    created_at: z.string().openapi({ format: "date-time" }),
    deliveries: z.array(DeliverySchema),
  })
  .openapi("Notification");

const encodeToken = (createdAt: string, id: string) => btoa(JSON.stringify([createdAt, id]));
function decodeToken(token: string): [string, string] {
  try {
    const v = JSON.parse(atob(token));
    if (
      Array.isArray(v) &&
      typeof v[0] === "string" &&
      typeof v[1] === "string" &&
      !Number.isNaN(Date.parse(v[0]))
    )
      return [v[0], v[1]];
  } catch {}
  throw new ApiError(422, "invalid_page_token", "page_token is not one this API returned");
}

notificationsRouter.openapi(
  route({
    method: "get",
    path: "/v1/notifications",
    tags: [TAG_NOTIFICATIONS],
    summary: "Your notifications, newest first, with what happened on each channel",
    request: {
      query: z.object({
        limit: z.coerce.number().int().min(1).max(200).default(50),
        type: z.enum(NOTIFICATION_TYPES).optional(),
        page_token: z.string().max(300).optional(),
      }),
    },
    responses: {
      200: json(
        z.object({ notifications: z.array(NotificationSchema), next_page_token: z.string().nullable() }),
        "A page",
      ),
      ...errorResponses(401, 422, 429, 503),
    },
  }),
  async (c) => {
    const userId = c.var.principal.userId;
    const q = c.req.valid("query");
    const [beforeAt, beforeId] = q.page_token ? decodeToken(q.page_token) : [null, null];
    const result = await dbsOf(c)
      .forUser(userId)
      .execute(sql`
        SELECT n.id, n.type, n.title, n.body, n.vars, n.occurred_at, n.created_at,
          coalesce((SELECT json_agg(json_build_object('channel', d.channel, 'status', d.status, 'reason', d.reason,
              'attempts', d.attempts, 'sent_at', d.sent_at, 'not_before', d.not_before) ORDER BY d.channel)
            FROM notification_deliveries d WHERE d.notification_id = n.id), '[]'::json) AS deliveries
        FROM notifications n
        WHERE n.user_id = ${userId} AND (${q.type ?? null}::text IS NULL OR n.type = ${q.type ?? null})
          AND (${beforeAt}::timestamptz IS NULL OR (n.created_at, n.id) < (${beforeAt}::timestamptz, ${beforeId}))
        ORDER BY n.created_at DESC, n.id DESC LIMIT ${q.limit + 1}`);
    type Row = {
      id: string;
      type: NotificationType;
      title: string;
      body: string;
      vars: Record<string, string>;
      occurred_at: string;
      created_at: string;
      deliveries: {
        channel: Channel;
        status: string;
        reason: string | null;
        attempts: number;
        sent_at: string | null;
        not_before: string | null;
      }[];
    };
    const rows = rowsOf<Row>(result);
    const page = rows.slice(0, q.limit);
    const isoOrNull = (v: string | null) => (v === null ? null : new Date(v).toISOString());
    const last = page[page.length - 1];
    return c.json(
      {
        notifications: page.map((r) => ({
          id: r.id,
          type: r.type,
          title: r.title,
          body: r.body,
          data: r.vars,
          occurred_at: new Date(r.occurred_at).toISOString(),
          created_at: new Date(r.created_at).toISOString(),
          deliveries: (typeof r.deliveries === "string" ? JSON.parse(r.deliveries) : r.deliveries).map(
            (d: Row["deliveries"][number]) => ({
              channel: d.channel,
              status: d.status as z.infer<typeof DeliverySchema>["status"],
              reason: d.reason,
              attempts: Number(d.attempts),
              sent_at: isoOrNull(d.sent_at),
              not_before: isoOrNull(d.not_before),
            }),
          ),
        })),
        next_page_token:
          rows.length > q.limit && last
            ? encodeToken(new Date(last.created_at).toISOString(), last.id)
            : null,
      },
      200,
    );
  },
);
