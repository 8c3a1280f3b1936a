/**
 * Admin controls of the market: halt / resume a symbol, cancel every order of a symbol or of a user,
 * and provision shares to an account (market makers' inventory). `/admin/*` requires the admin role
 * (app.ts); every action here is written to the audit log before it takes effect.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { audit } from "../auth/audit.ts";
import { AUTH_SECURITY, errorResponses } from "../auth/openapi.ts";
import { createRouter } from "../openapi.ts";
import { json, knownSymbol, unwrap } from "./helpers.ts";

const TAG = "Admin";
const SymbolParam = z.object({
  symbol: z
    .string()
    .toUpperCase()
    .regex(/^[A-Z][A-Z0-9.-]{0,15}$/)
    .openapi({ param: { name: "symbol", in: "path" }, example: "ACME" }),
});
const UserParam = z.object({
  user_id: z
    .string()
    .uuid()
    .openapi({ param: { name: "user_id", in: "path" } }),
});
const Status = z.object({}).passthrough().openapi("BookStatus");

export const adminTrading = createRouter();

adminTrading.openapi(
  createRoute({
    method: "post",
    path: "/admin/symbols/{symbol}/halt",
    tags: [TAG],
    summary: "Halt trading in a symbol",
    description: "New orders and replaces are rejected; resting orders stay and can still be canceled.",
    security: AUTH_SECURITY,
    request: { params: SymbolParam },
    responses: { 200: json(Status, "Book status"), ...errorResponses(401, 403, 404, 422, 503) },
  }),
  async (c) => {
    const symbol = knownSymbol(c.req.valid("param").symbol);
    await audit(c, "symbol.halt", `symbol:${symbol}`);
    const status = await c.env.ORDER_BOOK.get(c.env.ORDER_BOOK.idFromName(symbol)).halt();
    return c.json(status, 200);
  },
);

adminTrading.openapi(
  createRoute({
    method: "post",
    path: "/admin/symbols/{symbol}/resume",
    tags: [TAG],
    summary: "Resume trading in a halted symbol",
    security: AUTH_SECURITY,
    request: { params: SymbolParam },
    responses: { 200: json(Status, "Book status"), ...errorResponses(401, 403, 404, 422, 503) },
  }),
  async (c) => {
    const symbol = knownSymbol(c.req.valid("param").symbol);
    await audit(c, "symbol.resume", `symbol:${symbol}`);
    const status = await c.env.ORDER_BOOK.get(c.env.ORDER_BOOK.idFromName(symbol)).resume();
    return c.json(status, 200);
  },
);

adminTrading.openapi(
  createRoute({
    method: "post",
    path: "/admin/symbols/{symbol}/cancel-all",
    tags: [TAG],
    summary: "Cancel every open order in a symbol",
    security: AUTH_SECURITY,
    request: { params: SymbolParam },
    responses: {
      200: json(z.object({ canceled: z.number() }), "How many orders were canceled"),
      ...errorResponses(401, 403, 404, 422, 503),
    },
  }),
  async (c) => {
    const symbol = knownSymbol(c.req.valid("param").symbol);
    await audit(c, "symbol.cancel_all", `symbol:${symbol}`);
    const result = await c.env.ORDER_BOOK.get(c.env.ORDER_BOOK.idFromName(symbol)).cancelAll();
    return c.json(result, 200);
  },
);

adminTrading.openapi(
  createRoute({
    method: "post",
    path: "/admin/users/{user_id}/cancel-all",
    tags: [TAG],
    summary: "Cancel every open order of a user",
    security: AUTH_SECURITY,
    request: { params: UserParam },
    responses: {
      200: json(z.array(z.object({}).passthrough()), "Per order"),
      ...errorResponses(401, 403, 422, 503),
    },
  }),
  async (c) => {
    const userId = c.req.valid("param").user_id;
    await audit(c, "user.cancel_all", `user:${userId}`);
    const stub = c.env.USER_SESSION.get(c.env.USER_SESSION.idFromName(userId));
    return c.json(unwrap(await stub.cancelAllOrders(userId)), 200);
  },
);

adminTrading.openapi(
  createRoute({
    method: "post",
    path: "/admin/users/{user_id}/grants",
    tags: [TAG],
    summary: "Give an account shares (e.g. a market maker's inventory)",
    description:
      "The shares enter at `price` as their cost basis and the account's starting capital grows by the same " +
      "value, so the grant is neither profit nor loss.",
    security: AUTH_SECURITY,
    request: {
      params: UserParam,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .object({
                symbol: z
                  .string()
                  .toUpperCase()
                  .regex(/^[A-Z][A-Z0-9.-]{0,15}$/),
                qty: z.string().max(32),
                price: z.string().max(32),
              })
              .openapi("GrantRequest"),
          },
        },
      },
    },
    responses: {
      200: json(z.array(z.object({}).passthrough()), "Positions after the grant"),
      ...errorResponses(401, 403, 422, 503),
    },
  }),
  async (c) => {
    const userId = c.req.valid("param").user_id;
    const body = c.req.valid("json");
    await audit(c, "account.grant", `user:${userId}`, body);
    const stub = c.env.USER_SESSION.get(c.env.USER_SESSION.idFromName(userId));
    return c.json(unwrap(await stub.grantShares(userId, body.symbol, body.qty, body.price)), 200);
  },
);
