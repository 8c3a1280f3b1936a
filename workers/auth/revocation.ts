import type { Redis } from "@upstash/redis/cloudflare";
import type { AccessClaims } from "./tokens.ts";

/**
 * Access tokens are self-contained JWTs, so revoking one before it expires needs a shared denylist.
 * Two Redis keys cover every case with a single `MGET` per request:
 *
 * - `auth:rv:sid:<session id>`: the login session (refresh family) was logged out or caught reusing
 *   a refresh token; every access token of that session is dead.
 * - `auth:rv:user:<user id>` = unix seconds T: every access token of the user issued before T is dead
 *   (account closed, all sessions revoked).
 *
 * Both expire after one access-token lifetime: by then every token they could apply to has expired.
 */
export const sessionKey = (sessionId: string) => `auth:rv:sid:${sessionId}`;
export const userKey = (userId: string) => `auth:rv:user:${userId}`;

export type RevocationCheck = "valid" | "revoked";

/** Pure: interprets the two MGET values for a token. */
export function revocationStatus(
  claims: Pick<AccessClaims, "iat">,
  sessionRevoked: unknown,
  userValidAfter: unknown,
): RevocationCheck {
  if (sessionRevoked !== null && sessionRevoked !== undefined) return "revoked";
  if (userValidAfter !== null && userValidAfter !== undefined) {
    const validAfter = Number(userValidAfter);
    if (Number.isFinite(validAfter) && claims.iat < validAfter) return "revoked";
  }
  return "valid";
}

/** One round trip: is this access token revoked? */
export async function checkRevoked(redis: Redis, claims: AccessClaims): Promise<RevocationCheck> {
  const [session, user] = await redis.mget<[unknown, unknown]>(
    sessionKey(claims.sessionId),
    userKey(claims.userId),
  );
  return revocationStatus(claims, session, user);
}

/** Kills every access token of these sessions for the rest of their lives. */
export async function revokeSessions(redis: Redis, sessionIds: string[], ttlSeconds: number): Promise<void> {
  if (sessionIds.length === 0) return;
  const pipe = redis.pipeline();
  for (const id of new Set(sessionIds)) pipe.set(sessionKey(id), 1, { ex: ttlSeconds });
  await pipe.exec();
}

/**
 * Kills every access token of the user issued up to now (including this very second, so a token
 * minted a moment ago cannot slip through). No new tokens may be issued after this for the
 * revocation to be complete: callers revoke refresh tokens first.
 */
export async function revokeAllUserTokens(
  redis: Redis,
  userId: string,
  ttlSeconds: number,
  now = new Date(),
): Promise<void> {
  const validAfter = Math.floor(now.getTime() / 1000) + 1;
  await redis.set(userKey(userId), validAfter, { ex: ttlSeconds });
}
