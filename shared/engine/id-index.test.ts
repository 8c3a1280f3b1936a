import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ClosedIdGeneration, hashId, hashIdSampled, IdIndex } from "./id-index.ts";

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

describe("hashIdSampled", () => {
  it("hashes short ids like hashId and spreads UUIDs that share their middle", () => {
    expect(hashIdSampled("order-1")).toBe(hashId("order-1"));
    expect(hashIdSampled("0123456789abcdef")).toBe(hashId("0123456789abcdef"));
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const h = hashIdSampled(`00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`);
      expect(h).not.toBe(0);
      seen.add(h);
    }
    expect(seen.size).toBeGreaterThan(9_990);
  });

  it("reads only the length and the last 8 characters of a long id", () => {
    expect(hashIdSampled("abcd-MIDDLE-ONE-0123456789ab")).toBe(hashIdSampled("wxyz-middle-two-0123456789ab"));
    expect(hashIdSampled("abcd-middle-0123456789ab")).not.toBe(hashIdSampled("abcd-middle-0123456789ac"));
    expect(hashIdSampled("abcd-middle-0123456789ab")).not.toBe(hashIdSampled("abcd-middle-00123456789ab"));
  });
});

describe("IdIndex", () => {
  type Op =
    | { k: "open"; key: number }
    | { k: "close"; pick: number; status: number }
    | { k: "remove"; pick: number }
    | { k: "closed"; key: number; status: number }
    | { k: "rehash" };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ k: fc.constant("open" as const), key: fc.nat(40) }) },
    {
      weight: 3,
      arbitrary: fc.record({ k: fc.constant("close" as const), pick: fc.nat(1_000), status: fc.nat(3) }),
    },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("remove" as const), pick: fc.nat(1_000) }) },
    {
      weight: 1,
      arbitrary: fc.record({ k: fc.constant("closed" as const), key: fc.nat(40), status: fc.nat(3) }),
    },
    { weight: 1, arbitrary: fc.constant({ k: "rehash" as const }) },
  );

  it("forgets a whole generation even when its ids sit next to each other in one probe run", () => {
    const index = new IdIndex([], 2, 2);
    for (const id of ["a", "b", "c", "d", "e"]) index.addClosed(id, 2, 1);
    expect(index.size).toBe(3);
    expect(["a", "b", "c", "d", "e"].map((id) => index.closedStatus(id, 2))).toEqual([-1, -1, 1, 1, 1]);
  });

  it("agrees with a model of open ids and two generations of closed ids, even when hashes collide", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.nat(6), fc.array(opArb, { maxLength: 300 }), (collide, cap, ops) => {
        // Forced collisions: 3 distinct hashes, two of them homed at the end of the table, so probe runs
        // wrap around and deletions shift entries back across the end. Unforced, the padded ids collide
        // on the sampled hash until a rehash switches to the full one.
        let full = false;
        const h = (id: string) => {
          const v = full ? hashId(id) : hashIdSampled(`${id}-padding-to-sample`);
          return collide ? ([-1, -3, 2][(v >>> 0) % 3] as number) : v;
        };
        const keys: string[] = [];
        const index = new IdIndex(keys, 2, cap);
        const open = new Map<string, number>();
        let previous: [string, number][] = [];
        let current: [string, number][] = [];
        const remember = (id: string, status: number) => {
          if (cap === 0) return;
          if (current.length === cap) {
            previous = current;
            current = [];
          }
          current.push([id, status]);
        };
        const closedStatus = (id: string) =>
          [...previous, ...current].find(([closedId]) => closedId === id)?.[1] ?? -1;
        const known = (id: string) => open.has(id) || closedStatus(id) !== -1;
        for (const op of ops) {
          if (op.k === "open" || op.k === "closed") {
            const id = `id-${op.key}`;
            if (known(id)) continue;
            if (op.k === "open") {
              const slot = keys.length;
              keys.push(id);
              index.insertOpen(slot, h(id));
              open.set(id, slot);
            } else {
              index.addClosed(id, h(id), op.status);
              remember(id, op.status);
            }
          } else if (op.k === "rehash") {
            full = true;
            index.rehash(h);
          } else if (open.size > 0) {
            const id = [...open.keys()][op.pick % open.size] as string;
            const slot = open.get(id) as number;
            if (op.k === "close") {
              index.closeOpen(slot, h(id), id, op.status);
              remember(id, op.status);
            } else {
              index.removeOpen(slot, h(id));
            }
            open.delete(id);
            keys[slot] = "";
          }
        }
        for (let key = 0; key <= 40; key++) {
          const id = `id-${key}`;
          expect(index.findOpen(id, h(id))).toBe(open.get(id) ?? -1);
          expect(index.closedStatus(id, h(id))).toBe(closedStatus(id));
          expect(index.isKnown(id, h(id))).toBe(known(id));
        }
        const list = (g: ClosedIdGeneration) =>
          Array.from({ length: g.size }, (_, i) => [g.idAt(i), g.statuses[i]]);
        expect(index.size).toBe(open.size + (cap > 0 ? previous.length + current.length : 0));
        if (cap > 0) {
          expect(list(index.previous)).toEqual(previous);
          expect(list(index.current)).toEqual(current);
        }
      }),
      { numRuns: 500 },
    );
  });
});
