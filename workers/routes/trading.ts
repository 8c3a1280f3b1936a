/**
 * The trading API, in Alpaca's shapes (v2): account, orders, positions, activities, assets, clock.
 * Every route runs as the authenticated caller against that caller's own UserSession, so one user can
 * never reach another user's orders: an id that belongs to someone else is simply not found.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { assetIdFor } from "../../shared/orders/alpaca.ts";
import { DEFAULT_SYMBOLS, findSymbol, minNotionalUsd } from "../../shared/symbols.ts";
import { requireTrader } from "../auth/middleware.ts";
import { AUTH_SECURITY, errorResponses } from "../auth/openapi.ts";
import type { AuthBindings } from "../auth/types.ts";
import { ApiError } from "../errors.ts";
import { historyFillActivities, historyOrders, historyPortfolio } from "../history/reads.ts";
import { createRouter } from "../openapi.ts";
import { json, unwrap } from "./helpers.ts";

const DecimalInput = z
  .union([z.string().trim().max(32), z.number().finite()])
  .transform((v) => String(v))
  .openapi({ type: "string", example: "10" });
const SymbolName = z
  .string()
  .trim()
  .toUpperCase()
  .regex(/^[A-Z][A-Z0-9.-]{0,15}$/, "not a symbol")
  .openapi({ example: "ACME" });
const OrderId = z
  .string()
  .uuid()
  .openapi({ param: { name: "order_id", in: "path" }, example: "61e69015-8549-4bfd-b9c3-01e75843f47d" });
const Timestamp = z
  .string()
  .trim()
  .refine((s) => !Number.isNaN(Date.parse(s)), "not an ISO 8601 timestamp")
  .transform((s) => Date.parse(s));

const OrderSchema = z
  .object({
    id: z.string(),
    client_order_id: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    submitted_at: z.string(),
    filled_at: z.string().nullable(),
    expired_at: z.string().nullable(),
    canceled_at: z.string().nullable(),
    failed_at: z.string().nullable(),
    replaced_at: z.string().nullable(),
    replaced_by: z.string().nullable(),
    replaces: z.string().nullable(),
    asset_id: z.string(),
    symbol: z.string(),
    asset_class: z.string(),
    notional: z.string().nullable(),
    qty: z.string().nullable(),
    filled_qty: z.string(),
    filled_avg_price: z.string().nullable(),
    order_class: z.string(),
    order_type: z.string(),
    type: z.string(),
    side: z.string(),
    time_in_force: z.string(),
    limit_price: z.string().nullable(),
    stop_price: z.string().nullable(),
    status: z.string(),
    extended_hours: z.boolean(),
    expires_at: z.string().nullable(),
    reason: z.string().nullable().openapi({ description: "PrepX: why the order was rejected or canceled" }),
  })
  .passthrough()
  .openapi("Order");

const PlaceOrderSchema = z
  .object({
    symbol: SymbolName,
    qty: DecimalInput.optional(),
    notional: DecimalInput.optional(),
    side: z.enum(["buy", "sell"]),
    type: z.enum(["market", "limit", "stop", "stop_limit"]),
    time_in_force: z.enum(["day", "gtc", "ioc", "fok"]),
    limit_price: DecimalInput.optional(),
    stop_price: DecimalInput.optional(),
    client_order_id: z.string().trim().min(1).max(128).optional(),
    extended_hours: z.boolean().optional(),
    order_class: z.enum(["simple", ""]).optional(),
  })
  .openapi("PlaceOrderRequest");

const ReplaceOrderSchema = z
  .object({
    qty: DecimalInput.optional(),
    limit_price: DecimalInput.optional(),
    stop_price: DecimalInput.optional(),
    time_in_force: z.enum(["day", "gtc", "ioc", "fok"]).optional(),
    client_order_id: z.string().trim().min(1).max(128).optional(),
  })
  .openapi("ReplaceOrderRequest");

const AccountSchema = z.object({}).passthrough().openapi("Account");
const PositionSchema = z.object({}).passthrough().openapi("Position");
const ActivitySchema = z.object({}).passthrough().openapi("Activity");

function route<R extends Parameters<typeof createRoute>[0]>(config: R) {
  return createRoute({
    ...config,
    security: AUTH_SECURITY,
    middleware: [requireTrader] as const,
  });
}

function session(c: Context<AuthBindings>) {
  const userId = c.var.principal.userId;
  return { userId, stub: c.env.USER_SESSION.get(c.env.USER_SESSION.idFromName(userId)) };
}

const TAG_ACCOUNT = "Account";
const TAG_ORDERS = "Orders";
const TAG_POSITIONS = "Positions";
const TAG_ASSETS = "Assets";

export const trading = createRouter();

trading.openapi(
  route({
    method: "get",
    path: "/v2/account",
    tags: [TAG_ACCOUNT],
    summary: "The caller's account: cash, buying power, equity",
    responses: { 200: json(AccountSchema, "Account"), ...errorResponses(401, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    return c.json(unwrap(await stub.getAccount(userId)), 200);
  },
);

trading.openapi(
  route({
    method: "post",
    path: "/v2/account/reset",
    tags: [TAG_ACCOUNT],
    summary: "Reset the practice account to its starting cash (PrepX extension)",
    description: "Cancels open orders, drops positions, and restores the starting cash.",
    responses: { 200: json(AccountSchema, "Account after the reset"), ...errorResponses(401, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    const account = unwrap(await stub.resetAccount(userId));
    c.get("log").info("account reset", { user_id: userId });
    return c.json(account, 200);
  },
);

const ActivityQuery = z.object({
  activity_types: z.string().optional(),
  after: Timestamp.optional(),
  until: Timestamp.optional(),
  direction: z.enum(["asc", "desc"]).default("desc"),
  page_size: z.coerce.number().int().min(1).max(100).default(100),
  page_token: z.string().max(200).optional(),
});

async function fillActivities(c: Context<AuthBindings>, q: z.infer<typeof ActivityQuery>) {
  const { userId, stub } = session(c);
  // Postgres (read replica) once it has caught up with the user, else the UserSession.
  return historyFillActivities(c, userId, stub, {
    direction: q.direction,
    pageSize: q.page_size,
    ...(q.after !== undefined ? { after: q.after } : {}),
    ...(q.until !== undefined ? { until: q.until } : {}),
    ...(q.page_token !== undefined ? { pageToken: q.page_token } : {}),
  });
}

trading.openapi(
  route({
    method: "get",
    path: "/v2/account/activities",
    tags: [TAG_ACCOUNT],
    summary: "Account activities (FILL), newest first",
    description: "Only FILL activities exist on a practice account. Page with page_token = the last id seen.",
    request: { query: ActivityQuery },
    responses: { 200: json(z.array(ActivitySchema), "Activities"), ...errorResponses(401, 422, 429, 503) },
  }),
  async (c) => {
    const q = c.req.valid("query");
    const types = q.activity_types?.split(",").map((t) => t.trim().toUpperCase());
    if (types && !types.includes("FILL")) return c.json([], 200);
    return c.json(await fillActivities(c, q), 200);
  },
);

trading.openapi(
  route({
    method: "get",
    path: "/v2/account/activities/{activity_type}",
    tags: [TAG_ACCOUNT],
    summary: "Account activities of one type",
    request: {
      params: z.object({
        activity_type: z
          .string()
          .max(16)
          .openapi({ param: { name: "activity_type", in: "path" } }),
      }),
      query: ActivityQuery.omit({ activity_types: true }),
    },
    responses: { 200: json(z.array(ActivitySchema), "Activities"), ...errorResponses(401, 422, 429, 503) },
  }),
  async (c) => {
    const type = c.req.valid("param").activity_type.toUpperCase();
    if (type !== "FILL") return c.json([], 200);
    return c.json(await fillActivities(c, c.req.valid("query")), 200);
  },
);

trading.openapi(
  route({
    method: "get",
    path: "/v2/account/portfolio/history",
    tags: [TAG_ACCOUNT],
    summary: "Equity curve of the account",
    description:
      "Intraday (default) from the live account; `timeframe=1D` gives one point per day (Postgres), " +
      "over `period` (e.g. 1W, 1M, 3M, 1A; default 1M).",
    request: {
      query: z.object({
        timeframe: z.enum(["1Min", "5Min", "15Min", "1H", "1D"]).optional(),
        period: z
          .string()
          .regex(/^\d{1,3}[DWMA]$/, "like 1D, 2W, 3M or 1A")
          .optional(),
      }),
    },
    responses: {
      200: json(z.object({}).passthrough().openapi("PortfolioHistory"), "Equity over time"),
      ...errorResponses(401, 429, 503),
    },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    return c.json(await historyPortfolio(c, userId, stub, c.req.valid("query")), 200);
  },
);

// --- Orders -------------------------------------------------------------------------------------

trading.openapi(
  route({
    method: "post",
    path: "/v2/orders",
    tags: [TAG_ORDERS],
    summary: "Place an order",
    description:
      "Market, limit, stop and stop-limit; day, gtc, ioc, fok. `client_order_id` makes the call idempotent: " +
      "a retry with the same id returns the original order and places nothing. Insufficient buying power or " +
      "shares answers 403.",
    request: { body: { required: true, content: { "application/json": { schema: PlaceOrderSchema } } } },
    responses: { 200: json(OrderSchema, "The order"), ...errorResponses(400, 401, 403, 409, 422, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    const body = c.req.valid("json");
    const order = unwrap(
      await stub.placeOrder(userId, {
        symbol: body.symbol,
        side: body.side,
        type: body.type,
        time_in_force: body.time_in_force,
        ...(body.qty !== undefined ? { qty: body.qty } : {}),
        ...(body.notional !== undefined ? { notional: body.notional } : {}),
        ...(body.limit_price !== undefined ? { limit_price: body.limit_price } : {}),
        ...(body.stop_price !== undefined ? { stop_price: body.stop_price } : {}),
        ...(body.client_order_id !== undefined ? { client_order_id: body.client_order_id } : {}),
      }),
    );
    return c.json(order, 200);
  },
);

trading.openapi(
  route({
    method: "get",
    path: "/v2/orders",
    tags: [TAG_ORDERS],
    summary: "List orders",
    request: {
      query: z.object({
        status: z.enum(["open", "closed", "all"]).default("open"),
        limit: z.coerce.number().int().min(1).max(500).default(50),
        after: Timestamp.optional(),
        until: Timestamp.optional(),
        direction: z.enum(["asc", "desc"]).default("desc"),
        symbols: z.string().max(2000).optional(),
        nested: z.string().optional(),
      }),
    },
    responses: { 200: json(z.array(OrderSchema), "Orders"), ...errorResponses(401, 422, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    const q = c.req.valid("query");
    const symbols = q.symbols
      ?.split(",")
      .map((s) => s.trim().toUpperCase())
      .filter(Boolean);
    // Open orders from the UserSession; closed / all from Postgres once it has caught up.
    const orders = await historyOrders(c, userId, stub, {
      status: q.status,
      limit: q.limit,
      direction: q.direction,
      ...(q.after !== undefined ? { after: q.after } : {}),
      ...(q.until !== undefined ? { until: q.until } : {}),
      ...(symbols && symbols.length > 0 ? { symbols } : {}),
    });
    return c.json(orders, 200);
  },
);

trading.openapi(
  route({
    method: "get",
    path: "/v2/orders:by_client_order_id",
    tags: [TAG_ORDERS],
    summary: "Get an order by its client order id",
    request: { query: z.object({ client_order_id: z.string().min(1).max(128) }) },
    responses: { 200: json(OrderSchema, "The order"), ...errorResponses(401, 404, 422, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    return c.json(
      unwrap(await stub.getOrderByClientOrderId(userId, c.req.valid("query").client_order_id)),
      200,
    );
  },
);

trading.openapi(
  route({
    method: "get",
    path: "/v2/orders/{order_id}",
    tags: [TAG_ORDERS],
    summary: "Get an order",
    request: { params: z.object({ order_id: OrderId }) },
    responses: { 200: json(OrderSchema, "The order"), ...errorResponses(401, 404, 422, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    return c.json(unwrap(await stub.getOrder(userId, c.req.valid("param").order_id)), 200);
  },
);

trading.openapi(
  route({
    method: "patch",
    path: "/v2/orders/{order_id}",
    tags: [TAG_ORDERS],
    summary: "Replace an open order",
    description:
      "Creates a new order that takes over; the old one ends `replaced`. Lowering the quantity at the same " +
      "price keeps the queue position; anything else goes to the back of the queue.",
    request: {
      params: z.object({ order_id: OrderId }),
      body: { required: true, content: { "application/json": { schema: ReplaceOrderSchema } } },
    },
    responses: { 200: json(OrderSchema, "The new order"), ...errorResponses(401, 403, 404, 422, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    const body = c.req.valid("json");
    const order = unwrap(
      await stub.replaceOrder(userId, c.req.valid("param").order_id, {
        ...(body.qty !== undefined ? { qty: body.qty } : {}),
        ...(body.limit_price !== undefined ? { limit_price: body.limit_price } : {}),
        ...(body.stop_price !== undefined ? { stop_price: body.stop_price } : {}),
        ...(body.client_order_id !== undefined ? { client_order_id: body.client_order_id } : {}),
      }),
    );
    return c.json(order, 200);
  },
);

trading.openapi(
  route({
    method: "delete",
    path: "/v2/orders/{order_id}",
    tags: [TAG_ORDERS],
    summary: "Cancel an order",
    request: { params: z.object({ order_id: OrderId }) },
    responses: { 204: { description: "Canceled" }, ...errorResponses(401, 404, 422, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    unwrap(await stub.cancelOrder(userId, c.req.valid("param").order_id));
    return c.body(null, 204);
  },
);

trading.openapi(
  route({
    method: "delete",
    path: "/v2/orders",
    tags: [TAG_ORDERS],
    summary: "Cancel all open orders",
    responses: {
      207: json(
        z.array(z.object({ id: z.string(), status: z.number(), body: OrderSchema.nullable() })),
        "Per order",
      ),
      ...errorResponses(401, 429, 503),
    },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    return c.json(unwrap(await stub.cancelAllOrders(userId)), 207);
  },
);

// --- Positions ----------------------------------------------------------------------------------

const SymbolParam = z.object({ symbol: SymbolName.openapi({ param: { name: "symbol", in: "path" } }) });

trading.openapi(
  route({
    method: "get",
    path: "/v2/positions",
    tags: [TAG_POSITIONS],
    summary: "Open positions",
    responses: { 200: json(z.array(PositionSchema), "Positions"), ...errorResponses(401, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    return c.json(unwrap(await stub.getPositions(userId)), 200);
  },
);

trading.openapi(
  route({
    method: "get",
    path: "/v2/positions/{symbol}",
    tags: [TAG_POSITIONS],
    summary: "One open position",
    request: { params: SymbolParam },
    responses: { 200: json(PositionSchema, "Position"), ...errorResponses(401, 404, 422, 429, 503) },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    return c.json(unwrap(await stub.getPosition(userId, c.req.valid("param").symbol)), 200);
  },
);

trading.openapi(
  route({
    method: "delete",
    path: "/v2/positions/{symbol}",
    tags: [TAG_POSITIONS],
    summary: "Close a position with a market order",
    description: "Sells `qty` (default: all that open orders do not hold) at market.",
    request: { params: SymbolParam, query: z.object({ qty: z.string().max(32).optional() }) },
    responses: {
      200: json(OrderSchema, "The closing order"),
      ...errorResponses(401, 403, 404, 422, 429, 503),
    },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    const qty = c.req.valid("query").qty;
    return c.json(unwrap(await stub.closePosition(userId, c.req.valid("param").symbol, qty ?? null)), 200);
  },
);

trading.openapi(
  route({
    method: "delete",
    path: "/v2/positions",
    tags: [TAG_POSITIONS],
    summary: "Close all positions with market orders",
    request: { query: z.object({ cancel_orders: z.enum(["true", "false"]).optional() }) },
    responses: {
      207: json(
        z.array(z.object({ symbol: z.string(), status: z.number(), body: z.unknown() })),
        "Per position",
      ),
      ...errorResponses(401, 429, 503),
    },
  }),
  async (c) => {
    const { userId, stub } = session(c);
    if (c.req.valid("query").cancel_orders === "true") unwrap(await stub.cancelAllOrders(userId));
    return c.json(unwrap(await stub.closeAllPositions(userId)), 207);
  },
);

// --- Assets and clock ----------------------------------------------------------------------------

function assetOf(symbol: string) {
  const spec = findSymbol(symbol);
  if (!spec) return null;
  return {
    id: assetIdFor(spec.symbol),
    class: "us_equity",
    exchange: "PREPX",
    symbol: spec.symbol,
    name: spec.name,
    status: "active",
    tradable: true,
    marginable: false,
    shortable: false,
    easy_to_borrow: false,
    fractionable: spec.lotSize !== "1",
    min_order_size: spec.lotSize,
    min_trade_increment: spec.lotSize,
    price_increment: spec.tickSize,
    min_notional: minNotionalUsd(spec),
    attributes: [],
  };
}

const AssetSchema = z.object({}).passthrough().openapi("Asset");

trading.openapi(
  route({
    method: "get",
    path: "/v2/assets",
    tags: [TAG_ASSETS],
    summary: "Tradable assets",
    request: { query: z.object({ status: z.string().optional(), asset_class: z.string().optional() }) },
    responses: { 200: json(z.array(AssetSchema), "Assets"), ...errorResponses(401, 429) },
  }),
  (c) => {
    const q = c.req.valid("query");
    if ((q.status && q.status !== "active") || (q.asset_class && q.asset_class !== "us_equity"))
      return c.json([], 200);
    return c.json(
      DEFAULT_SYMBOLS.map((s) => assetOf(s.symbol)).filter((a) => a !== null),
      200,
    );
  },
);

trading.openapi(
  route({
    method: "get",
    path: "/v2/assets/{symbol}",
    tags: [TAG_ASSETS],
    summary: "One asset",
    request: { params: SymbolParam },
    responses: { 200: json(AssetSchema, "Asset"), ...errorResponses(401, 404, 422, 429) },
  }),
  (c) => {
    const asset = assetOf(c.req.valid("param").symbol);
    if (!asset) throw new ApiError(404, "asset_not_found", `asset ${c.req.valid("param").symbol} not found`);
    return c.json(asset, 200);
  },
);

trading.openapi(
  route({
    method: "get",
    path: "/v2/clock",
    tags: [TAG_ASSETS],
    summary: "Market clock",
    description: "PrepX practice markets are always open; `day` orders expire at 00:00 UTC.",
    responses: {
      200: json(z.object({}).passthrough().openapi("Clock"), "Clock"),
      ...errorResponses(401, 429),
    },
  }),
  (c) => {
    const now = new Date();
    const nextClose = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    return c.json(
      {
        timestamp: now.toISOString(),
        is_open: true,
        next_open: now.toISOString(),
        next_close: nextClose.toISOString(),
      },
      200,
    );
  },
);
