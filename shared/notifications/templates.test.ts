import { describe, expect, it } from "vitest";
import { fill, LANGUAGE_PACKS, localizeDecimal, render, SMS_MAX_CHARS, TemplateError } from "./templates.ts";
import { CHANNELS, LANGUAGES, NOTIFICATION_TYPES, type NotificationType, TYPE_VARIABLES } from "./types.ts";

const AT = String(Date.UTC(2026, 10, 20, 14, 30));

/** Sample variables of every type, as the producers fill them. */
const SAMPLE: Record<NotificationType, Record<string, string>> = {
  order_filled: {
    symbol: "ACME",
    side: "buy",
    qty: "10",
    filled_qty: "10",
    avg_price: "1234.5",
    order_id: "o1",
  },
  order_partially_filled: {
    symbol: "ACME",
    side: "sell",
    qty: "10",
    filled_qty: "4",
    avg_price: "101.25",
    order_id: "o1",
  },
  order_canceled: { symbol: "ACME", side: "buy", qty: "10", filled_qty: "0", order_id: "o1" },
  order_rejected: { symbol: "ACME", side: "buy", qty: "10", reason: "price_out_of_band", order_id: "o1" },
  price_alert: { symbol: "ACME", direction: "above", target: "101", price: "101.5", at: AT, alert_id: "a1" },
  buying_power_low: { buying_power: "4200.5", threshold: "5000", at: AT },
  security_login: { at: AT, ip: "203.0.113.9", user_agent: "curl/8" },
  security_api_key: { at: AT, key_id: "PK123", name: "my <bot>" },
};

describe("message templates", () => {
  it("exist for every type, channel and language, and use only the variables the type declares", () => {
    for (const language of LANGUAGES) {
      for (const type of NOTIFICATION_TYPES) {
        const declared = new Set(TYPE_VARIABLES[type]);
        const set = LANGUAGE_PACKS[language].types[type];
        for (const template of [set.title, set.body, set.sms, set.emailExtra ?? ""]) {
          for (const [, name] of template.matchAll(/\{\{\s*([a-z_]+)/g)) {
            expect(declared.has(name as string), `${language} ${type} uses ${name}`).toBe(true);
          }
        }
        for (const channel of CHANNELS) {
          const r = render(type, channel, SAMPLE[type], { language, timezone: "Europe/Madrid" });
          expect(r.channel).toBe(channel);
          expect(JSON.stringify(r)).not.toContain("{{");
        }
      }
    }
  });

  it("render an order fill in English and Spanish with each language's number format", () => {
    const vars = SAMPLE.order_filled;
    expect(render("order_filled", "in_app", vars, { language: "en", timezone: "UTC" })).toEqual({
      channel: "in_app",
      title: "Order filled: ACME",
      body: "Your buy order for 10 ACME filled at an average price of 1,234.5.",
    });
    expect(render("order_filled", "push", vars, { language: "es", timezone: "UTC" })).toEqual({
      channel: "push",
      title: "Orden ejecutada: ACME",
      body: "Tu orden de compra de 10 ACME se ejecutó a un precio medio de 1.234,5.",
    });
  });

  it("show times in the user's time zone", () => {
    const r = render("price_alert", "sms", SAMPLE.price_alert, {
      language: "en",
      timezone: "America/New_York",
    });
    expect(r).toEqual({ channel: "sms", text: "PrepX alert: ACME traded at 101.5 (above 101)." });
    const inApp = render("price_alert", "in_app", SAMPLE.price_alert, {
      language: "en",
      timezone: "America/New_York",
    });
    expect(inApp).toMatchObject({ title: "ACME is above 101" });
    expect((inApp as { body: string }).body).toContain("09:30 AM EST");
    const madrid = render("price_alert", "in_app", SAMPLE.price_alert, {
      language: "es",
      timezone: "Europe/Madrid",
    });
    expect((madrid as { body: string }).body).toMatch(/15:30/);
    expect((madrid as { body: string }).body).toContain("por encima de tu precio de alerta de 101");
  });

  it("build an email with subject, plain text, escaped HTML and the preferences footer", () => {
    const r = render("security_api_key", "email", SAMPLE.security_api_key, {
      language: "en",
      timezone: "UTC",
    });
    if (r.channel !== "email") throw new Error("not an email");
    expect(r.subject).toBe("New API key created");
    expect(r.text).toContain(
      'An API key named "my <bot>" (PK123) was created on Nov 20, 2026, 02:30 PM UTC.',
    );
    expect(r.text).toContain("revoke it (DELETE /v1/api-keys/PK123)");
    expect(r.text).toContain("Settings → Notifications");
    expect(r.html).toContain("my &lt;bot&gt;");
    expect(r.html).not.toContain("<bot>");
    expect(r.html).toContain('<html lang="en">');
  });

  it("cut SMS text to two segments", () => {
    const long = { ...SAMPLE.order_rejected, reason: "x".repeat(400) };
    const r = render("order_rejected", "sms", long, { language: "en", timezone: "UTC" });
    if (r.channel !== "sms") throw new Error("not an sms");
    expect(r.text).toHaveLength(SMS_MAX_CHARS);
    expect(r.text.endsWith("…")).toBe(true);
  });

  it("refuse to render with a missing variable rather than send a hole", () => {
    const { avg_price: _gone, ...vars } = SAMPLE.order_filled;
    expect(() => render("order_filled", "in_app", vars, { language: "en", timezone: "UTC" })).toThrow(
      TemplateError,
    );
    expect(() => fill("{{x|nope}}", { x: "1" }, { language: "en", timezone: "UTC" })).toThrow(/filter/);
  });
});

describe("localizeDecimal", () => {
  it("groups thousands and swaps separators digit for digit", () => {
    expect(localizeDecimal("0.000001", ".", ",")).toBe("0.000001");
    expect(localizeDecimal("-1234567.50", ".", ",")).toBe("-1,234,567.50");
    expect(localizeDecimal("100", ",", ".")).toBe("100");
    expect(localizeDecimal("1000", ",", ".")).toBe("1.000");
    expect(localizeDecimal("98765.4321", ",", ".")).toBe("98.765,4321");
    expect(localizeDecimal("not a number", ",", ".")).toBe("not a number");
  });
});
