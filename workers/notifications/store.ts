/**
 * Postgres for notifications: preferences, push subscriptions, the notification history and the
 * per-channel delivery rows that are the dedupe store, all on the user's shard
 * (migrations/shard/0003_notifications.sql). Set-wise statements: the consumer runs a handful per shard per
 * batch, whatever the batch size. Rows travel as JSON (`jsonb_to_recordset`), one parameter per statement.
 */
import { sql } from "drizzle-orm";
import {
  CHANNELS,
  type Channel,
  DEFAULT_SETTINGS,
  LANGUAGES,
  type Language,
  type NotificationSettings,
  type ProfileSwitches,
} from "../../shared/notifications/types.ts";
import type { ShardDb, ShardSchema, TxDb } from "../db/index.ts";
import { rowsOf } from "../db/recordset.ts";
import type { PushSubscriptionRow } from "./channels.ts";

type Db = ShardDb | TxDb<ShardSchema>;

/** A user as the consumer needs them: settings, the profile's switches, addresses. */
export interface Recipient {
  userId: string;
  active: boolean;
  accountEmail: string;
  profile: ProfileSwitches;
  settings: NotificationSettings;
  subscriptions: PushSubscriptionRow[];
  /** Buying-power warning state. */
  bpBelow: boolean;
  bpCrossings: number;
}

interface PreferencesRow {
  language: string | null;
  timezone: string | null;
  quiet_start: number | null;
  quiet_end: number | null;
  channels: Record<string, boolean> | null;
  types: Record<string, Record<string, boolean>> | null;
  email: string | null;
  phone: string | null;
  bp_threshold_micros: string | number | null;
}

/** Stored preference columns → settings, with the defaults for everything not stored. */
export function settingsOf(row: Partial<PreferencesRow> | null | undefined): NotificationSettings {
  if (!row) return structuredClone(DEFAULT_SETTINGS);
  const channels = { ...DEFAULT_SETTINGS.channels };
  for (const c of CHANNELS) if (typeof row.channels?.[c] === "boolean") channels[c] = row.channels[c];
  return {
    language: LANGUAGES.includes(row.language as Language) ? (row.language as Language) : "en",
    timezone: row.timezone || "UTC",
    quietHours:
      row.quiet_start === null ||
      row.quiet_start === undefined ||
      row.quiet_end === null ||
      row.quiet_end === undefined
        ? null
        : { start: Number(row.quiet_start), end: Number(row.quiet_end) },
    channels,
    types: (row.types ?? {}) as NotificationSettings["types"],
    email: row.email ?? null,
    phone: row.phone ?? null,
    buyingPowerThresholdMicros:
      row.bp_threshold_micros === null || row.bp_threshold_micros === undefined
        ? null
        : Number(row.bp_threshold_micros),
  };
}

const jsonParam = (value: unknown) => sql`${JSON.stringify(value)}::jsonb`;

/** The users of `userIds` that exist on this shard, with their preferences and push subscriptions. */
export async function loadRecipients(db: Db, userIds: readonly string[]): Promise<Map<string, Recipient>> {
  const result = await db.execute(sql`
    SELECT u.id AS user_id, u.email AS account_email, u.status, u.notification_preferences AS profile,
      p.language, p.timezone, p.quiet_start, p.quiet_end, p.channels, p.types, p.email, p.phone,
      p.bp_threshold_micros, coalesce(p.bp_below, false) AS bp_below, coalesce(p.bp_crossings, 0) AS bp_crossings,
      coalesce((
        SELECT json_agg(json_build_object('id', s.id, 'endpoint', s.endpoint, 'p256dh', s.p256dh, 'auth', s.auth)
          ORDER BY s.created_at)
        FROM push_subscriptions s WHERE s.user_id = u.id), '[]'::json) AS subscriptions
    FROM users u LEFT JOIN notification_preferences p ON p.user_id = u.id
    WHERE u.id IN (SELECT value::uuid FROM jsonb_array_elements_text(${jsonParam(userIds)}))`);
  const out = new Map<string, Recipient>();
  for (const r of rowsOf<
    PreferencesRow & {
      user_id: string;
      account_email: string;
      status: string;
      profile: ProfileSwitches | null;
      bp_below: boolean;
      bp_crossings: number;
      subscriptions: PushSubscriptionRow[] | string;
    }
  >(result)) {
    out.set(r.user_id, {
      userId: r.user_id,
      active: r.status === "active",
      accountEmail: r.account_email,
      profile: r.profile ?? {},
      settings: settingsOf(r.language === null ? null : r),
      subscriptions: typeof r.subscriptions === "string" ? JSON.parse(r.subscriptions) : r.subscriptions,
      bpBelow: r.bp_below,
      bpCrossings: Number(r.bp_crossings),
    });
  }
  return out;
}

export interface NotificationRow {
  id: string;
  user_id: string;
  type: string;
  title: string;
  body: string;
  vars: Record<string, string>;
  occurred_at: string;
}

/** The notifications into the users' history, once per id. */
export async function recordNotifications(db: Db, rows: readonly NotificationRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.execute(sql`
    INSERT INTO notifications (id, user_id, type, title, body, vars, occurred_at)
    SELECT id, user_id, type, title, body, vars, occurred_at FROM jsonb_to_recordset(${jsonParam(rows)})
      AS t(id text, user_id uuid, type text, title text, body text, vars jsonb, occurred_at timestamptz)
    ON CONFLICT (id) DO NOTHING`);
}

export interface DeliveryKey {
  notification_id: string;
  channel: Channel;
  user_id: string;
}

export const deliveryKey = (notificationId: string, channel: Channel) => `${notificationId}|${channel}`;

/**
 * Claims deliveries before sending: a new row, or one that failed, was deferred, or was claimed by a
 * consumer that did not finish within the lease. Returns the claimed keys with their attempt number; a
 * delivery that is sent, skipped, dead or being sent right now is not returned (the dedupe).
 */
export async function claimDeliveries(
  db: Db,
  keys: DeliveryKey[],
  leaseSeconds: number,
): Promise<Map<string, number>> {
  if (keys.length === 0) return new Map();
  // One row per key: the same job twice in a batch must not make the upsert touch a row twice.
  keys = [...new Map(keys.map((k) => [deliveryKey(k.notification_id, k.channel), k])).values()];
  const result = await db.execute(sql`
    INSERT INTO notification_deliveries AS d (notification_id, channel, user_id, status, attempts, claimed_at)
    SELECT notification_id, channel, user_id, 'sending', 1, now()
    FROM jsonb_to_recordset(${jsonParam(keys)}) AS t(notification_id text, channel text, user_id uuid)
    ON CONFLICT (notification_id, channel) DO UPDATE
      SET status = 'sending', attempts = d.attempts + 1, claimed_at = now(), not_before = NULL, updated_at = now()
      WHERE d.status IN ('failed', 'deferred')
        OR (d.status = 'sending' AND d.claimed_at < now() - make_interval(secs => ${leaseSeconds}))
    RETURNING notification_id, channel, attempts`);
  return new Map(
    rowsOf<{ notification_id: string; channel: Channel; attempts: number }>(result).map((r) => [
      deliveryKey(r.notification_id, r.channel),
      Number(r.attempts),
    ]),
  );
}

export interface DeliveryOutcome extends DeliveryKey {
  status: "sent" | "failed" | "skipped" | "deferred";
  reason?: string | null;
  error?: string | null;
  provider_id?: string | null;
  /** Deferred until (ISO). */
  not_before?: string | null;
}

/**
 * Records skips and deferrals (new rows, or over a failed / deferred row) and finishes claimed
 * deliveries (`sending` → sent / failed / skipped). A row that is already sent is never changed.
 */
export async function recordOutcomes(db: Db, outcomes: readonly DeliveryOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  // One row per key (the last outcome wins): duplicate jobs in a batch must not update a row twice.
  const unique = [...new Map(outcomes.map((o) => [deliveryKey(o.notification_id, o.channel), o])).values()];
  const rows = unique.map((o) => ({
    notification_id: o.notification_id,
    channel: o.channel,
    user_id: o.user_id,
    status: o.status,
    reason: o.reason ?? null,
    error: o.error ?? null,
    provider_id: o.provider_id ?? null,
    not_before: o.not_before ?? null,
  }));
  await db.execute(sql`
    INSERT INTO notification_deliveries AS d (notification_id, channel, user_id, status, reason, last_error,
      provider_message_id, not_before, sent_at)
    SELECT notification_id, channel, user_id, status, reason, error, provider_id, not_before,
      CASE WHEN status = 'sent' THEN now() END
    FROM jsonb_to_recordset(${jsonParam(rows)}) AS t(notification_id text, channel text, user_id uuid,
      status text, reason text, error text, provider_id text, not_before timestamptz)
    ON CONFLICT (notification_id, channel) DO UPDATE
      SET status = excluded.status, reason = excluded.reason, last_error = excluded.last_error,
        provider_message_id = coalesce(excluded.provider_message_id, d.provider_message_id),
        not_before = excluded.not_before, sent_at = coalesce(excluded.sent_at, d.sent_at),
        claimed_at = CASE WHEN excluded.status = 'sending' THEN d.claimed_at END, updated_at = now()
      WHERE d.status IN ('sending', 'failed', 'deferred')`);
}

/** After the Queue gave up: every delivery of the notification still failing becomes `dead`. */
export async function markDead(db: Db, notificationId: string, error: string): Promise<number> {
  const result = await db.execute(sql`
    UPDATE notification_deliveries SET status = 'dead', last_error = coalesce(last_error, ${error}), updated_at = now()
    WHERE notification_id = ${notificationId} AND status IN ('failed', 'sending')
    RETURNING channel`);
  return rowsOf(result).length;
}

export async function deleteSubscriptions(db: Db, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.execute(sql`
    DELETE FROM push_subscriptions WHERE id IN (SELECT value::uuid FROM jsonb_array_elements_text(${jsonParam(ids)}))`);
}

/** Buying-power warning state: set `below` (and the crossing count) unless another consumer moved it. */
export async function saveBuyingPowerStates(
  db: Db,
  states: readonly { user_id: string; below: boolean; crossings: number; expected: number }[],
): Promise<void> {
  if (states.length === 0) return;
  await db.execute(sql`
    UPDATE notification_preferences p SET bp_below = t.below, bp_crossings = t.crossings, updated_at = now()
    FROM jsonb_to_recordset(${jsonParam(states)}) AS t(user_id uuid, below boolean, crossings integer, expected integer)
    WHERE p.user_id = t.user_id AND p.bp_crossings = t.expected`);
}
