/**
 * `GET /dev/outbox` (HTML) and `GET /dev/outbox.json`: what the notification sink recorded instead of
 * sending — every email, SMS and Web Push message of development and test, newest first.
 * Only when ENVIRONMENT is "development" or "test"; 404 otherwise (and the sink is never used in
 * production, see workers/notifications/channels.ts). Not in the OpenAPI document.
 *
 * Filters: `?user_id=<uuid>`, `?channel=email|sms|push`, `?notification_id=…`, `?limit=` (default 100, max 500).
 */
import { sql } from "drizzle-orm";
import { type Context, Hono } from "hono";
import { db } from "../db/index.ts";
import { rowsOf } from "../db/recordset.ts";
import type { AppBindings } from "../env.ts";
import { ApiError } from "../errors.ts";
import { isDevEnvironment } from "../notifications/config.ts";

export const devOutbox = new Hono<AppBindings>();

interface SinkRow {
  id: string;
  notification_id: string;
  user_id: string;
  channel: string;
  recipient: string;
  subject: string | null;
  body: string;
  html: string | null;
  created_at: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function outbox(c: Context<AppBindings>) {
  if (!isDevEnvironment(c.env)) {
    throw new ApiError(404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
  }
  const userId = c.req.query("user_id") ?? null;
  if (userId !== null && !UUID.test(userId))
    throw new ApiError(422, "validation_failed", "user_id: not a UUID");
  const channel = c.req.query("channel") ?? null;
  if (channel !== null && !["email", "sms", "push"].includes(channel)) {
    throw new ApiError(422, "validation_failed", "channel: one of email, sms, push");
  }
  const notificationId = c.req.query("notification_id") ?? null;
  const limit = Math.min(500, Math.max(1, Number.parseInt(c.req.query("limit") ?? "100", 10) || 100));
  const result = await db(c.env).global.execute(sql`
    SELECT id, notification_id, user_id, channel, recipient, subject, body, html, created_at FROM notification_sink
    WHERE (${userId}::uuid IS NULL OR user_id = ${userId}::uuid)
      AND (${channel}::text IS NULL OR channel = ${channel}::text)
      AND (${notificationId}::text IS NULL OR notification_id = ${notificationId}::text)
    ORDER BY id DESC LIMIT ${limit}`);
  return rowsOf<SinkRow>(result).map((r) => ({
    id: Number(r.id),
    notification_id: r.notification_id,
    user_id: r.user_id,
    channel: r.channel,
    recipient: r.recipient,
    subject: r.subject,
    body: r.body,
    html: r.html,
    created_at: new Date(r.created_at).toISOString(),
  }));
}

devOutbox.get("/dev/outbox.json", async (c) => c.json({ messages: await outbox(c) }));

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] ?? ch,
  );

devOutbox.get("/dev/outbox", async (c) => {
  const messages = await outbox(c);
  const rows = messages
    .map(
      (m) =>
        `<tr><td>${m.id}</td><td>${escapeHtml(m.created_at)}</td><td class="ch">${escapeHtml(m.channel)}</td>` +
        `<td>${escapeHtml(m.recipient)}</td><td><b>${escapeHtml(m.subject ?? "")}</b><pre>${escapeHtml(m.body)}</pre>` +
        (m.html
          ? `<details><summary>HTML</summary><iframe sandbox srcdoc="${escapeHtml(m.html)}"></iframe></details>`
          : "") +
        `</td><td><code>${escapeHtml(m.notification_id)}</code><br><code>${escapeHtml(m.user_id)}</code></td></tr>`,
    )
    .join("\n");
  return c.html(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PrepX dev outbox</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:80rem;padding:0 1rem;color:#1b1f24}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left;vertical-align:top}
pre{white-space:pre-wrap;margin:.3rem 0}.ch{font-weight:600}iframe{width:100%;height:14rem;border:1px solid #ddd}</style>
</head><body><h1>Dev outbox</h1>
<p>What email, SMS and Web Push would have sent (${messages.length} newest; nothing left this machine). JSON:
<a href="/dev/outbox.json">/dev/outbox.json</a>. Filters: <code>?user_id=</code>, <code>?channel=</code>,
<code>?notification_id=</code>, <code>?limit=</code>.</p>
<table><thead><tr><th>#</th><th>At</th><th>Channel</th><th>To</th><th>Message</th><th>Notification / user</th></tr></thead>
<tbody>${rows || '<tr><td colspan="6">Nothing yet.</td></tr>'}</tbody></table></body></html>`);
});
