import { runAnalyticsJobs } from "./analytics/jobs.ts";
import { buildApp } from "./app.ts";
import { handleQueue } from "./consumers/index.ts";
import type { Env } from "./env.ts";
import { ensureMarket, kickMarketOnce } from "./lib/market/autostart.ts";

export { MarketDataHub } from "../durable-objects/market-data-hub.ts";
export { MarketMaker } from "../durable-objects/market-maker.ts";
export { OrderBook } from "../durable-objects/order-book.ts";
export { UserSession } from "../durable-objects/user-session.ts";

const app = buildApp();

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext) {
    // Local `wrangler dev` runs no cron: the first request starts the simulated market.
    kickMarketOnce(env, ctx);
    return app.fetch(request, env, ctx);
  },
  // Every minute (wrangler.toml [triggers]): keep each symbol's market maker armed.
  async scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    ctx.waitUntil(ensureMarket(env));
    // API-call counters Redis → Postgres, and the hourly pruning of counted facts (docs/analytics.md).
    ctx.waitUntil(runAnalyticsJobs(env));
  },
  queue: (batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext) => handleQueue(batch, env, ctx),
} satisfies ExportedHandler<Env>;
