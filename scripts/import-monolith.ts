/**
 * `npm run db:import -- <export.json>`: loads users and trading sessions exported from the old monolith
 * (format `prepx-monolith-export` v1, see docs/history.md) into DATABASE_URL / SHARD_DATABASE_URLS (else
 * the local stack). Idempotent: run it again with the same or a grown file and only what is new is added.
 */
import { readFile } from "node:fs/promises";
import { importMonolith } from "./db/import-monolith.ts";
import { databaseTargets, fail } from "./db-targets.ts";

const file = process.argv.slice(2).find((a) => !a.startsWith("--"));
if (!file) {
  console.error("usage: npm run db:import -- <export.json>");
  process.exit(2);
}
try {
  const data = JSON.parse(await readFile(file, "utf8")) as unknown;
  const report = await importMonolith(data, {
    ...databaseTargets(),
    shardMap: process.env.SHARD_MAP,
    log: (line) => console.log(`[import] ${line}`),
  });
  console.log(`[import] ${JSON.stringify(report)}`);
  if (report.users.skipped.length > 0) {
    for (const s of report.users.skipped) console.error(`[import] skipped user ${s.id}: ${s.reason}`);
    process.exit(1);
  }
} catch (err) {
  fail("import", err);
}
