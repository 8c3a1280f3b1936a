import { neon, neonConfig, Pool } from "@neondatabase/serverless";
import type { Env } from "../env.ts";

/**
 * Points the Neon driver at a local proxy when `NEON_LOCAL_PROXY` is set (development and tests),
 * so the very same driver that talks to Neon in production talks to a plain local PostgreSQL.
 * In production the variable is absent and the driver uses Neon's own endpoints over TLS.
 */
export function configureNeon(env: Pick<Env, "NEON_LOCAL_PROXY">): void {
  const proxy = env.NEON_LOCAL_PROXY;
  if (!proxy) return;
  neonConfig.wsProxy = (host, port) => `${proxy}/v1?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineConnect = false;
  neonConfig.pipelineTLS = false;
  neonConfig.fetchEndpoint = () => `http://${proxy}/sql`;
}

export function requireUrl(value: string | undefined, name: string): string {
  if (!value) throw new Error(`${name} is not configured`);
  return value;
}

/**
 * A connection pool for one request. Workers may not share sockets between requests,
 * so a pool lives as long as the request that made it; call `end()` in `waitUntil`.
 */
export function openPool(env: Env, url: string): Pool {
  configureNeon(env);
  const pool = new Pool({ connectionString: url, max: 1 });
  // An idle connection that the runtime drops after its request ended emits "error"; without a listener
  // that becomes an uncaught exception. The next query simply opens a new connection.
  pool.on("error", (err: Error) => {
    console.warn(JSON.stringify({ level: "warn", msg: "postgres pool connection lost", error: err.message }));
  });
  return pool;
}

/** One-shot SQL over HTTP: the cheapest way to run a single statement from a Worker. */
export function httpSql(env: Env, url: string) {
  configureNeon(env);
  return neon(url, { fullResults: false });
}
