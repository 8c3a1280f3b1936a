/**
 * Security notifications: a new login and a new API key are enqueued from their routes in
 * `waitUntil`, after the response is decided, so a slow or unavailable queue never delays or fails a login.
 * A lost enqueue is logged (the login itself is in the logs and, for keys, in `GET /v1/api-keys`).
 */
import type { Context } from "hono";
import type { AppBindings } from "../env.ts";
import { clientIp } from "../middleware/rate-limit.ts";
import { enqueueJobs, securityJob } from "./jobs.ts";

function enqueueSoon<B extends AppBindings>(c: Context<B>, job: ReturnType<typeof securityJob>): void {
  const sending = enqueueJobs(c.env, [job]).catch((error: unknown) => {
    c.get("log").warn("security notification not enqueued", {
      notification_id: job.id,
      error: error instanceof Error ? error.message : String(error),
    });
  });
  try {
    c.executionCtx.waitUntil(sending);
  } catch {
    // No execution context (app.request in tests): the promise still runs.
  }
}

/** "Someone signed in": where from (client address and user agent). */
export function notifyLogin<B extends AppBindings>(c: Context<B>, userId: string): void {
  const userAgent = (c.req.header("user-agent") ?? "unknown client").slice(0, 120);
  enqueueSoon(
    c,
    securityJob("security_login", userId, crypto.randomUUID(), { ip: clientIp(c), user_agent: userAgent }),
  );
}

/** "An API key was created". */
export function notifyApiKeyCreated<B extends AppBindings>(
  c: Context<B>,
  userId: string,
  keyId: string,
  name: string,
): void {
  enqueueSoon(c, securityJob("security_api_key", userId, keyId, { key_id: keyId, name: name.slice(0, 64) }));
}
