/**
 * The market-data API in the shapes of Alpaca's data API v2 (stocks): bars, trades, latest quotes and
 * trades, snapshots; and the market-data stream (Alpaca's data-stream protocol) at `/v2/stream/data`
 * (also `/v2/iex` and `/v2/sip`, the paths Alpaca's clients build from a feed name).
 *
 * Bars and trades come from Postgres (built from the trade-events queue, read from the replica); latest
 * quotes from the OrderBook; both latest quotes and snapshots through the edge cache and Redis (see
 * workers/lib/market/cache.ts). Every route needs a signed-in caller. See docs/market-data.md.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { Hono } from "hono";
import {
  DATA_HUB_NAME,
  DATA_STREAM_HELLO_HEADER,
  DATA_STREAM_USER_HEADER,
} from "../../durable-objects/market-data-hub.ts";
import {
  type AlpacaQuote,
  type AlpacaSnapshot,
  alpacaBar,
  alpacaQuote,
  alpacaTrade,
} from "../../shared/market/alpaca-data.ts";
import { parseTimeframe, TIMEFRAME_MS } from "../../shared/market/bars.ts";
import {
  errorMessage,
  parseClientAction,
  STREAM_ERRORS,
  successMessage,
} from "../../shared/market/data-stream.ts";
import { findSymbol, SYMBOL_PATTERN, type SymbolSpec } from "../../shared/symbols.ts";
import { API_KEY_ID_HEADER, API_SECRET_HEADER, authenticate, requireAuth } from "../auth/middleware.ts";
import { AUTH_SECURITY, errorResponses } from "../auth/openapi.ts";
import type { AuthBindings } from "../auth/types.ts";
import type { AppBindings } from "../env.ts";
import { ApiError } from "../errors.ts";
import { type CacheLayer, cachedJson } from "../lib/market/cache.ts";
import { liveQuote, readBars, readSnapshots, readTrades } from "../lib/market/queries.ts";
import { type RelayProtocol, relayAfterAuthentication } from "../lib/ws-relay.ts";
import { rateLimit } from "../middleware/rate-limit.ts";
import { createRouter } from "../openapi.ts";
import { json } from "./helpers.ts";

const TAG = "Market data";
const MAX_LIMIT = 10_000;
const DEFAULT_LIMIT = 1_000;
/** Header that says which cache layer answered: `edge`, `redis` or `origin`. */
export const CACHE_HEADER = "X-PrepX-Cache";

/** Per user, over every market-data route: Alpaca's data API allows 200/min on its free plan. */
const dataRateLimit = rateLimit<AuthBindings>({
  name: "market_data_user",
  limit: () => 1_200,
  window: "60 s",
  identify: (c) => c.get("principal")?.userId,
  message: "too many market-data requests for this account; retry later",
});

function route<R extends Parameters<typeof createRoute>[0]>(config: R) {
  return createRoute({
    ...config,
    tags: [TAG],
    security: AUTH_SECURITY,
    middleware: [requireAuth, dataRateLimit] as const,
  });
}

const SymbolParam = z.object({
  symbol: z
    .string()
    .toUpperCase()
    .regex(SYMBOL_PATTERN)
    .openapi({ param: { name: "symbol", in: "path" }, example: "EPIC" }),
});

const Timestamp = z
  .string()
  .trim()
  .max(40)
  .refine((s) => !Number.isNaN(Date.parse(s)), "not an RFC 3339 timestamp or date")
  .transform((s) => Date.parse(s));

const PageQuery = {
  start: Timestamp.optional().openapi({
    type: "string",
    description: "Inclusive; default: start of the current UTC day",
  }),
  end: Timestamp.optional().openapi({ type: "string", description: "Inclusive; default: now" }),
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT).openapi({ type: "integer" }),
  page_token: z.string().max(200).optional(),
  sort: z.enum(["asc", "desc"]).default("asc"),
  feed: z.string().max(20).optional().openapi({ description: "Accepted and ignored: PrepX has one feed" }),
  adjustment: z
    .string()
    .max(20)
    .optional()
    .openapi({ description: "Accepted and ignored: no corporate actions" }),
  currency: z.string().max(3).optional(),
  asof: z.string().max(40).optional(),
};

const SymbolsQuery = z.object({
  symbols: z
    .string()
    .max(2_000)
    .transform((s) => [
      ...new Set(
        s
          .split(",")
          .map((x) => x.trim().toUpperCase())
          .filter((x) => x !== ""),
      ),
    ])
    .refine((list) => list.length > 0 && list.length <= 100 && list.every((x) => SYMBOL_PATTERN.test(x)), {
      message: "symbols must be 1–100 comma-separated symbols",
    })
    .openapi({ type: "string", example: "EPIC,DYNA" }),
  feed: z.string().max(20).optional(),
  currency: z.string().max(3).optional(),
});

const BarSchema = z
  .object({
    t: z.string(),
    o: z.number(),
    h: z.number(),
    l: z.number(),
    c: z.number(),
    v: z.number(),
    n: z.number(),
    vw: z.number(),
  })
  .openapi("Bar");
const TradeSchema = z
  .object({
    t: z.string(),
    x: z.string(),
    p: z.number(),
    s: z.number(),
    c: z.array(z.string()),
    i: z.number(),
    z: z.string(),
  })
  .passthrough()
  .openapi("Trade");
const QuoteSchema = z
  .object({
    t: z.string(),
    bx: z.string(),
    bp: z.number(),
    bs: z.number(),
    ax: z.string(),
    ap: z.number(),
    as: z.number(),
    c: z.array(z.string()),
    z: z.string(),
  })
  .openapi("Quote");
const SnapshotSchema = z
  .object({
    latestTrade: TradeSchema.nullable(),
    latestQuote: QuoteSchema.nullable(),
    minuteBar: BarSchema.nullable(),
    dailyBar: BarSchema.nullable(),
    prevDailyBar: BarSchema.nullable(),
  })
  .openapi("Snapshot");

function listed(symbol: string): SymbolSpec {
  const spec = findSymbol(symbol);
  if (!spec) throw new ApiError(404, "symbol_not_found", `symbol ${symbol} is not listed`);
  return spec;
}

function startOfUtcDay(now: number): number {
  return now - (now % 86_400_000);
}

function range(q: { start?: number; end?: number }, now = Date.now()): { start: number; end: number } {
  const start = q.start ?? startOfUtcDay(now);
  const end = q.end ?? now;
  if (end < start) throw new ApiError(422, "invalid_range", "end is before start");
  return { start, end };
}

const encodeToken = (parts: number[]) => btoa(parts.join(":")).replace(/=+$/, "");
function decodeToken(token: string | undefined, size: number): number[] | undefined {
  if (token === undefined || token === "") return undefined;
  let text: string;
  try {
    text = atob(token);
  } catch {
    throw new ApiError(422, "invalid_page_token", "page_token is not valid");
  }
  const parts = text.split(":").map(Number);
  if (parts.length !== size || !parts.every(Number.isSafeInteger)) {
    throw new ApiError(422, "invalid_page_token", "page_token is not valid");
  }
  return parts;
}

function ctxOf(c: Context) {
  return { waitUntil: (p: Promise<unknown>) => c.executionCtx.waitUntil(p) };
}

/** The latest quote of a symbol in Alpaca's shape, through the caches. */
async function latestQuote(
  c: Context<AuthBindings>,
  spec: SymbolSpec,
): Promise<{ quote: AlpacaQuote; layer: CacheLayer }> {
  const { value, layer } = await cachedJson(c.env, ctxOf(c), "quote", spec.symbol, async () =>
    alpacaQuote(await liveQuote(c.env, spec.symbol), spec),
  );
  return { quote: value, layer };
}

async function snapshotOf(
  c: Context<AuthBindings>,
  spec: SymbolSpec,
): Promise<{ snapshot: AlpacaSnapshot; layer: CacheLayer }> {
  const { value, layer } = await cachedJson(c.env, ctxOf(c), "snapshot", spec.symbol, async () => {
    const [history, quote] = await Promise.all([
      readSnapshots(c.env, [spec.symbol]),
      liveQuote(c.env, spec.symbol),
    ]);
    const h = history.get(spec.symbol);
    const snapshot: AlpacaSnapshot = {
      latestTrade: h?.latestTrade ? alpacaTrade(h.latestTrade, spec) : null,
      latestQuote: alpacaQuote(quote, spec),
      minuteBar: h?.minuteBar ? alpacaBar(h.minuteBar, spec) : null,
      dailyBar: h?.dailyBar ? alpacaBar(h.dailyBar, spec) : null,
      prevDailyBar: h?.prevDailyBar ? alpacaBar(h.prevDailyBar, spec) : null,
    };
    return snapshot;
  });
  return { snapshot: value, layer };
}

/** `edge` / `redis` / `origin`, or for several reads the worst of them (`origin` if any went there). */
function worst(layers: CacheLayer[]): CacheLayer {
  return layers.includes("origin") ? "origin" : layers.includes("redis") ? "redis" : "edge";
}

export const marketDataApi = createRouter();

marketDataApi.openapi(
  route({
    method: "get",
    path: "/v2/stocks/{symbol}/bars",
    summary: "Historical bars (OHLCV with VWAP) of a symbol",
    description:
      "Timeframes 1Min, 5Min, 15Min, 1Hour, 1Day. Bars are built from PrepX trades; a bucket without trades " +
      "has no bar. Pages of `limit` bars; pass `next_page_token` back as `page_token`.",
    request: {
      params: SymbolParam,
      query: z.object({ timeframe: z.string().max(10).openapi({ example: "1Min" }), ...PageQuery }),
    },
    responses: {
      200: json(
        z.object({ bars: z.array(BarSchema), symbol: z.string(), next_page_token: z.string().nullable() }),
        "A page of bars",
      ),
      ...errorResponses(401, 404, 422, 429, 503),
    },
  }),
  async (c) => {
    const spec = listed(c.req.valid("param").symbol);
    const q = c.req.valid("query");
    const timeframe = parseTimeframe(q.timeframe);
    if (timeframe === null) {
      throw new ApiError(422, "invalid_timeframe", "timeframe must be one of 1Min, 5Min, 15Min, 1Hour, 1Day");
    }
    const { start, end } = range(q);
    const after = decodeToken(q.page_token, 1)?.[0];
    const page = await readBars(c.env, spec.symbol, timeframe, {
      start:
        start - (((start % TIMEFRAME_MS[timeframe]) + TIMEFRAME_MS[timeframe]) % TIMEFRAME_MS[timeframe]),
      end,
      limit: q.limit,
      direction: q.sort,
      ...(after !== undefined ? { after } : {}),
    });
    const last = page.bars[page.bars.length - 1];
    return c.json(
      {
        bars: page.bars.map((b) => alpacaBar(b, spec)),
        symbol: spec.symbol,
        next_page_token: page.more && last ? encodeToken([last.start]) : null,
      },
      200,
    );
  },
);

marketDataApi.openapi(
  route({
    method: "get",
    path: "/v2/stocks/{symbol}/trades",
    summary: "Historical trades of a symbol",
    description:
      "Every PrepX trade in time order (then by sequence). `i` is the book's fill sequence number.",
    request: { params: SymbolParam, query: z.object(PageQuery) },
    responses: {
      200: json(
        z.object({
          trades: z.array(TradeSchema),
          symbol: z.string(),
          next_page_token: z.string().nullable(),
        }),
        "A page of trades",
      ),
      ...errorResponses(401, 404, 422, 429, 503),
    },
  }),
  async (c) => {
    const spec = listed(c.req.valid("param").symbol);
    const q = c.req.valid("query");
    const { start, end } = range(q);
    const cursor = decodeToken(q.page_token, 2);
    const page = await readTrades(c.env, spec.symbol, {
      start,
      end,
      limit: q.limit,
      direction: q.sort,
      ...(cursor ? { after: { ts: cursor[0] as number, seq: cursor[1] as number } } : {}),
    });
    const last = page.trades[page.trades.length - 1];
    return c.json(
      {
        trades: page.trades.map((t) => alpacaTrade(t, spec)),
        symbol: spec.symbol,
        next_page_token: page.more && last ? encodeToken([last.ts, last.seq]) : null,
      },
      200,
    );
  },
);

marketDataApi.openapi(
  route({
    method: "get",
    path: "/v2/stocks/{symbol}/trades/latest",
    summary: "The latest trade of a symbol",
    request: { params: SymbolParam, query: z.object({ feed: z.string().max(20).optional() }) },
    responses: {
      200: json(z.object({ symbol: z.string(), trade: TradeSchema.nullable() }), "The latest trade"),
      ...errorResponses(401, 404, 422, 429, 503),
    },
  }),
  async (c) => {
    const spec = listed(c.req.valid("param").symbol);
    const { snapshot, layer } = await snapshotOf(c, spec);
    c.header(CACHE_HEADER, layer);
    return c.json({ symbol: spec.symbol, trade: snapshot.latestTrade }, 200);
  },
);

marketDataApi.openapi(
  route({
    method: "get",
    path: "/v2/stocks/{symbol}/quotes/latest",
    summary: "The latest quote (best bid and offer) of a symbol",
    description: `Cached for about a second at the edge and two in Redis; the \`${CACHE_HEADER}\` header says which layer answered.`,
    request: { params: SymbolParam, query: z.object({ feed: z.string().max(20).optional() }) },
    responses: {
      200: json(z.object({ symbol: z.string(), quote: QuoteSchema }), "The latest quote"),
      ...errorResponses(401, 404, 422, 429, 503),
    },
  }),
  async (c) => {
    const spec = listed(c.req.valid("param").symbol);
    const { quote, layer } = await latestQuote(c, spec);
    c.header(CACHE_HEADER, layer);
    return c.json({ symbol: spec.symbol, quote }, 200);
  },
);

marketDataApi.openapi(
  route({
    method: "get",
    path: "/v2/stocks/quotes/latest",
    summary: "The latest quotes of several symbols",
    request: { query: SymbolsQuery },
    responses: {
      200: json(z.object({ quotes: z.record(z.string(), QuoteSchema) }), "Latest quote per symbol"),
      ...errorResponses(401, 404, 422, 429, 503),
    },
  }),
  async (c) => {
    const specs = c.req.valid("query").symbols.map(listed);
    const results = await Promise.all(specs.map((s) => latestQuote(c, s)));
    c.header(CACHE_HEADER, worst(results.map((r) => r.layer)));
    const quotes: Record<string, AlpacaQuote> = {};
    specs.forEach((s, i) => {
      const r = results[i];
      if (r) quotes[s.symbol] = r.quote;
    });
    return c.json({ quotes }, 200);
  },
);

marketDataApi.openapi(
  route({
    method: "get",
    path: "/v2/stocks/snapshots",
    summary: "Snapshots of several symbols: latest trade and quote, minute, daily and previous daily bar",
    request: { query: SymbolsQuery },
    responses: {
      200: json(z.record(z.string(), SnapshotSchema), "Snapshot per symbol"),
      ...errorResponses(401, 404, 422, 429, 503),
    },
  }),
  async (c) => {
    const specs = c.req.valid("query").symbols.map(listed);
    const results = await Promise.all(specs.map((s) => snapshotOf(c, s)));
    c.header(CACHE_HEADER, worst(results.map((r) => r.layer)));
    const snapshots: Record<string, AlpacaSnapshot> = {};
    specs.forEach((s, i) => {
      const r = results[i];
      if (r) snapshots[s.symbol] = r.snapshot;
    });
    return c.json(snapshots, 200);
  },
);

marketDataApi.openapi(
  route({
    method: "get",
    path: "/v2/stocks/{symbol}/snapshot",
    summary: "Snapshot of a symbol",
    request: { params: SymbolParam, query: z.object({ feed: z.string().max(20).optional() }) },
    responses: {
      200: json(SnapshotSchema.extend({ symbol: z.string() }), "The snapshot"),
      ...errorResponses(401, 404, 422, 429, 503),
    },
  }),
  async (c) => {
    const spec = listed(c.req.valid("param").symbol);
    const { snapshot, layer } = await snapshotOf(c, spec);
    c.header(CACHE_HEADER, layer);
    return c.json({ symbol: spec.symbol, ...snapshot }, 200);
  },
);

// ---------------------------------------------------------------------------------------------------
// The market-data stream (WebSocket). Not in the OpenAPI document: it is not HTTP after the upgrade.
// ---------------------------------------------------------------------------------------------------

export const marketDataStream = new Hono<AppBindings>();

for (const path of ["/v2/stream/data", "/v2/iex", "/v2/sip"]) {
  marketDataStream.get(path, async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ApiError(426, "upgrade_required", `GET ${path} must be a WebSocket upgrade`);
    }
    if (c.req.header(API_KEY_ID_HEADER) || c.req.header(API_SECRET_HEADER) || c.req.header("authorization")) {
      const principal = await authenticate(c);
      return connectToHub(c, principal.userId, "connected,authenticated");
    }
    return relayAfterAuthentication(c, dataStreamProtocol(c));
  });
}

function connectToHub(c: Context<AppBindings>, userId: string, hello: string): Promise<Response> {
  const hub = c.env.MARKET_DATA_HUB.get(c.env.MARKET_DATA_HUB.idFromName(DATA_HUB_NAME));
  return hub.fetch("https://market-data-hub.internal/connect", {
    headers: { Upgrade: "websocket", [DATA_STREAM_USER_HEADER]: userId, [DATA_STREAM_HELLO_HEADER]: hello },
  });
}

/**
 * Alpaca's clients authenticate with the first message (`{"action":"auth","key","secret"}`): the edge
 * accepts the socket, says `connected`, checks the credentials exactly as on an HTTP request, then relays
 * frames to and from the hub for the life of the connection (workers/lib/ws-relay.ts; like Alpaca, 10 s to
 * authenticate, then error 404).
 */
function dataStreamProtocol(c: Context<AppBindings>): RelayProtocol {
  return {
    greeting: [successMessage("connected")],
    credentials(text) {
      const action = parseClientAction(text, (s) => SYMBOL_PATTERN.test(s));
      if (action === null) return { reply: [errorMessage(STREAM_ERRORS.invalidSyntax)] };
      if (action.action !== "auth") return { reply: [errorMessage(STREAM_ERRORS.notAuthenticated)] };
      const headers: Record<string, string> =
        action.key !== undefined || action.secret !== undefined
          ? { [API_KEY_ID_HEADER]: action.key ?? "", [API_SECRET_HEADER]: action.secret ?? "" }
          : action.token !== undefined
            ? { authorization: `Bearer ${action.token}` }
            : {};
      return { headers };
    },
    connect: (principal) => connectToHub(c, principal.userId, "authenticated"),
    forwardFirstMessage: false,
    refusal: (why) =>
      why === "timeout"
        ? { reply: [errorMessage(STREAM_ERRORS.authTimeout)], reason: "auth timeout" }
        : why === "unauthorized"
          ? { reply: [errorMessage(STREAM_ERRORS.authFailed)], reason: "auth failed" }
          : { reason: "too many messages before authentication" },
    failureLog: "data stream authentication failed",
  };
}
