import type { Context } from "hono";
import { db } from "../db/index.ts";
import { auditLog } from "../db/schema/global.ts";
import type { AppBindings } from "../env.ts";
import { principalOf } from "./middleware.ts";

/**
 * Records an admin action in the global `audit_log`: who (the principal, and the API key if one
 * was used), what (`action`, `target`, `details`), when (`at`, server time), and the request id
 * and client IP. Awaited, so an action that must be audited fails loudly if the record cannot be
 * written; call it before the effect when the action must not happen unaudited, or after it with
 * the outcome in `details`.
 *
 * @example
 * await audit(c, "symbol.halt", `symbol:${symbol}`, { reason });
 */
export async function audit(
  c: Context,
  action: string,
  target: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  const ctx = c as Context<AppBindings>;
  const principal = principalOf(ctx);
  await db(ctx.env, (p) => ctx.executionCtx.waitUntil(p))
    .global.insert(auditLog)
    .values({
      actorUserId: principal.userId,
      actorVia: principal.via,
      actorKeyId: principal.keyId ?? null,
      action,
      target,
      details,
      requestId: ctx.get("requestId"),
      ip: ctx.req.header("CF-Connecting-IP") ?? null,
    });
  ctx.get("log").info("audit", { action, target, actor_user_id: principal.userId });
}
