import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { revocationStatus } from "./revocation.ts";
import {
  decideRefresh,
  hashRefreshToken,
  JWT_AUDIENCE,
  JWT_ISSUER,
  newRefreshToken,
  parseRefreshToken,
  parseSigningKeys,
  type RefreshTokenState,
  SigningKeyError,
  signAccessToken,
  verifyAccessToken,
} from "./tokens.ts";

const KEY_A = { kid: "2026-a", secret: "a".repeat(32) };
const KEY_B = { kid: "2026-b", secret: "b".repeat(40) };
const keys = parseSigningKeys(JSON.stringify([KEY_A, KEY_B]));
const subject = {
  userId: "0b7f3c1e-5d6a-4e8f-9a1b-2c3d4e5f6a7b",
  role: "trader",
  sessionId: crypto.randomUUID(),
} as const;

describe("signing keys", () => {
  it("reads a JSON array of {kid, secret}, the first one signing", () => {
    expect(keys.map((k) => k.kid)).toEqual(["2026-a", "2026-b"]);
  });

  it("refuses missing, malformed, short, empty or duplicate keys", () => {
    for (const raw of [
      undefined,
      "",
      "not json",
      "{}",
      "[]",
      JSON.stringify([{ kid: "x" }]),
      JSON.stringify([{ kid: "x", secret: "too-short" }]),
      JSON.stringify([KEY_A, { ...KEY_B, kid: KEY_A.kid }]),
    ]) {
      expect(() => parseSigningKeys(raw)).toThrow(SigningKeyError);
    }
  });
});

describe("access tokens", () => {
  it("round-trip user, role, session and expiry, with the signing key id in the header", async () => {
    const now = new Date("2026-11-20T10:00:00Z");
    const { token, claims, expiresIn } = await signAccessToken(keys, subject, 900, now);
    expect(expiresIn).toBe(900);
    const header = JSON.parse(atob(token.split(".")[0] ?? "")) as { kid: string; alg: string };
    expect(header).toMatchObject({ kid: "2026-a", alg: "HS256" });
    const verified = await verifyAccessToken(keys, token, new Date(now.getTime() + 60_000));
    expect(verified).toEqual({ ok: true, claims });
    expect(claims).toMatchObject({ ...subject, iat: now.getTime() / 1000, exp: now.getTime() / 1000 + 900 });
  });

  it("are rejected as expired once their lifetime has passed", async () => {
    const issued = new Date("2026-11-20T10:00:00Z");
    const { token } = await signAccessToken(keys, subject, 900, issued);
    expect((await verifyAccessToken(keys, token, new Date(issued.getTime() + 899_000))).ok).toBe(true);
    expect(await verifyAccessToken(keys, token, new Date(issued.getTime() + 900_000))).toEqual({
      ok: false,
      reason: "expired",
    });
  });

  it("are rejected when any part is tampered with", async () => {
    const { token } = await signAccessToken(keys, subject, 900);
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    const forged = btoa(JSON.stringify({ ...claims, role: "admin" }))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
    const flipped = `${signature.slice(0, -2)}${signature.endsWith("AA") ? "BB" : "AA"}`;
    for (const bad of [
      `${header}.${forged}.${signature}`,
      `${header}.${payload}.${flipped}`,
      `${header}.${payload}.`,
      `${header}.${payload}`,
      "garbage",
      "",
    ]) {
      expect(await verifyAccessToken(keys, bad)).toEqual({ ok: false, reason: "invalid" });
    }
  });

  it("are rejected when signed with an unknown key or the 'none' algorithm", async () => {
    const stranger = parseSigningKeys(JSON.stringify([{ kid: "2026-a", secret: "z".repeat(32) }]));
    const { token } = await signAccessToken(stranger, subject, 900);
    expect(await verifyAccessToken(keys, token)).toEqual({ ok: false, reason: "invalid" });

    const unknownKid = parseSigningKeys(JSON.stringify([{ kid: "retired", secret: KEY_A.secret }]));
    expect((await verifyAccessToken(keys, (await signAccessToken(unknownKid, subject, 900)).token)).ok).toBe(
      false,
    );

    const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "");
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${b64({ alg: "none", typ: "JWT", kid: "2026-a" })}.${b64({
      sub: subject.userId,
      role: "admin",
      sid: subject.sessionId,
      jti: "x",
      iss: JWT_ISSUER,
      aud: JWT_AUDIENCE,
      iat: now,
      exp: now + 900,
    })}.`;
    expect(await verifyAccessToken(keys, unsigned)).toEqual({ ok: false, reason: "invalid" });
  });

  it("are rejected with the wrong issuer or audience, or without the claims we rely on", async () => {
    const key = keys[0]?.secret ?? new Uint8Array();
    const now = Math.floor(Date.now() / 1000);
    const base = () =>
      new SignJWT({ role: "trader", sid: subject.sessionId })
        .setProtectedHeader({ alg: "HS256", kid: "2026-a" })
        .setSubject(subject.userId)
        .setJti("j")
        .setIssuedAt(now)
        .setExpirationTime(now + 900);
    const wrongIssuer = await base().setIssuer("someone-else").setAudience(JWT_AUDIENCE).sign(key);
    const wrongAudience = await base().setIssuer(JWT_ISSUER).setAudience("other-api").sign(key);
    const noRole = await new SignJWT({ sid: subject.sessionId })
      .setProtectedHeader({ alg: "HS256", kid: "2026-a" })
      .setSubject(subject.userId)
      .setIssuer(JWT_ISSUER)
      .setAudience(JWT_AUDIENCE)
      .setJti("j")
      .setIssuedAt(now)
      .setExpirationTime(now + 900)
      .sign(key);
    for (const token of [wrongIssuer, wrongAudience, noRole]) {
      expect((await verifyAccessToken(keys, token)).ok).toBe(false);
    }
  });

  it("keep verifying after rotation while the old key is still listed, and stop once it is dropped", async () => {
    const { token } = await signAccessToken(keys, subject, 900); // signed by 2026-a
    const rotated = parseSigningKeys(JSON.stringify([{ kid: "2026-c", secret: "c".repeat(32) }, KEY_A]));
    expect((await verifyAccessToken(rotated, token)).ok).toBe(true);
    const dropped = parseSigningKeys(JSON.stringify([{ kid: "2026-c", secret: "c".repeat(32) }]));
    expect((await verifyAccessToken(dropped, token)).ok).toBe(false);
    const fresh = await signAccessToken(rotated, subject, 900);
    expect(JSON.parse(atob(fresh.token.split(".")[0] ?? "")).kid).toBe("2026-c");
  });
});

describe("access-token revocation", () => {
  it("treats a token as revoked when its session is on the denylist", () => {
    expect(revocationStatus({ iat: 100 }, 1, null)).toBe("revoked");
    expect(revocationStatus({ iat: 100 }, null, null)).toBe("valid");
  });

  it("treats tokens issued before the user's cut-off as revoked, and later ones as valid", () => {
    expect(revocationStatus({ iat: 99 }, null, 100)).toBe("revoked");
    expect(revocationStatus({ iat: 100 }, null, "100")).toBe("valid");
    expect(revocationStatus({ iat: 101 }, null, 100)).toBe("valid");
  });
});

describe("refresh tokens", () => {
  it("are opaque strings that name their user and carry 256 random bits", async () => {
    const a = await newRefreshToken(subject.userId);
    const b = await newRefreshToken(subject.userId);
    expect(a.token).toMatch(/^rt1\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/);
    expect(a.token).not.toBe(b.token);
    expect(parseRefreshToken(a.token)).toEqual({ userId: subject.userId });
    expect(a.hash).toBe(await hashRefreshToken(a.token));
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("that are not ours do not parse", () => {
    for (const bad of [
      "",
      "rt1",
      `rt1.${subject.userId}`,
      `rt2.${subject.userId}.${"A".repeat(43)}`,
      `rt1.not-a-uuid.${"A".repeat(43)}`,
      `rt1.${subject.userId}.${"A".repeat(42)}`,
    ]) {
      expect(parseRefreshToken(bad)).toBeUndefined();
    }
  });
});

describe("refresh rotation", () => {
  const now = new Date("2026-11-20T10:00:00Z");
  const row = (over: Partial<RefreshTokenState> = {}): RefreshTokenState => ({
    userId: subject.userId,
    familyId: "f0000000-0000-4000-8000-000000000001",
    tokenHash: "h".repeat(64),
    expiresAt: new Date(now.getTime() + 86_400_000),
    usedAt: null,
    revokedAt: null,
    ...over,
  });
  const presented = { userId: subject.userId, tokenHash: "h".repeat(64) };

  it("rotates a live, unused token within its family", () => {
    expect(decideRefresh(row(), presented, now)).toEqual({ action: "rotate", familyId: row().familyId });
  });

  it("revokes the whole family when an already-rotated token comes back", () => {
    expect(decideRefresh(row({ usedAt: new Date(now.getTime() - 1000) }), presented, now)).toEqual({
      action: "revoke_family",
      familyId: row().familyId,
      reason: "reused",
    });
  });

  it("rejects revoked, expired and unknown tokens without touching the family", () => {
    expect(decideRefresh(row({ revokedAt: now }), presented, now)).toEqual({
      action: "reject",
      reason: "revoked",
    });
    expect(decideRefresh(row({ expiresAt: now }), presented, now)).toEqual({
      action: "reject",
      reason: "expired",
    });
    expect(decideRefresh(undefined, presented, now)).toEqual({ action: "reject", reason: "unknown" });
  });

  it("rejects a token presented under another user's id", () => {
    const other = { ...presented, userId: "11111111-1111-4111-8111-111111111111" };
    expect(decideRefresh(row(), other, now)).toEqual({ action: "reject", reason: "unknown" });
  });

  it("treats a revoked token that was also used as revoked, not as a fresh reuse", () => {
    expect(decideRefresh(row({ usedAt: now, revokedAt: now }), presented, now).action).toBe("reject");
  });
});
