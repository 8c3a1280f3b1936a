/**
 * Admin controls of the simulated market: start, stop and configure a symbol's market maker,
 * run one tick, replay external feed messages, and read the cache and stream counters. `/admin/*`
 * requires the admin role (app.ts); every change is written to the audit log before it takes effect.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { DATA_HUB_NAME } from "../../durable-objects/market-data-hub.ts";
import type { MarketConfigPatch } from "../../shared/market/config.ts";
import { SYMBOL_PATTERN } from "../../shared/symbols.ts";
import { audit } from "../auth/audit.ts";
import { AUTH_SECURITY, errorResponses } from "../auth/openapi.ts";
import { marketEnabled, marketMaker, marketSymbols } from "../lib/market/autostart.ts";
import { cacheStats, resetCacheStats } from "../lib/market/cache.ts";
import { createRouter } from "../openapi.ts";
import { json, knownSymbol, unwrap } from "./helpers.ts";

const TAG = "Admin";

const SymbolParam = z.object({
  symbol: z
    .string()
    .toUpperCase()
    .regex(SYMBOL_PATTERN)
    .openapi({ param: { name: "symbol", in: "path" }, example: "EPIC" }),
});

const section = z.record(z.string(), z.unknown()).optional();
const ConfigPatch = z
  .object({
    tickMs: z.number().int().optional(),
    simulator: section,
    quote: section,
    maker: section,
    noise: section,
    feed: z.record(z.string(), z.unknown()).nullable().optional(),
  })
  .strict()
  .openapi("MarketConfigPatch", {
    example: { tickMs: 1000, quote: { spreadTicks: 6, levels: 8 }, maker: { refillDelayMs: 5000 } },
  });
const Status = z.object({}).passthrough().openapi("MarketStatus");

const body = (schema: z.ZodType, required = false) => ({
  body: { required, content: { "application/json": { schema } } },
});

export const adminMarket = createRouter();

adminMarket.openapi(
  createRoute({
    method: "get",
    path: "/admin/market",
    tags: [TAG],
    summary: "The simulated market of every listed symbol",
    security: AUTH_SECURITY,
    responses: {
      200: json(z.object({}).passthrough(), "Status per symbol"),
      ...errorResponses(401, 403, 503),
    },
  }),
  async (c) => {
    const symbols = marketSymbols({ MARKET_SYMBOLS: "" });
    const statuses = await Promise.all(symbols.map((s) => marketMaker(c.env, s).status()));
    return c.json(
      {
        autostart: { enabled: marketEnabled(c.env), symbols: marketSymbols(c.env) },
        markets: statuses.map((s) => ({
          symbol: s.symbol,
          mode: s.mode,
          reference_price: s.referencePrice,
          reference_source: s.referenceSource,
          best_bid: s.ladder.bids[0] ?? null,
          best_ask: s.ladder.asks[0] ?? null,
          ticks: s.metrics.ticks,
          ticks_per_sec: s.metrics.ticksPerSec,
          requote_ms_avg: s.metrics.requoteMsAvg,
          last_error: s.lastError,
        })),
      },
      200,
    );
  },
);

adminMarket.openapi(
  createRoute({
    method: "get",
    path: "/admin/market/{symbol}",
    tags: [TAG],
    summary: "The simulated market of one symbol: config, reference price, ladder, counters",
    security: AUTH_SECURITY,
    request: { params: SymbolParam },
    responses: { 200: json(Status, "Market status"), ...errorResponses(401, 403, 404, 422, 503) },
  }),
  async (c) => {
    const symbol = knownSymbol(c.req.valid("param").symbol);
    return c.json(await marketMaker(c.env, symbol).status(), 200);
  },
);

adminMarket.openapi(
  createRoute({
    method: "post",
    path: "/admin/market/{symbol}/start",
    tags: [TAG],
    summary: "Start (or restart) a symbol's market maker, noise takers and price simulator",
    description: "An optional config patch applies first. The first tick runs at once.",
    security: AUTH_SECURITY,
    request: { params: SymbolParam, ...body(ConfigPatch) },
    responses: { 200: json(Status, "Market status"), ...errorResponses(401, 403, 404, 422, 503) },
  }),
  async (c) => {
    const symbol = knownSymbol(c.req.valid("param").symbol);
    const patch = (c.req.valid("json") ?? {}) as MarketConfigPatch;
    await audit(c, "market.start", `symbol:${symbol}`, { patch });
    return c.json(unwrap(await marketMaker(c.env, symbol).start(patch)), 200);
  },
);

adminMarket.openapi(
  createRoute({
    method: "post",
    path: "/admin/market/{symbol}/stop",
    tags: [TAG],
    summary: "Stop a symbol's market: no more ticks, the maker's orders are canceled",
    description: "A stopped market stays stopped (the cron does not restart it) until started again.",
    security: AUTH_SECURITY,
    request: { params: SymbolParam },
    responses: { 200: json(Status, "Market status"), ...errorResponses(401, 403, 404, 422, 503) },
  }),
  async (c) => {
    const symbol = knownSymbol(c.req.valid("param").symbol);
    await audit(c, "market.stop", `symbol:${symbol}`);
    return c.json(await marketMaker(c.env, symbol).stop(), 200);
  },
);

adminMarket.openapi(
  createRoute({
    method: "patch",
    path: "/admin/market/{symbol}/config",
    tags: [TAG],
    summary: "Change a symbol's market config (tempo, simulator, quotes, refill, noise takers, feed)",
    security: AUTH_SECURITY,
    request: { params: SymbolParam, ...body(ConfigPatch, true) },
    responses: { 200: json(Status, "Market status"), ...errorResponses(401, 403, 404, 422, 503) },
  }),
  async (c) => {
    const symbol = knownSymbol(c.req.valid("param").symbol);
    const patch = c.req.valid("json") as MarketConfigPatch;
    await audit(c, "market.configure", `symbol:${symbol}`, { patch });
    return c.json(unwrap(await marketMaker(c.env, symbol).configure(patch)), 200);
  },
);

adminMarket.openapi(
  createRoute({
    method: "post",
    path: "/admin/market/{symbol}/tick",
    tags: [TAG],
    summary: "Run one market tick now (whatever the mode)",
    security: AUTH_SECURITY,
    request: { params: SymbolParam },
    responses: {
      200: json(z.object({}).passthrough(), "What the tick did"),
      ...errorResponses(401, 403, 404, 422, 503),
    },
  }),
  async (c) => {
    const symbol = knownSymbol(c.req.valid("param").symbol);
    await audit(c, "market.tick", `symbol:${symbol}`);
    return c.json(await marketMaker(c.env, symbol).tick(), 200);
  },
);

adminMarket.openapi(
  createRoute({
    method: "post",
    path: "/admin/market/{symbol}/feed",
    tags: [TAG],
    summary: "Replay external feed messages (e.g. recorded fixtures) through the configured adapter",
    security: AUTH_SECURITY,
    request: {
      params: SymbolParam,
      ...body(z.object({ messages: z.array(z.unknown()).max(10_000) }).openapi("FeedMessages"), true),
    },
    responses: {
      200: json(z.object({}).passthrough(), "What the feed now says"),
      ...errorResponses(401, 403, 404, 422, 503),
    },
  }),
  async (c) => {
    const symbol = knownSymbol(c.req.valid("param").symbol);
    const { messages } = c.req.valid("json") as { messages: unknown[] };
    await audit(c, "market.feed", `symbol:${symbol}`, { messages: messages.length });
    return c.json(unwrap(await marketMaker(c.env, symbol).ingestFeed(messages)), 200);
  },
);

adminMarket.openapi(
  createRoute({
    method: "get",
    path: "/admin/market-data/cache",
    tags: [TAG],
    summary: "Hit counts and hit rates of the latest-quote and snapshot caches",
    security: AUTH_SECURITY,
    responses: { 200: json(z.object({}).passthrough(), "Cache counters"), ...errorResponses(401, 403, 503) },
  }),
  async (c) => c.json(await cacheStats(c.env), 200),
);

adminMarket.openapi(
  createRoute({
    method: "delete",
    path: "/admin/market-data/cache",
    tags: [TAG],
    summary: "Reset the cache counters",
    security: AUTH_SECURITY,
    responses: { 204: { description: "Reset" }, ...errorResponses(401, 403, 503) },
  }),
  async (c) => {
    await audit(c, "market.cache_stats_reset", "market-data:cache");
    await resetCacheStats(c.env);
    return c.body(null, 204);
  },
);

adminMarket.openapi(
  createRoute({
    method: "get",
    path: "/admin/market-data/stream",
    tags: [TAG],
    summary: "Counters of the market-data stream hub",
    security: AUTH_SECURITY,
    responses: { 200: json(z.object({}).passthrough(), "Hub counters"), ...errorResponses(401, 403, 503) },
  }),
  async (c) => {
    const hub = c.env.MARKET_DATA_HUB.get(c.env.MARKET_DATA_HUB.idFromName(DATA_HUB_NAME));
    return c.json(await hub.hubStats(), 200);
  },
);
