import { Redis } from "@upstash/redis/cloudflare";
import type { Env } from "../env.ts";

const clients = new Map<string, Redis>();

/**
 * The Upstash REST client; locally it reaches a real redis-server through the REST shim. One per isolate
 * and endpoint: it holds no connection (every command is a `fetch`), and scripts created on it keep their
 * SHA-1 across requests.
 */
export function redisClient(env: Env): Redis {
  if (!env.UPSTASH_REDIS_REST_URL || !env.UPSTASH_REDIS_REST_TOKEN) {
    throw new Error("UPSTASH_REDIS_REST_URL / UPSTASH_REDIS_REST_TOKEN are not configured");
  }
  const key = `${env.UPSTASH_REDIS_REST_URL}\n${env.UPSTASH_REDIS_REST_TOKEN}`;
  const cached = clients.get(key);
  if (cached !== undefined) return cached;
  const client = new Redis({
    url: env.UPSTASH_REDIS_REST_URL,
    token: env.UPSTASH_REDIS_REST_TOKEN,
    retry: false,
    // Every value stored here is UTF-8 text (ids, JSON, counters), so results need no base64 round trip
    // (the client's default decodes every string of every reply, a measurable share of a request's CPU).
    responseEncoding: false,
    // No SDK/platform headers on every call.
    enableTelemetry: false,
  });
  clients.set(key, client);
  return client;
}
