import { describe, expect, it } from "vitest";
import { type PlanInput, planDeliveries } from "./policy.ts";
import { CHANNELS, type Channel, DEFAULT_SETTINGS, type NotificationSettings } from "./types.ts";

const ALL = new Set<Channel>(CHANNELS);
const NOON = Date.UTC(2026, 10, 20, 12, 0);

function plan(
  overrides: Omit<Partial<PlanInput>, "settings"> & { settings?: Partial<NotificationSettings> } = {},
) {
  const { settings, ...rest } = overrides;
  return Object.fromEntries(
    planDeliveries({
      type: "price_alert",
      profile: {},
      accountEmail: "ann@example.com",
      pushSubscriptions: 1,
      available: ALL,
      now: NOON,
      ...rest,
      settings: { ...DEFAULT_SETTINGS, ...settings },
    }),
  );
}

describe("delivery planning", () => {
  it("sends a price alert in-app, by push and by email by default; SMS is opt-in", () => {
    expect(plan()).toEqual({
      in_app: { action: "send" },
      push: { action: "send" },
      email: { action: "send" },
      sms: { action: "skip", reason: "opted_out" },
    });
  });

  it("keeps order updates in-app and on push unless the user asks for email", () => {
    expect(plan({ type: "order_filled" }).email).toEqual({ action: "skip", reason: "opted_out" });
    expect(
      plan({ type: "order_filled", settings: { types: { order_filled: { email: true } } } }).email,
    ).toEqual({ action: "send" });
  });

  it("respects an opt-out per channel and per type", () => {
    expect(plan({ settings: { channels: { ...DEFAULT_SETTINGS.channels, email: false } } }).email).toEqual({
      action: "skip",
      reason: "opted_out",
    });
    const perType = plan({ settings: { types: { price_alert: { push: false, in_app: false } } } });
    expect(perType.push).toEqual({ action: "skip", reason: "opted_out" });
    expect(perType.in_app).toEqual({ action: "skip", reason: "opted_out" });
    expect(perType.email).toEqual({ action: "send" });
  });

  it("honours the profile's older coarse switches too", () => {
    expect(plan({ profile: { email: false } }).email).toEqual({ action: "skip", reason: "opted_out" });
    const noPush = plan({ profile: { push: false } });
    expect(noPush.in_app).toEqual({ action: "skip", reason: "opted_out" });
    expect(noPush.push).toEqual({ action: "skip", reason: "opted_out" });
    expect(plan({ type: "order_filled", profile: { order_fills: false } }).in_app).toEqual({
      action: "skip",
      reason: "opted_out",
    });
    expect(plan({ type: "buying_power_low", profile: { margin_alerts: false } }).email).toEqual({
      action: "skip",
      reason: "opted_out",
    });
  });

  it("skips channels without an address or a provider", () => {
    const p = plan({
      type: "security_login",
      accountEmail: null,
      pushSubscriptions: 0,
      settings: { channels: { ...DEFAULT_SETTINGS.channels, sms: true } },
    });
    expect(p).toMatchObject({
      push: { action: "skip", reason: "no_push_subscription" },
      email: { action: "skip", reason: "no_email" },
      sms: { action: "skip", reason: "no_phone" },
    });
    expect(plan({ available: new Set(["in_app"]) }).email).toEqual({
      action: "skip",
      reason: "channel_not_configured",
    });
  });

  it("defers external channels to the end of quiet hours but never in-app or security events", () => {
    const quiet = { quietHours: { start: 11 * 60, end: 13 * 60 }, timezone: "UTC" };
    expect(plan({ settings: quiet })).toEqual({
      in_app: { action: "send" },
      push: { action: "defer", until: Date.UTC(2026, 10, 20, 13, 0) },
      email: { action: "defer", until: Date.UTC(2026, 10, 20, 13, 0) },
      sms: { action: "skip", reason: "opted_out" },
    });
    expect(plan({ type: "security_login", settings: quiet }).email).toEqual({ action: "send" });
  });

  it("plans only the channels a deferred job brings back", () => {
    expect(Object.keys(plan({ only: ["email"] }))).toEqual(["email"]);
  });
});
