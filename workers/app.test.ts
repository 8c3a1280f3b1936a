import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

const call = (path: string, init?: RequestInit) =>
  exports.default.fetch(new Request(`http://prepx.test${path}`, init));

describe("edge worker basics", () => {
  it("answers liveness without touching any dependency", async () => {
    const res = await call("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("echoes a well-formed X-Request-Id and creates one otherwise", async () => {
    const echoed = await call("/health", { headers: { "X-Request-Id": "abc-123" } });
    expect(echoed.headers.get("x-request-id")).toBe("abc-123");
    const created = await call("/health", { headers: { "X-Request-Id": "bad id with spaces" } });
    expect(created.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers unknown routes with a JSON 404 carrying code, message and request id", async () => {
    const res = await call("/no/such/route");
    expect(res.status).toBe(404);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.code).toBe("not_found");
    expect(typeof body.message).toBe("string");
    expect(body.request_id).toBe(res.headers.get("x-request-id"));
  });

  it("rejects bodies over the size limit with 413", async () => {
    const res = await call("/health", { method: "POST", body: "x".repeat(70 * 1024) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe("payload_too_large");
  });

  it("sets secure headers", async () => {
    const res = await call("/health");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("reaches a Durable Object by RPC", async () => {
    const { env } = await import("cloudflare:test");
    const stub = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName("__health__"));
    expect(await stub.ping()).toBe("pong");
  });

  it("serves an OpenAPI 3.1 document and a human-readable reference", async () => {
    const doc = (await (await call("/openapi.json")).json()) as { openapi: string; info: { title: string } };
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBe("PrepX Edge API");
    const page = await call("/docs");
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain("/openapi.json");
  });
});
