/**
 * Sorted index of the price levels of one side of a book (or of a stop book).
 *
 * Levels are kept in a typed array sorted by `key = price × dir`, ascending, so the best level is always
 * the last element: taking or removing the best level is O(1), and inserting near the top of the book
 * (where almost all activity is) moves only a few elements. Lookup by price is a binary search.
 * `dir = +1` makes the highest price best (bids, sell stops); `dir = -1` the lowest (asks, buy stops).
 * @internal
 */
/** Levels from the best that `find` scans before it binary searches. */
const SCAN = 16;
/** Slots of the price → level cache (a power of two). */
const CACHE = 64;

export class LevelIndex {
  readonly dir: number;
  keys: Float64Array;
  levels: Int32Array;
  n = 0;
  /**
   * Direct-mapped cache of present levels, slot `price & (CACHE - 1)`: price (0 = empty) and level id.
   * Moves land on a few dozen prices near the top of the book, so most `find`s end here.
   */
  private readonly cachePrice = new Float64Array(CACHE);
  private readonly cacheLevel = new Int32Array(CACHE);

  constructor(dir: 1 | -1, capacity = 64) {
    this.dir = dir;
    this.keys = new Float64Array(capacity);
    this.levels = new Int32Array(capacity);
  }

  /** Level id of the best price, or -1. */
  best(): number {
    return this.n > 0 ? (this.levels[this.n - 1] as number) : -1;
  }

  /** First position whose key is ≥ key. */
  lowerBound(key: number): number {
    const keys = this.keys;
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((keys[mid] as number) < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Level id at `price`, or -1. Activity clusters near the top of the book, so after the cache the first
   * `SCAN` levels from the best are scanned linearly (one mispredicted branch at the end, where a binary
   * search mispredicts about every other step), then the rest is binary searched.
   */
  find(price: number): number {
    const c = price & (CACHE - 1);
    if (this.cachePrice[c] === price) return this.cacheLevel[c] as number;
    const key = price * this.dir;
    const keys = this.keys;
    const n = this.n;
    const stop = n > SCAN ? n - SCAN : 0;
    let level = -1;
    let i = n - 1;
    for (; i >= stop; i--) {
      const k = keys[i] as number;
      if (k <= key) {
        if (k === key) level = this.levels[i] as number;
        break;
      }
    }
    if (i < stop && stop > 0) {
      const pos = this.lowerBound(key);
      if (pos < n && keys[pos] === key) level = this.levels[pos] as number;
    }
    if (level !== -1) {
      this.cachePrice[c] = price;
      this.cacheLevel[c] = level;
    }
    return level;
  }

  /** Insert a level for `price` (which must not be present). */
  insert(price: number, level: number): void {
    const key = price * this.dir;
    const n = this.n;
    if (n === this.keys.length) this.grow();
    let pos: number;
    if (n === 0 || (this.keys[n - 1] as number) < key) pos = n;
    else pos = this.lowerBound(key);
    if (pos < n) {
      this.keys.copyWithin(pos + 1, pos, n);
      this.levels.copyWithin(pos + 1, pos, n);
    }
    this.keys[pos] = key;
    this.levels[pos] = level;
    this.n = n + 1;
    const c = price & (CACHE - 1);
    this.cachePrice[c] = price;
    this.cacheLevel[c] = level;
  }

  /** Remove the level at `price` (which must be present). */
  remove(price: number): void {
    this.forget(price);
    const key = price * this.dir;
    const n = this.n;
    if (this.keys[n - 1] === key) {
      this.n = n - 1;
      return;
    }
    const pos = this.lowerBound(key);
    this.keys.copyWithin(pos, pos + 1, n);
    this.levels.copyWithin(pos, pos + 1, n);
    this.n = n - 1;
  }

  /** Remove the best level. */
  removeBest(): void {
    this.n--;
    this.forget((this.keys[this.n] as number) * this.dir);
  }

  /** Level id at position `i` counted from the best (0 = best). */
  levelFromBest(i: number): number {
    return this.levels[this.n - 1 - i] as number;
  }

  /** Drop `price` from the cache (its level is leaving). */
  private forget(price: number): void {
    const c = price & (CACHE - 1);
    if (this.cachePrice[c] === price) this.cachePrice[c] = 0;
  }

  private grow(): void {
    const keys = new Float64Array(this.keys.length * 2);
    keys.set(this.keys);
    this.keys = keys;
    const levels = new Int32Array(this.levels.length * 2);
    levels.set(this.levels);
    this.levels = levels;
  }
}
