/**
 * Message templates per notification type × channel × language.
 *
 * A template is text with `{{variable}}` or `{{variable|filter}}` placeholders. Filters localise a value:
 * - `num`: a decimal string ("1234.5") with the language's separators ("1,234.5" / "1.234,5"); exact,
 *   the string is never turned into a float;
 * - `time`: milliseconds since epoch as a date and time in the user's time zone;
 * - `side` (buy / sell) and `direction` (above / below) in the user's language.
 *
 * Each language has, per type, a `title` and `body` (in-app and Web Push), an `sms` text, and an email
 * made from the subject (= title), the body, an optional `emailExtra` paragraph and a footer. Rendering
 * a placeholder whose variable is missing is an error ({@link TemplateError}): the producer forgot it,
 * and sending "Your order for  was filled" is worse than not sending.
 *
 * Pure: no Workers, Node, Postgres or Redis APIs (Intl is ECMAScript).
 */
import type { Channel, Language, NotificationType } from "./types.ts";

export interface TemplateSet {
  title: string;
  body: string;
  sms: string;
  /** A second paragraph only the email carries (what to do next). */
  emailExtra?: string;
}

interface LanguagePack {
  types: Record<NotificationType, TemplateSet>;
  side: Record<string, string>;
  direction: Record<string, string>;
  /** Email footer: where preferences are changed. */
  footer: string;
  /** Decimal separator and thousands separator. */
  decimal: string;
  group: string;
  /** BCP 47 locale for dates. */
  locale: string;
}

const EN: LanguagePack = {
  types: {
    order_filled: {
      title: "Order filled: {{symbol}}",
      body: "Your {{side|side}} order for {{qty|num}} {{symbol}} filled at an average price of {{avg_price|num}}.",
      sms: "PrepX: {{side|side}} {{qty|num}} {{symbol}} filled at {{avg_price|num}}.",
    },
    order_partially_filled: {
      title: "Order partially filled: {{symbol}}",
      body: "{{filled_qty|num}} of {{qty|num}} {{symbol}} of your {{side|side}} order filled so far, at an average price of {{avg_price|num}}.",
      sms: "PrepX: {{filled_qty|num}}/{{qty|num}} {{symbol}} filled ({{side|side}}) at {{avg_price|num}}.",
    },
    order_canceled: {
      title: "Order canceled: {{symbol}}",
      body: "Your {{side|side}} order for {{qty|num}} {{symbol}} was canceled with {{filled_qty|num}} filled.",
      sms: "PrepX: {{side|side}} {{qty|num}} {{symbol}} canceled ({{filled_qty|num}} filled).",
    },
    order_rejected: {
      title: "Order rejected: {{symbol}}",
      body: "Your {{side|side}} order for {{qty|num}} {{symbol}} was rejected ({{reason}}).",
      sms: "PrepX: {{side|side}} {{qty|num}} {{symbol}} rejected ({{reason}}).",
    },
    price_alert: {
      title: "{{symbol}} is {{direction|direction}} {{target|num}}",
      body: "{{symbol}} traded at {{price|num}} on {{at|time}}: {{direction|direction}} your alert price of {{target|num}}.",
      sms: "PrepX alert: {{symbol}} traded at {{price|num}} ({{direction|direction}} {{target|num}}).",
    },
    buying_power_low: {
      title: "Buying power is low",
      body: "Your buying power is {{buying_power|num}} USD, below your warning level of {{threshold|num}} USD ({{at|time}}).",
      sms: "PrepX: buying power {{buying_power|num}} USD is below {{threshold|num}} USD.",
      emailExtra:
        "Open orders hold part of your cash. Cancel some, or lower the warning level in your preferences.",
    },
    security_login: {
      title: "New sign-in to your account",
      body: "Someone signed in to your PrepX account on {{at|time}} from {{ip}} ({{user_agent}}).",
      sms: "PrepX: new sign-in on {{at|time}} from {{ip}}. Not you? Change your password.",
      emailExtra: "If this was not you, change your password now: every session will be signed out.",
    },
    security_api_key: {
      title: "New API key created",
      body: 'An API key named "{{name}}" ({{key_id}}) was created on {{at|time}}.',
      sms: "PrepX: API key {{key_id}} created on {{at|time}}. Not you? Revoke it.",
      emailExtra:
        "If you did not create it, revoke it (DELETE /v1/api-keys/{{key_id}}) and change your password.",
    },
  },
  side: { buy: "buy", sell: "sell" },
  direction: { above: "above", below: "below" },
  footer:
    "You receive this because of your PrepX notification preferences; change them in Settings → Notifications.",
  decimal: ".",
  group: ",",
  locale: "en-US",
};

const ES: LanguagePack = {
  types: {
    order_filled: {
      title: "Orden ejecutada: {{symbol}}",
      body: "Tu orden de {{side|side}} de {{qty|num}} {{symbol}} se ejecutó a un precio medio de {{avg_price|num}}.",
      sms: "PrepX: {{side|side}} {{qty|num}} {{symbol}} ejecutada a {{avg_price|num}}.",
    },
    order_partially_filled: {
      title: "Orden ejecutada en parte: {{symbol}}",
      body: "De tu orden de {{side|side}} se han ejecutado {{filled_qty|num}} de {{qty|num}} {{symbol}}, a un precio medio de {{avg_price|num}}.",
      sms: "PrepX: {{filled_qty|num}}/{{qty|num}} {{symbol}} ejecutadas ({{side|side}}) a {{avg_price|num}}.",
    },
    order_canceled: {
      title: "Orden cancelada: {{symbol}}",
      body: "Tu orden de {{side|side}} de {{qty|num}} {{symbol}} se canceló con {{filled_qty|num}} ejecutadas.",
      sms: "PrepX: {{side|side}} {{qty|num}} {{symbol}} cancelada ({{filled_qty|num}} ejecutadas).",
    },
    order_rejected: {
      title: "Orden rechazada: {{symbol}}",
      body: "Tu orden de {{side|side}} de {{qty|num}} {{symbol}} fue rechazada ({{reason}}).",
      sms: "PrepX: {{side|side}} {{qty|num}} {{symbol}} rechazada ({{reason}}).",
    },
    price_alert: {
      title: "{{symbol}} está {{direction|direction}} {{target|num}}",
      body: "{{symbol}} cotizó a {{price|num}} el {{at|time}}: {{direction|direction}} tu precio de alerta de {{target|num}}.",
      sms: "Alerta PrepX: {{symbol}} cotizó a {{price|num}} ({{direction|direction}} {{target|num}}).",
    },
    buying_power_low: {
      title: "Poder de compra bajo",
      body: "Tu poder de compra es de {{buying_power|num}} USD, por debajo de tu nivel de aviso de {{threshold|num}} USD ({{at|time}}).",
      sms: "PrepX: poder de compra {{buying_power|num}} USD, por debajo de {{threshold|num}} USD.",
      emailExtra:
        "Las órdenes abiertas reservan parte de tu efectivo. Cancela alguna o baja el nivel de aviso en tus preferencias.",
    },
    security_login: {
      title: "Nuevo inicio de sesión en tu cuenta",
      body: "Alguien inició sesión en tu cuenta de PrepX el {{at|time}} desde {{ip}} ({{user_agent}}).",
      sms: "PrepX: nuevo inicio de sesión el {{at|time}} desde {{ip}}. ¿No fuiste tú? Cambia tu contraseña.",
      emailExtra: "Si no fuiste tú, cambia tu contraseña ahora: se cerrarán todas las sesiones.",
    },
    security_api_key: {
      title: "Nueva clave de API creada",
      body: 'Se creó una clave de API llamada "{{name}}" ({{key_id}}) el {{at|time}}.',
      sms: "PrepX: clave de API {{key_id}} creada el {{at|time}}. ¿No fuiste tú? Revócala.",
      emailExtra: "Si no la creaste tú, revócala (DELETE /v1/api-keys/{{key_id}}) y cambia tu contraseña.",
    },
  },
  side: { buy: "compra", sell: "venta" },
  direction: { above: "por encima de", below: "por debajo de" },
  footer:
    "Recibes este mensaje por tus preferencias de notificación de PrepX; cámbialas en Ajustes → Notificaciones.",
  decimal: ",",
  group: ".",
  locale: "es-ES",
};

export const LANGUAGE_PACKS: Readonly<Record<Language, LanguagePack>> = { en: EN, es: ES };

export class TemplateError extends Error {
  override name = "TemplateError";
}

export interface RenderContext {
  language: Language;
  timezone: string;
}

const PLACEHOLDER = /\{\{\s*([a-z_][a-z0-9_]*)\s*(?:\|\s*([a-z]+)\s*)?\}\}/g;

/**
 * A decimal string with the language's separators, digit for digit.
 *
 * @example
 * localizeDecimal("-1234567.50", ".", ","); // "-1,234,567.50"
 * localizeDecimal("1234.5", ",", ".");      // "1.234,5"
 */
export function localizeDecimal(value: string, decimal: string, group: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value);
  if (!m) return value;
  const [, sign = "", int = "", frac] = m;
  let grouped = "";
  for (let i = 0; i < int.length; i++) {
    if (i > 0 && (int.length - i) % 3 === 0) grouped += group;
    grouped += int[i];
  }
  return `${sign}${grouped}${frac === undefined ? "" : `${decimal}${frac}`}`;
}

/** A millisecond timestamp as a date and time in `timezone`, e.g. "Nov 20, 2026, 03:30 PM UTC". */
export function localizeTime(ms: string, pack: Pick<LanguagePack, "locale">, timezone: string): string {
  const n = Number(ms);
  if (!Number.isFinite(n)) return ms;
  try {
    return new Intl.DateTimeFormat(pack.locale, {
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      timeZone: timezone,
      timeZoneName: "short",
    }).format(new Date(n));
  } catch {
    return new Date(n).toISOString();
  }
}

/** Fills the placeholders of `template`; throws {@link TemplateError} naming a missing variable or filter. */
export function fill(template: string, vars: Readonly<Record<string, string>>, ctx: RenderContext): string {
  const pack = LANGUAGE_PACKS[ctx.language];
  return template.replace(PLACEHOLDER, (_all, name: string, filter: string | undefined) => {
    const value = vars[name];
    if (value === undefined) throw new TemplateError(`template variable ${name} is missing`);
    switch (filter) {
      case undefined:
        return value;
      case "num":
        return localizeDecimal(value, pack.decimal, pack.group);
      case "time":
        return localizeTime(value, pack, ctx.timezone);
      case "side":
        return pack.side[value] ?? value;
      case "direction":
        return pack.direction[value] ?? value;
      default:
        throw new TemplateError(`unknown template filter ${filter}`);
    }
  });
}

/** What each channel sends. */
export type RenderedMessage =
  | { channel: "in_app" | "push"; title: string; body: string }
  | { channel: "email"; subject: string; text: string; html: string }
  | { channel: "sms"; text: string };

/** SMS longer than two GSM-7 segments cost more and arrive split; cut with an ellipsis. */
export const SMS_MAX_CHARS = 306;

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] ?? ch,
  );

/**
 * Renders one notification for one channel in the user's language.
 *
 * @example
 * render("price_alert", "sms", { symbol: "ACME", direction: "above", target: "101", price: "101.5", at: "0", alert_id: "a" },
 *   { language: "en", timezone: "UTC" });
 * // { channel: "sms", text: "PrepX alert: ACME traded at 101.5 (above 101)." }
 */
export function render(
  type: NotificationType,
  channel: Channel,
  vars: Readonly<Record<string, string>>,
  ctx: RenderContext,
): RenderedMessage {
  const pack = LANGUAGE_PACKS[ctx.language];
  const t = pack.types[type];
  switch (channel) {
    case "in_app":
    case "push":
      return { channel, title: fill(t.title, vars, ctx), body: fill(t.body, vars, ctx) };
    case "sms": {
      const text = fill(t.sms, vars, ctx);
      return { channel, text: text.length > SMS_MAX_CHARS ? `${text.slice(0, SMS_MAX_CHARS - 1)}…` : text };
    }
    case "email": {
      const subject = fill(t.title, vars, ctx);
      const paragraphs = [fill(t.body, vars, ctx)];
      if (t.emailExtra) paragraphs.push(fill(t.emailExtra, vars, ctx));
      const text = `${paragraphs.join("\n\n")}\n\n--\n${pack.footer}\n`;
      const html =
        `<!doctype html><html lang="${ctx.language}"><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>` +
        `<body style="font:15px/1.5 system-ui,sans-serif;color:#1b1f24;max-width:36rem">` +
        `<h1 style="font-size:18px">${escapeHtml(subject)}</h1>` +
        paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join("") +
        `<p style="color:#666;font-size:12px">${escapeHtml(pack.footer)}</p></body></html>`;
      return { channel, subject, text, html };
    }
  }
}
