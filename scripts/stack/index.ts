import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { migrate } from "./migrate.ts";
import { type RunningNeonProxy, startNeonProxy } from "./neon-proxy.ts";
import {
  APP_PASSWORD,
  APP_USER,
  GLOBAL_DATABASE,
  type RunningPostgres,
  shardDatabaseName,
  startPostgres,
} from "./postgres.ts";
import { type RunningRedis, startRedis } from "./redis.ts";
import { runSeeds, type Seeder } from "./seed.ts";
import { DEFAULT_UPSTASH_TOKEN, type RunningUpstashShim, startUpstashShim } from "./upstash-shim.ts";
import {
  DEFAULT_DATA_DIR,
  freePort,
  isProcessAlive,
  type Logger,
  processCommandLine,
  removeTestDataDir,
  seconds,
  stackLog,
  TEST_DATA_ROOT,
} from "./util.ts";

/**
 * The local stack that `npm run dev`, `npm run stack` and the tests stand on:
 * PostgreSQL primary + streaming replica (global db `prepx`, shard dbs `prepx_shard_<n>`), the Neon
 * proxy (WebSocket + SQL over HTTP), redis-server and the Upstash REST shim.
 *
 * ```ts
 * const stack = await startStack({ migrate: true, seed: true, handleSignals: true });
 * spawn("wrangler", ["dev", ...Object.entries(stack.env).flatMap(([k, v]) => ["--var", `${k}:${v}`])]);
 * ```
 */
export interface StackPorts {
  postgres: number;
  postgresReplica: number;
  neonProxy: number;
  redis: number;
  upstash: number;
}

export const DEV_PORTS: Readonly<StackPorts> = {
  postgres: 54320,
  postgresReplica: 54321,
  neonProxy: 54330,
  redis: 63790,
  upstash: 63800,
};

export interface StackOptions {
  /** Default `<repo>/.data`. Tests use a fresh dir under `.data/test` (see `startTestStack`). */
  dataDir?: string;
  /** Ports to use (missing ones from DEV_PORTS), or "auto" for free ports chosen by the OS. */
  ports?: Partial<StackPorts> | "auto";
  /** Start the streaming replica (default true). Without it the replica URLs point at the primary. */
  replica?: boolean;
  /** Number of user-shard databases (default 2). */
  shards?: number;
  /** Keep Redis data across restarts (default true). */
  persistRedis?: boolean;
  /** Bearer token of the Upstash shim (default env UPSTASH_REDIS_REST_TOKEN or "local-dev-token"). */
  upstashToken?: string;
  /** Apply migrations after start (default false). */
  migrate?: boolean;
  /** Run the seeders after migrating: `true` for the default list, or a list of your own (default false). */
  seed?: boolean | Seeder[];
  /** Progress lines; default `[stack] …` on stdout. */
  log?: Logger;
  /** Stop everything on SIGINT/SIGTERM, then exit (default false; the CLI turns it on). */
  handleSignals?: boolean;
  /** Delete the data dir on stop; only allowed for dirs under `.data/test` (default false). */
  removeDataOnStop?: boolean;
}

export interface StackUrls {
  /** Global database on the primary, application role. */
  database: string;
  /** Global database on the replica (the primary when started without one). */
  databaseReplica: string;
  shards: string[];
  shardReplicas: string[];
  /** Superuser on the primary's `postgres` database (local only). */
  admin: string;
  /** `http://127.0.0.1:54330` */
  neonProxy: string;
  /** `127.0.0.1:54330`, the value of NEON_LOCAL_PROXY. */
  neonLocalProxy: string;
  /** `redis://127.0.0.1:63790` */
  redis: string;
  /** `http://127.0.0.1:63800`, the value of UPSTASH_REDIS_REST_URL. */
  upstash: string;
}

/** The variables of workers/env.ts that point the worker at this stack. */
export interface StackEnv {
  DATABASE_URL: string;
  DATABASE_REPLICA_URL: string;
  SHARD_DATABASE_URLS: string;
  SHARD_REPLICA_URLS: string;
  NEON_LOCAL_PROXY: string;
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
}

export interface Stack {
  dataDir: string;
  ports: StackPorts;
  urls: StackUrls;
  upstashToken: string;
  env: StackEnv;
  /** Stops everything (idempotent): proxies, then Redis and the replica, then the primary. */
  stop(): Promise<void>;
}

async function resolvePorts(ports: StackOptions["ports"]): Promise<StackPorts> {
  if (ports !== "auto") return { ...DEV_PORTS, ...ports };
  const taken = new Set<number>();
  const pick = async () => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  return {
    postgres: await pick(),
    postgresReplica: await pick(),
    neonProxy: await pick(),
    redis: await pick(),
    upstash: await pick(),
  };
}

const pidIn = (file: string, read: (text: string) => number): number => {
  try {
    return read(readFileSync(file, "utf8"));
  } catch {
    return Number.NaN;
  }
};

/**
 * One stack per data dir: `<dataDir>/stack.lock` holds the pid of the Node process running it.
 * A lock left by a dead process is taken over (its orphaned servers are shut down by the starters).
 */
async function acquireLock(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, "stack.lock");
  if (existsSync(file)) {
    const pid = pidIn(file, (t) => Number(JSON.parse(t).pid));
    if (pid === process.pid || (isProcessAlive(pid) && processCommandLine(pid).includes("node"))) {
      throw new Error(
        `a stack is already running on ${dataDir} (pid ${pid}). Stop it first, or give this one ` +
          "another data dir and ports.",
      );
    }
    await rm(file, { force: true });
  }
  await writeFile(file, JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() }), {
    flag: "wx",
  });
  return () => rm(file, { force: true });
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const log = opts.log ?? stackLog;
  const dataDir = path.resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
  if (opts.removeDataOnStop && !dataDir.startsWith(TEST_DATA_ROOT + path.sep)) {
    throw new Error(`removeDataOnStop is only allowed for data dirs under ${TEST_DATA_ROOT}`);
  }
  const t = performance.now();
  const ports = await resolvePorts(opts.ports);
  await mkdir(dataDir, { recursive: true });
  const releaseLock = await acquireLock(dataDir);

  let postgres: RunningPostgres | undefined;
  let redis: RunningRedis | undefined;
  let shim: RunningUpstashShim | undefined;
  let proxy: RunningNeonProxy | undefined;
  let stopping: Promise<void> | undefined;
  const signalHandlers: [NodeJS.Signals, () => void][] = [];

  const stop = () => {
    stopping ??= (async () => {
      const t0 = performance.now();
      await Promise.allSettled([proxy?.stop(), shim?.stop()]);
      await Promise.allSettled([redis?.stop(), postgres?.stop()]);
      await releaseLock();
      if (opts.removeDataOnStop) await removeTestDataDir(dataDir);
      for (const [signal, handler] of signalHandlers) process.removeListener(signal, handler);
      log(`stopped (${seconds(t0)})`);
    })();
    return stopping;
  };

  if (opts.handleSignals) {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => () => {
      signals++;
      if (signals > 1) {
        log(`${signal} again: exiting now (servers get their parent-death signal)`);
        process.exit(1);
      }
      log(`${signal}: stopping…`);
      stop().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(err);
          process.exit(1);
        },
      );
    };
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      const handler = onSignal(signal);
      signalHandlers.push([signal, handler]);
      process.on(signal, handler);
    }
  }

  try {
    const results = await Promise.allSettled([
      startPostgres({
        dataDir,
        port: ports.postgres,
        replicaPort: ports.postgresReplica,
        replica: opts.replica ?? true,
        shards: opts.shards ?? 2,
        log,
      }).then((pg) => {
        postgres = pg;
      }),
      startRedis({ dataDir, port: ports.redis, persist: opts.persistRedis ?? true, log }).then(async (r) => {
        redis = r;
        shim = await startUpstashShim({
          port: ports.upstash,
          redisPort: r.port,
          token: opts.upstashToken,
          log,
        });
      }),
      startNeonProxy({ port: ports.neonProxy, log }).then((p) => {
        proxy = p;
      }),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    if (!postgres || !redis || !shim || !proxy) throw new Error("stack did not start");

    const pg: RunningPostgres = postgres;
    const urls: StackUrls = {
      database: pg.url(pg.databases.global),
      databaseReplica: pg.url(pg.databases.global, "replica"),
      shards: pg.databases.shards.map((db) => pg.url(db)),
      shardReplicas: pg.databases.shards.map((db) => pg.url(db, "replica")),
      admin: pg.adminUrl(),
      neonProxy: proxy.url,
      neonLocalProxy: proxy.address,
      redis: redis.url,
      upstash: shim.url,
    };
    if (opts.migrate || opts.seed) await migrate({ globalUrl: urls.database, shardUrls: urls.shards, log });
    if (opts.seed) {
      await runSeeds({
        globalUrl: urls.database,
        shardUrls: urls.shards,
        seeders: Array.isArray(opts.seed) ? opts.seed : undefined,
        log,
      });
    }

    log(`ready in ${seconds(t)} (data: ${path.relative(process.cwd(), dataDir) || "."})`);
    return {
      dataDir,
      ports,
      urls,
      upstashToken: shim.token,
      env: {
        DATABASE_URL: urls.database,
        DATABASE_REPLICA_URL: urls.databaseReplica,
        SHARD_DATABASE_URLS: JSON.stringify(urls.shards),
        SHARD_REPLICA_URLS: JSON.stringify(urls.shardReplicas),
        NEON_LOCAL_PROXY: urls.neonLocalProxy,
        UPSTASH_REDIS_REST_URL: urls.upstash,
        UPSTASH_REDIS_REST_TOKEN: shim.token,
      },
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/**
 * A throw-away stack for tests: a fresh data dir under `.data/test`, free ports chosen by the OS (so it
 * can run next to `npm run dev` and other test runs), Redis without persistence, migrations and seed
 * applied, everything deleted again on `stop()`.
 */
export async function startTestStack(
  opts: Omit<StackOptions, "dataDir" | "removeDataOnStop"> = {},
): Promise<Stack> {
  await removeAbandonedTestDirs();
  const id = `${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, "")
    .slice(0, 14)}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  return startStack({
    ports: "auto",
    persistRedis: false,
    migrate: true,
    seed: true,
    ...opts,
    dataDir: path.join(TEST_DATA_ROOT, id),
    removeDataOnStop: true,
  });
}

/**
 * Test runs delete their data dir on stop; a run that was killed cannot. Dirs under `.data/test` whose
 * stack process and servers are gone, untouched for ten minutes, are removed by the next test run.
 */
async function removeAbandonedTestDirs(): Promise<void> {
  const entries = await readdir(TEST_DATA_ROOT, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(TEST_DATA_ROOT, entry.name);
    const owner = pidIn(path.join(dir, "stack.lock"), (t) => Number(JSON.parse(t).pid));
    const server = pidIn(path.join(dir, "postgres", "primary", "postmaster.pid"), (t) =>
      Number(t.split("\n")[0]),
    );
    if (isProcessAlive(owner) || isProcessAlive(server)) continue;
    const info = await stat(dir).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > 10 * 60_000) await removeTestDataDir(dir);
  }
}

/** `KEY=value` lines in the format of `.dev.vars` (dotenv: single quotes keep JSON values literal). */
export function formatEnv(env: StackEnv | Record<string, string>): string {
  const quote = (value: string) =>
    /^[\w@:/.,-]*$/.test(value) ? value : value.includes("'") ? JSON.stringify(value) : `'${value}'`;
  return Object.entries(env)
    .map(([key, value]) => `${key}=${quote(value)}`)
    .join("\n");
}

/**
 * Connection strings of the databases of a stack that is already running (on DEV_PORTS unless told
 * otherwise), for tools such as `npm run db:migrate` that do not start one.
 */
export function localDatabaseUrls(
  ports: Pick<StackPorts, "postgres"> = DEV_PORTS,
  shards = 2,
): { global: string; shards: string[] } {
  const url = (db: string) => `postgres://${APP_USER}:${APP_PASSWORD}@127.0.0.1:${ports.postgres}/${db}`;
  return {
    global: url(GLOBAL_DATABASE),
    shards: Array.from({ length: shards }, (_, i) => url(shardDatabaseName(i))),
  };
}

export { migrate } from "./migrate.ts";
export { runSeeds, type Seeder, seeders } from "./seed.ts";
export { DEFAULT_DATA_DIR, REPO_ROOT, TEST_DATA_ROOT } from "./util.ts";
export { DEFAULT_UPSTASH_TOKEN };
