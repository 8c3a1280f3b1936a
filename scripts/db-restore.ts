/**
 * `npm run db:restore -- <backup dir> [--clean]`: restores a backup made by `npm run db:backup` into
 * DATABASE_URL / SHARD_DATABASE_URLS (else the local stack): migrations as of the backup, every table in
 * foreign-key order, sequences, then a check of row counts and ledger sums against the manifest (a
 * mismatch rolls the database back). Targets must be empty unless --clean (which empties them first).
 * See docs/runbooks/database.md.
 */
import path from "node:path";
import { restore } from "./db/backup.ts";
import { databaseTargets, fail } from "./db-targets.ts";

const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith("--"));
if (!dir) {
  console.error("usage: npm run db:restore -- <backup dir> [--clean]");
  process.exit(2);
}
try {
  const report = await restore(path.resolve(dir), databaseTargets(), {
    clean: args.includes("--clean"),
    log: (line) => console.log(`[restore] ${line}`),
  });
  const rows = report.databases.reduce((n, d) => n + d.rows, 0);
  console.log(`[restore] ${report.databases.length} databases, ${rows} rows restored and verified`);
} catch (err) {
  fail("restore", err);
}
