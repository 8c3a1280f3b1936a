import { createRoute, z } from "@hono/zod-openapi";
import { createApiKey, listApiKeys, MAX_ACTIVE_KEYS_PER_USER, revokeApiKey } from "../auth/api-keys.ts";
import { authDeps } from "../auth/deps.ts";
import { requireTraderSession } from "../auth/middleware.ts";
import { errorResponses, SESSION_SECURITY } from "../auth/openapi.ts";
import { notifyApiKeyCreated } from "../notifications/security.ts";
import { createRouter } from "../openapi.ts";

const TAG = "API keys";

const ApiKeySchema = z
  .object({
    key_id: z.string().openapi({ example: "PKQ2N7XK4M3ZB6V5T8RA" }),
    name: z.string(),
    created_at: z.string().openapi({ format: "date-time" }),
    last_used_at: z
      .string()
      .nullable()
      .openapi({ format: "date-time", description: "Approximate (refreshed every few minutes)" }),
  })
  .openapi("ApiKey");

const CreatedApiKeySchema = ApiKeySchema.extend({
  secret_key: z.string().openapi({ description: "Shown once; store it now. Send as APCA-API-SECRET-KEY." }),
}).openapi("CreatedApiKey");

const createKey = createRoute({
  method: "post",
  path: "/v1/api-keys",
  tags: [TAG],
  summary: "Create an API key for a bot or SDK",
  description:
    "The secret is returned once. Use the pair as `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY` headers, " +
    `as with Alpaca. At most ${MAX_ACTIVE_KEYS_PER_USER} active keys per account.`,
  security: SESSION_SECURITY,
  middleware: [requireTraderSession] as const,
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({ name: z.string().trim().min(1).max(64) }).openapi("CreateApiKeyRequest"),
        },
      },
    },
  },
  responses: {
    201: { description: "Created", content: { "application/json": { schema: CreatedApiKeySchema } } },
    ...errorResponses(400, 401, 403, 409, 422, 429, 503),
  },
});

const listKeys = createRoute({
  method: "get",
  path: "/v1/api-keys",
  tags: [TAG],
  summary: "The caller's active API keys (never their secrets)",
  security: SESSION_SECURITY,
  middleware: [requireTraderSession] as const,
  responses: {
    200: {
      description: "Active keys, newest first",
      content: { "application/json": { schema: z.object({ api_keys: z.array(ApiKeySchema) }) } },
    },
    ...errorResponses(401, 403, 429, 503),
  },
});

const revokeKey = createRoute({
  method: "delete",
  path: "/v1/api-keys/{id}",
  tags: [TAG],
  summary: "Revoke an API key",
  description: "Takes effect at once. Someone else's key id answers 404, like an unknown one.",
  security: SESSION_SECURITY,
  middleware: [requireTraderSession] as const,
  request: {
    params: z.object({
      id: z
        .string()
        .min(1)
        .max(64)
        .openapi({ param: { name: "id", in: "path" } }),
    }),
  },
  responses: { 204: { description: "Revoked" }, ...errorResponses(401, 403, 404, 422, 429, 503) },
});

export const apiKeysRouter = createRouter();

apiKeysRouter.openapi(createKey, async (c) => {
  const { dbs } = authDeps(c);
  const key = await createApiKey(dbs, c.var.principal.userId, c.req.valid("json").name);
  c.get("log").info("api key created", { user_id: c.var.principal.userId, key_id: key.key_id });
  notifyApiKeyCreated(c, c.var.principal.userId, key.key_id, key.name);
  return c.json(key, 201);
});

apiKeysRouter.openapi(listKeys, async (c) => {
  const { dbs } = authDeps(c);
  return c.json({ api_keys: await listApiKeys(dbs, c.var.principal.userId) }, 200);
});

apiKeysRouter.openapi(revokeKey, async (c) => {
  const deps = authDeps(c);
  const { id } = c.req.valid("param");
  await revokeApiKey(deps.dbs, deps.redis(), c.var.principal.userId, id);
  c.get("log").info("api key revoked", { user_id: c.var.principal.userId, key_id: id });
  return c.body(null, 204);
});
