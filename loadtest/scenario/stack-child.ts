/**
 * Runs a throw-away local stack (`startTestStack`: fresh data dir under .data/test, free ports, migrated
 * and seeded) in its own process for a load run, so the Neon proxy and the Upstash shim, which live in
 * the stack's Node process, neither share an event loop with the load generator nor blur its CPU figures.
 *
 * Prints one line `STACK_READY {"env":{…}}` when the stack is up; stops it when stdin closes (the parent
 * exited) or on SIGTERM / SIGINT.
 */
import { startTestStack } from "../../scripts/stack/index.ts";

const log = (line: string) => process.stderr.write(`[stack] ${line}\n`);
const stack = await startTestStack({ log, replica: process.env.LOADTEST_REPLICA !== "false" });
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await stack.stop().catch((err: unknown) => log(String(err)));
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.stdin.on("end", () => void stop());
process.stdin.on("close", () => void stop());
process.stdin.resume();
process.stdout.write(`STACK_READY ${JSON.stringify({ env: stack.env, dataDir: stack.dataDir })}\n`);
