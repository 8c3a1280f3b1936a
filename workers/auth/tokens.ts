import { errors, jwtVerify, SignJWT } from "jose";
import { base64url, constantTimeEqualText, randomBytes, sha256Hex } from "./crypto.ts";
import { isRole, type Role } from "./types.ts";

export const JWT_ISSUER = "prepx-edge";
export const JWT_AUDIENCE = "prepx-api";
const JWT_ALG = "HS256";
/** HS256 wants at least as many key bytes as the hash output. */
const MIN_SECRET_BYTES = 32;

export interface SigningKey {
  kid: string;
  secret: Uint8Array;
}

export class SigningKeyError extends Error {
  override name = "SigningKeyError";
}

const parsedKeys = new Map<string, SigningKey[]>();

/**
 * Reads `JWT_SIGNING_KEYS`: a JSON array of `{kid, secret}`. The first key signs new tokens; every
 * key verifies, which is how keys rotate (prepend the new key, keep the old one for one access-token
 * lifetime, then drop it). Throws `SigningKeyError` when the value is missing or unusable.
 */
export function parseSigningKeys(raw: string | undefined): SigningKey[] {
  if (!raw) throw new SigningKeyError("JWT_SIGNING_KEYS is not configured");
  const cached = parsedKeys.get(raw);
  if (cached) return cached;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new SigningKeyError("JWT_SIGNING_KEYS is not valid JSON");
  }
  if (!Array.isArray(value) || value.length === 0) {
    throw new SigningKeyError("JWT_SIGNING_KEYS must be a non-empty JSON array of {kid, secret}");
  }
  const keys = value.map((entry: unknown, i): SigningKey => {
    const { kid, secret } = (entry ?? {}) as { kid?: unknown; secret?: unknown };
    if (typeof kid !== "string" || kid === "" || typeof secret !== "string") {
      throw new SigningKeyError(`JWT_SIGNING_KEYS[${i}] must be {kid: string, secret: string}`);
    }
    const bytes = new TextEncoder().encode(secret);
    if (bytes.length < MIN_SECRET_BYTES) {
      throw new SigningKeyError(`JWT_SIGNING_KEYS[${i}].secret must be at least ${MIN_SECRET_BYTES} bytes`);
    }
    return { kid, secret: bytes };
  });
  if (new Set(keys.map((k) => k.kid)).size !== keys.length) {
    throw new SigningKeyError("JWT_SIGNING_KEYS has duplicate kids");
  }
  parsedKeys.set(raw, keys);
  return keys;
}

/**
 * The HMAC `CryptoKey` of a signing key, imported once per isolate. Handing jose the raw bytes made it
 * import the key again on every sign and verify, that is on every authenticated request.
 */
const cryptoKeys = new WeakMap<SigningKey, Promise<CryptoKey>>();

function cryptoKeyOf(key: SigningKey): Promise<CryptoKey> {
  let imported = cryptoKeys.get(key);
  if (imported === undefined) {
    imported = crypto.subtle.importKey("raw", key.secret, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    cryptoKeys.set(key, imported);
  }
  return imported;
}

export interface AccessClaims {
  userId: string;
  role: Role;
  /** Refresh-token family: one login session. Logout and reuse detection revoke by it. */
  sessionId: string;
  jti: string;
  /** Issued-at and expiry, unix seconds. */
  iat: number;
  exp: number;
}

const nowSeconds = (now: Date) => Math.floor(now.getTime() / 1000);

/**
 * Signs a short-lived access token with the first key (its `kid` in the header).
 *
 * @example
 * const { token, expiresIn } = await signAccessToken(keys, { userId, role: "trader", sessionId }, 900);
 */
export async function signAccessToken(
  keys: SigningKey[],
  subject: { userId: string; role: Role; sessionId: string },
  ttlSeconds: number,
  now = new Date(),
): Promise<{ token: string; claims: AccessClaims; expiresIn: number }> {
  const key = keys[0];
  if (!key) throw new SigningKeyError("no signing key");
  const iat = nowSeconds(now);
  const claims: AccessClaims = { ...subject, jti: crypto.randomUUID(), iat, exp: iat + ttlSeconds };
  const token = await new SignJWT({ role: subject.role, sid: subject.sessionId })
    .setProtectedHeader({ alg: JWT_ALG, kid: key.kid, typ: "JWT" })
    .setSubject(subject.userId)
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setJti(claims.jti)
    .setIssuedAt(iat)
    .setExpirationTime(claims.exp)
    .sign(await cryptoKeyOf(key));
  return { token, claims, expiresIn: ttlSeconds };
}

export type VerifyResult = { ok: true; claims: AccessClaims } | { ok: false; reason: "expired" | "invalid" };

/**
 * Verifies signature (by `kid`), algorithm, issuer, audience and expiry. Never throws for a bad
 * token: the caller maps `expired` and `invalid` to 401s.
 */
export async function verifyAccessToken(
  keys: SigningKey[],
  token: string,
  now = new Date(),
): Promise<VerifyResult> {
  try {
    const { payload } = await jwtVerify(
      token,
      (header) => {
        const key = keys.find((k) => k.kid === header.kid);
        if (!key) throw new errors.JWSSignatureVerificationFailed("unknown kid");
        return cryptoKeyOf(key);
      },
      { algorithms: [JWT_ALG], issuer: JWT_ISSUER, audience: JWT_AUDIENCE, currentDate: now },
    );
    const { sub, role, sid, jti, iat, exp } = payload as Record<string, unknown>;
    if (
      typeof sub !== "string" ||
      !isRole(role) ||
      typeof sid !== "string" ||
      typeof jti !== "string" ||
      typeof iat !== "number" ||
      typeof exp !== "number"
    ) {
      return { ok: false, reason: "invalid" };
    }
    return { ok: true, claims: { userId: sub, role, sessionId: sid, jti, iat, exp } };
  } catch (err) {
    return { ok: false, reason: err instanceof errors.JWTExpired ? "expired" : "invalid" };
  }
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens: opaque to clients, `rt1.<user id>.<43 chars of base64url randomness>`.
// The user id lets the server find the user's shard without a directory lookup; the random part
// (256 bits) is the secret. Only the SHA-256 of the whole token is stored.

const REFRESH_PATTERN =
  /^rt1\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;

export async function newRefreshToken(userId: string): Promise<{ token: string; hash: string }> {
  const token = `rt1.${userId}.${base64url(randomBytes(32))}`;
  return { token, hash: await sha256Hex(token) };
}

/** The user id a refresh token claims to belong to, or undefined when it is not one of ours. */
export function parseRefreshToken(token: string): { userId: string } | undefined {
  const m = REFRESH_PATTERN.exec(token);
  return m?.[1] ? { userId: m[1] } : undefined;
}

export const hashRefreshToken = (token: string): Promise<string> => sha256Hex(token);

/** The stored state of one refresh token, as the rotation decision needs it. */
export interface RefreshTokenState {
  userId: string;
  familyId: string;
  tokenHash: string;
  expiresAt: Date;
  usedAt: Date | null;
  revokedAt: Date | null;
}

export type RefreshDecision =
  | { action: "rotate"; familyId: string }
  | { action: "revoke_family"; familyId: string; reason: "reused" }
  | { action: "reject"; reason: "unknown" | "revoked" | "expired" };

/**
 * What to do with a presented refresh token. Every token is single use: presenting one that was
 * already rotated means it leaked (or a client replayed it), so the whole family — every token
 * descended from the same login — is revoked, logging out both the thief and the victim.
 * The database applies the same rule atomically (see `rotateRefreshToken` in users.ts); this
 * function is the specification and classifies the failures.
 */
export function decideRefresh(
  row: RefreshTokenState | undefined,
  presented: { userId: string; tokenHash: string },
  now: Date,
): RefreshDecision {
  if (!row || row.userId !== presented.userId || !constantTimeEqualText(row.tokenHash, presented.tokenHash)) {
    return { action: "reject", reason: "unknown" };
  }
  if (row.revokedAt) return { action: "reject", reason: "revoked" };
  if (row.usedAt) return { action: "revoke_family", familyId: row.familyId, reason: "reused" };
  if (row.expiresAt.getTime() <= now.getTime()) return { action: "reject", reason: "expired" };
  return { action: "rotate", familyId: row.familyId };
}
