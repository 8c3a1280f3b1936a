/**
 * `npm run stack`: starts the local stack (Postgres primary + replica, Neon proxy, Redis, Upstash shim),
 * applies migrations and the seed, prints the worker's variables, and runs until Ctrl-C.
 *
 *   npm run stack                      # data in .data/, dev ports (54320, 54321, 54330, 63790, 63800)
 *   npm run stack -- --no-replica      # primary only
 *   npm run stack -- --no-migrate      # neither migrations nor seed
 *   npm run stack -- --data-dir .data/other --port-offset 100
 */
import { parseArgs } from "node:util";
import { DEV_PORTS, formatEnv, type StackPorts, startStack } from "./stack/index.ts";

const { values } = parseArgs({
  options: {
    "data-dir": { type: "string" },
    "port-offset": { type: "string", default: "0" },
    "no-replica": { type: "boolean", default: false },
    "no-migrate": { type: "boolean", default: false },
    "no-seed": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log(
    "usage: npm run stack -- [--data-dir DIR] [--port-offset N] [--no-replica] [--no-migrate] [--no-seed]",
  );
  process.exit(0);
}

const offset = Number(values["port-offset"]);
if (!Number.isInteger(offset) || offset < 0) throw new Error("--port-offset must be a non-negative integer");
const ports: StackPorts = {
  postgres: DEV_PORTS.postgres + offset,
  postgresReplica: DEV_PORTS.postgresReplica + offset,
  neonProxy: DEV_PORTS.neonProxy + offset,
  redis: DEV_PORTS.redis + offset,
  upstash: DEV_PORTS.upstash + offset,
};

try {
  const stack = await startStack({
    dataDir: values["data-dir"],
    ports,
    replica: !values["no-replica"],
    migrate: !values["no-migrate"],
    seed: !values["no-migrate"] && !values["no-seed"],
    handleSignals: true,
  });
  console.log(`\nWorker variables (for .dev.vars):\n${formatEnv(stack.env)}\n`);
  console.log(`psql-like access: ${stack.urls.admin}   redis: ${stack.urls.redis}`);
  console.log("Press Ctrl-C to stop.");
} catch (err) {
  console.error(`[stack] failed: ${(err as Error).message}`);
  process.exit(1);
}
