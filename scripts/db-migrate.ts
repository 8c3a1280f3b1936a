/**
 * `npm run db:migrate`: applies migrations/global to the global database and migrations/shard to every
 * shard. Targets DATABASE_URL and SHARD_DATABASE_URLS (JSON array) when set — the same runner works
 * against Neon — otherwise the local stack on its dev ports (`npm run stack` must be running).
 */
import { localDatabaseUrls, migrate } from "./stack/index.ts";

function targets(): { globalUrl: string; shardUrls: string[] } {
  const local = localDatabaseUrls();
  const globalUrl = process.env.DATABASE_URL ?? local.global;
  const shards = process.env.SHARD_DATABASE_URLS;
  const shardUrls = shards ? (JSON.parse(shards) as string[]) : local.shards;
  if (!Array.isArray(shardUrls))
    throw new Error("SHARD_DATABASE_URLS must be a JSON array of connection strings");
  return { globalUrl, shardUrls };
}

try {
  await migrate(targets());
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  const hint =
    e.code === "ECONNREFUSED" ? "\n  Is the local stack running? Start it with: npm run stack" : "";
  console.error(`[migrate] failed: ${e.message}${hint}`);
  process.exit(1);
}
