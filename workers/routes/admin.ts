import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import { audit } from "../auth/audit.ts";
import { base64url, fromBase64url } from "../auth/crypto.ts";
import { authDeps } from "../auth/deps.ts";
import { requireAdmin } from "../auth/middleware.ts";
import { AUTH_SECURITY, errorResponses } from "../auth/openapi.ts";
import { ROLES } from "../auth/types.ts";
import { listUsers, toProfile, type UserListCursor } from "../auth/users.ts";
import { auditLog } from "../db/schema/global.ts";
import { ApiError } from "../errors.ts";
import { createRouter } from "../openapi.ts";
import { ProfileSchema } from "./me.ts";

export { audit };

const TAG = "Admin";

const encodeCursor = (value: unknown) => base64url(new TextEncoder().encode(JSON.stringify(value)));

function decodeCursor<T>(raw: string | undefined, valid: (v: unknown) => v is T): T | undefined {
  if (raw === undefined) return undefined;
  const bytes = fromBase64url(raw);
  let value: unknown;
  try {
    value = bytes ? JSON.parse(new TextDecoder().decode(bytes)) : undefined;
  } catch {
    value = undefined;
  }
  if (!valid(value)) throw new ApiError(422, "validation_failed", "cursor: not a cursor from this endpoint");
  return value;
}

const isUserCursor = (v: unknown): v is UserListCursor =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as UserListCursor).createdAt === "string" &&
  !Number.isNaN(Date.parse((v as UserListCursor).createdAt)) &&
  typeof (v as UserListCursor).id === "string" &&
  /^[0-9a-f-]{36}$/.test((v as UserListCursor).id);

const isAuditCursor = (v: unknown): v is { id: number } =>
  typeof v === "object" && v !== null && Number.isSafeInteger((v as { id: number }).id);

const LimitQuery = z.coerce.number().int().min(1).max(200).default(50);

const listUsersRoute = createRoute({
  method: "get",
  path: "/admin/users",
  tags: [TAG],
  summary: "List users across all shards (admin)",
  description: "Newest first, from the read replicas. Audited as `users.list`.",
  security: AUTH_SECURITY,
  middleware: [requireAdmin] as const,
  request: {
    query: z.object({
      limit: LimitQuery,
      cursor: z.string().max(512).optional().openapi({ description: "`next_cursor` of the previous page" }),
      role: z.enum(ROLES).optional(),
      status: z.enum(["active", "closed"]).optional(),
    }),
  },
  responses: {
    200: {
      description: "A page of users",
      content: {
        "application/json": {
          schema: z
            .object({
              users: z.array(ProfileSchema.extend({ shard: z.number().int() })),
              next_cursor: z.string().nullable(),
            })
            .openapi("UserPage"),
        },
      },
    },
    ...errorResponses(401, 403, 422, 503),
  },
});

const AuditEntrySchema = z
  .object({
    id: z.number().int(),
    at: z.string().openapi({ format: "date-time" }),
    actor_user_id: z.string(),
    actor_via: z.string(),
    actor_key_id: z.string().nullable(),
    action: z.string(),
    target: z.string(),
    details: z.record(z.string(), z.unknown()),
    request_id: z.string(),
    ip: z.string().nullable(),
  })
  .openapi("AuditEntry");

const listAuditRoute = createRoute({
  method: "get",
  path: "/admin/audit-log",
  tags: [TAG],
  summary: "Read the admin audit log (admin)",
  description: "Newest first. Filter by actor or action.",
  security: AUTH_SECURITY,
  middleware: [requireAdmin] as const,
  request: {
    query: z.object({
      limit: LimitQuery,
      cursor: z.string().max(512).optional(),
      actor_user_id: z.uuid().optional(),
      action: z.string().max(64).optional(),
    }),
  },
  responses: {
    200: {
      description: "A page of audit entries",
      content: {
        "application/json": {
          schema: z.object({ entries: z.array(AuditEntrySchema), next_cursor: z.string().nullable() }),
        },
      },
    },
    ...errorResponses(401, 403, 422, 503),
  },
});

/**
 * Admin routes. Every `/admin/*` path is also behind `requireAdmin` at the app level (app.ts), so a
 * route added by another module cannot forget it; audit each action with `audit(c, ...)`.
 */
export const admin = createRouter();

admin.openapi(listUsersRoute, async (c) => {
  const query = c.req.valid("query");
  const after = decodeCursor(query.cursor, isUserCursor);
  await audit(c, "users.list", "users", { role: query.role ?? null, status: query.status ?? null });
  const page = await listUsers(authDeps(c).dbs, {
    limit: query.limit,
    ...(after && { after }),
    ...(query.role && { role: query.role }),
    ...(query.status && { status: query.status }),
  });
  return c.json(
    {
      users: page.users.map((u) => ({ ...toProfile(u), shard: u.shard })),
      next_cursor: page.next ? encodeCursor(page.next) : null,
    },
    200,
  );
});

admin.openapi(listAuditRoute, async (c) => {
  const query = c.req.valid("query");
  const after = decodeCursor(query.cursor, isAuditCursor);
  const rows = await authDeps(c)
    .dbs.global.$primary.select()
    .from(auditLog)
    .where(
      and(
        after ? lt(auditLog.id, after.id) : undefined,
        query.actor_user_id ? eq(auditLog.actorUserId, query.actor_user_id) : undefined,
        query.action ? eq(auditLog.action, query.action) : undefined,
      ),
    )
    .orderBy(desc(auditLog.id))
    .limit(query.limit + 1);
  const page = rows.slice(0, query.limit);
  const last = page[page.length - 1];
  return c.json(
    {
      entries: page.map((r) => ({
        id: r.id,
        at: r.at.toISOString(),
        actor_user_id: r.actorUserId,
        actor_via: r.actorVia,
        actor_key_id: r.actorKeyId,
        action: r.action,
        target: r.target,
        details: (r.details ?? {}) as Record<string, unknown>,
        request_id: r.requestId,
        ip: r.ip,
      })),
      next_cursor: rows.length > query.limit && last ? encodeCursor({ id: last.id }) : null,
    },
    200,
  );
});
