/**
 * Admin endpoints of the system of record. Behind `requireAdmin` (every /admin/* path).
 * `scripts/reconcile.ts` (`npm run db:reconcile`) drives `POST /admin/reconcile` over every user.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { audit } from "../auth/audit.ts";
import { AUTH_SECURITY, errorResponses } from "../auth/openapi.ts";
import { db } from "../db/index.ts";
import { reconcileUser } from "../history/reconcile.ts";
import { createRouter } from "../openapi.ts";

export const adminHistory = createRouter();

const Difference = z.object({ field: z.string(), live: z.number(), ledger: z.number() });
const Result = z
  .object({
    user_id: z.string(),
    shard: z.number(),
    status: z.enum(["ok", "pending", "mismatch", "no_account"]),
    session_seq: z.number(),
    applied_through: z.number().nullable(),
    outbox: z.object({ rows: z.number(), failing: z.number() }),
    differences: z.array(Difference),
  })
  .openapi("ReconcileResult");

/** Users reconciled at once (each costs one UserSession RPC and two shard queries). */
const CONCURRENCY = 10;

adminHistory.openapi(
  createRoute({
    method: "post",
    path: "/admin/reconcile",
    tags: ["Admin"],
    summary: "Compare users' Postgres ledgers with their live accounts",
    description:
      "For each user: `ok` (the ledger adds up to the UserSession's cash, starting capital, realized PnL, " +
      "fees and positions), `pending` (Postgres has not received the latest events yet), `mismatch` " +
      "(with the differences) or `no_account`.",
    security: AUTH_SECURITY,
    request: {
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .object({ user_ids: z.array(z.string().uuid()).min(1).max(100) })
              .openapi("ReconcileRequest"),
          },
        },
      },
    },
    responses: {
      200: {
        description: "One result per user, in request order",
        content: { "application/json": { schema: z.object({ results: z.array(Result) }) } },
      },
      ...errorResponses(401, 403, 422, 503),
    },
  }),
  async (c) => {
    const ids = c.req.valid("json").user_ids.map((u) => u.toLowerCase());
    await audit(c, "history.reconcile", "users", { count: ids.length });
    const dbs = db(c.env, (p) => c.executionCtx.waitUntil(p));
    const results: Awaited<ReturnType<typeof reconcileUser>>[] = new Array(ids.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, ids.length) }, async () => {
        while (next < ids.length) {
          const i = next++;
          results[i] = await reconcileUser(c.env, dbs, ids[i] as string);
        }
      }),
    );
    return c.json({ results }, 200);
  },
);
