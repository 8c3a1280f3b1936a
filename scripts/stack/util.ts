import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Root of the repository (two levels above this file). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Where `npm run dev` / `npm run stack` keep their data; `rm -rf .data` resets everything. */
export const DEFAULT_DATA_DIR = path.join(REPO_ROOT, ".data");

/** Parent of the throw-away data dirs of test runs (never the dev data). */
export const TEST_DATA_ROOT = path.join(REPO_ROOT, ".data", "test");

export type Logger = (line: string) => void;

/** The default progress logger: `[stack] …` lines on stdout. */
export const stackLog: Logger = (line) => console.log(`[stack] ${line}`);

export const silentLog: Logger = () => {};

export function seconds(startedAt: number): string {
  return `${((performance.now() - startedAt) / 1000).toFixed(1)}s`;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `probe` until it resolves truthy, the deadline passes, or `abort` reports a reason
 * (e.g. the server process exited). The last probe error is kept for the timeout message.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  opts: { timeoutMs: number; intervalMs?: number; abort?: () => string | undefined },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    const reason = opts.abort?.();
    if (reason) throw new Error(`${what}: ${reason}`);
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`${what}: timed out after ${opts.timeoutMs} ms${detail}`);
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/** True when nothing listens on host:port (we can bind it ourselves). */
export function isPortFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Asks the kernel for a free port (there is a small race until the caller binds it). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function assertPortFree(port: number, what: string, host = "127.0.0.1"): Promise<void> {
  if (!(await isPortFree(port, host))) {
    throw new Error(
      `${what}: port ${host}:${port} is already in use (another stack, or another program). ` +
        `Stop it or start the stack on other ports.`,
    );
  }
}

/** Starts listening; resolves with the bound port, or fails with a readable message if it is taken. */
export function listen(server: net.Server, port: number, host: string, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "EADDRINUSE"
          ? new Error(`${what}: port ${host}:${port} is already in use (another stack, or another program)`)
          : err,
      );
    });
    server.listen({ port, host, exclusive: true }, () => {
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // A zombie (exited, not yet reaped) counts as dead.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return true;
  }
}

/** The command line of a process (NUL-separated args joined by spaces), or "" if unknown. */
export function processCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/** Sends `signal`, then waits for the pid to disappear; escalates to SIGKILL after `timeoutMs`. */
export async function killAndWait(pid: number, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (!isProcessAlive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
      await sleep(100);
      return;
    }
    await sleep(50);
  }
}

export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

export const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

/** uid/gid of an OS user, or undefined when it does not exist. */
export function lookupUser(name: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8", stdio: "pipe" }).trim());
    const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8", stdio: "pipe" }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Set once the process has exited: "code 1" / "signal SIGKILL". */
  exitReason(): string | undefined;
  /** Resolves when the process has exited (immediately if it already has). */
  exited(): Promise<void>;
  /** Marks an exit as intended (e.g. after asking the server to shut down itself). */
  expectExit(): void;
  /** Sends `signal`, waits up to `timeoutMs`, then SIGKILLs. */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<void>;
}

const SETPRIV = findExecutable("setpriv");

/**
 * The command line that runs `command` with a parent-death signal (util-linux `setpriv --pdeathsig`),
 * so it does not outlive a crashed or SIGKILLed Node process; unchanged where setpriv is missing.
 */
export function withDeathSignal(command: string, args: string[], signal: NodeJS.Signals): [string, string[]] {
  return SETPRIV
    ? [SETPRIV, ["--pdeathsig", signal.replace(/^SIG/, ""), "--", command, ...args]]
    : [command, args];
}

/**
 * Starts a long-running server process with its stdout/stderr appended to `logFile`.
 *
 * The process gets its own process group (so a terminal Ctrl-C reaches only us and we stop the
 * services in order), and — through util-linux `setpriv --pdeathsig` when available — a parent-death
 * signal, so that a crashed or SIGKILLed Node process does not leave orphaned servers behind.
 */
export function spawnService(opts: {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  user?: { uid: number; gid: number };
  deathSignal?: NodeJS.Signals;
  /** Told when the process exits without having been asked to. */
  log?: Logger;
}): ServiceProcess {
  const fd = openSync(opts.logFile, "a");
  const deathSignal = opts.deathSignal ?? "SIGTERM";
  const [command, args] = withDeathSignal(opts.command, opts.args, deathSignal);
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["ignore", fd, fd],
      detached: true,
      ...(opts.user ?? {}),
    });
  } finally {
    closeSync(fd);
  }
  let exitReason: string | undefined;
  let stopping = false;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitReason = signal ? `signal ${signal}` : `code ${code}`;
      if (!stopping) opts.log?.(`${opts.name} exited unexpectedly (${exitReason}); see ${opts.logFile}`);
      resolve();
    });
    child.once("error", (err) => {
      exitReason = `spawn error: ${err.message}`;
      resolve();
    });
  });
  const pid = child.pid ?? -1;
  return {
    name: opts.name,
    child,
    pid,
    logFile: opts.logFile,
    exitReason: () => exitReason,
    exited: () => exited,
    expectExit() {
      stopping = true;
    },
    async stop(signal, timeoutMs) {
      stopping = true;
      if (exitReason) return;
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
      const timer = new Promise<"timeout">((resolve) => {
        const t = setTimeout(() => resolve("timeout"), timeoutMs);
        t.unref();
      });
      if ((await Promise.race([exited, timer])) === "timeout") {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

/** The last `lines` lines of a log file, indented, for error messages. */
export function logTail(file: string, lines = 20): string {
  try {
    const text = readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines);
    return text.map((l) => `    ${l}`).join("\n");
  } catch {
    return "    (no log)";
  }
}

/** Removes the throw-away data dir of a test run; refuses anything outside `.data/test`. */
export async function removeTestDataDir(dir: string): Promise<void> {
  const resolved = path.resolve(dir);
  if (!resolved.startsWith(TEST_DATA_ROOT + path.sep)) {
    throw new Error(`refusing to delete ${resolved}: only dirs under ${TEST_DATA_ROOT} are removed`);
  }
  await rm(resolved, { recursive: true, force: true });
}
