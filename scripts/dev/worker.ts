// Starts `wrangler dev` for the edge worker and waits until it answers. Shared by `npm run dev`,
// the integration tests and the benchmarks, so all of them run the worker the same way.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { freePort } from "../stack/util.ts";

export interface WorkerOptions {
  repoRoot: string;
  port: number;
  /** dotenv files with the worker's secrets and variable overrides (later files win). */
  envFiles?: string[];
  /** Where Durable Objects, queues and caches keep their local state. */
  persistTo?: string;
  /** Write wrangler's output to this file instead of the terminal. */
  logFile?: string;
  /** Extra `--var KEY:VALUE` overrides. */
  vars?: Record<string, string>;
  /** Path that must answer 2xx before the worker counts as started (default /health). */
  readyPath?: string;
  timeoutMs?: number;
}

export interface RunningWorker {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const args = [
    "wrangler",
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(opts.port),
    "--inspector-port",
    String(await freePort()),
    "--show-interactive-dev-session=false",
  ];
  for (const file of opts.envFiles ?? []) args.push("--env-file", file);
  if (opts.persistTo) args.push("--persist-to", opts.persistTo);
  for (const [key, value] of Object.entries(opts.vars ?? {})) args.push("--var", `${key}:${value}`);

  let output: "inherit" | "pipe" = "inherit";
  if (opts.logFile) {
    mkdirSync(path.dirname(opts.logFile), { recursive: true });
    output = "pipe";
  }
  // `npx` resolves wrangler from node_modules and runs it on the Node 22 that npm put on the PATH.
  const child = spawn("npx", args, {
    cwd: opts.repoRoot,
    stdio: ["ignore", output, output],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: process.env.CI ?? "" },
    detached: true,
  });
  if (opts.logFile) {
    const log = createWriteStream(opts.logFile, { flags: "a" });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
  }

  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  const stop = async () => {
    if (exited || child.pid === undefined) return;
    const done = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      process.kill(-child.pid, "SIGTERM"); // the whole group: npx, wrangler and workerd
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, 5000);
    await done;
    clearTimeout(timer);
  };

  const url = `http://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    if (exited)
      throw new Error(
        `wrangler dev exited before it was ready${opts.logFile ? ` (see ${opts.logFile})` : ""}`,
      );
    try {
      const res = await fetch(url + (opts.readyPath ?? "/health"), { signal: AbortSignal.timeout(5000) });
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `wrangler dev did not become ready on ${url}${opts.logFile ? ` (see ${opts.logFile})` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, child, stop };
}
