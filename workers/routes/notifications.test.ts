import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { buildApp } from "../app.ts";
import type { Env } from "../env.ts";

const app = buildApp();
const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
const call = (path: string, environment: string) =>
  app.request(path, {}, { ...(env as unknown as Env), ENVIRONMENT: environment }, ctx);

describe("the dev outbox", () => {
  it("does not exist in production: 404 with the usual JSON error, for the page and the JSON", async () => {
    for (const path of ["/dev/outbox", "/dev/outbox.json", "/dev/outbox?user_id=x"]) {
      const res = await call(path, "production");
      expect(res.status, path).toBe(404);
      expect(await res.json()).toMatchObject({ code: "not_found", request_id: expect.any(String) });
    }
  });
});

describe("the notification API in the OpenAPI document", () => {
  it("lists every notification route and leaves the dev outbox out", async () => {
    const res = await call("/openapi.json", "production");
    const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/v1/alerts"] ?? {}).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths["/v1/alerts/{id}"] ?? {}).sort()).toEqual(["delete", "get"]);
    expect(Object.keys(doc.paths["/v1/notifications/preferences"] ?? {}).sort()).toEqual(["get", "put"]);
    expect(Object.keys(doc.paths["/v1/notifications/push-subscriptions"] ?? {}).sort()).toEqual([
      "delete",
      "get",
      "post",
    ]);
    expect(Object.keys(doc.paths["/v1/notifications"] ?? {})).toEqual(["get"]);
    expect(Object.keys(doc.paths).some((p) => p.startsWith("/dev/"))).toBe(false);
  });

  it("asks for credentials before anything else", async () => {
    for (const path of ["/v1/alerts", "/v1/notifications", "/v1/notifications/preferences"]) {
      expect((await call(path, "production")).status, path).toBe(401);
    }
  });
});
