import type { Redis } from "@upstash/redis/cloudflare";
import { and, desc, eq, isNull, lt, or, sql } from "drizzle-orm";
import type { Databases } from "../db/index.ts";
import { apiKeys, emailDirectory } from "../db/schema/global.ts";
import {
  DEFAULT_NOTIFICATION_PREFERENCES,
  type NotificationPreferences,
  refreshTokens,
  users,
} from "../db/schema/shard.ts";
import type { Logger } from "../env.ts";
import { ApiError } from "../errors.ts";
import { tombstoneApiKeys } from "./api-keys.ts";
import type { AuthConfig } from "./config.ts";
import { decoyPasswordHash, hashPassword, verifyPassword } from "./password.ts";
import { revokeAllUserTokens, revokeSessions } from "./revocation.ts";
import {
  decideRefresh,
  hashRefreshToken,
  newRefreshToken,
  parseRefreshToken,
  type SigningKey,
  signAccessToken,
} from "./tokens.ts";
import type { Principal, Role } from "./types.ts";

/** What the user service needs from the request: databases, Redis, keys and settings. */
export interface AuthDeps {
  dbs: Databases;
  redis: () => Redis;
  signingKeys: () => SigningKey[];
  config: AuthConfig;
  log: Logger;
  waitUntil: (p: Promise<unknown>) => void;
}

export type UserRow = typeof users.$inferSelect;

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: "Bearer";
  expires_in: number;
}

export interface Profile {
  id: string;
  email: string;
  display_name: string;
  role: Role;
  base_currency: string;
  notification_preferences: NotificationPreferences;
  status: "active" | "closed";
  created_at: string;
}

export function toProfile(user: UserRow): Profile {
  return {
    id: user.id,
    email: user.email,
    display_name: user.displayName,
    role: user.role,
    base_currency: user.baseCurrency,
    notification_preferences: { ...DEFAULT_NOTIFICATION_PREFERENCES, ...user.notificationPreferences },
    status: user.status,
    created_at: user.createdAt.toISOString(),
  };
}

const invalidRefresh = (message = "refresh token is invalid or expired") =>
  new ApiError(401, "invalid_refresh_token", message);

/**
 * Creates a user on the shard its new id maps to, then claims the email in the global directory.
 * The shard row goes first: if the directory insert loses a race (email taken) the shard row is
 * removed again, and if the worker dies in between, the orphan row is unreachable and harmless.
 * The reverse order could leave an email claimed by a user who does not exist.
 */
export async function registerUser(
  deps: Pick<AuthDeps, "dbs">,
  input: { email: string; password: string; displayName: string; role?: Role },
): Promise<UserRow> {
  const { dbs } = deps;
  const userId = crypto.randomUUID();
  const shardIndex = dbs.shardOf(userId);
  const shard = dbs.shard(shardIndex);
  const passwordHash = await hashPassword(input.password);
  const [user] = await shard
    .insert(users)
    .values({
      id: userId,
      email: input.email,
      displayName: input.displayName,
      passwordHash,
      role: input.role ?? "trader",
    })
    .returning();
  if (!user) throw new Error("insert into users returned no row");
  const claimed = await dbs.global
    .insert(emailDirectory)
    .values({ email: input.email, userId, shard: shardIndex })
    .onConflictDoNothing()
    .returning({ userId: emailDirectory.userId });
  if (claimed.length === 0) {
    await shard.delete(users).where(eq(users.id, userId));
    throw new ApiError(409, "email_taken", "an account with this email already exists");
  }
  return user;
}

/** The user id registered for an email: replica first, primary when the replica has not caught up. */
export async function findUserIdByEmail(dbs: Databases, email: string): Promise<string | undefined> {
  const query = (db: Databases["global"] | Databases["global"]["$primary"]) =>
    db
      .select({ userId: emailDirectory.userId })
      .from(emailDirectory)
      .where(eq(emailDirectory.email, email))
      .limit(1);
  const [fromReplica] = await query(dbs.global);
  if (fromReplica) return fromReplica.userId;
  const [fromPrimary] = await query(dbs.global.$primary);
  return fromPrimary?.userId;
}

export async function loadUser(dbs: Databases, userId: string): Promise<UserRow | undefined> {
  const [user] = await dbs.forUser(userId).$primary.select().from(users).where(eq(users.id, userId)).limit(1);
  return user;
}

/**
 * Checks an email and password. Unknown email, closed account and wrong password all return
 * undefined after the same PBKDF2 work, so neither the answer nor its timing tells them apart.
 */
export async function checkCredentials(
  dbs: Databases,
  email: string,
  password: string,
): Promise<UserRow | undefined> {
  const userId = await findUserIdByEmail(dbs, email);
  const user = userId ? await loadUser(dbs, userId) : undefined;
  if (user?.status !== "active") {
    await verifyPassword(password, await decoyPasswordHash());
    return undefined;
  }
  return (await verifyPassword(password, user.passwordHash)) ? user : undefined;
}

async function issueAccessToken(
  deps: Pick<AuthDeps, "signingKeys" | "config">,
  subject: { userId: string; role: Role; sessionId: string },
  refreshToken: string,
): Promise<TokenPair> {
  const { token, expiresIn } = await signAccessToken(
    deps.signingKeys(),
    subject,
    deps.config.accessTokenTtlSeconds,
  );
  return { access_token: token, refresh_token: refreshToken, token_type: "Bearer", expires_in: expiresIn };
}

/** Starts a login session: a new refresh-token family and its first access token. */
export async function startSession(
  deps: Pick<AuthDeps, "dbs" | "signingKeys" | "config">,
  user: Pick<UserRow, "id" | "role">,
): Promise<TokenPair> {
  const sessionId = crypto.randomUUID();
  const refresh = await newRefreshToken(user.id);
  await deps.dbs
    .forUser(user.id)
    .insert(refreshTokens)
    .values({
      id: crypto.randomUUID(),
      userId: user.id,
      familyId: sessionId,
      tokenHash: refresh.hash,
      expiresAt: new Date(Date.now() + deps.config.refreshTokenTtlSeconds * 1000),
    });
  return issueAccessToken(deps, { userId: user.id, role: user.role, sessionId }, refresh.token);
}

/**
 * Exchanges a refresh token for a new pair. The happy path is one statement that marks the token
 * used and inserts its successor only if the token is unused, unrevoked, unexpired and its user
 * active: two concurrent uses cannot both win. When it matches nothing, the stored row is read to
 * tell a replay (revoke the family) from a plain invalid token, following `decideRefresh`.
 */
export async function rotateRefreshToken(deps: AuthDeps, presented: string): Promise<TokenPair> {
  const parsed = parseRefreshToken(presented);
  if (!parsed) throw invalidRefresh();
  const shard = deps.dbs.forUser(parsed.userId);
  const tokenHash = await hashRefreshToken(presented);
  const next = await newRefreshToken(parsed.userId);
  const nextId = crypto.randomUUID();
  const expiresAt = new Date(Date.now() + deps.config.refreshTokenTtlSeconds * 1000).toISOString();

  const rotated = await shard.execute<{ user_id: string; family_id: string; role: Role }>(sql`
    WITH used AS (
      UPDATE refresh_tokens SET used_at = now(), replaced_by = ${nextId}
      WHERE token_hash = ${tokenHash} AND user_id = ${parsed.userId}
        AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
        AND EXISTS (SELECT 1 FROM users u WHERE u.id = refresh_tokens.user_id AND u.status = 'active')
      RETURNING user_id, family_id
    ), fresh AS (
      INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)
      SELECT ${nextId}, user_id, family_id, ${next.hash}, ${expiresAt}::timestamptz FROM used
      RETURNING user_id, family_id
    )
    SELECT fresh.user_id, fresh.family_id, u.role FROM fresh JOIN users u ON u.id = fresh.user_id`);
  const row = rotated.rows[0];
  if (row) {
    return issueAccessToken(
      deps,
      { userId: row.user_id, role: row.role, sessionId: row.family_id },
      next.token,
    );
  }

  const [stored] = await shard.$primary
    .select()
    .from(refreshTokens)
    .where(eq(refreshTokens.tokenHash, tokenHash))
    .limit(1);
  const decision = decideRefresh(stored, { userId: parsed.userId, tokenHash }, new Date());
  if (decision.action === "revoke_family") {
    await revokeFamily(deps, parsed.userId, decision.familyId);
    deps.log.warn("refresh token reuse detected; session revoked", {
      user_id: parsed.userId,
      session_id: decision.familyId,
    });
    throw invalidRefresh("refresh token was already used; the session has been revoked");
  }
  throw invalidRefresh();
}

/** Revokes every refresh token of one session and kills its live access tokens. */
export async function revokeFamily(
  deps: Pick<AuthDeps, "dbs" | "redis" | "config">,
  userId: string,
  familyId: string,
): Promise<void> {
  await deps.dbs
    .forUser(userId)
    .update(refreshTokens)
    .set({ revokedAt: new Date() })
    .where(
      and(
        eq(refreshTokens.familyId, familyId),
        eq(refreshTokens.userId, userId),
        isNull(refreshTokens.revokedAt),
      ),
    );
  await revokeSessions(deps.redis(), [familyId], deps.config.accessTokenTtlSeconds);
}

/**
 * Logout: ends the caller's current session and the session of the presented refresh token, if
 * that token is the caller's. Someone else's token is ignored, never revoked (no effect across
 * accounts), and the answer is the same either way.
 */
export async function logout(deps: AuthDeps, principal: Principal, presented: string): Promise<void> {
  const families = new Set<string>();
  if (principal.sessionId) families.add(principal.sessionId);
  const parsed = parseRefreshToken(presented);
  if (parsed && parsed.userId === principal.userId) {
    const [stored] = await deps.dbs
      .forUser(principal.userId)
      .$primary.select({ familyId: refreshTokens.familyId })
      .from(refreshTokens)
      .where(
        and(
          eq(refreshTokens.tokenHash, await hashRefreshToken(presented)),
          eq(refreshTokens.userId, principal.userId),
        ),
      )
      .limit(1);
    if (stored) families.add(stored.familyId);
  }
  for (const familyId of families) await revokeFamily(deps, principal.userId, familyId);
}

export async function getProfile(dbs: Databases, userId: string): Promise<UserRow> {
  const user = await loadUser(dbs, userId);
  if (user?.status !== "active") throw new ApiError(404, "not_found", "account not found");
  return user;
}

export interface ProfilePatch {
  display_name?: string;
  base_currency?: string;
  notification_preferences?: Partial<NotificationPreferences>;
}

/** Updates the profile; notification preferences merge key by key into the stored ones. */
export async function updateProfile(dbs: Databases, userId: string, patch: ProfilePatch): Promise<UserRow> {
  const [user] = await dbs
    .forUser(userId)
    .update(users)
    .set({
      ...(patch.display_name !== undefined && { displayName: patch.display_name }),
      ...(patch.base_currency !== undefined && { baseCurrency: patch.base_currency }),
      ...(patch.notification_preferences !== undefined && {
        notificationPreferences: sql`${users.notificationPreferences} || ${JSON.stringify(patch.notification_preferences)}::jsonb`,
      }),
      updatedAt: new Date(),
    })
    .where(and(eq(users.id, userId), eq(users.status, "active")))
    .returning();
  if (!user) throw new ApiError(404, "not_found", "account not found");
  return user;
}

/**
 * Closes an account: the user row is kept (trading history refers to it) but marked closed, every
 * session and API key is revoked, live access tokens die, and the email is released.
 */
export async function closeAccount(deps: AuthDeps, userId: string): Promise<void> {
  const { dbs } = deps;
  const closed = await dbs.shardTransaction(dbs.shardOf(userId), async (tx) => {
    const rows = await tx
      .update(users)
      .set({ status: "closed", closedAt: new Date(), updatedAt: new Date() })
      .where(and(eq(users.id, userId), eq(users.status, "active")))
      .returning({ id: users.id });
    await tx
      .update(refreshTokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(refreshTokens.userId, userId), isNull(refreshTokens.revokedAt)));
    return rows.length > 0;
  });
  if (!closed) throw new ApiError(404, "not_found", "account not found");
  const revokedKeys = await dbs.global
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
    .returning({ keyId: apiKeys.keyId });
  await dbs.global.delete(emailDirectory).where(eq(emailDirectory.userId, userId));
  const redis = deps.redis();
  await revokeAllUserTokens(redis, userId, deps.config.accessTokenTtlSeconds);
  await tombstoneApiKeys(
    redis,
    revokedKeys.map((k) => k.keyId),
  );
}

export interface UserListCursor {
  createdAt: string;
  id: string;
}

/**
 * Lists users across every shard, newest first, from the read replicas: each shard returns its
 * first `limit + 1` rows after the cursor, the merge keeps the first `limit` overall, and a row
 * left over means there is a next page.
 */
export async function listUsers(
  dbs: Databases,
  opts: { limit: number; after?: UserListCursor; role?: Role; status?: "active" | "closed" },
): Promise<{ users: (UserRow & { shard: number })[]; next?: UserListCursor }> {
  const perShard = await Promise.all(
    Array.from({ length: dbs.shardCount }, async (_, shard) => {
      const conditions = [
        opts.role ? eq(users.role, opts.role) : undefined,
        opts.status ? eq(users.status, opts.status) : undefined,
        opts.after
          ? or(
              lt(users.createdAt, new Date(opts.after.createdAt)),
              and(eq(users.createdAt, new Date(opts.after.createdAt)), lt(users.id, opts.after.id)),
            )
          : undefined,
      ];
      const rows = await dbs
        .shard(shard)
        .select()
        .from(users)
        .where(and(...conditions))
        .orderBy(desc(users.createdAt), desc(users.id))
        .limit(opts.limit + 1);
      return rows.map((r) => ({ ...r, shard }));
    }),
  );
  const merged = perShard
    .flat()
    .sort(
      (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
    );
  const page = merged.slice(0, opts.limit);
  const last = page[page.length - 1];
  const hasMore = merged.length > opts.limit;
  return {
    users: page,
    ...(hasMore && last && { next: { createdAt: last.createdAt.toISOString(), id: last.id } }),
  };
}
