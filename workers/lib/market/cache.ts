/**
 * Two-layer cache for hot market-data reads (latest quotes, snapshots), with hit counters.
 *
 * 1. The edge: the Workers Cache API of the colo (`caches.default`), TTL `edgeTtlSeconds` (≥ 1 s: its
 *    granularity). Invalidation reaches only the colo that runs it, so its TTL is the staleness bound.
 * 2. Redis (Upstash): shared by every colo and object, TTL `redisTtlMs`. Writers invalidate it on change
 *    (`invalidateMarketData`), or write through (`writeThroughQuote`).
 * 3. The origin: the OrderBook (quotes) or Postgres (snapshots).
 *
 * Counters: each isolate counts hits per layer in memory and adds them to the Redis hash
 * `md:cache:stats` every {@link FLUSH_EVERY} reads or {@link FLUSH_MS} ms (in `waitUntil`), so counting
 * costs about one Redis command per 20 reads. `cacheStats` merges Redis with this isolate's unflushed
 * counts. Redis or the Cache API being unavailable degrades to the next layer, never to an error.
 */
import type { Redis } from "@upstash/redis/cloudflare";
import type { Env } from "../../env.ts";
import { redisClient } from "../redis.ts";

export type CacheKind = "quote" | "snapshot";
export type CacheLayer = "edge" | "redis" | "origin";

export interface CacheTtls {
  edgeTtlSeconds: number;
  redisTtlMs: number;
}

export const DEFAULT_TTLS: Record<CacheKind, CacheTtls> = {
  quote: { edgeTtlSeconds: 1, redisTtlMs: 2_000 },
  snapshot: { edgeTtlSeconds: 1, redisTtlMs: 3_000 },
};

const STATS_KEY = "md:cache:stats";
const FLUSH_EVERY = 20;
const FLUSH_MS = 5_000;
const CACHE_ORIGIN = "https://market-data-cache.prepx.internal";

const pending = new Map<string, number>();
let pendingCount = 0;
let lastFlush = 0;

function redisOrNull(env: Env): Redis | null {
  if (!env.UPSTASH_REDIS_REST_URL || !env.UPSTASH_REDIS_REST_TOKEN) return null;
  try {
    return redisClient(env);
  } catch {
    return null;
  }
}

function edgeCache(): Cache | null {
  return typeof caches === "undefined" ? null : caches.default;
}

export function ttlsOf(env: Env, kind: CacheKind): CacheTtls {
  const override = Number(kind === "quote" ? env.MARKET_QUOTE_CACHE_MS : env.MARKET_SNAPSHOT_CACHE_MS);
  if (!Number.isSafeInteger(override) || override <= 0) return DEFAULT_TTLS[kind];
  return { edgeTtlSeconds: Math.max(1, Math.round(override / 1000)), redisTtlMs: override };
}

const redisKey = (kind: CacheKind, key: string) => `md:${kind}:${key}`;
const edgeUrl = (kind: CacheKind, key: string) => `${CACHE_ORIGIN}/${kind}/${encodeURIComponent(key)}`;

function count(field: string, n = 1): void {
  pending.set(field, (pending.get(field) ?? 0) + n);
  pendingCount += n;
}

/** Add this isolate's counts to Redis when due (or `force`). */
export async function flushCacheStats(env: Env, force = false): Promise<void> {
  const now = Date.now();
  if (pendingCount === 0 || (!force && pendingCount < FLUSH_EVERY && now - lastFlush < FLUSH_MS)) return;
  const redis = redisOrNull(env);
  if (redis === null) return;
  const batch = [...pending];
  pending.clear();
  pendingCount = 0;
  lastFlush = now;
  try {
    const p = redis.pipeline();
    for (const [field, n] of batch) p.hincrby(STATS_KEY, field, n);
    await p.exec();
  } catch {
    // Put them back: a lost flush would bias the hit rate.
    for (const [field, n] of batch) count(field, n);
  }
}

/**
 * `load()` through the edge cache and Redis. Returns the value and the layer that served it.
 *
 * @example
 * ```ts
 * const { value, layer } = await cachedJson(env, ctx, "quote", "EPIC", () => liveQuote(env, "EPIC"));
 * ```
 */
export async function cachedJson<T>(
  env: Env,
  ctx: Pick<ExecutionContext, "waitUntil">,
  kind: CacheKind,
  key: string,
  load: () => Promise<T>,
): Promise<{ value: T; layer: CacheLayer }> {
  const ttl = ttlsOf(env, kind);
  const edge = edgeCache();
  const url = edgeUrl(kind, key);
  const done = (value: T, layer: CacheLayer) => {
    count(`${kind}:${layer}`);
    ctx.waitUntil(flushCacheStats(env));
    return { value, layer };
  };
  const putEdge = (value: T) => {
    if (edge === null) return;
    ctx.waitUntil(
      edge
        .put(
          url,
          new Response(JSON.stringify(value), {
            headers: { "Content-Type": "application/json", "Cache-Control": `max-age=${ttl.edgeTtlSeconds}` },
          }),
        )
        .catch(() => {}),
    );
  };

  if (edge !== null) {
    const hit = await edge.match(url).catch(() => undefined);
    if (hit) return done((await hit.json()) as T, "edge");
  }
  const redis = redisOrNull(env);
  if (redis !== null) {
    const stored = await redis.get<T>(redisKey(kind, key)).catch(() => null);
    if (stored !== null && stored !== undefined) {
      putEdge(stored);
      return done(stored, "redis");
    }
  }
  const value = await load();
  if (redis !== null)
    ctx.waitUntil(redis.set(redisKey(kind, key), value, { px: ttl.redisTtlMs }).catch(() => {}));
  putEdge(value);
  return done(value, "origin");
}

/** Drop cached quotes and / or snapshots of symbols (Redis everywhere, the edge cache of this colo). */
export async function invalidateMarketData(
  env: Env,
  symbols: readonly string[],
  kinds: readonly CacheKind[] = ["quote", "snapshot"],
): Promise<void> {
  if (symbols.length === 0 || kinds.length === 0) return;
  const redis = redisOrNull(env);
  const keys = symbols.flatMap((s) => kinds.map((k) => redisKey(k, s)));
  const edge = edgeCache();
  await Promise.all([
    redis?.del(...keys).catch(() => 0),
    ...(edge ? symbols.flatMap((s) => kinds.map((k) => edge.delete(edgeUrl(k, s)).catch(() => false))) : []),
  ]).catch(() => {});
  count("invalidations", keys.length);
  await flushCacheStats(env);
}

/** Store a fresh value (e.g. a quote the data hub just saw change) so readers need not ask the origin. */
export async function writeThrough<T>(env: Env, kind: CacheKind, key: string, value: T): Promise<void> {
  const redis = redisOrNull(env);
  if (redis === null) return;
  await redis.set(redisKey(kind, key), value, { px: ttlsOf(env, kind).redisTtlMs }).catch(() => {});
  count("write_through");
}

export interface CacheStats {
  counts: Record<string, number>;
  /** Per kind: hits at the edge and in Redis over all reads, as fractions. */
  hitRates: Record<CacheKind, { reads: number; edge: number; redis: number; any: number }>;
}

/** Totals since the counters were last reset (Redis plus this isolate's unflushed counts). */
export async function cacheStats(env: Env): Promise<CacheStats> {
  const counts: Record<string, number> = {};
  const redis = redisOrNull(env);
  if (redis !== null) {
    const stored = (await redis.hgetall<Record<string, number | string>>(STATS_KEY).catch(() => null)) ?? {};
    for (const [k, v] of Object.entries(stored)) counts[k] = Number(v);
  }
  for (const [k, v] of pending) counts[k] = (counts[k] ?? 0) + v;
  const rate = (kind: CacheKind) => {
    const edge = counts[`${kind}:edge`] ?? 0;
    const red = counts[`${kind}:redis`] ?? 0;
    const origin = counts[`${kind}:origin`] ?? 0;
    const reads = edge + red + origin;
    const frac = (n: number) => (reads === 0 ? 0 : Math.round((n / reads) * 10_000) / 10_000);
    return { reads, edge: frac(edge), redis: frac(red), any: frac(edge + red) };
  };
  return { counts, hitRates: { quote: rate("quote"), snapshot: rate("snapshot") } };
}

/** Start counting afresh (admin). */
export async function resetCacheStats(env: Env): Promise<void> {
  pending.clear();
  pendingCount = 0;
  await redisOrNull(env)?.del(STATS_KEY);
}
