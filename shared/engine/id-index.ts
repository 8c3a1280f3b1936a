/**
 * The hash index of order ids.
 *
 * Why not a `Map<string, number>`: every new order id must be checked against the open and the recently
 * closed ids, so most lookups are misses, and a Map miss compares the probe against the stored id strings
 * of its bucket — which are cold in a large book, costing a cache miss each. Here each id is hashed once
 * (in JS) and the table compares 32-bit hashes in a typed array; strings are compared only when hashes
 * match. Measured on the bench workload this halved the cost of a replace (see docs/engine.md).
 *
 * Hashing is the largest share of that cost (a JS `charCodeAt` loop, two ids per replace), so the engine
 * starts with `hashIdSampled`, which reads at most 16 characters of an id (8 of a UUID), and switches
 * for good to `hashId` (every character) when ids turn out to collide on those characters: the index counts
 * "false matches" (equal hashes, different ids), which well-spread hashes essentially never produce.
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

/**
 * Hash of the characters that tell ids apart in practice: all of an id of up to 16 characters; for longer
 * ids the length and the last 8 characters (32 random bits of a UUID v4; a counter or a ULID's random part
 * sits at the end too). Ids that differ only elsewhere collide, which the indexes notice
 * (`HashStats.falseMatches`); the engine then rehashes everything with `hashId`. Reading 8 characters
 * rather than 16 (it used to read the first 4 and the last 12) halves the cost of hashing, the largest
 * share of a replace that is not a cache miss; 32 random bits are as many as the 32-bit hash can use.
 */
export function hashIdSampled(id: string): number {
  const n = id.length;
  if (n <= 16) return hashId(id);
  let a = 0x9e3779b9 ^ n;
  let b = 0x85ebca6b;
  for (let i = n - 8; i < n; i += 2) {
    a = Math.imul(a ^ id.charCodeAt(i), 0x01000193);
    b = Math.imul(b ^ id.charCodeAt(i + 1), 0x5bd1e995);
  }
  let h = a ^ Math.imul(b, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h === 0 ? 1 : h | 0;
}

/** Shared by an engine's indexes: how often a lookup met an equal hash of a different id. */
export class HashStats {
  falseMatches = 0;
}

const EMPTY = -1;

/** Smallest power of two ≥ 16 that holds `entries` at a load factor ≤ 2/3. */
function newTableSize(entries: number): number {
  let size = 16;
  while (size * 2 < entries * 3) size *= 2;
  return size;
}

/** Ids per chunk of a closed-id generation (a power of two). */
const ID_CHUNK = 256;
const ID_CHUNK_BITS = 8;

/**
 * One generation of recently closed ids, in the order they closed (for snapshots).
 *
 * The ids sit in chunks of `ID_CHUNK`, each a fresh array allocated when the previous one is full. Why:
 * a closed id is a young string (it came with a recent command), and storing a young string into an
 * array that V8 has already promoted to the old generation takes the write barrier's slow path (the slot
 * is recorded in the page's old-to-new remembered set), once per close. A fresh chunk is itself young,
 * so those stores take the fast path; only the chunk list sees a slow store, once per `ID_CHUNK` ids.
 */
export class ClosedIdGeneration {
  readonly statuses: Uint8Array;
  size = 0;
  private chunks: string[][] = [];
  private chunk: string[] = [];

  constructor(capacity: number) {
    this.statuses = new Uint8Array(capacity);
  }

  /** The id of entry `e` (< size). */
  idAt(e: number): string {
    return (this.chunks[e >> ID_CHUNK_BITS] as string[])[e & (ID_CHUNK - 1)] as string;
  }

  /** Append a closed id; returns its entry. */
  push(id: string, status: number): number {
    const e = this.size++;
    if ((e & (ID_CHUNK - 1)) === 0) {
      this.chunk = new Array<string>(ID_CHUNK);
      this.chunks.push(this.chunk);
    }
    this.chunk[e & (ID_CHUNK - 1)] = id;
    this.statuses[e] = status;
    return e;
  }

  /** Forget every id. */
  clear(): void {
    this.chunks = [];
    this.chunk = [];
    this.size = 0;
  }
}

/**
 * Every id the engine knows — open orders and recently closed ones — in one open-addressing table of
 * `[hash, ref]` pairs (linear probing, backward-shift deletion, hash 0 and ref 0 = empty): `ref ≥ 0` is
 * the slot of an open order (its id is `keys[slot]`), `ref < 0` a closed id, `~(2 × entry + generation)`
 * (so the sign bit and the lowest bit tell a generation's entries apart).
 *
 * One table for both is what makes the common commands cheap in memory traffic: a replace finds the old
 * id, turns that same entry into a closed one (no delete, no insert elsewhere), and checks the new id
 * against open and closed ids with one probe, usually in one cache line, which the insert of the new id
 * then reuses.
 *
 * Closed ids are remembered in two generations of `closedCapacity` each; when the current one is full,
 * the previous one is forgotten as a whole (its entries leave the table in one pass) and becomes the new
 * current one. `closedCapacity` 0 remembers nothing: closing an open id deletes it.
 */
export class IdIndex {
  readonly closedCapacity: number;
  private keys: string[];
  private readonly stats: HashStats;
  private table: Int32Array;
  private mask: number;
  /** Entries in the table, open and closed. */
  private count = 0;
  private readonly generations: readonly [ClosedIdGeneration, ClosedIdGeneration];
  /** Which generation fills up (0 or 1). */
  private cur = 0;

  /** `keys[slot]` is the id of the open order in `slot`; `openCapacity` only sizes the table. */
  constructor(keys: string[], openCapacity: number, closedCapacity: number, stats = new HashStats()) {
    this.keys = keys;
    this.stats = stats;
    this.closedCapacity = closedCapacity;
    const size = newTableSize(openCapacity + 2 * closedCapacity);
    this.table = new Int32Array(size * 2);
    this.mask = size - 1;
    this.generations = [new ClosedIdGeneration(closedCapacity), new ClosedIdGeneration(closedCapacity)];
  }

  /** The engine replaced its slot → id array by a copy (see `MatchingEngine.renewSlotStrings`). */
  setKeys(keys: string[]): void {
    this.keys = keys;
  }

  /** Entries in the table: open ids plus remembered closed ids. */
  get size(): number {
    return this.count;
  }

  /** The generation that fills up. */
  get current(): ClosedIdGeneration {
    return this.generations[this.cur] as ClosedIdGeneration;
  }
  /** The older generation. */
  get previous(): ClosedIdGeneration {
    return this.generations[1 - this.cur] as ClosedIdGeneration;
  }

  /** Slot of the open order `id` (hash `h`), or -1 (closed or unknown). */
  findOpen(id: string, h: number): number {
    const table = this.table;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const hi = table[2 * i] as number;
      if (hi === 0) return EMPTY;
      if (hi === h) {
        const ref = table[2 * i + 1] as number;
        if (ref >= 0) {
          if (this.keys[ref] === id) return ref;
        } else if (this.closedId(ref) === id) {
          return EMPTY;
        }
        this.stats.falseMatches++;
      }
      i = (i + 1) & mask;
    }
  }

  /** Is `id` (hash `h`) open or remembered as closed? */
  isKnown(id: string, h: number): boolean {
    return this.refOf(id, h) !== null;
  }

  /** Status byte of the remembered closed id `id` (hash `h`), or -1. */
  closedStatus(id: string, h: number): number {
    const ref = this.refOf(id, h);
    if (ref === null || ref >= 0) return -1;
    const code = ~ref;
    return (this.generations[code & 1] as ClosedIdGeneration).statuses[code >> 1] as number;
  }

  /** Add the open order in `slot` (hash `h`); its id must not be in the table. */
  insertOpen(slot: number, h: number): void {
    this.insert(h, slot);
  }

  /** Remove the open order in `slot` (hash `h`), which must be in the table, without remembering it. */
  removeOpen(slot: number, h: number): void {
    this.deleteAt(this.positionOf(slot, h));
    this.count--;
  }

  /**
   * The open order in `slot` (hash `h`, id `id`) closed with `status`: its entry becomes a closed one (or
   * goes, when nothing is remembered).
   */
  closeOpen(slot: number, h: number, id: string, status: number): void {
    if (this.closedCapacity === 0) {
      this.removeOpen(slot, h);
      return;
    }
    const ref = this.remember(id, status, this.cur);
    this.table[2 * this.positionOf(slot, h) + 1] = ref;
  }

  /**
   * Remember a closed id that is not in the table (an order that never rested, or a triggered stop).
   * `generation`: restore a snapshot into that generation (0 = previous, 1 = current) without rolling over.
   */
  addClosed(id: string, h: number, status: number, generation?: 0 | 1): void {
    if (this.closedCapacity === 0) return;
    const g = generation === undefined ? this.cur : generation === 1 ? this.cur : 1 - this.cur;
    this.insert(h, this.remember(id, status, g));
  }

  /** Index every id again with `hash`. */
  rehash(hash: (id: string) => number): void {
    const old = this.table;
    this.table = new Int32Array(old.length);
    this.count = 0;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] === 0) continue;
      const ref = old[i + 1] as number;
      this.insert(hash(ref >= 0 ? (this.keys[ref] as string) : this.closedId(ref)), ref);
    }
  }

  private closedId(ref: number): string {
    const code = ~ref;
    return (this.generations[code & 1] as ClosedIdGeneration).idAt(code >> 1);
  }

  /** The ref of `id`'s entry, or null. */
  private refOf(id: string, h: number): number | null {
    const table = this.table;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const hi = table[2 * i] as number;
      if (hi === 0) return null;
      if (hi === h) {
        const ref = table[2 * i + 1] as number;
        if ((ref >= 0 ? this.keys[ref] : this.closedId(ref)) === id) return ref;
        this.stats.falseMatches++;
      }
      i = (i + 1) & mask;
    }
  }

  /** Append to generation `g` (rolling over first if it is the full current one); returns the ref. */
  private remember(id: string, status: number, g: number): number {
    let gen = this.generations[g] as ClosedIdGeneration;
    if (g === this.cur && gen.size === this.closedCapacity) {
      this.forget(1 - g);
      this.cur = 1 - g;
      g = this.cur;
      gen = this.generations[g] as ClosedIdGeneration;
    }
    return ~(2 * gen.push(id, status) + g);
  }

  /**
   * Forget generation `g`: its entries leave the table in one pass over it. Starting after an empty
   * position (so no probe run wraps past the start), each run is walked once: entries of `g` are
   * cleared, and once a run has a hole, every later entry of the run is placed again from its home
   * position, which fills holes the way deleting one by one with backward shifts would, without
   * rescanning the run for each deletion.
   */
  private forget(g: number): void {
    const table = this.table;
    const mask = this.mask;
    // Sign bit and lowest bit of a closed ref of generation g (`~(2e + g)` has lowest bit 1 - g).
    const doomed = -2_147_483_648 | (1 - g);
    let start = 0;
    while (table[2 * start] !== 0) start++;
    let holes = false;
    for (let k = 1; k <= mask; k++) {
      const i = (start + k) & mask;
      const h = table[2 * i] as number;
      if (h === 0) {
        holes = false;
        continue;
      }
      const ref = table[2 * i + 1] as number;
      if ((ref & -2_147_483_647) === doomed) {
        table[2 * i] = 0;
        table[2 * i + 1] = 0;
        this.count--;
        holes = true;
      } else if (holes) {
        table[2 * i] = 0;
        table[2 * i + 1] = 0;
        place(table, mask, h, ref);
      }
    }
    (this.generations[g] as ClosedIdGeneration).clear();
  }

  /** Table position of the entry of open `slot` (hash `h`). */
  private positionOf(slot: number, h: number): number {
    const table = this.table;
    const mask = this.mask;
    let i = h & mask;
    while (table[2 * i] !== h || table[2 * i + 1] !== slot) i = (i + 1) & mask;
    return i;
  }

  private insert(h: number, ref: number): void {
    if ((this.count + 1) * 3 > (this.mask + 1) * 2) this.grow();
    place(this.table, this.mask, h, ref);
    this.count++;
  }

  /** Empty position `i`, pulling later entries of its probe run back (backward-shift deletion). */
  private deleteAt(i: number): void {
    const table = this.table;
    const mask = this.mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const hj = table[2 * j] as number;
      if (hj === 0) break;
      // Pull the entry at j back into the hole unless its home position lies cyclically in (hole, j].
      const home = hj & mask;
      const inRange = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!inRange) {
        table[2 * i] = hj;
        table[2 * i + 1] = table[2 * j + 1] as number;
        i = j;
      }
    }
    table[2 * i] = 0;
    table[2 * i + 1] = 0;
  }

  private grow(): void {
    const old = this.table;
    const size = (this.mask + 1) * 2;
    this.table = new Int32Array(size * 2);
    this.mask = size - 1;
    for (let i = 0; i < old.length; i += 2) {
      const h = old[i] as number;
      if (h !== 0) place(this.table, this.mask, h, old[i + 1] as number);
    }
  }
}

function place(table: Int32Array, mask: number, h: number, ref: number): void {
  let i = h & mask;
  while (table[2 * i] !== 0) i = (i + 1) & mask;
  table[2 * i] = h;
  table[2 * i + 1] = ref;
}
