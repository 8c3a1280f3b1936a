/**
 * `npm run db:backup [-- --out <dir>]`: a logical backup (COPY) of the global database and every shard
 * into <dir> (default .data/backups/<UTC time>), with a manifest of row counts, checksums and ledger sums.
 * Targets DATABASE_URL / SHARD_DATABASE_URLS when set (use Neon's direct URLs), else the local stack.
 * See docs/runbooks/database.md.
 */
import path from "node:path";
import { backup } from "./db/backup.ts";
import { databaseTargets, fail, option } from "./db-targets.ts";
import { REPO_ROOT } from "./stack/index.ts";

const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "Z");
const out = path.resolve(option(process.argv, "out") ?? path.join(REPO_ROOT, ".data", "backups", stamp));
try {
  const manifest = await backup(databaseTargets(), out, (line) => console.log(`[backup] ${line}`));
  const rows = manifest.databases.reduce((n, d) => n + d.tables.reduce((m, t) => m + t.rows, 0), 0);
  console.log(`[backup] ${manifest.databases.length} databases, ${rows} rows → ${out}`);
} catch (err) {
  fail("backup", err);
}
