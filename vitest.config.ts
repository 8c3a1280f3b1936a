import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const root = import.meta.dirname;

/** What the in-workerd tests see as secrets: the same on every machine, whatever a developer's .dev.vars says. */
const UNIT_WORKER_VARS = {
  ENVIRONMENT: "test",
  LOG_LEVEL: "warn",
  MARKET_SIM_ENABLED: "false",
  JWT_SIGNING_KEYS: JSON.stringify([
    { kid: "unit-1", secret: "unit-test-signing-secret-0123456789abcdefghijklmnop" },
  ]),
  // Nothing listens on port 9: these tests run without a database or Redis (the integration project has them).
  DATABASE_URL: "postgres://prepx:prepx@127.0.0.1:9/prepx",
  DATABASE_REPLICA_URL: "postgres://prepx:prepx@127.0.0.1:9/prepx",
  SHARD_DATABASE_URLS: JSON.stringify(["postgres://prepx:prepx@127.0.0.1:9/prepx_shard_0"]),
  SHARD_REPLICA_URLS: JSON.stringify(["postgres://prepx:prepx@127.0.0.1:9/prepx_shard_0"]),
  NEON_LOCAL_PROXY: "127.0.0.1:9",
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9",
  UPSTASH_REDIS_REST_TOKEN: "unit-test-token",
};

/**
 * wrangler reads secrets from the `.dev.vars` beside its config file. The workers project therefore runs
 * from a copy of wrangler.toml (the single source of bindings) in its own folder, next to a `.dev.vars`
 * holding {@link UNIT_WORKER_VARS}.
 */
function unitWorkerConfig(): string {
  const dir = path.join(root, ".data", "unit-worker");
  mkdirSync(dir, { recursive: true });
  const toml = readFileSync(path.join(root, "wrangler.toml"), "utf8").replace(
    /^main = "(.*)"$/m,
    (_m, main: string) => `main = ${JSON.stringify(path.join(root, main))}`,
  );
  writeFileSync(path.join(dir, "wrangler.toml"), toml);
  const vars = Object.entries(UNIT_WORKER_VARS).map(([k, v]) => `${k}=${v.includes('"') ? `'${v}'` : v}`);
  writeFileSync(path.join(dir, ".dev.vars"), `${vars.join("\n")}\n`);
  return path.join(dir, "wrangler.toml");
}

/**
 * Three projects:
 * - unit: pure TypeScript in plain Node (engine, money, risk, scripts).
 * - workers: the worker and Durable Objects inside workerd, with the real bindings of wrangler.toml.
 * - integration: the real HTTP / WebSocket surface of `wrangler dev` against the real local stack.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          environment: "node",
          include: ["shared/**/*.test.ts", "scripts/**/*.test.ts", "loadtest/**/*.test.ts"],
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: unitWorkerConfig() },
          }),
        ],
        test: {
          name: "workers",
          // The first request of a file starts the worker in workerd, which is slow on a busy 2-core machine.
          testTimeout: 30_000,
          include: ["workers/**/*.test.ts", "durable-objects/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          environment: "node",
          include: ["test/**/*.test.ts"],
          globalSetup: ["test/global-setup.ts"],
          testTimeout: 30_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
