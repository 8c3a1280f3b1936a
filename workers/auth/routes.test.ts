import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { buildApp } from "../app.ts";

const call = (path: string, init?: RequestInit) =>
  exports.default.fetch(new Request(`http://prepx.test${path}`, init));

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { security?: Record<string, string[]>[]; responses: object }>>;
  components?: {
    securitySchemes?: Record<string, { type: string; in?: string; name?: string; scheme?: string }>;
  };
}

const AUTH_ROUTES = [
  ["post", "/v1/auth/register"],
  ["post", "/v1/auth/login"],
  ["post", "/v1/auth/refresh"],
  ["post", "/v1/auth/logout"],
  ["get", "/v1/me"],
  ["patch", "/v1/me"],
  ["delete", "/v1/me"],
  ["post", "/v1/api-keys"],
  ["get", "/v1/api-keys"],
  ["delete", "/v1/api-keys/{id}"],
  ["get", "/admin/users"],
  ["get", "/admin/audit-log"],
] as const;

/**
 * Deliberately not part of the API document: infrastructure routes, and the WebSocket upgrade
 * `/stream`, which OpenAPI cannot describe (its messages are documented with the stream).
 */
const UNDOCUMENTED = new Set(["/health", "/ready", "/openapi.json", "/docs"]);
/** Development-only tooling (disabled outside development) is not part of the public API either. */
const isDevTooling = (path: string) => path.startsWith("/v2/dev/") || path.startsWith("/dev/");

describe("the OpenAPI document of the auth surface", () => {
  it("lists every user, API-key and admin route", async () => {
    const doc = (await (await call("/openapi.json")).json()) as OpenApiDoc;
    for (const [method, path] of AUTH_ROUTES)
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
  });

  it("documents every route the app serves", async () => {
    const doc = (await (await call("/openapi.json")).json()) as OpenApiDoc;
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`),
      ),
    );
    const served = buildApp()
      .routes.filter((r) => r.method !== "ALL" && !UNDOCUMENTED.has(r.path) && !isDevTooling(r.path))
      .map((r) => `${r.method} ${r.path}`);
    const missing = [...new Set(served)].filter((r) => !documented.has(r));
    expect(missing).toEqual([]);
  });

  it("registers the bearer and both Alpaca header schemes, and every requirement names a known scheme", async () => {
    const doc = (await (await call("/openapi.json")).json()) as OpenApiDoc;
    expect(doc.components?.securitySchemes).toMatchObject({
      bearerAuth: { type: "http", scheme: "bearer" },
      apcaKeyId: { type: "apiKey", in: "header", name: "APCA-API-KEY-ID" },
      apcaSecretKey: { type: "apiKey", in: "header", name: "APCA-API-SECRET-KEY" },
    });
    const schemes = new Set(Object.keys(doc.components?.securitySchemes ?? {}));
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) {
        for (const requirement of op.security ?? []) {
          for (const name of Object.keys(requirement)) expect(schemes.has(name), name).toBe(true);
        }
      }
    }
    expect(doc.paths["/v1/me"]?.get?.security).toEqual([
      { bearerAuth: [] },
      { apcaKeyId: [], apcaSecretKey: [] },
    ]);
    expect(doc.paths["/v1/api-keys"]?.post?.security).toEqual([{ bearerAuth: [] }]);
  });
});

describe("requests without valid credentials", () => {
  it("get 401 unauthorized with a WWW-Authenticate challenge when no credentials are sent", async () => {
    for (const [method, path] of [
      ["GET", "/v1/me"],
      ["GET", "/v1/api-keys"],
      ["GET", "/admin/users"],
      ["DELETE", "/v1/api-keys/PKAAAAAAAAAAAAAAAAAA"],
    ] as const) {
      const res = await call(path, { method });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
      const body = (await res.json()) as { code: string; request_id: string };
      expect(body.code).toBe("unauthorized");
      expect(body.request_id).toBe(res.headers.get("x-request-id"));
    }
  });

  it("get 401 invalid_token for a malformed or forged bearer token", async () => {
    for (const header of ["Bearer", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer a b"]) {
      const res = await call("/v1/me", { headers: { Authorization: header } });
      expect(res.status, header).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_token");
    }
  });

  it("get 401 invalid_api_key when only one Alpaca header is sent or the key is malformed", async () => {
    const cases: Record<string, string>[] = [
      { "APCA-API-KEY-ID": "PKAAAAAAAAAAAAAAAAAA" },
      { "APCA-API-SECRET-KEY": "x".repeat(40) },
      { "APCA-API-KEY-ID": "nope", "APCA-API-SECRET-KEY": "short" },
    ];
    for (const headers of cases) {
      const res = await call("/v1/me", { headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_api_key");
    }
  });
});

describe("auth request validation", () => {
  const post = (path: string, body: unknown) =>
    call(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });

  it("rejects weak passwords at registration with 422 naming the rule", async () => {
    const res = await post("/v1/auth/register", {
      email: "weak@example.com",
      password: "alllowercase",
      display_name: "Weak",
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe("validation_failed");
    expect(body.message).toMatch(/password/);
  });

  it("rejects a malformed email and a missing display name with 422", async () => {
    const res = await post("/v1/auth/register", { email: "not-an-email", password: "Good-password-1" });
    expect(res.status).toBe(422);
  });

  it("rejects malformed JSON with 400 invalid_json", async () => {
    const res = await call("/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{",
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_json");
  });
});
