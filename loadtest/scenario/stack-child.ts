/**
 * Runs a throw-away local stack (`startTestStack`: fresh data dir under .data/test, free ports, migrated
 * and seeded) in its own process for a load run, so the Neon proxy and the Upstash shim, which live in
 * the stack's Node process, neither share an event loop with the load generator nor blur its CPU figures.
 *
 * With LOADTEST_PG_AUTH=password (the runner's default) the throw-away clusters accept the password in
 * clear over loopback instead of SCRAM. Production matches that: the Neon driver pipelines the password
 * to Neon's proxy over TLS and never runs SCRAM in the isolate, while against a plain local Postgres
 * (`pipelineConnect = false`) every WebSocket connection of the worker — one per history-consumer
 * transaction — runs SCRAM-SHA-256's 4,096 PBKDF2 rounds in JavaScript inside the one workerd isolate.
 *
 * Prints one line `STACK_READY {"env":{…}}` when the stack is up; stops it when stdin closes (the parent
 * exited) or on SIGTERM / SIGINT.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
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

if ((process.env.LOADTEST_PG_AUTH ?? "password") === "password") {
  for (const cluster of ["primary", "replica"]) {
    const dir = path.join(stack.dataDir, "postgres", cluster);
    const hba = path.join(dir, "pg_hba.conf");
    if (!existsSync(hba)) continue;
    // Client connections only; replication keeps SCRAM.
    const text = readFileSync(hba, "utf8")
      .split("\n")
      .map((line) =>
        /^host\s+(?!replication)/.test(line) ? line.replace(/scram-sha-256/, "password") : line,
      )
      .join("\n");
    writeFileSync(hba, text);
    const pid = Number(readFileSync(path.join(dir, "postmaster.pid"), "utf8").split("\n")[0]);
    if (pid > 0) process.kill(pid, "SIGHUP"); // reload pg_hba.conf
    log(`${cluster}: client connections authenticate with a clear-text password (as through Neon's proxy)`);
  }
}

process.stdout.write(`STACK_READY ${JSON.stringify({ env: stack.env, dataDir: stack.dataDir })}\n`);
