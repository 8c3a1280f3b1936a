import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClosedIdSet, hashId, OpenIdIndex } from "./id-index.ts";

describe("hashId", () => {
  it("is deterministic, never 0, and spreads similar ids", () => {
    expect(hashId("order-1")).toBe(hashId("order-1"));
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const h = hashId(`00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`);
      expect(h).not.toBe(0);
      seen.add(h);
    }
    expect(seen.size).toBeGreaterThan(9_990);
  });
});

describe("OpenIdIndex", () => {
  it("agrees with a Map under random inserts and removes, even when every hash collides", () => {
    const op = fc.record({ insert: fc.boolean(), key: fc.nat(60), pick: fc.nat(1_000) });
    fc.assert(
      fc.property(fc.boolean(), fc.array(op, { maxLength: 400 }), (collide, ops) => {
        // Forced collisions: only 3 distinct hashes, so long probe runs wrap around and shift back.
        const h = (id: string) => (collide ? 1 + (hashId(id) & 2) : hashId(id));
        const keys: string[] = [];
        const index = new OpenIdIndex(keys, 4);
        const model = new Map<string, number>();
        for (const { insert, key, pick } of ops) {
          const id = `id-${key}`;
          if (insert && !model.has(id)) {
            const slot = keys.length;
            keys.push(id);
            index.insert(slot, h(id));
            model.set(id, slot);
          } else if (!insert && model.size > 0) {
            const victim = [...model.keys()][pick % model.size] as string;
            index.remove(model.get(victim) as number, h(victim));
            model.delete(victim);
          }
          expect(index.size).toBe(model.size);
        }
        for (let key = 0; key <= 60; key++) {
          const id = `id-${key}`;
          expect(index.find(id, h(id))).toBe(model.get(id) ?? -1);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("ClosedIdSet", () => {
  it("finds what was added, in insertion order, and nothing after clear", () => {
    const set = new ClosedIdSet(100);
    for (let i = 0; i < 100; i++) set.add(`c${i}`, hashId(`c${i}`), i % 4);
    expect(set.find("c42", hashId("c42"))).toBe(42);
    expect(set.statuses[42]).toBe(2);
    expect(set.find("c100", hashId("c100"))).toBe(-1);
    set.clear();
    expect(set.size).toBe(0);
    expect(set.find("c42", hashId("c42"))).toBe(-1);
  });
});
