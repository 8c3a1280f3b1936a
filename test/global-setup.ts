// Integration tests run against the real thing: a throw-away local stack (PostgreSQL primary + replica,
// shards, Neon proxy, Redis + Upstash shim, migrations, seed) and `wrangler dev` serving the worker.
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startWorker } from "../scripts/dev/worker.ts";
import { formatEnv, REPO_ROOT, startTestStack } from "../scripts/stack/index.ts";
import { freePort, silentLog } from "../scripts/stack/util.ts";
import { generateVapidKeys } from "../shared/notifications/web-push.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Base URL of the worker under test, e.g. http://127.0.0.1:40123 */
    baseUrl: string;
    /** Connection strings and secrets the worker was started with. */
    stackEnv: Record<string, string>;
  }
}

/** Secrets for the worker under test; the same shape as `.dev.vars`. */
const TEST_SECRETS = {
  JWT_SIGNING_KEYS: JSON.stringify([
    { kid: "test-2", secret: "test-only-signing-secret-2-abcdefghijklmnopqrstuvwxyz" },
    { kid: "test-1", secret: "test-only-signing-secret-1-abcdefghijklmnopqrstuvwxyz" },
  ]),
  ENVIRONMENT: "test",
  LOG_LEVEL: "warn",
  // The simulated market stays off so trading tests are deterministic; test/market-data.test.ts starts
  // the market of its own symbol through the admin API.
  MARKET_SIM_ENABLED: "false",
  // Notifications: provider failures retry after 1 s, 2 s, 2 s, … so a test can watch a job go
  // through every retry to the dead-letter queue; email and SMS have no provider (the recording sink).
  NOTIFICATIONS_RETRY_BASE_SECONDS: "1",
  NOTIFICATIONS_RETRY_MAX_SECONDS: "2",
  VAPID_SUBJECT: "mailto:tests@prepx.dev",
};

export default async function setup(project: TestProject) {
  const stack = await startTestStack({ log: process.env.STACK_VERBOSE ? undefined : silentLog });
  const envFile = path.join(stack.dataDir, "worker.vars");
  // A fresh VAPID key pair per run, so Web Push is configured and tests can verify its signatures.
  const vapid = await generateVapidKeys();
  const stackEnv: Record<string, string> = {
    ...stack.env,
    ...TEST_SECRETS,
    VAPID_PUBLIC_KEY: vapid.publicKey,
    VAPID_PRIVATE_KEY: vapid.privateKey,
  };
  writeFileSync(envFile, `${formatEnv(stackEnv)}\n`);
  const logFile = path.join(REPO_ROOT, ".data", "test-wrangler.log");
  // A dev registry of its own: another `wrangler dev` on this machine starting or stopping would otherwise
  // reload this worker mid-test, dropping the local queues' in-flight messages and retries.
  process.env.WRANGLER_REGISTRY_PATH = path.join(stack.dataDir, "wrangler-registry");
  let worker: Awaited<ReturnType<typeof startWorker>>;
  try {
    worker = await startWorker({
      repoRoot: REPO_ROOT,
      port: await freePort(),
      envFiles: [envFile],
      persistTo: path.join(stack.dataDir, "wrangler"),
      logFile,
    });
  } catch (err) {
    await stack.stop();
    throw err;
  }
  project.provide("baseUrl", worker.url);
  project.provide("stackEnv", stackEnv);
  return async () => {
    await worker.stop();
    await stack.stop();
  };
}
