/**
 * What this live object wrote or applied lately, keyed by id; once there are more than `max` entries the
 * oldest is forgotten. Only ever a shortcut past SQLite: the database stays the record, so losing the
 * memory (the object is evicted, a transaction rolls back) costs nothing but the shortcut.
 */
export class Recent<V> {
  private readonly entries = new Map<string, V>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Remember `value` as the newest entry. */
  set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    // A Map iterates in insertion order: the first key is the oldest.
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
  }

  clear(): void {
    this.entries.clear();
  }
}
