// The book's outbox delivers at least once: a fill applied once stays applied once however often it comes.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { limit } from "./order-book/test-helpers.ts";
import { Recent } from "./user-session/recent.ts";
import { bookOf, fillsOf, restingSell } from "./user-session/test-helpers.ts";
import type { UserSession } from "./user-session.ts";

const SYMBOL = "EPIC";

describe("UserSession book-event inbox", () => {
  it("applies a fill once, redelivered to the live object or after it forgot what it saw", async () => {
    const seller = crypto.randomUUID();
    const { session } = await restingSell(seller, SYMBOL, { grant: "10", qty: "4", price: "75.00" });
    const fill = fillsOf(
      SYMBOL,
      await bookOf(SYMBOL).submit(limit(crypto.randomUUID(), "taker", "buy", 4, 7_500)),
    );
    expect(fill).toHaveLength(1);

    expect(await session.applyBookEvents(SYMBOL, fill)).toBe(1);
    const once = await session.getAccount(seller);
    expect(await session.applyBookEvents(SYMBOL, fill)).toBe(0);
    expect(await session.applyBookEvents(SYMBOL, [...fill, ...fill])).toBe(0);

    // An evicted object starts with an empty memory: the durable inbox still knows the event.
    await runInDurableObject(session, async (instance: UserSession) => {
      (instance as unknown as { seenBookEvents: Recent<true> }).seenBookEvents.clear();
    });
    expect(await session.applyBookEvents(SYMBOL, fill)).toBe(0);

    const after = await session.getAccount(seller);
    expect(after).toEqual(once);
    expect(once.ok && once.value.cash).toBe("100300");
    const positions = await session.getPositions(seller);
    expect(positions.ok && positions.value.map((p) => [p.symbol, p.qty])).toEqual([[SYMBOL, "6"]]);
  });

  it("forgets the oldest ids first and never more than it must", () => {
    const seen = new Recent<true>(3);
    for (const id of ["a", "b", "c", "d"]) seen.set(id, true);
    expect(["a", "b", "c", "d"].map((id) => seen.has(id))).toEqual([false, true, true, true]);
  });
});
