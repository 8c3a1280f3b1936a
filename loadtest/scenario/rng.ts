/**
 * Seeded randomness for the load scenario: every trader draws from its own stream, derived from the run
 * seed and its index, so a run with the same seed and options makes the same decisions in the same order
 * (timing still varies with the server's answers).
 */

/** FNV-1a 32 of a string: turns a seed like "prepx" into a number. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * A small, fast PRNG (sfc32) with a convenient surface. Not cryptographic.
 *
 * @example
 * const rng = new Rng("prepx/trader/17");
 * rng.next();            // [0, 1)
 * rng.int(1, 6);         // 1..6
 * rng.exp(5_000);        // exponential, mean 5 s
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: string | number) {
    const s = typeof seed === "number" ? seed >>> 0 : hashSeed(seed);
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = s;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** Integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** Exponentially distributed with the given mean (memoryless think times, Poisson arrivals). */
  exp(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** Index drawn with probability proportional to `weights[i]` (weights ≥ 0, not all 0). */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i] as number;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }
}

/**
 * Zipf popularity over `n` ranked items: P(rank k) ∝ 1 / k^s (k = 1..n). With s ≈ 1 a few items take most
 * of the attention, as the most-watched names do in real markets.
 *
 * @example
 * const zipf = new Zipf(5, 1.1);
 * zipf.probabilities;          // [0.46, 0.22, 0.14, 0.10, 0.08]
 * zipf.sample(rng);            // 0-based rank
 */
export class Zipf {
  readonly probabilities: readonly number[];
  private readonly cumulative: Float64Array;

  constructor(n: number, s: number) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError("Zipf needs n ≥ 1");
    if (!(s >= 0)) throw new RangeError("Zipf needs s ≥ 0");
    const weights = Array.from({ length: n }, (_, k) => 1 / (k + 1) ** s);
    const total = weights.reduce((a, b) => a + b, 0);
    this.probabilities = weights.map((w) => w / total);
    this.cumulative = new Float64Array(n);
    let acc = 0;
    this.probabilities.forEach((p, i) => {
      acc += p;
      this.cumulative[i] = acc;
    });
    this.cumulative[n - 1] = 1;
  }

  /** A 0-based rank (binary search over the cumulative distribution). */
  sample(rng: Pick<Rng, "next">): number {
    const x = rng.next();
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (x < (this.cumulative[mid] as number)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** `k` distinct ranks, each drawn by popularity among those not drawn yet. */
  sampleDistinct(rng: Pick<Rng, "next">, k: number): number[] {
    const n = this.probabilities.length;
    const want = Math.min(k, n);
    const chosen: number[] = [];
    const left = this.probabilities.map((p, i) => ({ p, i }));
    while (chosen.length < want) {
      const total = left.reduce((a, x) => a + x.p, 0);
      let x = rng.next() * total;
      let at = left.length - 1;
      for (let j = 0; j < left.length; j++) {
        x -= (left[j] as { p: number }).p;
        if (x < 0) {
          at = j;
          break;
        }
      }
      chosen.push((left[at] as { i: number }).i);
      left.splice(at, 1);
    }
    return chosen;
  }
}
