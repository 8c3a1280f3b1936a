import { createRoute, z } from "@hono/zod-openapi";
import { noteLogin } from "../analytics/api-calls.ts";
import { authDeps } from "../auth/deps.ts";
import { requireSession } from "../auth/middleware.ts";
import { EmailSchema, errorResponses, NewPasswordSchema, SESSION_SECURITY } from "../auth/openapi.ts";
import { PASSWORD_MAX_LENGTH } from "../auth/password.ts";
import {
  checkCredentials,
  logout,
  registerUser,
  rotateRefreshToken,
  startSession,
  toProfile,
} from "../auth/users.ts";
import { ApiError } from "../errors.ts";
import { authRateLimit, loginFailures } from "../middleware/rate-limit.ts";
import { notifyLogin } from "../notifications/security.ts";
import { createRouter } from "../openapi.ts";
import { ProfileSchema } from "./me.ts";

const TAG = "Auth";

export const TokenPairSchema = z
  .object({
    access_token: z.string().openapi({ description: "JWT; send as `Authorization: Bearer <token>`" }),
    refresh_token: z.string().openapi({ description: "Opaque, single use: every refresh returns a new one" }),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int().openapi({ description: "Access-token lifetime in seconds", example: 900 }),
  })
  .openapi("TokenPair");

const RegisterBody = z
  .object({
    email: EmailSchema,
    password: NewPasswordSchema,
    display_name: z.string().trim().min(1).max(64).openapi({ example: "Ada" }),
  })
  .openapi("RegisterRequest");

const LoginBody = z
  .object({ email: EmailSchema, password: z.string().min(1).max(PASSWORD_MAX_LENGTH) })
  .openapi("LoginRequest");

const RefreshBody = z.object({ refresh_token: z.string().min(1).max(256) }).openapi("RefreshRequest");

const json = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

const register = createRoute({
  method: "post",
  path: "/v1/auth/register",
  tags: [TAG],
  summary: "Create a trader account",
  description: "Returns the profile and a first token pair. Rate limited per IP.",
  request: { body: json(RegisterBody) },
  responses: {
    201: {
      description: "Account created",
      content: {
        "application/json": { schema: TokenPairSchema.extend({ user: ProfileSchema }).openapi("Registered") },
      },
    },
    ...errorResponses(400, 409, 422, 429, 503),
  },
});

const login = createRoute({
  method: "post",
  path: "/v1/auth/login",
  tags: [TAG],
  summary: "Sign in with email and password",
  description:
    "Unknown email and wrong password give the same 401 `invalid_credentials`. Failed attempts are " +
    "limited per account (429 with `Retry-After`).",
  request: { body: json(LoginBody) },
  responses: {
    200: { description: "Signed in", content: { "application/json": { schema: TokenPairSchema } } },
    ...errorResponses(400, 401, 422, 429, 503),
  },
});

const refresh = createRoute({
  method: "post",
  path: "/v1/auth/refresh",
  tags: [TAG],
  summary: "Exchange a refresh token for a new pair",
  description:
    "Refresh tokens are single use. Presenting one that was already used revokes the whole session " +
    "(every token descended from the same login).",
  request: { body: json(RefreshBody) },
  responses: {
    200: { description: "A new pair", content: { "application/json": { schema: TokenPairSchema } } },
    ...errorResponses(400, 401, 422, 429, 503),
  },
});

const logoutRoute = createRoute({
  method: "post",
  path: "/v1/auth/logout",
  tags: [TAG],
  summary: "Sign out",
  description:
    "Revokes the current session and the session of the given refresh token (if it is yours); " +
    "their access tokens stop working at once.",
  security: SESSION_SECURITY,
  middleware: [requireSession] as const,
  request: { body: json(RefreshBody) },
  responses: {
    204: { description: "Signed out" },
    ...errorResponses(400, 401, 403, 422, 429, 503),
  },
});

export const auth = createRouter();
auth.use("/v1/auth/*", authRateLimit);

auth.openapi(register, async (c) => {
  const body = c.req.valid("json");
  const deps = authDeps(c);
  const user = await registerUser(deps, {
    email: body.email,
    password: body.password,
    displayName: body.display_name,
  });
  const tokens = await startSession(deps, user);
  c.get("log").info("user registered", { user_id: user.id });
  return c.json({ ...tokens, user: toProfile(user) }, 201);
});

auth.openapi(login, async (c) => {
  const { email, password } = c.req.valid("json");
  await loginFailures.assertNotLocked(c, email);
  const deps = authDeps(c);
  const user = await checkCredentials(deps.dbs, email, password);
  if (!user) {
    await loginFailures.record(c, email);
    throw new ApiError(401, "invalid_credentials", "email or password is incorrect");
  }
  noteLogin(c, user.id); // the login's analytics data point carries the user (docs/analytics.md)
  const tokens = await startSession(deps, user);
  notifyLogin(c, user.id); // security notification (docs/notifications.md)
  return c.json(tokens, 200);
});

auth.openapi(refresh, async (c) => {
  const { refresh_token } = c.req.valid("json");
  return c.json(await rotateRefreshToken(authDeps(c), refresh_token), 200);
});

auth.openapi(logoutRoute, async (c) => {
  const { refresh_token } = c.req.valid("json");
  await logout(authDeps(c), c.var.principal, refresh_token);
  return c.body(null, 204);
});
