/**
 * What recording API calls costs per request: `npm run bench:analytics`.
 *
 * The same small Hono app (four routes: a plain GET, a GET with a path parameter, a POST that answers 403 with
 * an error code, and unknown paths) runs with and without the `apiCallAnalytics` middleware, in alternating
 * blocks so both see the same machine load; the median of the paired block differences is the middleware's
 * cost per request on the request's own path (route lookup, Analytics Engine data point, buffer update). The Redis
 * write happens in `waitUntil` after the response, at most once per second per isolate; it is timed
 * separately against a real redis-server behind the project's Upstash REST shim (started here on free
 * ports, stopped at the end).
 *
 * Knobs (env): BENCH_REQUESTS (per variant, default 200,000), BENCH_BLOCK (default 2,000).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Hono } from "hono";
import { startRedis } from "../scripts/stack/redis.ts";
import { startUpstashShim } from "../scripts/stack/upstash-shim.ts";
import { freePort, silentLog } from "../scripts/stack/util.ts";
import { apiCallPoint } from "../shared/analytics/datapoints.ts";
import {
  apiCallAnalytics,
  bufferApiCall,
  flushBufferToRedis,
  pendingApiCalls,
} from "../workers/analytics/api-calls.ts";
import type { AppBindings, Env } from "../workers/env.ts";
import { ApiError, handleError, notFound } from "../workers/errors.ts";

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200_000);
const BLOCK = Number(process.env.BENCH_BLOCK ?? 2_000);

function app(variant: "baseline" | "passthrough" | "instrumented") {
  const a = new Hono<AppBindings>();
  a.use("*", async (c, next) => {
    c.set("requestId", "bench");
    await next();
  });
  if (variant === "instrumented") a.use("*", apiCallAnalytics);
  // An empty middleware of the same shape: what any extra layer costs, recording aside.
  if (variant === "passthrough")
    a.use("*", async (_c, next) => {
      await next();
    });
  a.get("/health", (c) => c.json({ status: "ok" }));
  a.get("/v2/orders/:order_id", (c) => c.json({ id: c.req.param("order_id") }));
  a.post("/v2/orders", () => {
    throw new ApiError(403, "insufficient_buying_power", "order cost exceeds buying power");
  });
  a.notFound(notFound);
  a.onError(handleError);
  return a;
}

const PATHS: [string, string][] = [
  ["GET", "/health"],
  ["GET", "/v2/orders/61e69015-8549-4bfd-b9c3-01e75843f47d"],
  ["POST", "/v2/orders"],
  ["GET", "/no/such/path"],
];

async function main() {
  const dataDir = mkdtempSync(path.join(tmpdir(), "prepx-bench-analytics-"));
  const redis = await startRedis({ dataDir, port: await freePort(), persist: false, log: silentLog });
  const shim = await startUpstashShim({
    port: await freePort(),
    redisPort: redis.port,
    token: "bench",
    log: silentLog,
  });
  let points = 0;
  const env = {
    UPSTASH_REDIS_REST_URL: shim.url,
    UPSTASH_REDIS_REST_TOKEN: "bench",
    ANALYTICS: { writeDataPoint: () => points++ },
  } as unknown as Env;
  const background: Promise<unknown>[] = [];
  const ctx = {
    waitUntil: (p: Promise<unknown>) => background.push(p),
    passThroughOnException: () => {},
    props: {},
  } as unknown as ExecutionContext;
  const variants = {
    baseline: app("baseline"),
    passthrough: app("passthrough"),
    instrumented: app("instrumented"),
  };
  const blocks: Record<keyof typeof variants, number[]> = { baseline: [], passthrough: [], instrumented: [] };

  const run = async (name: keyof typeof variants, n: number) => {
    const a = variants[name];
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      const [method, p] = PATHS[i % PATHS.length] as [string, string];
      const res = await a.request(`http://bench${p}`, { method }, env, ctx);
      await res.arrayBuffer();
    }
    return ((performance.now() - t) * 1e6) / n; // ns per request
  };
  // Warm-up, then alternate.
  await run("baseline", 20_000);
  await run("passthrough", 20_000);
  await run("instrumented", 20_000);
  for (let done = 0; done < REQUESTS; done += BLOCK) {
    blocks.baseline.push(await run("baseline", BLOCK));
    blocks.passthrough.push(await run("passthrough", BLOCK));
    blocks.instrumented.push(await run("instrumented", BLOCK));
  }
  await Promise.all(background);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const base = median(blocks.baseline);
  const inst = median(blocks.instrumented);
  // Paired: each instrumented block against the baseline block just before it (same load), then the median.
  const overhead = median(blocks.instrumented.map((v, i) => v - (blocks.baseline[i] as number)));
  const layer = median(blocks.passthrough.map((v, i) => v - (blocks.baseline[i] as number)));

  // The recording work alone (no Hono): the data point and the buffer update of one call.
  const call = {
    method: "GET",
    route: "/v2/orders/:order_id",
    status: 200,
    durationMs: 37,
    errorCode: "",
    colo: "",
    auth: "jwt",
    country: "",
  };
  const noop = () => {};
  const t0 = performance.now();
  for (let i = 0; i < 500_000; i++) {
    env.ANALYTICS?.writeDataPoint(apiCallPoint(call));
    bufferApiCall(env, noop, call);
  }
  const workNs = ((performance.now() - t0) * 1e6) / 500_000;
  await flushBufferToRedis(env);

  // The background write: one pipeline per flush, whatever the number of calls behind it.
  const flushes: { fields: number; ms: number }[] = [];
  for (const fields of [10, 100, 1_000]) {
    await flushBufferToRedis(env);
    const now = Date.now();
    for (let i = 0; i < fields; i++) {
      bufferApiCall(
        env,
        () => {},
        { method: "GET", route: `/bench/${i}`, status: 200, durationMs: 5, errorCode: "" },
        now,
      );
    }
    const size = pendingApiCalls().size;
    const t = performance.now();
    await flushBufferToRedis(env);
    flushes.push({ fields: size, ms: Math.round((performance.now() - t) * 10) / 10 });
  }

  await shim.stop();
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });

  console.log(
    `[bench:analytics] ${REQUESTS} requests per variant in blocks of ${BLOCK}: baseline ${(base / 1000).toFixed(2)} µs, ` +
      `instrumented ${(inst / 1000).toFixed(2)} µs per request (medians) → recording costs ${(overhead / 1000).toFixed(2)} µs ` +
      `on the request path, of which ${(layer / 1000).toFixed(2)} µs is any extra middleware layer (${points} data points written)`,
  );
  for (const f of flushes)
    console.log(`[bench:analytics] Redis flush of ${f.fields} counters: ${f.ms} ms (one pipeline)`);
  console.log(
    JSON.stringify({
      baselineNsPerRequest: Math.round(base),
      instrumentedNsPerRequest: Math.round(inst),
      overheadNsPerRequest: Math.round(overhead),
      emptyMiddlewareNsPerRequest: Math.round(layer),
      recordingWorkNsPerCall: Math.round(workNs),
      redisFlush: flushes,
    }),
  );
}

await main();
