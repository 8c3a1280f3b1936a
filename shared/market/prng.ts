/**
 * A small seeded pseudo-random generator whose whole state is four 32-bit integers, so a simulator can
 * store it and resume the very same sequence after a restart.
 *
 * - Generator: sfc32 (Chris Doty-Humphrey's "small fast counting" generator, PractRand-clean at 2^40+
 *   bytes). Only 32-bit integer operations (`+`, `^`, shifts; `Math.imul` in the seed hash), so the
 *   sequence is the same on every JavaScript engine.
 * - Seeding: a string seed is hashed to 128 bits with cyrb128, then 12 outputs are discarded.
 * - Uniforms are `u32 / 2^32` (exact in a float64); normals are Irwin–Hall sums of 12 uniforms minus 6
 *   (mean 0, variance 1, bounded to ±6). Only `+`, `-`, `*` and `/`: no `Math.log` / `Math.cos`, whose
 *   last bit may differ between engines. Fat tails come from the simulator's jumps, not from here.
 *
 * @example
 * ```ts
 * const rng = Prng.fromSeed("EPIC:1");
 * rng.uniform(); // [0, 1)
 * const saved = rng.state();          // [a, b, c, d]
 * Prng.fromState(saved).uniform();    // the next value, as if never interrupted
 * ```
 */

/** The generator state: four unsigned 32-bit integers. */
export type PrngState = [number, number, number, number];

const TWO_32 = 4294967296;

/** cyrb128: a fast, well-mixed 128-bit hash of a string (public domain, bryc). */
export function hashSeed(seed: string): PrngState {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < seed.length; i++) {
    const k = seed.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  private constructor(state: PrngState) {
    [this.a, this.b, this.c, this.d] = state;
  }

  /** A generator seeded from a string; equal seeds give equal sequences. */
  static fromSeed(seed: string): Prng {
    const rng = new Prng(hashSeed(seed));
    for (let i = 0; i < 12; i++) rng.nextU32();
    return rng;
  }

  /** A generator that continues from a saved {@link state}. */
  static fromState(state: readonly number[]): Prng {
    if (state.length !== 4 || !state.every((v) => Number.isInteger(v) && v >= 0 && v < TWO_32)) {
      throw new RangeError("a PRNG state is four unsigned 32-bit integers");
    }
    return new Prng([state[0] as number, state[1] as number, state[2] as number, state[3] as number]);
  }

  /** The state to store; {@link fromState} resumes exactly here. */
  state(): PrngState {
    return [this.a, this.b, this.c, this.d];
  }

  /** The next unsigned 32-bit integer. */
  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = (this.b ^ (this.b >>> 9)) >>> 0;
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform on [0, 1), a multiple of 2^-32. */
  uniform(): number {
    return this.nextU32() / TWO_32;
  }

  /** An integer uniform on [min, max] (inclusive); the bias is below 2^-32 × (max − min + 1). */
  int(min: number, max: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max < min) {
      throw new RangeError(`invalid integer range [${min}, ${max}]`);
    }
    return min + Math.floor(this.uniform() * (max - min + 1));
  }

  /** `true` with probability `p`. */
  chance(p: number): boolean {
    return this.uniform() < p;
  }

  /** Approximately standard normal: Irwin–Hall sum of 12 uniforms minus 6 (variance exactly 1, |z| ≤ 6). */
  normal(): number {
    let sum = 0;
    for (let i = 0; i < 12; i++) sum += this.uniform();
    return sum - 6;
  }
}
