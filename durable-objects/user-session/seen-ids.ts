/**
 * Ids this live object applied lately, oldest forgotten first. The book's outbox repeats every event its
 * reply already carried (at-least-once delivery), so most deliveries to an active account are repeats:
 * this skips them without a SQLite transaction. The durable dedupe stays the `book_events` table; the
 * memory is only a shortcut, and losing it when the object is evicted costs nothing but that shortcut.
 */
export class SeenIds {
  private readonly ids = new Set<string>();
  private readonly max: number;

  constructor(max = 4_096) {
    this.max = max;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Remember ids once the transaction that applied them has committed. */
  addAll(ids: readonly string[]): void {
    for (const id of ids) {
      this.ids.add(id);
      // A Set iterates in insertion order: the first id is the oldest.
      if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value as string);
    }
  }
}
