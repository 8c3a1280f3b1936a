import { createRoute, z } from "@hono/zod-openapi";
import { authDeps } from "../auth/deps.ts";
import { requireTrader, requireTraderSession } from "../auth/middleware.ts";
import { AUTH_SECURITY, errorResponses, SESSION_SECURITY } from "../auth/openapi.ts";
import { ROLES } from "../auth/types.ts";
import { closeAccount, getProfile, toProfile, updateProfile } from "../auth/users.ts";
import { createRouter } from "../openapi.ts";

const TAG = "Account";

const NotificationPreferencesSchema = z
  .object({
    email: z.boolean().openapi({ description: "Send notifications by email" }),
    push: z.boolean().openapi({
      description:
        "Push notifications: in-app over the WebSocket and Web Push (details: /v1/notifications/preferences)",
    }),
    sms: z.boolean().openapi({ description: "Send notifications by SMS" }),
    order_fills: z.boolean().openapi({ description: "Notify when an order fills" }),
    order_cancellations: z.boolean().openapi({ description: "Notify when an order is cancelled or expires" }),
    margin_alerts: z.boolean().openapi({ description: "Notify when buying power runs low" }),
  })
  .openapi("NotificationPreferences");

export const ProfileSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    display_name: z.string(),
    role: z.enum(ROLES),
    base_currency: z.string().openapi({ example: "USD" }),
    notification_preferences: NotificationPreferencesSchema,
    status: z.enum(["active", "closed"]),
    created_at: z.string().openapi({ format: "date-time" }),
  })
  .openapi("Profile");

const ProfilePatchSchema = z
  .strictObject({
    display_name: z.string().trim().min(1).max(64).optional(),
    base_currency: z
      .string()
      .regex(/^[A-Z]{3}$/, "an ISO 4217 code such as USD")
      .optional()
      .openapi({ description: "Currency reports are shown in (ISO 4217); trading is in USD" }),
    notification_preferences: NotificationPreferencesSchema.partial().strict().optional(),
  })
  .openapi("ProfilePatch");

const profileResponse = {
  200: { description: "The caller's profile", content: { "application/json": { schema: ProfileSchema } } },
};

const getMe = createRoute({
  method: "get",
  path: "/v1/me",
  tags: [TAG],
  summary: "The caller's profile",
  security: AUTH_SECURITY,
  middleware: [requireTrader] as const,
  responses: { ...profileResponse, ...errorResponses(401, 404, 429, 503) },
});

const patchMe = createRoute({
  method: "patch",
  path: "/v1/me",
  tags: [TAG],
  summary: "Update display name, base currency or notification preferences",
  description: "Only the fields sent change; notification preferences merge key by key.",
  security: AUTH_SECURITY,
  middleware: [requireTrader] as const,
  request: { body: { required: true, content: { "application/json": { schema: ProfilePatchSchema } } } },
  responses: { ...profileResponse, ...errorResponses(400, 401, 404, 422, 429, 503) },
});

const deleteMe = createRoute({
  method: "delete",
  path: "/v1/me",
  tags: [TAG],
  summary: "Close the account",
  description:
    "Marks the account closed, revokes every session and API key at once and releases the email. " +
    "Trading history is kept. Needs a bearer token (not an API key).",
  security: SESSION_SECURITY,
  middleware: [requireTraderSession] as const,
  responses: { 204: { description: "Account closed" }, ...errorResponses(401, 403, 404, 429, 503) },
});

export const me = createRouter();

me.openapi(getMe, async (c) => {
  const { dbs } = authDeps(c);
  return c.json(toProfile(await getProfile(dbs, c.var.principal.userId)), 200);
});

me.openapi(patchMe, async (c) => {
  const { dbs } = authDeps(c);
  return c.json(toProfile(await updateProfile(dbs, c.var.principal.userId, c.req.valid("json"))), 200);
});

me.openapi(deleteMe, async (c) => {
  const { userId } = c.var.principal;
  await closeAccount(authDeps(c), userId);
  c.get("log").info("account closed", { user_id: userId });
  return c.body(null, 204);
});
