// Users, sessions, API keys, roles and rate limits through the real HTTP surface of
// `wrangler dev` on the local stack (Postgres shards, Redis behind the Upstash shim).
import { Redis } from "@upstash/redis";
import type { Redis as GateRedis } from "@upstash/redis/cloudflare";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { runSeeds } from "../scripts/stack/seed.ts";
import { DEMO_USERS, demoUsersSeeder } from "../scripts/stack/seed-users.ts";
import { checkGate } from "../workers/auth/gate.ts";
import type { AccessClaims } from "../workers/auth/tokens.ts";

const baseUrl = inject("baseUrl");
const stackEnv = inject("stackEnv");

/** Each test run gets its own client addresses, so per-IP limits do not leak between runs or files. */
const runId = Math.floor(Math.random() * 200) + 20;
let ipCounter = 0;
const freshIp = () => `10.${runId}.${Math.floor(ipCounter / 250)}.${(ipCounter++ % 250) + 1}`;
const IP = freshIp();

interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string>; ip?: string } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { "CF-Connecting-IP": opts.ip ?? IP, ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T, headers: res.headers };
}

interface ErrorFields {
  code?: string;
  message?: string;
}
interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
}
interface Registered extends TokenPair {
  user: { id: string; email: string; role: string; display_name: string };
}

const PASSWORD = "Str0ng-enough-pw";
let emailCounter = 0;
const uniqueEmail = (tag: string) => `${tag}-${Date.now().toString(36)}-${emailCounter++}@example.test`;

async function newTrader(tag = "trader"): Promise<Registered & { email: string }> {
  const email = uniqueEmail(tag);
  const res = await api<Registered>("POST", "/v1/auth/register", {
    body: { email, password: PASSWORD, display_name: tag },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { ...res.body, email };
}

async function login(email: string, password: string, ip = IP): Promise<Reply<TokenPair & ErrorFields>> {
  return api<TokenPair & ErrorFields>("POST", "/v1/auth/login", { body: { email, password }, ip });
}

const apca = (keyId: string, secret: string) => ({ "APCA-API-KEY-ID": keyId, "APCA-API-SECRET-KEY": secret });

beforeAll(async () => {
  // Idempotent; makes the demo trader and the admin exist whether or not the default seed list has them.
  await runSeeds({
    globalUrl: stackEnv.DATABASE_URL ?? "",
    shardUrls: JSON.parse(stackEnv.SHARD_DATABASE_URLS ?? "[]") as string[],
    seeders: [demoUsersSeeder],
    log: () => {},
  });
});

describe("registration and login", () => {
  it("registers a trader and answers with a bearer token pair and the profile", async () => {
    const email = uniqueEmail("Reg").toUpperCase();
    const res = await api<Registered>("POST", "/v1/auth/register", {
      body: { email, password: PASSWORD, display_name: "Ada" },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ token_type: "Bearer", expires_in: 900 });
    expect(res.body.refresh_token).toMatch(/^rt1\./);
    expect(res.body.user).toMatchObject({ email: email.toLowerCase(), role: "trader", display_name: "Ada" });
    const me = await api("GET", "/v1/me", { token: res.body.access_token });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(res.body.user.id);
  });

  it("refuses a second account for the same email, whatever its case", async () => {
    const { email } = await newTrader("dup");
    const again = await api("POST", "/v1/auth/register", {
      body: { email: email.toUpperCase(), password: PASSWORD, display_name: "Again" },
    });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("email_taken");
  });

  it("signs in with email and password, case-insensitively on the email", async () => {
    const { email, user } = await newTrader("login");
    const res = await login(email.toUpperCase(), PASSWORD);
    expect(res.status).toBe(200);
    const me = await api("GET", "/v1/me", { token: res.body.access_token });
    expect(me.body.id).toBe(user.id);
  });

  it("gives the same 401 for an unknown email and for a wrong password", async () => {
    const { email } = await newTrader("same401");
    const wrong = await login(email, "Wrong-password-1");
    const unknown = await login(uniqueEmail("nobody"), "Wrong-password-1");
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect({ code: wrong.body.code, message: wrong.body.message }).toEqual({
      code: unknown.body.code,
      message: unknown.body.message,
    });
    expect(wrong.body.code).toBe("invalid_credentials");
  });

  it("signs in the seeded demo trader and admin with their documented passwords", async () => {
    for (const seeded of DEMO_USERS) {
      const res = await login(seeded.email, seeded.password);
      expect(res.status, seeded.email).toBe(200);
      const me = await api("GET", "/v1/me", { token: res.body.access_token });
      expect(me.body.role).toBe(seeded.role);
    }
  });
});

describe("refresh rotation and reuse detection", () => {
  it("rotates the refresh token on every use and revokes the whole session when an old one is replayed", async () => {
    const { email } = await newTrader("rotate");
    const first = (await login(email, PASSWORD)).body;

    const second = await api<TokenPair>("POST", "/v1/auth/refresh", {
      body: { refresh_token: first.refresh_token },
    });
    expect(second.status).toBe(200);
    expect(second.body.refresh_token).not.toBe(first.refresh_token);
    expect(second.body.access_token).not.toBe(first.access_token);

    const third = await api<TokenPair>("POST", "/v1/auth/refresh", {
      body: { refresh_token: second.body.refresh_token },
    });
    expect(third.status).toBe(200);
    expect((await api("GET", "/v1/me", { token: third.body.access_token })).status).toBe(200);

    // The first token was already used: a replay means it leaked. The session dies.
    const replay = await api("POST", "/v1/auth/refresh", { body: { refresh_token: first.refresh_token } });
    expect(replay.status).toBe(401);
    expect(replay.body.code).toBe("invalid_refresh_token");

    const newest = await api("POST", "/v1/auth/refresh", {
      body: { refresh_token: third.body.refresh_token },
    });
    expect(newest.status).toBe(401);
    const me = await api("GET", "/v1/me", { token: third.body.access_token });
    expect(me.status).toBe(401);
    expect(me.body.code).toBe("invalid_token");
  });

  it("leaves the user's other sessions alone when one session is revoked for reuse", async () => {
    const { email } = await newTrader("othersession");
    const phone = (await login(email, PASSWORD)).body;
    const laptop = (await login(email, PASSWORD)).body;
    await api("POST", "/v1/auth/refresh", { body: { refresh_token: phone.refresh_token } });
    await api("POST", "/v1/auth/refresh", { body: { refresh_token: phone.refresh_token } }); // replay
    expect((await api("GET", "/v1/me", { token: laptop.access_token })).status).toBe(200);
    expect(
      (await api("POST", "/v1/auth/refresh", { body: { refresh_token: laptop.refresh_token } })).status,
    ).toBe(200);
  });

  it("rejects refresh tokens that are garbage or were altered", async () => {
    const a = await newTrader("alter");
    const b = await newTrader("alter-other");
    const secret = a.refresh_token.split(".")[2];
    for (const refresh_token of [
      "garbage",
      `rt1.${b.user.id}.${secret}`,
      `${a.refresh_token.slice(0, -1)}x`,
    ]) {
      const res = await api("POST", "/v1/auth/refresh", { body: { refresh_token } });
      expect(res.status, refresh_token).toBe(401);
      expect(res.body.code).toBe("invalid_refresh_token");
    }
  });
});

describe("logout", () => {
  it("revokes the session: its access token and refresh token stop working at once", async () => {
    const { email } = await newTrader("logout");
    const session = (await login(email, PASSWORD)).body;
    const res = await api("POST", "/v1/auth/logout", {
      token: session.access_token,
      body: { refresh_token: session.refresh_token },
    });
    expect(res.status).toBe(204);
    expect((await api("GET", "/v1/me", { token: session.access_token })).status).toBe(401);
    const refresh = await api("POST", "/v1/auth/refresh", { body: { refresh_token: session.refresh_token } });
    expect(refresh.status).toBe(401);
  });

  it("does not revoke another user's session when handed their refresh token", async () => {
    const attacker = await newTrader("logout-attacker");
    const victim = await newTrader("logout-victim");
    const res = await api("POST", "/v1/auth/logout", {
      token: attacker.access_token,
      body: { refresh_token: victim.refresh_token },
    });
    expect(res.status).toBe(204);
    expect((await api("GET", "/v1/me", { token: victim.access_token })).status).toBe(200);
    const refresh = await api("POST", "/v1/auth/refresh", { body: { refresh_token: victim.refresh_token } });
    expect(refresh.status).toBe(200);
  });

  it("needs a bearer token", async () => {
    const res = await api("POST", "/v1/auth/logout", { body: { refresh_token: "rt1.x.y" } });
    expect(res.status).toBe(401);
  });
});

describe("expired and tampered access tokens", () => {
  const signingKey = () => {
    const keys = JSON.parse(stackEnv.JWT_SIGNING_KEYS ?? "[]") as { kid: string; secret: string }[];
    const key = keys[0];
    if (!key) throw new Error("JWT_SIGNING_KEYS missing from the test stack env");
    return key;
  };
  const sign = (claims: Record<string, unknown>, iat: number, exp: number, key = signingKey()) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", kid: key.kid })
      .setIssuer("prepx-edge")
      .setAudience("prepx-api")
      .setJti(crypto.randomUUID())
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(key.secret));

  it("rejects an expired access token with 401 token_expired", async () => {
    const { user } = await newTrader("expired");
    const now = Math.floor(Date.now() / 1000);
    const token = await sign(
      { sub: user.id, role: "trader", sid: crypto.randomUUID() },
      now - 1000,
      now - 100,
    );
    const res = await api("GET", "/v1/me", { token });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("token_expired");
  });

  it("rejects a token whose payload was changed after signing", async () => {
    const { access_token } = await newTrader("tamper");
    const [header, payload, signature] = access_token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, role: "admin" })).toString("base64url");
    const res = await api("GET", "/admin/users", { token: `${header}.${forged}.${signature}` });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("invalid_token");
  });

  it("rejects a token signed with a key the server does not have", async () => {
    const { user } = await newTrader("foreign");
    const now = Math.floor(Date.now() / 1000);
    const token = await sign({ sub: user.id, role: "admin", sid: crypto.randomUUID() }, now, now + 600, {
      kid: signingKey().kid,
      secret: "an-attacker-chosen-secret-of-enough-length",
    });
    expect((await api("GET", "/v1/me", { token })).status).toBe(401);
  });

  it("accepts tokens signed with an older key that is still listed (rotation)", async () => {
    const keys = JSON.parse(stackEnv.JWT_SIGNING_KEYS ?? "[]") as { kid: string; secret: string }[];
    const older = keys[1];
    if (!older) throw new Error("the test stack must list two JWT signing keys to test rotation");
    const { user } = await newTrader("rotation");
    const now = Math.floor(Date.now() / 1000);
    const token = await sign(
      { sub: user.id, role: "trader", sid: crypto.randomUUID() },
      now,
      now + 600,
      older,
    );
    expect((await api("GET", "/v1/me", { token })).status).toBe(200);
  });
});

describe("API keys through the Alpaca headers", () => {
  interface CreatedKey {
    key_id: string;
    secret_key: string;
    name: string;
  }

  it("creates a key whose secret is shown once, authenticates with it, and stops it on revoke", async () => {
    const trader = await newTrader("bot-owner");
    const created = await api<CreatedKey>("POST", "/v1/api-keys", {
      token: trader.access_token,
      body: { name: "market maker" },
    });
    expect(created.status).toBe(201);
    expect(created.body.key_id).toMatch(/^PK[A-Z2-7]{18}$/);
    expect(created.body.secret_key).toHaveLength(40);

    const list = await api<{ api_keys: Record<string, unknown>[] }>("GET", "/v1/api-keys", {
      token: trader.access_token,
    });
    expect(list.body.api_keys.map((k) => k.key_id)).toEqual([created.body.key_id]);
    expect(JSON.stringify(list.body)).not.toContain(created.body.secret_key);

    const headers = apca(created.body.key_id, created.body.secret_key);
    const me = await api("GET", "/v1/me", { headers });
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(trader.user.id);
    expect((await api("GET", "/v1/me", { headers })).status).toBe(200); // now from the key cache

    const wrongSecret = await api("GET", "/v1/me", { headers: apca(created.body.key_id, "A".repeat(40)) });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.code).toBe("invalid_api_key");

    const revoked = await api("DELETE", `/v1/api-keys/${created.body.key_id}`, {
      token: trader.access_token,
    });
    expect(revoked.status).toBe(204);
    expect((await api("GET", "/v1/me", { headers })).status).toBe(401);
    const after = await api<{ api_keys: unknown[] }>("GET", "/v1/api-keys", { token: trader.access_token });
    expect(after.body.api_keys).toEqual([]);
  });

  it("does not let an API key manage keys, log out or close the account", async () => {
    const trader = await newTrader("key-limits");
    const key = (
      await api<CreatedKey>("POST", "/v1/api-keys", { token: trader.access_token, body: { name: "b" } })
    ).body;
    const headers = apca(key.key_id, key.secret_key);
    expect((await api("POST", "/v1/api-keys", { headers, body: { name: "more" } })).status).toBe(403);
    expect((await api("GET", "/v1/api-keys", { headers })).status).toBe(403);
    expect((await api("DELETE", "/v1/me", { headers })).status).toBe(403);
    expect((await api("GET", "/v1/me", { headers })).status).toBe(200);
  });

  it("answers an unknown key id like a wrong secret", async () => {
    const res = await api("GET", "/v1/me", { headers: apca("PKAAAAAAAAAAAAAAAAAA", "B".repeat(40)) });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("invalid_api_key");
  });
});

describe("another user's objects (OWASP API1 / API5)", () => {
  it("answers 404 to revoking someone else's API key, and the key keeps working", async () => {
    const owner = await newTrader("key-owner");
    const intruder = await newTrader("key-intruder");
    const key = (
      await api<{ key_id: string; secret_key: string }>("POST", "/v1/api-keys", {
        token: owner.access_token,
        body: { name: "owner bot" },
      })
    ).body;
    const res = await api("DELETE", `/v1/api-keys/${key.key_id}`, { token: intruder.access_token });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe("not_found");
    const unknown = await api("DELETE", "/v1/api-keys/PKAAAAAAAAAAAAAAAAAA", {
      token: intruder.access_token,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toBe(res.body.message);
    expect((await api("GET", "/v1/me", { headers: apca(key.key_id, key.secret_key) })).status).toBe(200);
    const list = await api<{ api_keys: { key_id: string }[] }>("GET", "/v1/api-keys", {
      token: intruder.access_token,
    });
    expect(list.body.api_keys.map((k) => k.key_id)).not.toContain(key.key_id);
  });

  it("shows and edits only the caller's own profile", async () => {
    const a = await newTrader("profile-a");
    const b = await newTrader("profile-b");
    await api("PATCH", "/v1/me", { token: a.access_token, body: { display_name: "Changed by A" } });
    const mine = await api("GET", "/v1/me", { token: a.access_token });
    const theirs = await api("GET", "/v1/me", { token: b.access_token });
    expect(mine.body.display_name).toBe("Changed by A");
    expect(theirs.body.display_name).toBe("profile-b");
    expect(theirs.body.id).toBe(b.user.id);
  });
});

describe("profile", () => {
  it("updates display name, base currency and notification preferences, merging preferences", async () => {
    const trader = await newTrader("profile");
    const before = await api<{ notification_preferences: Record<string, boolean> }>("GET", "/v1/me", {
      token: trader.access_token,
    });
    expect(before.body.notification_preferences).toMatchObject({ email: true, sms: false });
    const patched = await api("PATCH", "/v1/me", {
      token: trader.access_token,
      body: { display_name: "Grace", base_currency: "EUR", notification_preferences: { sms: true } },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ display_name: "Grace", base_currency: "EUR" });
    const again = await api("PATCH", "/v1/me", {
      token: trader.access_token,
      body: { notification_preferences: { email: false } },
    });
    expect(again.body.notification_preferences).toMatchObject({ email: false, sms: true, order_fills: true });
  });

  it("rejects unknown fields and malformed currencies with 422", async () => {
    const trader = await newTrader("profile-bad");
    for (const body of [
      { base_currency: "euro" },
      { role: "admin" },
      { notification_preferences: { x: true } },
    ]) {
      const res = await api("PATCH", "/v1/me", { token: trader.access_token, body });
      expect(res.status, JSON.stringify(body)).toBe(422);
    }
    expect((await api("GET", "/v1/me", { token: trader.access_token })).body.role).toBe("trader");
  });

  it("closes the account: sessions, keys and login stop working and the email is free again", async () => {
    const trader = await newTrader("close");
    const key = (
      await api<{ key_id: string; secret_key: string }>("POST", "/v1/api-keys", {
        token: trader.access_token,
        body: { name: "soon gone" },
      })
    ).body;
    const headers = apca(key.key_id, key.secret_key);
    expect((await api("GET", "/v1/me", { headers })).status).toBe(200);

    expect((await api("DELETE", "/v1/me", { token: trader.access_token })).status).toBe(204);
    expect((await api("GET", "/v1/me", { token: trader.access_token })).status).toBe(401);
    expect((await api("GET", "/v1/me", { headers })).status).toBe(401);
    expect(
      (await api("POST", "/v1/auth/refresh", { body: { refresh_token: trader.refresh_token } })).status,
    ).toBe(401);
    expect((await login(trader.email, PASSWORD)).status).toBe(401);

    const again = await api<Registered>("POST", "/v1/auth/register", {
      body: { email: trader.email, password: PASSWORD, display_name: "Back" },
    });
    expect(again.status).toBe(201);
    expect(again.body.user.id).not.toBe(trader.user.id);
  });
});

describe("roles and admin routes", () => {
  const adminSeed = DEMO_USERS.find((u) => u.role === "admin");

  it("answers a signed-in trader with 403 on every admin route, by token or by API key", async () => {
    const trader = await newTrader("not-admin");
    const key = (
      await api<{ key_id: string; secret_key: string }>("POST", "/v1/api-keys", {
        token: trader.access_token,
        body: { name: "k" },
      })
    ).body;
    for (const [method, path] of [
      ["GET", "/admin/users"],
      ["GET", "/admin/audit-log"],
      ["POST", "/admin/symbols/ACME/halt"],
      ["POST", "/admin/orders/cancel-all"],
    ] as const) {
      const byToken = await api(method, path, { token: trader.access_token });
      expect(byToken.status, `${method} ${path}`).toBe(403);
      expect(byToken.body.code).toBe("forbidden");
      const byKey = await api(method, path, { headers: apca(key.key_id, key.secret_key) });
      expect(byKey.status, `${method} ${path} (API key)`).toBe(403);
    }
  });

  it("answers 401 on admin routes without credentials", async () => {
    expect((await api("GET", "/admin/users")).status).toBe(401);
  });

  it("lets an admin list users across shards and records who did it under which request id", async () => {
    if (!adminSeed) throw new Error("no seeded admin");
    const admin = (await login(adminSeed.email, adminSeed.password)).body;
    for (let i = 0; i < 4; i++) await newTrader("listed");
    const requestId = `admin-list-${Date.now()}`;
    const page = await api<{
      users: { id: string; shard: number; email: string }[];
      next_cursor: string | null;
    }>("GET", "/admin/users?limit=3", { token: admin.access_token, headers: { "X-Request-Id": requestId } });
    expect(page.status).toBe(200);
    expect(page.body.users).toHaveLength(3);
    expect(page.body.next_cursor).not.toBeNull();
    const next = await api<{ users: { id: string }[] }>(
      "GET",
      `/admin/users?limit=3&cursor=${page.body.next_cursor}`,
      { token: admin.access_token },
    );
    expect(next.status).toBe(200);
    const firstIds = new Set(page.body.users.map((u) => u.id));
    for (const u of next.body.users) expect(firstIds.has(u.id)).toBe(false);

    const all = await api<{ users: { shard: number }[] }>("GET", "/admin/users?limit=200", {
      token: admin.access_token,
    });
    expect(new Set(all.body.users.map((u) => u.shard))).toEqual(new Set([0, 1]));

    const me = await api("GET", "/v1/me", { token: admin.access_token });
    const log = await api<{ entries: Record<string, unknown>[] }>(
      "GET",
      `/admin/audit-log?action=users.list&actor_user_id=${me.body.id}`,
      { token: admin.access_token },
    );
    expect(log.status).toBe(200);
    const entry = log.body.entries.find((e) => e.request_id === requestId);
    expect(entry).toMatchObject({ action: "users.list", actor_user_id: me.body.id, actor_via: "jwt" });
    expect(Date.now() - Date.parse(String(entry?.at))).toBeLessThan(10 * 60_000);
  });
});

describe("rate limits", () => {
  it("locks an account after 10 failed logins within 15 minutes, even for the right password", async () => {
    const { email } = await newTrader("brute");
    const ip = freshIp();
    const limit = Number(stackEnv.RATE_LIMIT_LOGIN_FAILURES_PER_15_MINUTES ?? 10);
    for (let i = 0; i < limit; i++) {
      const res = await login(email, `Wrong-guess-${i}`, ip);
      expect(res.status, `attempt ${i + 1}`).toBe(401);
    }
    const blocked = await login(email, `Wrong-guess-${limit}`, ip);
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe("rate_limited");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(blocked.headers.get("ratelimit-limit")).toBe(String(limit));
    expect(blocked.headers.get("ratelimit-remaining")).toBe("0");
    expect((await login(email, PASSWORD, freshIp())).status).toBe(429);
  });

  it("limits auth requests per client address and tells the client when to retry", async () => {
    const ip = freshIp();
    const first = await api("POST", "/v1/auth/login", { body: {}, ip });
    const limit = Number(first.headers.get("ratelimit-limit"));
    expect(limit).toBeGreaterThan(0);
    let last = first;
    let sent = 1;
    // A few attempts past the limit: under load a limiter call that times out lets its request through
    // (fail-open by design), and the next one is refused.
    while (sent < limit + 5 && last.status !== 429) {
      last = await api("POST", "/v1/auth/login", { body: {}, ip });
      sent++;
    }
    expect(last.status).toBe(429);
    expect(sent).toBeGreaterThan(limit);
    expect(Number(last.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(last.body).toMatchObject({ code: "rate_limited" });
    // Another address is not affected.
    expect((await api("POST", "/v1/auth/login", { body: {}, ip: freshIp() })).status).toBe(422);
  });

  it("counts the trading budget and reads the token's revocation in one Redis script", async () => {
    const redis = new Redis({
      url: stackEnv.UPSTASH_REDIS_REST_URL as string,
      token: stackEnv.UPSTASH_REDIS_REST_TOKEN as string,
      retry: false,
    }) as unknown as GateRedis;
    const userId = crypto.randomUUID();
    const claims: AccessClaims = {
      userId,
      role: "trader",
      sessionId: crypto.randomUUID(),
      jti: crypto.randomUUID(),
      iat: Math.floor(Date.now() / 1000) - 5,
      exp: Math.floor(Date.now() / 1000) + 600,
    };
    // Early in a window, so the previous (empty) window weighs nothing and the run stays in this one.
    const windowMs = 3_600_000;
    const now = Math.floor(Date.now() / windowMs) * windowMs + 1_000;
    const limit = { name: `test_gate_${runId}`, identifier: userId, limit: 3, windowMs };
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await checkGate(redis, claims, limit, now));
    expect(answers.map((a) => [a.refused, a.state.remaining])).toEqual([
      [false, 2],
      [false, 1],
      [false, 0],
      [true, 0],
      [true, 0],
    ]);
    expect(answers.every((a) => a.revocation === "valid")).toBe(true);
    expect(answers[0]?.state.reset).toBe(now - 1_000 + windowMs);
    // A quarter into the next window, three quarters of this one's 3 requests still count (2, rounded
    // down): one more request fits.
    const later = now - 1_000 + windowMs + windowMs / 4;
    const next = [await checkGate(redis, claims, limit, later), await checkGate(redis, claims, limit, later)];
    expect(next.map((a) => [a.refused, a.state.remaining])).toEqual([
      [false, 0],
      [true, 0],
    ]);

    // Logging out writes the session key; closing the account writes the user's valid-after time.
    const other = { ...limit, identifier: crypto.randomUUID() };
    await redis.set(`auth:rv:sid:${claims.sessionId}`, 1, { ex: 60 });
    expect((await checkGate(redis, claims, other, now)).revocation).toBe("revoked");
    const fresh = { ...claims, sessionId: crypto.randomUUID() };
    await redis.set(`auth:rv:user:${userId}`, claims.iat + 1, { ex: 60 });
    expect((await checkGate(redis, fresh, other, now)).revocation).toBe("revoked");
    expect((await checkGate(redis, { ...fresh, iat: claims.iat + 2 }, other, now)).revocation).toBe("valid");
    // An API-key caller: the budget only.
    expect((await checkGate(redis, null, other, now)).revocation).toBeNull();
  });

  it("reports the per-user budget on authenticated routes", async () => {
    const trader = await newTrader("budget");
    const res = await api("GET", "/v1/me", { token: trader.access_token });
    expect(Number(res.headers.get("ratelimit-limit"))).toBeGreaterThanOrEqual(1200);
    expect(Number(res.headers.get("ratelimit-remaining"))).toBeLessThan(
      Number(res.headers.get("ratelimit-limit")),
    );
  });
});

describe("the OpenAPI document served by wrangler dev", () => {
  it("lists the auth, account, API-key and admin routes", async () => {
    const doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as { paths: Record<string, object> };
    for (const path of [
      "/v1/auth/register",
      "/v1/auth/login",
      "/v1/auth/refresh",
      "/v1/auth/logout",
      "/v1/me",
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    for (const path of ["/v1/api-keys", "/v1/api-keys/{id}", "/admin/users", "/admin/audit-log"]) {
      expect(doc.paths[path], path).toBeDefined();
    }
  });
});
