// The API-call recorder inside workerd: every answer (matched, unmatched, refused) becomes an Analytics Engine
// data point with the route pattern, and a count in the isolate's latency buffer. A recording stand-in replaces
// the ANALYTICS binding (the local one is a simulator that drops points).
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DATA_POINT_LAYOUTS, type DataPoint } from "../../shared/analytics/datapoints.ts";
import { buildApp } from "../app.ts";
import type { Env } from "../env.ts";
import { parseMinuteHash, pendingApiCalls, UNMATCHED_ROUTE } from "./api-calls.ts";

const app = buildApp();

async function call(path: string, init: RequestInit = {}, extra: Partial<Env> = {}) {
  const points: DataPoint[] = [];
  const pending: Promise<unknown>[] = [];
  const testEnv = {
    ...env,
    ANALYTICS: { writeDataPoint: (p: DataPoint) => points.push(p) },
    ...extra,
  } as unknown as Env;
  const ctx = {
    waitUntil: (p: Promise<unknown>) => pending.push(p.catch(() => {})),
    passThroughOnException: () => {},
    props: {},
  } as unknown as ExecutionContext;
  const res = await app.request(`http://prepx.test${path}`, init, testEnv, ctx);
  await res.arrayBuffer();
  const named = (p: DataPoint) => {
    const layout = DATA_POINT_LAYOUTS[p.blobs[0] as keyof typeof DATA_POINT_LAYOUTS];
    return Object.fromEntries([
      ...layout.blobs.map((name, i) => [name, p.blobs[i]]),
      ...layout.doubles.map((name, i) => [name, p.doubles[i]]),
    ]);
  };
  return { res, points: points.map(named), indexes: points.map((p) => p.indexes[0]) };
}

describe("API-call analytics", () => {
  it("records the route pattern, status and duration of a matched call", async () => {
    const { res, points, indexes } = await call("/health");
    expect(res.status).toBe(200);
    expect(points).toEqual([
      expect.objectContaining({
        kind: "api_call",
        method: "GET",
        route: "/health",
        status: "200",
        error_code: "",
      }),
    ]);
    expect(points[0]?.duration_ms).toBeGreaterThanOrEqual(0);
    expect(indexes).toEqual(["GET /health"]);
  });

  it("names the pattern, not the path, of a route with parameters, and the error code of a refusal", async () => {
    const { res, points } = await call("/v2/orders/61e69015-8549-4bfd-b9c3-01e75843f47d");
    expect(res.status).toBe(401);
    expect(points[0]).toMatchObject({
      route: "/v2/orders/:order_id",
      status: "401",
      error_code: "unauthorized",
    });
  });

  it("folds every unknown path into one unmatched route", async () => {
    const a = await call("/no/such/thing");
    const b = await call("/wp-login.php");
    expect([a.points[0]?.route, b.points[0]?.route]).toEqual([UNMATCHED_ROUTE, UNMATCHED_ROUTE]);
    expect(a.points[0]?.error_code).toBe("not_found");
  });

  it("writes a login data point for every login attempt", async () => {
    const { res, points } = await call("/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": "10.9.9.9" },
      body: JSON.stringify({ email: "not an email" }),
    });
    expect(res.status).toBe(422);
    expect(points).toEqual([
      expect.objectContaining({ kind: "api_call", route: "/v1/auth/login", status: "422" }),
      expect.objectContaining({ kind: "login", outcome: "invalid_request", user_id: "" }),
    ]);
  });

  it("counts calls in the isolate's buffer by minute, route, status and latency bucket", async () => {
    const before = new Map(pendingApiCalls());
    await call("/health", {}, { ANALYTICS_API_CALLS: "on" });
    const grown = [...pendingApiCalls()].filter(
      ([k, n]) => k.includes("|h|GET|/health|200|") && n > (before.get(k) ?? 0),
    );
    expect(grown).toHaveLength(1);
    const off = new Map(pendingApiCalls());
    await call("/health", {}, { ANALYTICS_API_CALLS: "off" });
    expect(new Map(pendingApiCalls())).toEqual(off);
  });

  it("parses a minute's Redis counters and skips malformed fields", () => {
    const parsed = parseMinuteHash(60_000, {
      "h|GET|/health|200|4": 7,
      "e|POST|/v2/orders|403|insufficient_buying_power": "2",
      "h|GET|/health|200|x": 1,
      garbage: 3,
      "h|GET|/health|abc|4": 1,
    });
    expect(parsed).toEqual({
      calls: [{ minute_ms: 60_000, method: "GET", route: "/health", status: 200, bucket: 4, calls: 7 }],
      errors: [
        {
          minute_ms: 60_000,
          method: "POST",
          route: "/v2/orders",
          status: 403,
          code: "insufficient_buying_power",
          calls: 2,
        },
      ],
    });
  });
});
