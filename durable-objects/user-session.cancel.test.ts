// Cancel is a request the book may refuse: the answer must say what happened to the order.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { limit } from "./order-book/test-helpers.ts";
import { bookOf, fillsOf, restingSell } from "./user-session/test-helpers.ts";
import type { UserSession } from "./user-session.ts";

const SYMBOL = "EPIC";
const SELL = { grant: "10", qty: "5", price: "75.00" };

describe("UserSession cancel", () => {
  it("answers order_not_cancelable for an order that has already filled", async () => {
    const seller = crypto.randomUUID();
    const { session, orderId } = await restingSell(seller, SYMBOL, SELL);
    const fill = await bookOf(SYMBOL).submit(limit(crypto.randomUUID(), "taker", "buy", 5, 7_500));
    await session.applyBookEvents(SYMBOL, fillsOf(SYMBOL, fill));

    const answer = await session.cancelOrder(seller, orderId);
    expect(answer).toMatchObject({ ok: false, status: 422, code: "order_not_cancelable" });
  });

  it("refuses the cancel when the fill arrives while the cancel is in flight", async () => {
    const seller = crypto.randomUUID();
    const { session, orderId } = await restingSell(seller, SYMBOL, SELL);
    // The order fills in the book; this object has not heard of it yet.
    const fill = fillsOf(
      SYMBOL,
      await bookOf(SYMBOL).submit(limit(crypto.randomUUID(), "taker", "buy", 5, 7_500)),
    );
    expect(fill).toHaveLength(1);

    const answer = await runInDurableObject(session, async (instance: UserSession) => {
      // The book's outbox delivers the fill while the cancel is on its way: the book then refuses the
      // cancel (the order is gone) and the order here is closed as filled, not canceled.
      const internals = instance as unknown as { book(symbol: string): ReturnType<typeof bookOf> };
      const realBook = internals.book.bind(instance);
      let openWhenSent: boolean | null = null;
      internals.book = (symbol: string) => {
        const book = realBook(symbol);
        return {
          submit: async (command: Parameters<typeof book.submit>[0]) => {
            openWhenSent ??= (await instance.getOrder(seller, orderId)).ok;
            const events = await book.submit(command);
            await instance.applyBookEvents(symbol, fill);
            return events;
          },
        } as unknown as ReturnType<typeof bookOf>;
      };
      const result = await instance.cancelOrder(seller, orderId);
      internals.book = realBook;
      expect(openWhenSent).toBe(true);
      return result;
    });
    expect(answer).toMatchObject({ ok: false, status: 422, code: "order_not_cancelable" });
    const order = await session.getOrder(seller, orderId);
    expect(order.ok && order.value.status).toBe("filled");
  });

  it("cancels an open order", async () => {
    const seller = crypto.randomUUID();
    const { session, orderId } = await restingSell(seller, SYMBOL, SELL);
    const answer = await session.cancelOrder(seller, orderId);
    expect(answer.ok && answer.value.status).toBe("canceled");
  });
});
