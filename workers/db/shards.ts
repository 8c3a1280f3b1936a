/**
 * The user shard map: which database holds a user's rows.
 *
 * A user id (a UUID) hashes with FNV-1a 32 into one of 1,024 buckets; a bucket maps to a shard
 * index. By default bucket `b` lives on shard `b % shardCount`. `SHARD_MAP` can pin buckets to
 * shards explicitly as ranges, which is how shards are added without moving everyone at once
 * (see docs/auth.md, "Adding a shard").
 *
 * The map is the only routing authority: the shard numbers stored beside directory rows are
 * copies for operators and for the rebalancing script.
 */

export const BUCKETS = 1024;

/** FNV-1a, 32-bit, over the UTF-16 code units of `text` (ASCII for UUIDs). Stable forever: never change it. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The bucket of a user id (case-insensitive, so upper- and lowercase spellings of a UUID agree). */
export function bucketOf(userId: string): number {
  return fnv1a32(userId.toLowerCase()) % BUCKETS;
}

export interface BucketRange {
  /** First bucket, inclusive. */
  from: number;
  /** Last bucket, inclusive. */
  to: number;
  shard: number;
}

export interface ShardMap {
  readonly shardCount: number;
  shardOfBucket(bucket: number): number;
}

export class ShardMapError extends Error {
  override name = "ShardMapError";
}

/** The default map: bucket `b` on shard `b % shardCount`. */
export function moduloShardMap(shardCount: number): ShardMap {
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new ShardMapError("shardCount must be >= 1");
  return { shardCount, shardOfBucket: (bucket) => bucket % shardCount };
}

/**
 * An explicit map from ranges that must cover every bucket 0..1023 exactly once and name only
 * existing shards. `SHARD_MAP` holds these ranges as JSON, e.g.
 * `[{"from":0,"to":511,"shard":0},{"from":512,"to":1023,"shard":1}]`.
 */
export function rangeShardMap(ranges: BucketRange[], shardCount: number): ShardMap {
  const table = new Int16Array(BUCKETS).fill(-1);
  for (const [i, r] of ranges.entries()) {
    const ok =
      Number.isInteger(r.from) &&
      Number.isInteger(r.to) &&
      Number.isInteger(r.shard) &&
      r.from >= 0 &&
      r.to < BUCKETS &&
      r.from <= r.to &&
      r.shard >= 0 &&
      r.shard < shardCount;
    if (!ok) throw new ShardMapError(`SHARD_MAP[${i}] is not a valid range of buckets on an existing shard`);
    for (let b = r.from; b <= r.to; b++) {
      if (table[b] !== -1) throw new ShardMapError(`bucket ${b} is mapped twice`);
      table[b] = r.shard;
    }
  }
  const missing = table.indexOf(-1);
  if (missing !== -1) throw new ShardMapError(`bucket ${missing} is not mapped`);
  return { shardCount, shardOfBucket: (bucket) => table[bucket] ?? 0 };
}

/** Builds the map from the optional `SHARD_MAP` JSON, or the modulo default when it is absent. */
export function parseShardMap(raw: string | undefined, shardCount: number): ShardMap {
  if (!raw || raw.trim() === "") return moduloShardMap(shardCount);
  let ranges: unknown;
  try {
    ranges = JSON.parse(raw);
  } catch {
    throw new ShardMapError("SHARD_MAP is not valid JSON");
  }
  if (!Array.isArray(ranges)) throw new ShardMapError("SHARD_MAP must be a JSON array of {from, to, shard}");
  return rangeShardMap(ranges as BucketRange[], shardCount);
}

/**
 * The shard index of a user.
 *
 * @example
 * shardOf("7d7a1f0e-8a51-4c1e-9f51-1c4c1b7d9a10", moduloShardMap(2)); // 0 or 1, forever the same
 */
export function shardOf(userId: string, map: ShardMap): number {
  return map.shardOfBucket(bucketOf(userId));
}
