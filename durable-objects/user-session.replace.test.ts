// Replacing an order's price hands its reservation over: a sell of a whole position, or a buy using most
// of the buying power, can move its price.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Account } from "../shared/account/index.ts";
import { checkInvariants } from "../shared/account/invariants.ts";
import { limit } from "./order-book/test-helpers.ts";
import { bookOf, fillsOf, restingSell, sessionOf } from "./user-session/test-helpers.ts";
import type { UserSession } from "./user-session.ts";

const SYMBOL = "EPIC";

async function expectConsistent(session: ReturnType<typeof sessionOf>) {
  const problems = await runInDurableObject(session, (instance: UserSession) => {
    const account = (instance as unknown as { account: Account }).account;
    const result = checkInvariants(account);
    return result.ok ? [] : result.problems;
  });
  expect(problems).toEqual([]);
}

describe("UserSession replace", () => {
  it("moves the price of a sell of the whole position, and the new order fills", async () => {
    const seller = crypto.randomUUID();
    const { session, orderId: placedId } = await restingSell(seller, SYMBOL, {
      grant: "10",
      qty: "10",
      price: "80.00",
    });

    const replaced = await session.replaceOrder(seller, placedId, { limit_price: "79.00" });
    if (!replaced.ok) throw new Error(JSON.stringify(replaced));
    expect(replaced.value).toMatchObject({ qty: "10", limit_price: "79.00", replaces: placedId });
    const old = await session.getOrder(seller, placedId);
    expect(old.ok && old.value.status).toBe("replaced");
    // Still held for the new order: nothing left to sell.
    const position = await session.getPosition(seller, SYMBOL);
    expect(position.ok && position.value.qty_available).toBe("0");
    await expectConsistent(session);

    const taken = await bookOf(SYMBOL).submit(limit(crypto.randomUUID(), "taker", "buy", 10, 7_900));
    await session.applyBookEvents(SYMBOL, fillsOf(SYMBOL, taken));
    const after = await session.getOrder(seller, replaced.value.id);
    expect(after.ok && after.value.status).toBe("filled");
    expect((await session.getPosition(seller, SYMBOL)).ok).toBe(false);
    await expectConsistent(session);
  });

  it("hands over only what is left when the old order fills while the replace is in flight", async () => {
    const seller = crypto.randomUUID();
    const { session, orderId: placedId } = await restingSell(seller, SYMBOL, {
      grant: "10",
      qty: "10",
      price: "81.00",
    });
    // 4 fill in the book; this account has not heard of it when it sends the replace.
    const taken = await bookOf(SYMBOL).submit(limit(crypto.randomUUID(), "taker", "buy", 4, 8_100));
    const replaced = await session.replaceOrder(seller, placedId, { limit_price: "80.50" });
    if (!replaced.ok) throw new Error(JSON.stringify(replaced));
    expect(replaced.value.qty).toBe("6");
    await expectConsistent(session);
    // The fill arrives afterwards, through the book's outbox.
    await session.applyBookEvents(SYMBOL, fillsOf(SYMBOL, taken));
    const old = await session.getOrder(seller, placedId);
    expect(old.ok && old.value.filled_qty).toBe("4");
    const position = await session.getPosition(seller, SYMBOL);
    expect(position.ok && [position.value.qty, position.value.qty_available]).toEqual(["6", "0"]);
    await expectConsistent(session);
  });

  it("lets a buy move its price when the new order alone fits the buying power, and refuses when it does not", async () => {
    const buyer = crypto.randomUUID();
    const session = sessionOf(buyer);
    const placed = await session.placeOrder(buyer, {
      symbol: SYMBOL,
      side: "buy",
      type: "limit",
      time_in_force: "day",
      qty: "1250",
      limit_price: "70.00",
    });
    if (!placed.ok) throw new Error(JSON.stringify(placed));
    // 1,250 × 74.00 fits 100,000 alone, not next to the 87,500 the old order holds.
    const moved = await session.replaceOrder(buyer, placed.value.id, { limit_price: "74.00" });
    if (!moved.ok) throw new Error(JSON.stringify(moved));
    await expectConsistent(session);
    const account = await session.getAccount(buyer);
    expect(account.ok && account.value.buying_power).toBe("7500");

    // 1,250 × 80.50 = 100,625: more than the account has, with or without the old reservation.
    const tooMuch = await session.replaceOrder(buyer, moved.value.id, { limit_price: "80.50" });
    expect(tooMuch).toMatchObject({ ok: false, status: 403, code: "insufficient_buying_power" });
    const still = await session.getOrder(buyer, moved.value.id);
    expect(still.ok && still.value.status).not.toBe("replaced");
    await expectConsistent(session);
  });

  it("keeps the old order and its reservation when the book refuses the replace", async () => {
    const seller = crypto.randomUUID();
    const { session, orderId: placedId } = await restingSell(seller, SYMBOL, {
      grant: "5",
      qty: "5",
      price: "80.00",
    });
    // Outside the symbol's price band (±10 % of 75.00): the book rejects the replace.
    const refused = await session.replaceOrder(seller, placedId, { limit_price: "90.00" });
    expect(refused).toMatchObject({ ok: false, status: 422 });
    const old = await session.getOrder(seller, placedId);
    expect(old.ok && old.value.status).toBe("new");
    const position = await session.getPosition(seller, SYMBOL);
    expect(position.ok && position.value.qty_available).toBe("0");
    await expectConsistent(session);
  });
});
