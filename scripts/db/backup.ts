/**
 * Logical backup and restore of every PrepX database (the global one and each user shard) with COPY.
 * pg_dump is not an option here: the npm-shipped PostgreSQL has none, and Debian's (15)
 * refuses a newer server. COPY works with any server version and through Neon's direct endpoints.
 *
 * A backup is a directory:
 *
 * ```
 * <dir>/manifest.json              format, time, and per database: migrations applied, tables with their
 *                                  columns, row counts and SHA-256, and the ledger sums of shards
 * <dir>/<db key>/<table>.copy      COPY text format, one file per table
 * ```
 *
 * - Each database is exported in one `REPEATABLE READ READ ONLY` transaction: a consistent snapshot of it.
 *   (Databases are independent; the history of a user lives on one shard.)
 * - Restore recreates the schema with the project's own migrations (exactly the ones the backup was taken
 *   at, checksums compared), loads the tables in foreign-key order in one transaction per database, resets
 *   sequences, and then checks row counts and ledger sums against the manifest before it reports success.
 *
 * See docs/runbooks/database.md.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { loadMigrations, MIGRATIONS_DIR, type MigrationScope, migrateDatabase } from "../stack/migrate.ts";
import { escapeIdentifier, type PgClient, withClient } from "../stack/pg.ts";
import { type Logger, stackLog } from "../stack/util.ts";
import { copyIn, copyOut } from "./copy.ts";

export const BACKUP_FORMAT = "prepx-logical-backup";

export interface TableEntry {
  name: string;
  columns: string[];
  rows: number;
  file: string;
  sha256: string;
}

export interface LedgerSumRow {
  account: string;
  symbol: string | null;
  asset: string;
  amount: string;
}

export interface DatabaseEntry {
  /** `global` or `shard_<n>`. */
  key: string;
  scope: MigrationScope;
  /** Database name at backup time. */
  name: string;
  migrations: { name: string; checksum: string }[];
  tables: TableEntry[];
  /** Σ amount per (account, symbol, asset) of ledger_entries, for shards. */
  ledger: LedgerSumRow[] | null;
}

export interface Manifest {
  format: typeof BACKUP_FORMAT;
  version: 1;
  createdAt: string;
  databases: DatabaseEntry[];
}

export interface DatabaseTargets {
  globalUrl: string;
  shardUrls: string[];
}

const targetsOf = (t: DatabaseTargets) => [
  { key: "global", scope: "global" as const, url: t.globalUrl },
  ...t.shardUrls.map((url, i) => ({ key: `shard_${i}`, scope: "shard" as const, url })),
];

const qualified = (table: string) => `public.${escapeIdentifier(table)}`;

async function tablesOf(db: PgClient): Promise<{ name: string; columns: string[] }[]> {
  const { rows } = await db.query<{ table_name: string; columns: string[] }>(
    `SELECT c.table_name, array_agg(c.column_name::text ORDER BY c.ordinal_position) AS columns
     FROM information_schema.columns c
     JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
     GROUP BY c.table_name ORDER BY c.table_name`,
  );
  return rows.map((r) => ({ name: r.table_name, columns: r.columns }));
}

async function ledgerSums(db: PgClient): Promise<LedgerSumRow[] | null> {
  const { rows: exists } = await db.query(
    "SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'ledger_entries'",
  );
  if (exists.length === 0) return null;
  const { rows } = await db.query<LedgerSumRow>(
    `SELECT account, symbol, asset, sum(amount)::text AS amount FROM ledger_entries
     GROUP BY account, symbol, asset ORDER BY account, symbol NULLS FIRST, asset`,
  );
  return rows;
}

async function rowCounts(db: PgClient, tables: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const t of tables) {
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified(t)}`);
    out.set(t, Number(rows[0]?.n ?? 0));
  }
  return out;
}

/** Export every database of `targets` into `dir` (created). Returns the manifest it wrote. */
export async function backup(
  targets: DatabaseTargets,
  dir: string,
  log: Logger = stackLog,
): Promise<Manifest> {
  await mkdir(dir, { recursive: true });
  const manifest: Manifest = {
    format: BACKUP_FORMAT,
    version: 1,
    createdAt: new Date().toISOString(),
    databases: [],
  };
  for (const target of targetsOf(targets)) {
    const t = performance.now();
    await mkdir(path.join(dir, target.key), { recursive: true });
    const entry = await withClient(
      { connectionString: target.url, application_name: "prepx-backup" },
      async (db) => {
        await db.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        try {
          const { rows: name } = await db.query<{ name: string }>("SELECT current_database() AS name");
          const { rows: migrations } = await db.query<{ name: string; checksum: string }>(
            "SELECT name, checksum FROM schema_migrations ORDER BY name",
          );
          const tables: TableEntry[] = [];
          for (const table of await tablesOf(db)) {
            const chunks: Buffer[] = [];
            const columns = table.columns.map(escapeIdentifier).join(", ");
            const rows = await copyOut(db, `COPY ${qualified(table.name)} (${columns}) TO STDOUT`, (c) =>
              chunks.push(Buffer.from(c)),
            );
            const data = Buffer.concat(chunks);
            const file = `${target.key}/${table.name}.copy`;
            await writeFile(path.join(dir, file), data);
            tables.push({
              name: table.name,
              columns: table.columns,
              rows,
              file,
              sha256: createHash("sha256").update(data).digest("hex"),
            });
          }
          const ledger = await ledgerSums(db);
          await db.query("COMMIT");
          return {
            key: target.key,
            scope: target.scope,
            name: name[0]?.name ?? "",
            migrations,
            tables,
            ledger,
          };
        } catch (err) {
          await db.query("ROLLBACK").catch(() => {});
          throw err;
        }
      },
    );
    manifest.databases.push(entry);
    const rows = entry.tables.reduce((n, x) => n + x.rows, 0);
    log(
      `backup: ${entry.name} → ${target.key}: ${entry.tables.length} tables, ${rows} rows (${Math.round(performance.now() - t)} ms)`,
    );
  }
  await writeFile(path.join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Tables ordered so that every table comes after the tables its foreign keys reference. */
async function loadOrder(db: PgClient, tables: string[]): Promise<string[]> {
  const { rows } = await db.query<{ child: string; parent: string }>(
    `SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent
     FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE c.contype = 'f' AND n.nspname = 'public'`,
  );
  const bare = (t: string) => t.replace(/^public\./, "").replace(/^"(.*)"$/, "$1");
  const parents = new Map<string, Set<string>>();
  for (const r of rows) {
    const child = bare(r.child);
    if (!parents.has(child)) parents.set(child, new Set());
    if (bare(r.parent) !== child) parents.get(child)?.add(bare(r.parent));
  }
  const out: string[] = [];
  const placed = new Set<string>();
  const visit = (t: string, path: Set<string>) => {
    if (placed.has(t)) return;
    if (path.has(t)) throw new Error(`foreign-key cycle through ${t}`);
    path.add(t);
    for (const p of parents.get(t) ?? []) if (tables.includes(p)) visit(p, path);
    placed.add(t);
    out.push(t);
  };
  for (const t of [...tables].sort()) visit(t, new Set());
  return out;
}

export interface RestoreOptions {
  /** Empty the target tables first (default false: the targets must be empty). */
  clean?: boolean;
  log?: Logger;
}

export interface RestoreReport {
  databases: { key: string; tables: number; rows: number }[];
}

/**
 * Restore the backup in `dir` into `targets` (same number of shards), then verify it. Throws, naming the
 * table, when a file does not match its checksum, a target is not empty, or the restored counts or
 * ledger sums differ from the manifest.
 */
export async function restore(
  dir: string,
  targets: DatabaseTargets,
  opts: RestoreOptions = {},
): Promise<RestoreReport> {
  const log = opts.log ?? stackLog;
  const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as Manifest;
  if (manifest.format !== BACKUP_FORMAT || manifest.version !== 1)
    throw new Error(`${dir} is not a PrepX backup`);
  const shardsInBackup = manifest.databases.filter((d) => d.scope === "shard").length;
  if (shardsInBackup !== targets.shardUrls.length) {
    throw new Error(
      `the backup has ${shardsInBackup} shards but ${targets.shardUrls.length} shard URLs were given`,
    );
  }
  const available = {
    global: await loadMigrations(path.join(MIGRATIONS_DIR, "global")),
    shard: await loadMigrations(path.join(MIGRATIONS_DIR, "shard")),
  };
  const report: RestoreReport = { databases: [] };
  for (const target of targetsOf(targets)) {
    const t = performance.now();
    const entry = manifest.databases.find((d) => d.key === target.key);
    if (!entry) throw new Error(`the backup has no database ${target.key}`);
    // Files first: a damaged backup must not touch the target.
    const data = new Map<string, Buffer>();
    for (const table of entry.tables) {
      const bytes = await readFile(path.join(dir, table.file));
      if (createHash("sha256").update(bytes).digest("hex") !== table.sha256) {
        throw new Error(`${table.file} does not match its checksum`);
      }
      data.set(table.name, bytes);
    }
    // The schema, exactly as it was when the backup was taken.
    const migrations = entry.migrations.map((m) => {
      const file = available[entry.scope].find((f) => f.name === m.name);
      if (!file)
        throw new Error(`migration ${m.name} of the backup is not in ${MIGRATIONS_DIR}/${entry.scope}`);
      if (file.checksum !== m.checksum)
        throw new Error(`migration ${m.name} changed since the backup was taken`);
      return file;
    });
    await migrateDatabase(target.url, migrations, entry.scope, () => {});

    const tables = entry.tables.filter((x) => x.name !== "schema_migrations");
    const rows = await withClient(
      { connectionString: target.url, application_name: "prepx-restore" },
      async (db) => {
        const order = await loadOrder(
          db,
          tables.map((x) => x.name),
        );
        await db.query("BEGIN");
        try {
          if (opts.clean) {
            await db.query(`TRUNCATE ${order.map(qualified).join(", ")} RESTART IDENTITY CASCADE`);
          } else {
            const counts = await rowCounts(db, order);
            const busy = [...counts].filter(([, n]) => n > 0).map(([name]) => name);
            if (busy.length > 0)
              throw new Error(`${target.key}: tables ${busy.join(", ")} are not empty (use --clean)`);
          }
          let total = 0;
          for (const name of order) {
            const table = tables.find((x) => x.name === name) as TableEntry;
            const columns = table.columns.map(escapeIdentifier).join(", ");
            total += await copyIn(
              db,
              `COPY ${qualified(name)} (${columns}) FROM STDIN`,
              data.get(name) ?? Buffer.alloc(0),
            );
          }
          await resetSequences(db);
          // Verify inside the transaction: a restore that does not match is rolled back.
          const counts = await rowCounts(db, order);
          for (const table of tables) {
            if (counts.get(table.name) !== table.rows) {
              throw new Error(
                `${target.key}.${table.name}: ${counts.get(table.name)} rows restored, ${table.rows} backed up`,
              );
            }
          }
          const ledger = await ledgerSums(db);
          if (JSON.stringify(ledger) !== JSON.stringify(entry.ledger)) {
            throw new Error(`${target.key}: ledger sums differ from the backup's`);
          }
          await db.query("COMMIT");
          return total;
        } catch (err) {
          await db.query("ROLLBACK").catch(() => {});
          throw err;
        }
      },
    );
    report.databases.push({ key: target.key, tables: tables.length, rows });
    log(
      `restore: ${target.key}: ${tables.length} tables, ${rows} rows, verified (${Math.round(performance.now() - t)} ms)`,
    );
  }
  return report;
}

/** Sets every sequence owned by a column to the column's maximum (or back to its start when empty). */
async function resetSequences(db: PgClient): Promise<void> {
  const { rows } = await db.query<{ table_name: string; column_name: string; seq: string }>(
    `SELECT c.table_name, c.column_name, pg_get_serial_sequence(quote_ident(c.table_name), c.column_name) AS seq
     FROM information_schema.columns c
     WHERE c.table_schema = 'public' AND pg_get_serial_sequence(quote_ident(c.table_name), c.column_name) IS NOT NULL`,
  );
  for (const r of rows) {
    const table = qualified(r.table_name);
    const column = escapeIdentifier(r.column_name);
    await db.query(
      `SELECT setval($1::regclass, coalesce((SELECT max(${column}) FROM ${table}), 1), (SELECT count(*) > 0 FROM ${table}))`,
      [r.seq],
    );
  }
}
