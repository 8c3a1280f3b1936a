import { DurableObject } from "cloudflare:workers";
import type { Env } from "../workers/env.ts";

/** One matching engine per symbol. */
export class OrderBook extends DurableObject<Env> {
  /** Readiness probe: proves a Durable Object round trip works. */
  async ping(): Promise<"pong"> {
    return "pong";
  }
}
