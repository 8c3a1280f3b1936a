/**
 * The PrepX a load run talks to. By default a throw-away one, like the integration tests
 * (test/global-setup.ts): `startTestStack()` in a child process, and the worker bundled once and served
 * either by `wrangler dev` (`--server wrangler`, through `startWorker`, the way `npm run dev` runs it) or
 * straight from Miniflare (`--server miniflare`, one workerd and no proxy hop). Bundling once means edits
 * to the working tree during a run cannot make wrangler reload the worker mid-measurement.
 *
 * `--target http://127.0.0.1:8787` instead drives an already running `npm run dev` (its rate limits apply).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { startWorker } from "../../scripts/dev/worker.ts";
import { formatEnv, REPO_ROOT } from "../../scripts/stack/index.ts";
import { freePort } from "../../scripts/stack/util.ts";

export type ServerMode = "wrangler" | "miniflare" | "external";

export interface Target {
  baseUrl: string;
  mode: ServerMode;
  /** Roots of the process trees to profile, by component. */
  processes: { component: string; pid: number }[];
  /** The worker's log (one JSON access line per request), when this run started the worker. */
  logFile: string | null;
  /** workerd's V8 inspector (miniflare mode), for CPU profiles. */
  inspectorPort: number | null;
  /** Source map of the bundled worker, to name the functions of a CPU profile. */
  sourceMapFile: string | null;
  stop(): Promise<void>;
}

export interface StartOptions {
  mode: Exclude<ServerMode, "external">;
  /** Worker variables on top of the stack's (rate limits, token lifetime, market switch…). */
  vars: Record<string, string>;
  /** Run the streaming read replica (default true, as in dev). */
  replica?: boolean;
  /** How the worker authenticates to Postgres: "password" (clear text, as through Neon's proxy) or "scram". */
  pgAuth?: "password" | "scram";
  log: (line: string) => void;
}

/** Secrets of the throw-away worker (the test ones: this stack is discarded after the run). */
const SECRETS = {
  JWT_SIGNING_KEYS: JSON.stringify([
    { kid: "loadtest-1", secret: "loadtest-only-signing-secret-0123456789abcdefghijklmnop" },
  ]),
};

const NODE = process.execPath;
// Children (wrangler's `#!/usr/bin/env node`, npx) must run on this Node 22, not the machine's Node 20.
if (!process.env.PATH?.startsWith(path.dirname(NODE))) {
  process.env.PATH = `${path.dirname(NODE)}${path.delimiter}${process.env.PATH ?? ""}`;
}

function waitForLine(child: ChildProcess, prefix: string, what: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.on("line", (line) => {
      if (line.startsWith(prefix)) {
        clearTimeout(timer);
        resolve(line.slice(prefix.length).trim());
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready`));
    });
  });
}

function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
    return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {}
    }, graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin?.end();
    child.kill("SIGTERM");
  });
}

/** `wrangler deploy --dry-run` into `dir/dist` and a wrangler.toml in `dir` that serves that bundle as is. */
function bundleWorker(dir: string): string {
  const wrangler = path.join(REPO_ROOT, "node_modules", ".bin", "wrangler");
  const built = spawnSync(wrangler, ["deploy", "--dry-run", "--outdir", path.join(dir, "dist")], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  if (built.status !== 0) throw new Error(`wrangler build failed:\n${built.stdout}\n${built.stderr}`);
  const config = readFileSync(path.join(REPO_ROOT, "wrangler.toml"), "utf8").replace(
    /^main\s*=.*$/m,
    'main = "dist/index.js"\nno_bundle = true',
  );
  const file = path.join(dir, "wrangler.toml");
  writeFileSync(file, config);
  return file;
}

export async function startTarget(opts: StartOptions): Promise<Target> {
  const runDir = path.join(
    REPO_ROOT,
    ".data",
    "loadtest",
    `${new Date()
      .toISOString()
      .replace(/[-:.TZ]/g, "")
      .slice(0, 14)}-${process.pid}`,
  );
  mkdirSync(runDir, { recursive: true });
  const stackLog = createWriteStream(path.join(runDir, "stack.log"));
  const started = Date.now();

  opts.log("starting a throw-away stack (Postgres primary + replica, Neon proxy, Redis + shim)…");
  const stackChild = spawn(NODE, [path.join(REPO_ROOT, "loadtest", "scenario", "stack-child.ts")], {
    cwd: REPO_ROOT,
    stdio: ["pipe", "pipe", "pipe"],
    env: {
      ...process.env,
      LOADTEST_REPLICA: opts.replica === false ? "false" : "true",
      LOADTEST_PG_AUTH: opts.pgAuth ?? "password",
    },
  });
  stackChild.stderr?.pipe(stackLog);
  const cleanup: (() => Promise<void>)[] = [() => stopChild(stackChild)];
  const stopAll = async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
    rmSync(runDir, { recursive: true, force: true });
  };
  try {
    const ready = JSON.parse(await waitForLine(stackChild, "STACK_READY ", "the stack", 180_000)) as {
      env: Record<string, string>;
    };
    opts.log(`stack ready (${((Date.now() - started) / 1000).toFixed(1)} s); bundling the worker…`);
    const config = bundleWorker(runDir);
    const env = { ...ready.env, ...SECRETS, ...opts.vars };
    const port = await freePort();
    const logFile = path.join(runDir, "worker.log");
    const processes = [
      { component: "stack (postgres, redis, neon proxy, upstash shim)", pid: stackChild.pid ?? 0 },
    ];
    let baseUrl: string;
    let inspectorPort: number | null = null;
    if (opts.mode === "wrangler") {
      const envFile = path.join(runDir, "worker.vars");
      writeFileSync(envFile, `${formatEnv(env)}\n`);
      const worker = await startWorker({
        repoRoot: runDir,
        port,
        envFiles: [envFile],
        persistTo: path.join(runDir, "state"),
        logFile,
        readyPath: "/ready",
        // On a busy 2-core machine wrangler's two workerd instances take minutes to come up.
        timeoutMs: 300_000,
      });
      cleanup.push(() => worker.stop());
      processes.unshift({
        component: "worker (wrangler dev: node + workerd ×2)",
        pid: worker.child.pid ?? 0,
      });
      baseUrl = worker.url;
    } else {
      const varsFile = path.join(runDir, "worker.vars.json");
      writeFileSync(varsFile, JSON.stringify(env));
      const out = createWriteStream(logFile);
      inspectorPort = await freePort();
      const child = spawn(
        NODE,
        [
          path.join(REPO_ROOT, "loadtest", "scenario", "miniflare-child.ts"),
          config,
          String(port),
          path.join(runDir, "state"),
          varsFile,
          String(inspectorPort),
        ],
        { cwd: runDir, stdio: ["pipe", "pipe", "pipe"] },
      );
      child.stderr?.pipe(out);
      cleanup.push(() => stopChild(child));
      const url = await waitForLine(child, "MINIFLARE_READY ", "miniflare", 300_000);
      child.stdout?.pipe(out);
      processes.unshift({ component: "worker (miniflare: node + workerd)", pid: child.pid ?? 0 });
      baseUrl = url.replace("localhost", "127.0.0.1");
      const deadline = Date.now() + 180_000;
      for (;;) {
        const ok = await fetch(`${baseUrl}/ready`)
          .then((r) => r.ok)
          .catch(() => false);
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`miniflare did not become ready on ${baseUrl}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    opts.log(`worker ready on ${baseUrl} (${opts.mode}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return {
      baseUrl,
      mode: opts.mode,
      processes,
      logFile,
      inspectorPort,
      sourceMapFile: path.join(runDir, "dist", "index.js.map"),
      stop: stopAll,
    };
  } catch (err) {
    for (const name of ["worker.log", "stack.log"]) {
      try {
        const tail = readFileSync(path.join(runDir, name), "utf8").split("\n").slice(-15).join("\n");
        if (tail.trim()) opts.log(`--- tail of ${name}\n${tail}`);
      } catch {}
    }
    await stopAll();
    throw err;
  }
}
