import { describe, expect, inject, it } from "vitest";

const baseUrl = inject("baseUrl");

describe("health and readiness through wrangler dev", () => {
  it("reports liveness", async () => {
    const res = await fetch(`${baseUrl}/health`);
    expect(res.status).toBe(200);
  });

  it("is ready when Postgres (primary and replica), Redis and a Durable Object all answer", async () => {
    const res = await fetch(`${baseUrl}/ready`);
    const body = (await res.json()) as {
      status: string;
      checks: Record<string, { ok: boolean; latency_ms: number }>;
    };
    expect(body.checks).toMatchObject({
      postgres: { ok: true },
      postgres_replica: { ok: true },
      redis: { ok: true },
      durable_object: { ok: true },
    });
    expect(res.status).toBe(200);
    expect(body.status).toBe("ok");
    for (const check of Object.values(body.checks)) expect(check.latency_ms).toBeGreaterThanOrEqual(0);
  });
});
