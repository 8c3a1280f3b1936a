import type { Redis } from "@upstash/redis/cloudflare";
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import type { Databases } from "../db/index.ts";
import { apiKeys } from "../db/schema/global.ts";
import { users } from "../db/schema/shard.ts";
import { ApiError } from "../errors.ts";
import { base64url, constantTimeEqualText, randomBytes, sha256Hex } from "./crypto.ts";
import { isRole, type Principal, type Role } from "./types.ts";

/**
 * API keys for bots and SDKs, shaped like Alpaca's so its clients work unchanged:
 * a key id `PK` + 18 base32 characters and a 40-character secret, sent as
 * `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`. The secret carries 240 random bits, so a plain
 * SHA-256 stores it safely (a slow hash guards guessable secrets; these are not guessable).
 */

export const MAX_ACTIVE_KEYS_PER_USER = 10;
const KEY_ID_PATTERN = /^PK[A-Z2-7]{18}$/;
const SECRET_PATTERN = /^[A-Za-z0-9_-]{40}$/;
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Verified keys are cached in Redis for this long; revocation overwrites the entry at once. */
export const KEY_CACHE_TTL_SECONDS = 300;
/** Unknown key ids are remembered briefly so random ids cannot make every request hit Postgres. */
const UNKNOWN_KEY_TTL_SECONDS = 60;
/** A revoked key's tombstone outlives any cache entry written by a request that raced the revocation. */
const TOMBSTONE_TTL_SECONDS = KEY_CACHE_TTL_SECONDS * 2;

export const cacheKey = (keyId: string) => `auth:ak:${keyId}`;

export function newKeyId(): string {
  let id = "PK";
  for (const b of randomBytes(18)) id += BASE32[b & 31];
  return id;
}

export function newSecret(): string {
  return base64url(randomBytes(30));
}

export const isWellFormedKey = (keyId: string, secret: string) =>
  KEY_ID_PATTERN.test(keyId) && SECRET_PATTERN.test(secret);

export interface ApiKeyView {
  key_id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

type ApiKeyRow = typeof apiKeys.$inferSelect;

const toView = (row: Pick<ApiKeyRow, "keyId" | "name" | "createdAt" | "lastUsedAt">): ApiKeyView => ({
  key_id: row.keyId,
  name: row.name,
  created_at: row.createdAt.toISOString(),
  last_used_at: row.lastUsedAt?.toISOString() ?? null,
});

/** Creates a key; the secret is in this answer only. */
export async function createApiKey(
  dbs: Databases,
  userId: string,
  name: string,
): Promise<ApiKeyView & { secret_key: string }> {
  const secret = newSecret();
  const keyId = newKeyId();
  const secretHash = await sha256Hex(secret);
  // One statement: the insert happens only while the user is under the cap.
  const inserted = await dbs.global.execute<{ key_id: string }>(sql`
    INSERT INTO api_keys (key_id, user_id, shard, name, secret_hash)
    SELECT ${keyId}, ${userId}, ${dbs.shardOf(userId)}, ${name}, ${secretHash}
    WHERE (SELECT count(*) FROM api_keys WHERE user_id = ${userId} AND revoked_at IS NULL) < ${MAX_ACTIVE_KEYS_PER_USER}
    RETURNING key_id`);
  if (inserted.rows.length === 0) {
    throw new ApiError(
      409,
      "too_many_api_keys",
      `at most ${MAX_ACTIVE_KEYS_PER_USER} active API keys per account; revoke one first`,
    );
  }
  return {
    key_id: keyId,
    name,
    created_at: new Date().toISOString(),
    last_used_at: null,
    secret_key: secret,
  };
}

/** The caller's active keys, newest first (from the primary: a key just created must show up). */
export async function listApiKeys(dbs: Databases, userId: string): Promise<ApiKeyView[]> {
  const rows = await dbs.global.$primary
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
    .orderBy(desc(apiKeys.createdAt));
  return rows.map(toView);
}

/**
 * Revokes one of the caller's keys. A key that does not exist, is already revoked, or belongs to
 * someone else is the same 404: nobody learns which key ids exist.
 */
export async function revokeApiKey(
  dbs: Databases,
  redis: Redis,
  userId: string,
  keyId: string,
): Promise<void> {
  const rows = await dbs.global
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiKeys.keyId, keyId), eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
    .returning({ keyId: apiKeys.keyId });
  if (rows.length === 0) throw new ApiError(404, "not_found", "API key not found");
  await tombstoneApiKeys(redis, [keyId]);
}

/** Overwrites the cache entries of revoked keys so no cached copy outlives the revocation. */
export async function tombstoneApiKeys(redis: Redis, keyIds: string[]): Promise<void> {
  if (keyIds.length === 0) return;
  const pipe = redis.pipeline();
  for (const id of keyIds) pipe.set(cacheKey(id), "revoked", { ex: TOMBSTONE_TTL_SECONDS });
  await pipe.exec();
}

interface CachedKey {
  u: string;
  r: Role;
  h: string;
}

function asCachedKey(value: unknown): CachedKey | "revoked" | "unknown" | undefined {
  if (value === "revoked" || value === "unknown") return value;
  if (value && typeof value === "object") {
    const { u, r, h } = value as Record<string, unknown>;
    if (typeof u === "string" && isRole(r) && typeof h === "string") return { u, r, h };
  }
  return undefined;
}

/**
 * Authenticates an API key pair. One Redis round trip when the key is cached; otherwise the global
 * key table and the user's shard, then the cache is filled with `SET NX` so it can never overwrite
 * a revocation tombstone written meanwhile. Returns undefined for any bad pair.
 */
export async function authenticateApiKey(
  dbs: () => Databases,
  redis: Redis,
  keyId: string,
  secret: string,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<Principal | undefined> {
  if (!isWellFormedKey(keyId, secret)) return undefined;
  const secretHash = await sha256Hex(secret);
  const cached = asCachedKey(await redis.get(cacheKey(keyId)));
  if (cached === "revoked" || cached === "unknown") return undefined;
  if (cached) {
    return constantTimeEqualText(cached.h, secretHash)
      ? { userId: cached.u, role: cached.r, via: "api_key", keyId }
      : undefined;
  }

  const databases = dbs();
  const [row] = await databases.global.$primary
    .select()
    .from(apiKeys)
    .where(eq(apiKeys.keyId, keyId))
    .limit(1);
  if (!row) {
    await redis.set(cacheKey(keyId), "unknown", { ex: UNKNOWN_KEY_TTL_SECONDS, nx: true });
    return undefined;
  }
  if (row.revokedAt) {
    await redis.set(cacheKey(keyId), "revoked", { ex: TOMBSTONE_TTL_SECONDS });
    return undefined;
  }
  const [user] = await databases
    .forUser(row.userId)
    .$primary.select({ role: users.role, status: users.status })
    .from(users)
    .where(eq(users.id, row.userId))
    .limit(1);
  if (user?.status !== "active") return undefined;
  const entry: CachedKey = { u: row.userId, r: user.role, h: row.secretHash };
  waitUntil(
    Promise.all([
      redis.set(cacheKey(keyId), entry, { ex: KEY_CACHE_TTL_SECONDS, nx: true }),
      // Refreshed on cache misses only: "last used" is accurate to the cache lifetime.
      databases.global.update(apiKeys).set({ lastUsedAt: new Date() }).where(eq(apiKeys.keyId, keyId)),
    ]),
  );
  return constantTimeEqualText(row.secretHash, secretHash)
    ? { userId: row.userId, role: user.role, via: "api_key", keyId }
    : undefined;
}
