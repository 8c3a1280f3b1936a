import { drizzle as drizzleHttp, type NeonHttpDatabase } from "drizzle-orm/neon-http";
import { drizzle as drizzlePool, type NeonDatabase } from "drizzle-orm/neon-serverless";
import { type PgWithReplicas, withReplicas } from "drizzle-orm/pg-core";
import type { Env } from "../env.ts";
import { httpSql, openPool, requireUrl } from "../lib/db.ts";
import * as globalSchema from "./schema/global.ts";
import * as shardSchema from "./schema/shard.ts";
import { parseShardMap, type ShardMap, shardOf } from "./shards.ts";

export { globalSchema, shardSchema };
export type GlobalSchema = typeof globalSchema;
export type ShardSchema = typeof shardSchema;

/**
 * A database behind drizzle's `withReplicas`: `select`s go to the read replica, writes
 * (`insert` / `update` / `delete` / `execute`) to the primary, and `.$primary.select()` reads the
 * primary when a request must see its own writes. Statements run over Neon's HTTP endpoint:
 * one round trip each, nothing to close.
 */
export type Database<S extends Record<string, unknown>> = PgWithReplicas<NeonHttpDatabase<S>>;
export type GlobalDb = Database<GlobalSchema>;
export type ShardDb = Database<ShardSchema>;
/** The handle inside `transaction`: a WebSocket session on the primary. */
export type TxDb<S extends Record<string, unknown>> = NeonDatabase<S>;

export interface Databases {
  /** The global database `prepx`: directories and the audit log. */
  readonly global: GlobalDb;
  readonly shardMap: ShardMap;
  readonly shardCount: number;
  /** The shard database with this index. */
  shard(index: number): ShardDb;
  /** The shard index that holds this user. */
  shardOf(userId: string): number;
  /** The shard database that holds this user. */
  forUser(userId: string): ShardDb;
  /**
   * Runs `fn` in one interactive transaction on the primary of the global database or of a shard.
   * Opens a one-connection pool for it (a socket cannot outlive the request) and closes it
   * afterwards, in `waitUntil` when one was given.
   */
  globalTransaction<T>(fn: (tx: TxDb<GlobalSchema>) => Promise<T>): Promise<T>;
  shardTransaction<T>(index: number, fn: (tx: TxDb<ShardSchema>) => Promise<T>): Promise<T>;
}

export class DatabaseConfigError extends Error {
  override name = "DatabaseConfigError";
}

function urlList(raw: string | undefined, name: string): string[] {
  if (!raw) return [];
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new DatabaseConfigError(`${name} is not valid JSON`);
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v !== "")) {
    throw new DatabaseConfigError(`${name} must be a JSON array of connection strings`);
  }
  return value as string[];
}

// Neon's HTTP query function holds no socket, so drizzle instances may be reused across requests.
const httpDatabases = new Map<string, NeonHttpDatabase<Record<string, unknown>>>();

function httpDatabase<S extends Record<string, unknown>>(
  env: Env,
  url: string,
  schema: S,
): NeonHttpDatabase<S> {
  const key = `${url}\n${Object.keys(schema).join(",")}`;
  let database = httpDatabases.get(key);
  if (!database) {
    database = drizzleHttp({ client: httpSql(env, url), schema }) as NeonHttpDatabase<
      Record<string, unknown>
    >;
    httpDatabases.set(key, database);
  }
  return database as NeonHttpDatabase<S>;
}

function replicated<S extends Record<string, unknown>>(
  env: Env,
  primaryUrl: string,
  replicaUrl: string | undefined,
  schema: S,
): Database<S> {
  const primary = httpDatabase(env, primaryUrl, schema);
  const replica = replicaUrl && replicaUrl !== primaryUrl ? httpDatabase(env, replicaUrl, schema) : primary;
  return withReplicas(primary, [replica]);
}

/**
 * The databases of one request: the global database and the user shards, each with primary and
 * replica. Cheap to call; handles are created lazily.
 *
 * @example
 * const dbs = db(c.env, c.executionCtx.waitUntil.bind(c.executionCtx));
 * const [user] = await dbs.forUser(userId).$primary.select().from(shardSchema.users)
 *   .where(eq(shardSchema.users.id, userId));
 */
export function db(env: Env, waitUntil?: (p: Promise<unknown>) => void): Databases {
  const shardUrls = urlList(env.SHARD_DATABASE_URLS, "SHARD_DATABASE_URLS");
  const shardReplicaUrls = urlList(env.SHARD_REPLICA_URLS, "SHARD_REPLICA_URLS");
  let globalDb: GlobalDb | undefined;
  let map: ShardMap | undefined;

  const shardMap = (): ShardMap => {
    if (shardUrls.length === 0) throw new DatabaseConfigError("SHARD_DATABASE_URLS is not configured");
    map ??= parseShardMap(env.SHARD_MAP, shardUrls.length);
    return map;
  };
  const shard = (index: number): ShardDb => {
    const url = shardUrls[index];
    if (url === undefined) throw new DatabaseConfigError(`no shard ${index} in SHARD_DATABASE_URLS`);
    return replicated(env, url, shardReplicaUrls[index], shardSchema);
  };
  const inTransaction = async <S extends Record<string, unknown>, T>(
    url: string,
    schema: S,
    fn: (tx: TxDb<S>) => Promise<T>,
  ): Promise<T> => {
    const pool = openPool(env, url);
    try {
      return await drizzlePool({ client: pool, schema }).transaction((tx) => fn(tx as unknown as TxDb<S>));
    } finally {
      const closing = pool.end();
      if (waitUntil) waitUntil(closing);
      else await closing;
    }
  };

  return {
    get global() {
      globalDb ??= replicated(
        env,
        requireUrl(env.DATABASE_URL, "DATABASE_URL"),
        env.DATABASE_REPLICA_URL,
        globalSchema,
      );
      return globalDb;
    },
    get shardMap() {
      return shardMap();
    },
    get shardCount() {
      return shardMap().shardCount;
    },
    shard,
    shardOf: (userId) => shardOf(userId, shardMap()),
    forUser: (userId) => shard(shardOf(userId, shardMap())),
    globalTransaction: (fn) => inTransaction(requireUrl(env.DATABASE_URL, "DATABASE_URL"), globalSchema, fn),
    shardTransaction: (index, fn) => {
      const url = shardUrls[index];
      if (url === undefined) throw new DatabaseConfigError(`no shard ${index} in SHARD_DATABASE_URLS`);
      return inTransaction(url, shardSchema, fn);
    },
  };
}
