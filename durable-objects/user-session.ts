import { DurableObject } from "cloudflare:workers";
import type { Env } from "../workers/env.ts";

/** One live account per user: cash, reservations, positions and the user's order stream. */
export class UserSession extends DurableObject<Env> {
  async ping(): Promise<"pong"> {
    return "pong";
  }
}
