/**
 * Who gets what, where, and when: the per-channel decision for one notification, from the
 * user's preferences, the profile's coarse switches, the contacts on file and quiet hours.
 *
 * Pure, so every rule is unit-tested; the consumer only carries the decisions out.
 */
import { quietUntil } from "./quiet-hours.ts";
import {
  CHANNELS,
  type Channel,
  CRITICAL_TYPES,
  DEFAULT_TYPE_CHANNELS,
  EXTERNAL_CHANNELS,
  type NotificationSettings,
  type NotificationType,
  type ProfileSwitches,
} from "./types.ts";

/** Why a channel is not used. Stored with the delivery and shown in `GET /v1/notifications`. */
export type SkipReason =
  | "opted_out"
  | "no_email"
  | "no_phone"
  | "no_push_subscription"
  | "channel_not_configured"
  | "rate_limited"
  | "subscription_gone"
  | "rejected_by_provider";

export type ChannelDecision =
  | { action: "send" }
  | { action: "skip"; reason: SkipReason }
  | { action: "defer"; until: number };

export interface PlanInput {
  type: NotificationType;
  settings: NotificationSettings;
  profile: ProfileSwitches;
  /** The account's email (used when the preferences name none). */
  accountEmail: string | null;
  pushSubscriptions: number;
  /** Channels that have a provider (or the development sink); others are skipped. */
  available: ReadonlySet<Channel>;
  /** Only these channels (a deferred job); default all. */
  only?: readonly Channel[];
  now: number;
}

/** The profile's coarse category switch that covers `type`, if any. */
function profileCategoryAllows(type: NotificationType, profile: ProfileSwitches): boolean {
  switch (type) {
    case "order_filled":
    case "order_partially_filled":
      return profile.order_fills !== false;
    case "order_canceled":
      return profile.order_cancellations !== false;
    case "buying_power_low":
      return profile.margin_alerts !== false;
    default:
      return true;
  }
}

/** The profile's coarse channel switch: `push` there covers both ways of pushing (socket and Web Push). */
function profileChannelAllows(channel: Channel, profile: ProfileSwitches): boolean {
  switch (channel) {
    case "in_app":
    case "push":
      return profile.push !== false;
    case "email":
      return profile.email !== false;
    case "sms":
      return profile.sms !== false;
  }
}

/** Whether the user wants `type` on `channel` (preferences and profile switches; not contacts or time). */
export function wants(
  type: NotificationType,
  channel: Channel,
  settings: NotificationSettings,
  profile: ProfileSwitches,
): boolean {
  const perType = settings.types[type]?.[channel] ?? DEFAULT_TYPE_CHANNELS[type][channel];
  return (
    settings.channels[channel] &&
    perType &&
    profileChannelAllows(channel, profile) &&
    profileCategoryAllows(type, profile)
  );
}

/**
 * The decision for every channel of one notification.
 *
 * - Opted out (channel switch, per-type choice, or the profile's switches) → skip `opted_out`.
 * - No address → skip (`no_email`, `no_phone`, `no_push_subscription`).
 * - No provider configured (production without keys) → skip `channel_not_configured`.
 * - In quiet hours, external channels of non-security types → defer until the quiet hours end.
 *   In-app is never deferred: it is silent by nature and the user sees it when they look.
 */
export function planDeliveries(input: PlanInput): Map<Channel, ChannelDecision> {
  const out = new Map<Channel, ChannelDecision>();
  const quietEnd = CRITICAL_TYPES.has(input.type)
    ? null
    : quietUntil(input.now, input.settings.quietHours, input.settings.timezone);
  for (const channel of input.only ?? CHANNELS) {
    if (!wants(input.type, channel, input.settings, input.profile)) {
      out.set(channel, { action: "skip", reason: "opted_out" });
      continue;
    }
    if (channel === "email" && !(input.settings.email ?? input.accountEmail)) {
      out.set(channel, { action: "skip", reason: "no_email" });
      continue;
    }
    if (channel === "sms" && !input.settings.phone) {
      out.set(channel, { action: "skip", reason: "no_phone" });
      continue;
    }
    if (channel === "push" && input.pushSubscriptions === 0) {
      out.set(channel, { action: "skip", reason: "no_push_subscription" });
      continue;
    }
    if (!input.available.has(channel)) {
      out.set(channel, { action: "skip", reason: "channel_not_configured" });
      continue;
    }
    if (quietEnd !== null && EXTERNAL_CHANNELS.has(channel)) {
      out.set(channel, { action: "defer", until: quietEnd });
      continue;
    }
    out.set(channel, { action: "send" });
  }
  return out;
}
