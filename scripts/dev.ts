// `npm run dev`: the whole PrepX Edge stack on this machine, in one command.
// PostgreSQL primary + replica (+ shard databases), the Neon proxy, Redis + the Upstash shim,
// migrations and seed data, then `wrangler dev` on http://127.0.0.1:8787. One Ctrl-C stops it all.
import { copyFileSync, existsSync } from "node:fs";
import path from "node:path";
import { startWorker } from "./dev/worker.ts";
import { REPO_ROOT, startStack } from "./stack/index.ts";

const PORT = Number(process.env.PORT ?? 8787);
const started = Date.now();
const log = (line: string) => console.log(`[dev] ${line}`);

const devVars = path.join(REPO_ROOT, ".dev.vars");
if (!existsSync(devVars)) {
  copyFileSync(path.join(REPO_ROOT, ".dev.vars.example"), devVars);
  log("created .dev.vars from .dev.vars.example");
}

const stack = await startStack({ migrate: true, seed: true });
let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
let stopping = false;

async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  log("stopping…");
  await worker?.stop().catch(() => {});
  await stack.stop().catch((err: unknown) => console.error(err));
  log("stopped");
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

try {
  log(`starting wrangler dev on 127.0.0.1:${PORT}`);
  worker = await startWorker({
    repoRoot: REPO_ROOT,
    port: PORT,
    persistTo: path.join(REPO_ROOT, ".data", "wrangler"),
    readyPath: "/ready",
  });
  worker.child.on("exit", (code) => {
    if (!stopping) {
      log(`wrangler dev exited (${code ?? "signal"})`);
      void shutdown(1);
    }
  });
  log(
    `PrepX Edge is ready on ${worker.url} (${((Date.now() - started) / 1000).toFixed(1)}s) — Ctrl-C stops everything`,
  );
} catch (err) {
  console.error(`[dev] ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
}
