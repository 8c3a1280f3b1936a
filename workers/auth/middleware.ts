import type { Context, MiddlewareHandler } from "hono";
import { db } from "../db/index.ts";
import type { AppBindings } from "../env.ts";
import { ApiError } from "../errors.ts";
import { redisClient } from "../lib/redis.ts";
import { enforceLimit, limiterAnswer } from "../middleware/rate-limit.ts";
import { authenticateApiKey } from "./api-keys.ts";
import { authConfig } from "./config.ts";
import { checkGate, type GateResult } from "./gate.ts";
import { checkRevoked } from "./revocation.ts";
import { type AccessClaims, parseSigningKeys, SigningKeyError, verifyAccessToken } from "./tokens.ts";
import type { AuthBindings, Principal } from "./types.ts";

const BEARER = /^Bearer[ \t]+([A-Za-z0-9._~+/-]+=*)[ \t]*$/i;
export const API_KEY_ID_HEADER = "APCA-API-KEY-ID";
export const API_SECRET_HEADER = "APCA-API-SECRET-KEY";

const unauthorized = (code: string, message: string) =>
  new ApiError(401, code, message, { headers: { "WWW-Authenticate": 'Bearer realm="prepx"' } });

const backendDown = () =>
  new ApiError(503, "auth_unavailable", "authentication is temporarily unavailable; retry shortly", {
    headers: { "Retry-After": "1" },
  });

/** Runs a call to Redis or Postgres on the auth path: a failure there is a 503, never a 500 or a pass. */
async function dependency<T>(c: Context<AppBindings>, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError) throw err;
    c.get("log").error("auth dependency failed", {
      dependency: what,
      error: err instanceof Error ? err.message : String(err),
    });
    throw backendDown();
  }
}

/**
 * Identifies the caller from `Authorization: Bearer <access token>` or from the Alpaca headers
 * `APCA-API-KEY-ID` + `APCA-API-SECRET-KEY`. Throws a 401 `ApiError` when neither is valid.
 * A bearer token costs a signature check and one Redis `MGET` (revocation); a cached API key one
 * Redis `GET`.
 */
export async function authenticate(c: Context<AppBindings>): Promise<Principal> {
  const keyId = c.req.header(API_KEY_ID_HEADER);
  const secret = c.req.header(API_SECRET_HEADER);
  if (keyId !== undefined || secret !== undefined) {
    if (!keyId || !secret) {
      throw unauthorized("invalid_api_key", `send both ${API_KEY_ID_HEADER} and ${API_SECRET_HEADER}`);
    }
    const redis = redisClient(c.env);
    const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
    const principal = await dependency(c, "api_key", () =>
      authenticateApiKey(() => db(c.env, waitUntil), redis, keyId, secret, waitUntil),
    );
    if (!principal) throw unauthorized("invalid_api_key", "API key id or secret is not valid");
    return principal;
  }

  const claims = await verifiedBearer(c);
  const status = await dependency(c, "revocation", () => checkRevoked(redisClient(c.env), claims));
  if (status === "revoked") throw unauthorized("invalid_token", "access token has been revoked");
  return principalOfClaims(claims);
}

function usesApiKey(c: Context<AppBindings>): boolean {
  return c.req.header(API_KEY_ID_HEADER) !== undefined || c.req.header(API_SECRET_HEADER) !== undefined;
}

function principalOfClaims(claims: AccessClaims): Principal {
  return { userId: claims.userId, role: claims.role, via: "jwt", sessionId: claims.sessionId };
}

/** The claims of the request's bearer access token: signature, algorithm, issuer, audience, expiry. */
async function verifiedBearer(c: Context<AppBindings>): Promise<AccessClaims> {
  const header = c.req.header("Authorization");
  if (!header) throw unauthorized("unauthorized", "authentication required");
  const token = BEARER.exec(header)?.[1];
  if (!token) throw unauthorized("invalid_token", "Authorization must be 'Bearer <access token>'");
  let keys: ReturnType<typeof parseSigningKeys>;
  try {
    keys = parseSigningKeys(c.env.JWT_SIGNING_KEYS);
  } catch (err) {
    if (err instanceof SigningKeyError) c.get("log").error("JWT keys misconfigured", { error: err.message });
    throw backendDown();
  }
  const verified = await verifyAccessToken(keys, token);
  if (!verified.ok) {
    throw verified.reason === "expired"
      ? unauthorized("token_expired", "access token has expired; refresh it")
      : unauthorized("invalid_token", "access token is not valid");
  }
  return verified.claims;
}

/**
 * Requires a signed-in caller (access token or API key) and sets `c.var.principal`.
 *
 * @example
 * const route = createRoute({ method: "get", path: "/v2/account", middleware: [requireAuth] as const, ... });
 * router.openapi(route, (c) => c.json(accountOf(c.var.principal.userId)));
 */
export const requireAuth: MiddlewareHandler<AuthBindings> = async (c, next) => {
  if (!c.get("principal")) c.set("principal", await authenticate(c as unknown as Context<AppBindings>));
  await next();
};

const sessionRequired = () =>
  new ApiError(403, "session_required", "this route needs a bearer access token, not an API key");

/**
 * `requireAuth` (or `requireSession`) and the per-user trading rate limit in one middleware, with one
 * Redis round trip for a bearer token: its revocation keys and the user's window in one script
 * (workers/auth/gate.ts). Every key and session of an account share one budget
 * (`RATE_LIMIT_TRADING_PER_MINUTE`), so extra API keys do not multiply it; every answer carries the
 * `RateLimit-*` headers, a refused request is a 429 with `Retry-After`.
 *
 * If Redis fails, a bearer token cannot be checked for revocation: 503, as `requireAuth`. A caller with an
 * API key (checked by its own lookup) is let through when only the limiter fails or is slower than the
 * limiters' timeout, as the other limits do.
 */
function traderGate(sessionOnly: boolean): MiddlewareHandler<AuthBindings> {
  return async (c, next) => {
    const app = c as unknown as Context<AppBindings>;
    let principal = c.get("principal") as Principal | undefined;
    let claims: AccessClaims | null = null;
    if (!principal) {
      if (usesApiKey(app)) principal = await authenticate(app);
      else {
        claims = await verifiedBearer(app);
        principal = principalOfClaims(claims);
      }
    }
    if (sessionOnly && principal.via !== "jwt") throw sessionRequired();
    const limit = {
      name: "trading_user",
      identifier: principal.userId,
      limit: authConfig(c.env).tradingPerMinute,
      windowMs: 60_000,
    };
    let gate: GateResult | null = null;
    if (claims !== null) {
      const checked = claims;
      gate = await dependency(app, "revocation", () => checkGate(redisClient(c.env), checked, limit));
      if (gate.revocation === "revoked") throw unauthorized("invalid_token", "access token has been revoked");
    } else {
      // An API key was checked by its own lookup: only the limit is asked, and it fails open in time.
      gate =
        (await limiterAnswer(
          limit.name,
          (async () => checkGate(redisClient(c.env), null, limit))(),
          c.get("log"),
          (pending) => c.executionCtx.waitUntil(pending),
        )) ?? null;
    }
    c.set("principal", principal);
    await enforceLimit(
      c,
      gate?.state,
      gate?.refused ?? false,
      "too many requests for this account; retry later",
      next,
    );
  };
}

/**
 * A signed-in caller (access token or API key) within the account's trading rate limit: the middleware of
 * the trading, account and notification routes.
 *
 * @example
 * const route = createRoute({ method: "post", path: "/v2/orders", middleware: [requireTrader] as const, ... });
 */
export const requireTrader: MiddlewareHandler<AuthBindings> = traderGate(false);

/** {@link requireSession} within the account's trading rate limit (API keys, logout, closing the account). */
export const requireTraderSession: MiddlewareHandler<AuthBindings> = traderGate(true);

/**
 * Requires a signed-in session (a bearer access token), not an API key: for account management
 * (API keys, logout, closing the account), so a leaked bot key cannot mint more keys or lock the
 * owner out.
 */
export const requireSession: MiddlewareHandler<AuthBindings> = async (c, next) => {
  if (!c.get("principal")) c.set("principal", await authenticate(c as unknown as Context<AppBindings>));
  if (c.get("principal").via !== "jwt") throw sessionRequired();
  await next();
};

/** Requires an admin. A signed-in trader gets 403 `forbidden`; nobody signed in gets 401. */
export const requireAdmin: MiddlewareHandler<AuthBindings> = async (c, next) => {
  if (!c.get("principal")) c.set("principal", await authenticate(c as unknown as Context<AppBindings>));
  if (c.get("principal").role !== "admin") throw new ApiError(403, "forbidden", "admin role required");
  await next();
};

/**
 * The principal of a request behind an auth middleware applied with `use(...)`, whose type does
 * not reach the handler. Throws 401 if no auth middleware ran (a wiring bug fails closed).
 */
export function principalOf(c: Context): Principal {
  const principal = (c as Context<AuthBindings>).get("principal") as Principal | undefined;
  if (!principal) throw unauthorized("unauthorized", "authentication required");
  return principal;
}
