/**
 * `npm run db:seed`: runs the idempotent seeders of scripts/stack/seed.ts (demo symbols, …) against
 * DATABASE_URL / SHARD_DATABASE_URLS when set, otherwise the local stack on its dev ports.
 */
import { localDatabaseUrls, runSeeds } from "./stack/index.ts";

const local = localDatabaseUrls();
try {
  await runSeeds({
    globalUrl: process.env.DATABASE_URL ?? local.global,
    shardUrls: process.env.SHARD_DATABASE_URLS
      ? (JSON.parse(process.env.SHARD_DATABASE_URLS) as string[])
      : local.shards,
  });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  const hint =
    e.code === "ECONNREFUSED" ? "\n  Is the local stack running? Start it with: npm run stack" : "";
  console.error(`[seed] failed: ${e.message}${hint}`);
  process.exit(1);
}
