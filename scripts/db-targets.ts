/**
 * The databases a `npm run db:*` command works on: DATABASE_URL and SHARD_DATABASE_URLS (JSON array) when
 * set, the same variables the worker uses, otherwise the local stack on its dev ports.
 */
import { localDatabaseUrls } from "./stack/index.ts";

export function databaseTargets(): { globalUrl: string; shardUrls: string[] } {
  const local = localDatabaseUrls();
  const raw = process.env.SHARD_DATABASE_URLS;
  const shardUrls = raw ? (JSON.parse(raw) as unknown) : local.shards;
  if (!Array.isArray(shardUrls) || !shardUrls.every((u) => typeof u === "string")) {
    throw new Error("SHARD_DATABASE_URLS must be a JSON array of connection strings");
  }
  return { globalUrl: process.env.DATABASE_URL ?? local.global, shardUrls };
}

/** `--name value` from argv, or undefined. */
export function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

export function fail(tool: string, err: unknown): never {
  const e = err as NodeJS.ErrnoException;
  const hint =
    e.code === "ECONNREFUSED" ? "\n  Is the local stack running? Start it with: npm run stack" : "";
  console.error(`[${tool}] failed: ${e.message}${hint}`);
  process.exit(1);
}
