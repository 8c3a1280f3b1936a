// The book's outbox delivers at least once: a fill applied once stays applied once however often it comes.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { packEvents } from "../shared/engine/wire.ts";
import { limit } from "./order-book/test-helpers.ts";
import { Recent } from "./user-session/recent.ts";
import { bookOf, fillsOf, restingSell } from "./user-session/test-helpers.ts";
import { BOOK_EVENT_RETENTION_MS, type UserSession } from "./user-session.ts";

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

    // Packed, as books send them; then as objects, and twice in one call.
    expect(await session.applyBookEvents(SYMBOL, packEvents([fill]))).toBe(1);
    const once = await session.getAccount(seller);
    expect(await session.applyBookEvents(SYMBOL, fill)).toBe(0);
    expect(await session.applyBookEvents(SYMBOL, packEvents([fill, fill]))).toBe(0);
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

  it("keeps event ids, not copies of the events, and forgets ids past the retention from its alarm", async () => {
    const seller = crypto.randomUUID();
    const { session } = await restingSell(seller, SYMBOL, { grant: "10", qty: "4", price: "75.00" });
    const fill = fillsOf(
      SYMBOL,
      await bookOf(SYMBOL).submit(limit(crypto.randomUUID(), "taker", "buy", 4, 7_500)),
    );
    expect(await session.applyBookEvents(SYMBOL, fill)).toBe(1);
    const now = Date.now();
    // Ids that arrived before them (rows go in arrival order): 2,500 over a week ago, more than one pruning
    // statement takes, then one just inside the horizon.
    await runInDurableObject(session, (_instance, state) => {
      const sql = state.storage.sql;
      const insert = (rowid: number, id: string, receivedAt: number) =>
        sql.exec(
          "INSERT INTO book_events (rowid, event_id, symbol, seq, type, body, received_at) VALUES (?, ?, 'OLD', 1, 'fill', '', ?)",
          rowid,
          id,
          receivedAt,
        );
      for (let i = 0; i < 2_500; i++) insert(i - 3_000, `OLD:${i}`, now - BOOK_EVENT_RETENTION_MS - 60_000);
      insert(-1, "OLD:kept", now - BOOK_EVENT_RETENTION_MS + 60_000);
    });
    const before = await session.bookEvents();
    // The old ids, then the resting order's own events (from the book's answer) and the fill.
    const fresh = before.filter((e) => e.symbol === SYMBOL);
    expect(fresh.map((e) => e.type)).toEqual(["accepted", "fill"]);
    expect(fresh[1]).toMatchObject({ eventId: fill[0]?.eventId, seq: fill[0]?.seq });
    expect(before).toHaveLength(fresh.length + 2_501);
    const bodies = await runInDurableObject(session, (_instance, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM book_events WHERE body <> ''").one(),
    );
    expect(bodies.n).toBe(0);

    await runInDurableObject(session, (instance: UserSession) => instance.alarm());
    expect((await session.bookEvents()).map((e) => e.eventId)).toEqual([
      "OLD:kept",
      ...fresh.map((e) => e.eventId),
    ]);
    // The fill is still known: a redelivery does nothing.
    expect(await session.applyBookEvents(SYMBOL, fill)).toBe(0);
  });

  it("forgets the oldest ids first and never more than it must", () => {
    const seen = new Recent<true>(3);
    for (const id of ["a", "b", "c", "d"]) seen.set(id, true);
    expect(["a", "b", "c", "d"].map((id) => seen.has(id))).toEqual([false, true, true, true]);
  });
});
