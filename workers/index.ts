import { buildApp } from "./app.ts";
import type { Env } from "./env.ts";

export { OrderBook } from "../durable-objects/order-book.ts";
export { UserSession } from "../durable-objects/user-session.ts";

const app = buildApp();

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, _env: Env, _ctx: ExecutionContext): Promise<void> {
    // Consumers are wired in workers/consumers; until then messages are acknowledged explicitly.
    batch.ackAll();
  },
} satisfies ExportedHandler<Env>;
