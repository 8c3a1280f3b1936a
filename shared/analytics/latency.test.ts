import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bucketUpperMs, latencyBucket, MAX_LATENCY_BUCKET, percentile, percentiles } from "./latency.ts";

/** Nearest-rank percentile of raw values: the brute force the histogram estimate is checked against. */
const exact = (values: readonly number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.max(1, Math.ceil(p * values.length)) - 1] as number;

describe("latency histograms", () => {
  it("put every duration in the bucket whose bounds hold it", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e6, noNaN: true }), (ms) => {
        const k = latencyBucket(ms);
        if (ms <= 1) expect(k).toBe(0);
        else {
          expect(ms).toBeLessThanOrEqual(bucketUpperMs(k));
          expect(ms).toBeGreaterThan(bucketUpperMs(k - 1));
        }
      }),
    );
    expect([0, 1, 2, 3, 4, 100].map(latencyBucket)).toEqual([0, 0, 4, 7, 8, 27]);
    expect(latencyBucket(1e12)).toBe(MAX_LATENCY_BUCKET);
    expect(latencyBucket(-5)).toBe(0);
  });

  it("estimate percentiles at most one bucket (19 %) above the exact value, whatever the merge order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 60_000 }), { minLength: 1, maxLength: 300 }),
        fc.constantFrom(0.5, 0.95, 0.99),
        (values, p) => {
          // Split into per-"minute" histograms and merge them, as the report does.
          const pairs = values.map((v, i) => [latencyBucket(v), 1 + (i % 1)] as const);
          const estimate = percentile([...pairs].reverse(), p) as number;
          const truth = exact(values, p);
          if (truth <= 1) expect(estimate).toBe(1);
          else {
            expect(estimate).toBeGreaterThanOrEqual(truth);
            expect(estimate).toBeLessThanOrEqual(truth * 2 ** 0.25 + 0.1);
          }
        },
      ),
    );
  });

  it("has no percentile for an empty histogram and adds repeated buckets", () => {
    expect(percentiles([])).toEqual({ p50: null, p95: null, p99: null });
    expect(percentile([[27, 0]], 0.5)).toBeNull();
    // 9 calls ≤ 2 ms and 1 call of ~100 ms: the p50 is 2 ms, the p99 the slow one's bucket.
    expect(
      percentiles([
        [4, 5],
        [27, 1],
        [4, 4],
      ]),
    ).toEqual({ p50: 2, p95: 107.7, p99: 107.7 });
  });
});
