/**
 * Hash indexes for order ids.
 *
 * Why not a `Map<string, number>`: every new order id must be checked against the open and the recently
 * closed ids, so most lookups are misses, and a Map miss compares the probe against the stored id strings
 * of its bucket — which are cold in a large book, costing a cache miss each. Here each id is hashed once
 * (in JS) and tables compare 32-bit hashes in typed arrays; strings are compared only when hashes match.
 * Measured on the bench workload this halved the cost of a replace (see docs/engine.md).
 *
 * The hash only affects speed, never results, so the engine stays deterministic.
 * @internal
 */

/** Non-zero 32-bit hash of a string: two interleaved multiply–xorshift lanes over UTF-16 code units. */
export function hashId(id: string): number {
  const n = id.length;
  let a = 0x9e3779b9 ^ n;
  let b = 0x85ebca6b;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    a = Math.imul(a ^ id.charCodeAt(i), 0x01000193);
    b = Math.imul(b ^ id.charCodeAt(i + 1), 0x5bd1e995);
  }
  if (i < n) a = Math.imul(a ^ id.charCodeAt(i), 0x01000193);
  let h = a ^ Math.imul(b, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  // 0 marks an empty table entry, so a hash is never 0.
  return h === 0 ? 1 : h | 0;
}

const EMPTY = -1;

/**
 * Table layout shared by both indexes: `hashes[i]` is 0 for an empty entry, else the key's hash, and
 * `values[i]` says where the key is. A miss — the common case when checking that a new id is free —
 * reads only the hash array.
 */
function newTableSize(capacity: number): number {
  let size = 16;
  while (size < capacity * 2) size *= 2;
  return size;
}

/**
 * Open orders: id → slot, linear probing with backward-shift deletion. Keys are not stored here but read
 * from the engine's `keys` array (`keys[slot]` is the order's id) when hashes match.
 */
export class OpenIdIndex {
  private readonly keys: string[];
  private mask: number;
  private hashes: Int32Array;
  private values: Int32Array;
  size = 0;

  constructor(keys: string[], capacity = 1024) {
    const size = newTableSize(capacity);
    this.keys = keys;
    this.mask = size - 1;
    this.hashes = new Int32Array(size);
    this.values = new Int32Array(size);
  }

  /** Slot of `id` (whose hash is `h`), or -1. */
  find(id: string, h: number): number {
    const mask = this.mask;
    const hashes = this.hashes;
    let i = h & mask;
    for (;;) {
      const hi = hashes[i] as number;
      if (hi === 0) return EMPTY;
      if (hi === h) {
        const s = this.values[i] as number;
        if (this.keys[s] === id) return s;
      }
      i = (i + 1) & mask;
    }
  }

  /** Add `slot` (whose id is `keys[slot]`, hash `h`); the id must not be present. */
  insert(slot: number, h: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    place(this.hashes, this.values, this.mask, slot, h);
    this.size++;
  }

  /** Remove the entry of `slot` (hash `h`), which must be present. */
  remove(slot: number, h: number): void {
    const mask = this.mask;
    const hashes = this.hashes;
    const values = this.values;
    let i = h & mask;
    while (hashes[i] !== h || values[i] !== slot) i = (i + 1) & mask;
    // Backward shift: pull later entries of the probe run into the hole unless their home position lies
    // cyclically in (hole, j].
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const hj = hashes[j] as number;
      if (hj === 0) break;
      const home = hj & mask;
      const inRange = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!inRange) {
        hashes[i] = hj;
        values[i] = values[j] as number;
        i = j;
      }
    }
    hashes[i] = 0;
    this.size--;
  }

  private grow(): void {
    const oldHashes = this.hashes;
    const oldValues = this.values;
    const size = (this.mask + 1) * 2;
    this.mask = size - 1;
    this.hashes = new Int32Array(size);
    this.values = new Int32Array(size);
    for (let k = 0; k < oldHashes.length; k++) {
      const h = oldHashes[k] as number;
      if (h !== 0) place(this.hashes, this.values, this.mask, oldValues[k] as number, h);
    }
  }
}

function place(hashes: Int32Array, values: Int32Array, mask: number, value: number, h: number): void {
  let i = h & mask;
  while (hashes[i] !== 0) i = (i + 1) & mask;
  hashes[i] = h;
  values[i] = value;
}

/**
 * One generation of recently closed ids (insert-only, cleared as a whole), with a status byte per id and
 * insertion order kept for snapshots.
 */
export class ClosedIdSet {
  readonly capacity: number;
  readonly ids: string[];
  readonly statuses: Uint8Array;
  private readonly hashes: Int32Array;
  private readonly values: Int32Array;
  private readonly mask: number;
  size = 0;

  constructor(capacity: number) {
    const size = newTableSize(capacity);
    this.capacity = capacity;
    this.ids = new Array<string>(capacity).fill("");
    this.statuses = new Uint8Array(capacity);
    this.hashes = new Int32Array(size);
    this.values = new Int32Array(size);
    this.mask = size - 1;
  }

  /** Index of `id` (hash `h`) in insertion order, or -1. */
  find(id: string, h: number): number {
    const mask = this.mask;
    const hashes = this.hashes;
    let i = h & mask;
    for (;;) {
      const hi = hashes[i] as number;
      if (hi === 0) return EMPTY;
      if (hi === h) {
        const e = this.values[i] as number;
        if (this.ids[e] === id) return e;
      }
      i = (i + 1) & mask;
    }
  }

  /** Add an id that is not present; the set must not be full. */
  add(id: string, h: number, status: number): void {
    const e = this.size++;
    this.ids[e] = id;
    this.statuses[e] = status;
    place(this.hashes, this.values, this.mask, e, h);
  }

  clear(): void {
    this.hashes.fill(0);
    this.ids.fill("", 0, this.size);
    this.size = 0;
  }
}
