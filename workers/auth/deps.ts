import type { Redis } from "@upstash/redis/cloudflare";
import type { Context } from "hono";
import { db } from "../db/index.ts";
import type { AppBindings } from "../env.ts";
import { redisClient } from "../lib/redis.ts";
import { authConfig } from "./config.ts";
import { parseSigningKeys } from "./tokens.ts";
import type { AuthDeps } from "./users.ts";

/** The user service's dependencies for one request. */
export function authDeps<B extends AppBindings>(c: Context<B>): AuthDeps {
  const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
  let redis: Redis | undefined;
  return {
    dbs: db(c.env, waitUntil),
    redis: () => {
      redis ??= redisClient(c.env);
      return redis;
    },
    signingKeys: () => parseSigningKeys(c.env.JWT_SIGNING_KEYS),
    config: authConfig(c.env),
    log: c.get("log"),
    waitUntil,
  };
}
