import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { RedisConnection, RespError, RespStatus } from "./resp.ts";
import {
  assertPortFree,
  findExecutable,
  isProcessAlive,
  isRoot,
  killAndWait,
  type Logger,
  logTail,
  processCommandLine,
  seconds,
  spawnService,
  stackLog,
  waitFor,
} from "./util.ts";

export interface RedisOptions {
  /** Stack data dir; Redis keeps its dump in `<dataDir>/redis`, its log in `<dataDir>/logs/redis.log`. */
  dataDir: string;
  host?: string;
  /** Default 63790. */
  port?: number;
  /** Snapshot to disk (and on shutdown). Default true; tests turn it off. */
  persist?: boolean;
  log?: Logger;
}

export interface RunningRedis {
  host: string;
  port: number;
  /** `redis://host:port` (no password: it listens on loopback only). */
  url: string;
  /** SHUTDOWN (SAVE when persistent, else NOSAVE) and wait for the process to exit. */
  stop(): Promise<void>;
}

const INSTALL_HINT = "sudo apt-get install -y redis-server   # Debian/Ubuntu; or: brew install redis";

/**
 * Path of `redis-server`. When it is missing and we are root, installs the Debian package
 * (running `apt-get update` first if the plain install fails); otherwise says what to install.
 */
export function ensureRedisServer(log: Logger = stackLog): string {
  const found = findExecutable("redis-server");
  if (found) return found;
  if (!isRoot() || !findExecutable("apt-get")) {
    throw new Error(`redis-server is not installed. Install it with:\n  ${INSTALL_HINT}`);
  }
  log("redis-server is missing; installing the Debian package (apt-get install -y redis-server)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "redis-server"], {
      stdio: "inherit",
      env,
    });
  try {
    install();
  } catch {
    execFileSync("apt-get", ["update"], { stdio: "inherit", env });
    install();
  }
  const installed = findExecutable("redis-server");
  if (!installed)
    throw new Error(`apt-get did not provide redis-server. Install it with:\n  ${INSTALL_HINT}`);
  return installed;
}

async function ping(host: string, port: number): Promise<boolean> {
  const conn = await RedisConnection.connect(port, host, 1000);
  try {
    const reply = await conn.command("PING");
    // While loading its dump Redis answers -LOADING; keep waiting.
    return reply instanceof RespStatus && reply.value === "PONG";
  } finally {
    conn.close();
  }
}

/** A redis-server of a crashed stack still running on this data dir is shut down (it saves first). */
async function clearOrphan(pidFile: string, log: Logger): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (isProcessAlive(pid) && processCommandLine(pid).includes("redis-server")) {
    log(`found an orphaned redis-server (pid ${pid}); shutting it down`);
    await killAndWait(pid, "SIGTERM", 15_000);
  }
  await rm(pidFile, { force: true });
}

/** Starts `redis-server` in the foreground (as our child), on loopback only. */
export async function startRedis(opts: RedisOptions): Promise<RunningRedis> {
  const log = opts.log ?? stackLog;
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? 63790;
  const persist = opts.persist ?? true;
  const dir = path.join(opts.dataDir, "redis");
  const logsDir = path.join(opts.dataDir, "logs");
  const pidFile = path.join(dir, "redis.pid");
  await mkdir(dir, { recursive: true });
  await mkdir(logsDir, { recursive: true });
  const binary = ensureRedisServer(log);
  await clearOrphan(pidFile, log);
  await assertPortFree(port, "redis", host);

  const t = performance.now();
  const proc = spawnService({
    name: "redis",
    command: binary,
    args: [
      "--port",
      String(port),
      "--bind",
      host,
      "--dir",
      dir,
      "--daemonize",
      "no",
      "--pidfile",
      pidFile,
      "--logfile",
      "",
      "--save",
      persist ? "300 1 60 1000" : "",
      "--appendonly",
      "no",
      "--protected-mode",
      "yes",
    ],
    logFile: path.join(logsDir, "redis.log"),
    cwd: dir,
    deathSignal: "SIGTERM",
    log,
  });
  try {
    await waitFor("redis did not start", () => ping(host, port), {
      timeoutMs: 30_000,
      abort: () => {
        const reason = proc.exitReason();
        return reason ? `redis-server exited (${reason})` : undefined;
      },
    });
  } catch (err) {
    await proc.stop("SIGKILL", 1000);
    throw new Error(`${(err as Error).message}\n  ${proc.logFile}:\n${logTail(proc.logFile)}`);
  }
  log(`redis ready on ${host}:${port}${persist ? "" : " (no persistence)"} (${seconds(t)})`);

  return {
    host,
    port,
    url: `redis://${host}:${port}`,
    async stop() {
      if (proc.exitReason()) return;
      proc.expectExit();
      try {
        const conn = await RedisConnection.connect(port, host, 1000);
        // The server closes the connection instead of answering when SHUTDOWN succeeds.
        const reply = await conn.command("SHUTDOWN", persist ? "SAVE" : "NOSAVE").catch(() => null);
        conn.close();
        if (reply instanceof RespError) log(`redis SHUTDOWN failed (${reply.message}); sending SIGTERM`);
      } catch {
        // not reachable: fall back to the signal below
      }
      await proc.stop("SIGTERM", 10_000);
    },
  };
}
