import { describe, expect, it } from "vitest";
import {
  BUCKETS,
  bucketOf,
  fnv1a32,
  moduloShardMap,
  parseShardMap,
  ShardMapError,
  shardOf,
} from "./shards.ts";

describe("the user shard map", () => {
  it("hashes with the published FNV-1a 32 test vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("puts a user in the same bucket whatever the case of the UUID", () => {
    const id = crypto.randomUUID();
    expect(bucketOf(id.toUpperCase())).toBe(bucketOf(id));
    expect(bucketOf(id)).toBeGreaterThanOrEqual(0);
    expect(bucketOf(id)).toBeLessThan(BUCKETS);
  });

  it("spreads random users over both shards roughly evenly", () => {
    const map = moduloShardMap(2);
    const counts = [0, 0];
    for (let i = 0; i < 4000; i++) counts[shardOf(crypto.randomUUID(), map)]! += 1;
    expect(Math.min(...counts)).toBeGreaterThan(1700);
  });

  it("maps bucket b to shard b % shardCount by default", () => {
    const map = parseShardMap(undefined, 3);
    expect([0, 1, 2, 3, 1023].map((b) => map.shardOfBucket(b))).toEqual([0, 1, 2, 0, 1023 % 3]);
  });

  it("follows explicit SHARD_MAP ranges", () => {
    const map = parseShardMap(
      JSON.stringify([
        { from: 0, to: 99, shard: 1 },
        { from: 100, to: 1023, shard: 0 },
      ]),
      2,
    );
    expect(map.shardOfBucket(0)).toBe(1);
    expect(map.shardOfBucket(99)).toBe(1);
    expect(map.shardOfBucket(100)).toBe(0);
    expect(map.shardOfBucket(1023)).toBe(0);
  });

  it("refuses a SHARD_MAP with gaps, overlaps, unknown shards or bad JSON", () => {
    const bad = [
      "nope",
      "{}",
      JSON.stringify([{ from: 0, to: 1022, shard: 0 }]),
      JSON.stringify([
        { from: 0, to: 600, shard: 0 },
        { from: 500, to: 1023, shard: 1 },
      ]),
      JSON.stringify([{ from: 0, to: 1023, shard: 2 }]),
      JSON.stringify([{ from: 0, to: 1024, shard: 0 }]),
    ];
    for (const raw of bad) expect(() => parseShardMap(raw, 2)).toThrow(ShardMapError);
  });
});
