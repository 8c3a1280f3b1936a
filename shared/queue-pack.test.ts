import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isEventPack, PACK_MAX_BYTES, PACK_MAX_EVENTS, packBodies, unpack } from "./queue-pack.ts";

describe("queue packs", () => {
  it("keep every body once, in order, within the count and byte limits", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.string(), pad: fc.string({ maxLength: 3000 }) }), { maxLength: 400 }),
        (bodies) => {
          const packs = packBodies(bodies);
          expect(packs.flatMap((p) => unpack(p))).toEqual(bodies);
          for (const p of packs) {
            expect(isEventPack(p)).toBe(true);
            expect(p.bodies.length).toBeGreaterThan(0);
            expect(p.bodies.length).toBeLessThanOrEqual(PACK_MAX_EVENTS);
            if (p.bodies.length > 1)
              expect(JSON.stringify(p).length).toBeLessThanOrEqual(PACK_MAX_BYTES + 32);
          }
        },
      ),
    );
  });

  it("read a plain message as one body and only a well-formed envelope as a pack", () => {
    expect(unpack({ id: "ACME:1" })).toEqual([{ id: "ACME:1" }]);
    expect(unpack("text")).toEqual(["text"]);
    expect(isEventPack({ pack: 1, bodies: "x" })).toBe(false);
    expect(isEventPack({ pack: 2, bodies: [] })).toBe(false);
    expect(unpack({ pack: 1, bodies: [1, 2] })).toEqual([1, 2]);
  });
});
