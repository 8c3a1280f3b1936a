/**
 * Latency histograms for API calls (issue: analytics): log-scale buckets that can be added across
 * isolates, minutes and routes, and percentiles estimated from them.
 *
 * Bucket `k` holds durations `d` with `2^((k−1)/4) < d ≤ 2^(k/4)` milliseconds (four buckets per
 * doubling); bucket 0 holds `d ≤ 1` ms. A percentile is reported as the upper bound of the bucket that
 * holds it, so the estimate `e` of a true value `v > 1` ms satisfies `v ≤ e < v × 2^(1/4)` (at most 19 %
 * high, then rounded up to 0.1 ms), and `e = 1` when `v ≤ 1`. Counts are plain sums, so histograms from any number of workers and
 * minutes merge exactly.
 *
 * Pure: no I/O.
 *
 * @example
 * latencyBucket(0);        // 0   (≤ 1 ms)
 * latencyBucket(100);      // 27  (90.5 < 100 ≤ 107.6)
 * bucketUpperMs(27);       // 107.63…
 * percentile([[4, 9], [27, 1]], 0.95);   // 107.7 (the 10th of 10 values is in bucket 27)
 */

/** Buckets per doubling of the duration. */
export const BUCKETS_PER_DOUBLING = 4;
/** Highest bucket: 2^(96/4) ms ≈ 4.6 hours; anything longer is counted there. */
export const MAX_LATENCY_BUCKET = 96;

/** Upper bound of bucket `k`, in milliseconds. */
export function bucketUpperMs(k: number): number {
  return 2 ** (k / BUCKETS_PER_DOUBLING);
}

const UPPER = Array.from({ length: MAX_LATENCY_BUCKET + 1 }, (_, k) => bucketUpperMs(k));

/** The bucket of a duration in milliseconds (negative and NaN durations count as 0 ms). */
export function latencyBucket(ms: number): number {
  if (!(ms > 1)) return 0;
  if (ms > (UPPER[MAX_LATENCY_BUCKET] as number)) return MAX_LATENCY_BUCKET;
  let k = Math.ceil(BUCKETS_PER_DOUBLING * Math.log2(ms));
  // Guard against rounding in log2 at the bucket edges: make 2^((k−1)/4) < ms ≤ 2^(k/4) hold exactly.
  while (k > 1 && ms <= (UPPER[k - 1] as number)) k--;
  while (ms > (UPPER[k] as number)) k++;
  return k;
}

/** A histogram as `[bucket, count]` pairs (any order; a bucket may repeat, counts add up). */
export type Histogram = Iterable<readonly [bucket: number, count: number]>;

/**
 * The nearest-rank percentile `p` (0 < p ≤ 1) of a histogram, as the upper bound of its bucket in
 * milliseconds rounded up to 0.1 ms; `null` when the histogram is empty.
 */
export function percentile(histogram: Histogram, p: number): number | null {
  const counts = new Map<number, number>();
  let total = 0;
  for (const [bucket, count] of histogram) {
    if (count <= 0) continue;
    counts.set(bucket, (counts.get(bucket) ?? 0) + count);
    total += count;
  }
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (const bucket of [...counts.keys()].sort((a, b) => a - b)) {
    seen += counts.get(bucket) ?? 0;
    if (seen >= rank) return roundMs(bucketUpperMs(bucket));
  }
  return null;
}

/** p50, p95 and p99 of a histogram. */
export function percentiles(histogram: Histogram): {
  p50: number | null;
  p95: number | null;
  p99: number | null;
} {
  const pairs = [...histogram];
  return { p50: percentile(pairs, 0.5), p95: percentile(pairs, 0.95), p99: percentile(pairs, 0.99) };
}

const roundMs = (ms: number) => Math.ceil(ms * 10 - 1e-9) / 10;
