import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { isDatabaseError, type PgClient, withClient } from "./pg.ts";
import { type Logger, REPO_ROOT, stackLog } from "./util.ts";

/**
 * The migration runner. `migrations/global/*.sql` go to the global database (`prepx`),
 * `migrations/shard/*.sql` to every user-shard database, in file-name order. Each database records
 * what it has in `schema_migrations (name, checksum, applied_at)`, so running again is a no-op.
 *
 * - A file runs in one transaction together with its `schema_migrations` row: all or nothing.
 * - A file whose first line is `-- migrate:no-transaction` runs outside a transaction, one statement
 *   at a time, split at `--> statement-breakpoint` lines (what drizzle-kit writes); use it for
 *   `CREATE INDEX CONCURRENTLY`.
 * - Changing a file that was already applied is an error: add a new migration instead (locally,
 *   `rm -rf .data` starts from scratch).
 * - A session advisory lock serialises concurrent runners on the same database.
 * - Only `*.sql` directly in the folder count (drizzle-kit's `meta/` folder is ignored).
 */
export const MIGRATIONS_DIR = path.join(REPO_ROOT, "migrations");

export type MigrationScope = "global" | "shard";

export interface Migration {
  /** File name, e.g. `0001_orders.sql`; the key in schema_migrations. */
  name: string;
  sql: string;
  checksum: string;
  transactional: boolean;
}

export interface MigrationReport {
  /** Database name (from the URL). */
  database: string;
  scope: MigrationScope;
  applied: string[];
  alreadyApplied: number;
}

export interface MigrateOptions {
  /** Connection string of the global database (primary). */
  globalUrl: string;
  /** Connection strings of the shard databases (primaries), in shard order. */
  shardUrls: string[];
  /** Default `<repo>/migrations`. */
  dir?: string;
  log?: Logger;
}

const NO_TRANSACTION = /^--\s*migrate:no-transaction\b/;
const STATEMENT_BREAKPOINT = /^\s*-->\s*statement-breakpoint\s*$/m;
/** Any constant works; it only has to be the same for every runner. */
const LOCK_KEY = "prepx:schema_migrations";

export async function loadMigrations(folder: string): Promise<Migration[]> {
  const names = await readdir(folder).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return [] as string[];
    throw err;
  });
  const files = names.filter((n) => n.endsWith(".sql")).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Promise.all(
    files.map(async (name) => {
      const sql = (await readFile(path.join(folder, name), "utf8")).replace(/\r\n/g, "\n");
      return {
        name,
        sql,
        checksum: createHash("sha256").update(sql).digest("hex"),
        transactional: !NO_TRANSACTION.test(sql),
      };
    }),
  );
}

function databaseName(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1)) || "(default)";
  } catch {
    return "(unparsable url)";
  }
}

function describeFailure(err: unknown, migration: Migration, database: string): Error {
  let where = "";
  if (isDatabaseError(err) && err.position) {
    const line = migration.sql.slice(0, Number(err.position) - 1).split("\n").length;
    where = ` (line ${line})`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`migration ${migration.name} failed on ${database}${where}: ${message}`, { cause: err });
}

async function applyOne(db: PgClient, migration: Migration): Promise<void> {
  const record = () =>
    db.query("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", [
      migration.name,
      migration.checksum,
    ]);
  if (!migration.transactional) {
    for (const statement of migration.sql.split(STATEMENT_BREAKPOINT)) {
      if (statement.replace(/--.*$/gm, "").trim()) await db.query(statement);
    }
    await record();
    return;
  }
  await db.query("BEGIN");
  try {
    await db.query(migration.sql);
    await record();
    await db.query("COMMIT");
  } catch (err) {
    await db.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

/** Applies the pending migrations of one folder to one database. */
export async function migrateDatabase(
  url: string,
  migrations: Migration[],
  scope: MigrationScope,
  log: Logger = stackLog,
): Promise<MigrationReport> {
  const database = databaseName(url);
  return withClient({ connectionString: url, application_name: "prepx-migrate" }, async (db) => {
    await db.query("SELECT pg_advisory_lock(hashtext($1))", [LOCK_KEY]);
    try {
      await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        name text PRIMARY KEY,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await db.query<{ name: string; checksum: string }>(
        "SELECT name, checksum FROM schema_migrations",
      );
      const done = new Map(rows.map((r) => [r.name, r.checksum]));
      const applied: string[] = [];
      for (const migration of migrations) {
        const checksum = done.get(migration.name);
        if (checksum !== undefined) {
          if (checksum !== migration.checksum) {
            throw new Error(
              `migration ${migration.name} was changed after it was applied to ${database}. ` +
                "Add a new migration instead; to start local data over: rm -rf .data",
            );
          }
          continue;
        }
        const t = performance.now();
        try {
          await applyOne(db, migration);
        } catch (err) {
          throw describeFailure(err, migration, database);
        }
        applied.push(migration.name);
        log(`migrate: ${database} ← ${scope}/${migration.name} (${Math.round(performance.now() - t)} ms)`);
      }
      return { database, scope, applied, alreadyApplied: migrations.length - applied.length };
    } finally {
      await db.query("SELECT pg_advisory_unlock(hashtext($1))", [LOCK_KEY]).catch(() => {});
    }
  });
}

/** Global migrations to the global database, shard migrations to every shard. */
export async function migrate(opts: MigrateOptions): Promise<MigrationReport[]> {
  const log = opts.log ?? stackLog;
  const dir = opts.dir ?? MIGRATIONS_DIR;
  const [global, shard] = await Promise.all([
    loadMigrations(path.join(dir, "global")),
    loadMigrations(path.join(dir, "shard")),
  ]);
  const reports = [await migrateDatabase(opts.globalUrl, global, "global", log)];
  for (const url of opts.shardUrls) reports.push(await migrateDatabase(url, shard, "shard", log));
  const applied = reports.reduce((n, r) => n + r.applied.length, 0);
  log(
    applied === 0
      ? `migrate: ${reports.length} databases up to date`
      : `migrate: applied ${applied} migration(s) across ${reports.length} databases`,
  );
  return reports;
}
