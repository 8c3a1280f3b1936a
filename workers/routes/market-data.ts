import { createRoute, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import {
  bookInputReason,
  type PackedCommands,
  packCommands,
} from "../../durable-objects/order-book/commands.ts";
import { STREAM_INTERVALS_MS } from "../../durable-objects/order-book/stream-intervals.ts";
import { workload } from "../../durable-objects/order-book/workload.ts";
import type { BookCommand } from "../../durable-objects/order-book.ts";
import { type PackedEvents, unpackEvents } from "../../shared/engine/wire.ts";
import { findSymbol, SYMBOL_PATTERN, type SymbolSpec } from "../../shared/symbols.ts";
import type { AppBindings, Env } from "../env.ts";
import { ApiError } from "../errors.ts";
import { createRouter } from "../openapi.ts";

const TAG = "Market data";

/** The OrderBook object of `symbol` (one per symbol). */
export function orderBook(env: Env, symbol: string) {
  return env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol));
}

const streamBook = createRoute({
  method: "get",
  path: "/v2/stream/book/{symbol}",
  tags: [TAG],
  summary: "Stream a symbol's order book (WebSocket)",
  description:
    "Upgrades to a WebSocket. The first message is a `snapshot` of the top `depth` levels per side; then " +
    "`delta` (every changed level, at any depth) and `trade` messages follow, each with `seq` one higher " +
    'than the last. A gap in `seq` means a message was missed: send `{"type":"subscribe"}` or reconnect ' +
    "for a fresh snapshot. `interval_ms` gathers the messages into at most one frame per interval. " +
    "See docs/market-data-protocol.md.",
  request: {
    params: z.object({
      symbol: z.string().regex(SYMBOL_PATTERN).openapi({ example: "ACME" }),
    }),
    query: z.object({
      depth: z
        .string()
        .regex(/^[0-9]{1,4}$/)
        .optional()
        .openapi({ description: "Snapshot levels per side, 1–1000 (default 50)", example: "50" }),
      interval_ms: z
        .enum(STREAM_INTERVALS_MS.map(String) as [string, ...string[]])
        .optional()
        .openapi({
          description:
            "At most one frame per this many milliseconds, holding every message of the interval in order " +
            "(same `seq`, nothing merged or dropped). Absent: every update as it happens.",
          example: "100",
        }),
    }),
  },
  responses: {
    101: { description: "Switching protocols: the market-data WebSocket" },
    404: { description: "No such symbol is listed" },
    422: { description: "Invalid symbol, depth or interval" },
    426: { description: "Not a WebSocket upgrade request" },
  },
});

export const marketData = createRouter();

marketData.openapi(streamBook, async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "upgrade_required", "this endpoint only accepts WebSocket upgrades");
  }
  const { symbol } = c.req.valid("param");
  const res = await orderBook(c.env, symbol).fetch(c.req.raw);
  if (res.status === 101) return res;
  const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
  throw new ApiError(
    res.status === 404 ? 404 : res.status === 503 ? 503 : 422,
    body.code ?? "stream_unavailable",
    body.message ?? "the book could not open a stream",
  );
});

// ---------------------------------------------------------------------------------------------------
// Development-only routes (benchmark and manual testing). They answer 404 unless ENVIRONMENT is
// "development" or "test", and they are not part of the OpenAPI document.
// ---------------------------------------------------------------------------------------------------

const DEV_ENVIRONMENTS = new Set(["development", "test"]);

const devOnly: MiddlewareHandler<AppBindings> = async (c, next) => {
  if (!DEV_ENVIRONMENTS.has(c.env.ENVIRONMENT)) {
    throw new ApiError(404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
  }
  await next();
};

function devSymbol(c: Context<AppBindings>): string {
  const symbol = c.req.param("symbol") ?? "";
  if (!SYMBOL_PATTERN.test(symbol)) throw new ApiError(422, "invalid_symbol", "symbol is malformed");
  return symbol;
}

marketData.use("/v2/dev/book/*", devOnly);

/** List a symbol with the rules of a catalog entry (default ACME), e.g. a fresh book per benchmark run. */
marketData.post("/v2/dev/book/:symbol/configure", async (c) => {
  const symbol = devSymbol(c);
  const body = (await c.req.json<{ like?: string }>().catch(() => ({}))) as { like?: string };
  const template = findSymbol(body.like ?? "ACME");
  if (template === undefined) throw new ApiError(422, "unknown_template", "like must name a catalog symbol");
  const spec: SymbolSpec = { ...template, symbol, name: `${template.name} (dev copy ${symbol})` };
  return c.json(await orderBook(c.env, symbol).configure(spec));
});

/**
 * A book call whose input came from the request: the book's refusal of it (`invalid_input: …`, thrown
 * across the RPC boundary) is the client's error, 422, not a 500.
 */
async function withBookInput<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    const reason = bookInputReason(err);
    if (reason !== null) throw new ApiError(422, "invalid_input", reason);
    throw err;
  }
}

/** One command (object) through `submit`, or an array through `submitMany` (its answer unpacked). */
marketData.post("/v2/dev/book/:symbol/orders", async (c) => {
  const book = orderBook(c.env, devSymbol(c));
  // A body that is not JSON is a SyntaxError, which the error handler answers with 400 invalid_json.
  const body = await c.req.json<unknown>();
  if (Array.isArray(body)) {
    return c.json(unpackEvents(await withBookInput(book.submitMany(body as BookCommand[]))));
  }
  return c.json(await withBookInput(book.submit(body as BookCommand)));
});

marketData.get("/v2/dev/book/:symbol/status", async (c) =>
  c.json(await orderBook(c.env, devSymbol(c)).status()),
);

marketData.get("/v2/dev/book/:symbol/snapshot", async (c) => {
  const depth = Number(c.req.query("depth") ?? "50");
  return c.json(await orderBook(c.env, devSymbol(c)).snapshot(depth));
});

marketData.post("/v2/dev/book/:symbol/admin/:action", async (c) => {
  const book = orderBook(c.env, devSymbol(c));
  switch (c.req.param("action")) {
    case "halt":
      return c.json(await book.halt());
    case "resume":
      return c.json(await book.resume());
    case "cancel-all":
      return c.json(await book.cancelAll());
    default:
      throw new ApiError(404, "not_found", "action must be halt, resume or cancel-all");
  }
});

/**
 * Drive the book from inside the Worker, so the figure is the object's own rate rather than the HTTP
 * client's: `count` orders of a deterministic workload, `batch` per RPC (1 → `submit`, otherwise
 * `submitMany` of the packed batch), `concurrency` RPCs in flight. Answers the elapsed time and rates,
 * the events answered, and how many outbox entries were still undelivered when the last answer came.
 *
 * The generator's own work stays off the clock: it packs every batch before starting and unpacks the
 * packed answers (into event objects, checking each pack) after the last one. In production that work is
 * the callers' (UserSession objects, each on its own isolate); here it would share workerd's one thread
 * with the book: unpacking answers as they came was the largest allocation of the batched run.
 */
marketData.post("/v2/dev/book/:symbol/bench", async (c) => {
  const symbol = devSymbol(c);
  const opts = (await c.req.json<Record<string, unknown>>().catch(() => ({}))) as Record<string, unknown>;
  const num = (key: string, fallback: number, max: number) => {
    const v = opts[key];
    return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= max ? v : fallback;
  };
  const count = num("count", 2000, 200_000);
  const batch = num("batch", 1, 1000);
  const concurrency = num("concurrency", 1, 256);
  const seed = num("seed", 1, 2 ** 31);
  const centre = num("centre", 10_000, 1_000_000);
  const idPrefix = typeof opts.idPrefix === "string" ? opts.idPrefix.slice(0, 40) : `b${Date.now()}`;
  const commands = workload({ seed, count, idPrefix, centre });
  const book = orderBook(c.env, symbol);
  await book.ping();
  const chunks: BookCommand[][] = [];
  for (let i = 0; i < commands.length; i += batch) chunks.push(commands.slice(i, i + batch));
  const packs = batch === 1 ? [] : chunks.map((chunk) => packCommands(chunk));
  const answers: PackedEvents[] = [];
  let next = 0;
  let events = 0;
  const started = Date.now();
  const worker = async () => {
    while (next < chunks.length) {
      const i = next++;
      if (batch === 1) events += (await book.submit((chunks[i] as BookCommand[])[0] as BookCommand)).length;
      else answers[i] = await book.submitMany(packs[i] as PackedCommands);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, chunks.length) }, worker));
  const ms = Math.max(1, Date.now() - started);
  answers.forEach((answer, i) => {
    const lists = unpackEvents(answer);
    const sent = (chunks[i] as BookCommand[]).length;
    if (lists.length !== sent) throw new Error(`batch ${i}: ${lists.length} answers for ${sent} commands`);
    for (const list of lists) events += list.length;
  });
  // The outbox drains behind the replies: how far behind it was when the last reply came (see /drained).
  const backlogRows = (await book.outboxStatus()).pending;
  return c.json({
    orders: count,
    batch,
    concurrency,
    rpcs: chunks.length,
    events,
    ms,
    ordersPerSec: Math.round((count * 1000) / ms),
    rpcsPerSec: Math.round((chunks.length * 1000) / ms),
    backlogRows,
  });
});

/**
 * Wait (up to 60 s) until the book's outbox is empty: every event delivered to its UserSession and
 * published. Answers how long that took.
 */
marketData.post("/v2/dev/book/:symbol/drained", async (c) => {
  const book = orderBook(c.env, devSymbol(c));
  const started = Date.now();
  const deadline = started + 60_000;
  let pending = (await book.outboxStatus()).pending;
  while (pending > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    pending = (await book.outboxStatus()).pending;
  }
  return c.json({ ms: Date.now() - started, pending });
});

/** Baseline: `count` no-op RPCs (`ping`) to the same object, to separate RPC cost from book work. */
marketData.post("/v2/dev/book/:symbol/bench-ping", async (c) => {
  const opts = (await c.req.json<Record<string, unknown>>().catch(() => ({}))) as Record<string, unknown>;
  const count =
    typeof opts.count === "number" && opts.count >= 1 && opts.count <= 100_000 ? opts.count : 2000;
  const concurrency =
    typeof opts.concurrency === "number" && opts.concurrency >= 1 && opts.concurrency <= 256
      ? opts.concurrency
      : 1;
  const book = orderBook(c.env, devSymbol(c));
  let left = count;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left > 0) {
        left--;
        await book.ping();
      }
    }),
  );
  const ms = Math.max(1, Date.now() - started);
  return c.json({ count, concurrency, ms, perSec: Math.round((count * 1000) / ms) });
});
