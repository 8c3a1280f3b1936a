// submitOrders: many orders of one symbol in one call answer exactly as the same orders sent one by one.
import { describe, expect, it } from "vitest";
import { bookOf, sessionOf } from "./user-session/test-helpers.ts";

const SYMBOL = "EPIC";
const buy = (qty: string, price: string) =>
  ({
    kind: "place",
    req: { symbol: SYMBOL, side: "buy", type: "limit", time_in_force: "gtc", qty, limit_price: price },
  }) as const;

describe("UserSession.submitOrders", () => {
  it("answers each item in order, as alone: placed, replaced, refused by the account, refused by the book", async () => {
    const userId = crypto.randomUUID();
    const session = sessionOf(userId);
    const first = await session.placeOrder(userId, buy("10", "70.00").req);
    expect(first.ok).toBe(true);
    const firstId = first.ok ? first.value.id : "";

    const outcomes = await session.submitOrders(userId, SYMBOL, [
      buy("5", "70.01"),
      { kind: "replace", orderId: firstId, req: { qty: "8", limit_price: "70.02" } },
      buy("0", "70.00"),
      buy("1000000", "70.00"),
      buy("1", "1.00"),
      { kind: "replace", orderId: "no-such-order", req: { qty: "1", limit_price: "70.00" } },
    ]);
    expect(outcomes.map((o) => (o.ok ? o.value.status : `${o.status} ${o.code}`))).toEqual([
      "new",
      "new",
      expect.stringMatching(/^422 /),
      "403 insufficient_buying_power",
      "422 price_out_of_band",
      "404 order_not_found",
    ]);
    const replacement = outcomes[1];
    expect(replacement?.ok && replacement.value).toMatchObject({ qty: "8", limit_price: "70.02" });
    expect(await session.getOrder(userId, firstId)).toMatchObject({ value: { status: "replaced" } });

    // Exactly the two open orders hold buying power: 5 × 70.01 + 8 × 70.02.
    const account = await session.getAccount(userId);
    const open = await session.getOrders(userId, { status: "open", limit: 50, direction: "asc" });
    const openTerms = open.ok ? open.value.map((o) => [o.qty, o.limit_price]) : [];
    expect(openTerms.sort()).toEqual([
      ["5", "70.01"],
      ["8", "70.02"],
    ]);
    expect(account.ok && account.value.buying_power).toBe("99089.79");

    // The book holds them too, and a retry of a placement by client order id finds it instead of placing.
    const snapshot = await bookOf(SYMBOL).snapshot(50);
    expect(snapshot.bids).toEqual(
      expect.arrayContaining([
        ["70.02", "8"],
        ["70.01", "5"],
      ]),
    );
    const placedFive = open.ok ? open.value.find((o) => o.qty === "5") : undefined;
    expect(placedFive).toBeDefined();
    const retried = await session.submitOrders(userId, SYMBOL, [
      {
        kind: "place",
        req: { ...buy("5", "70.01").req, client_order_id: placedFive?.client_order_id ?? "" },
      },
    ]);
    expect(retried[0]?.ok && retried[0].value.id).toBe(placedFive?.id);
  });

  it("refuses an item of another symbol without touching the rest", async () => {
    const userId = crypto.randomUUID();
    const outcomes = await sessionOf(userId).submitOrders(userId, SYMBOL, [
      { kind: "place", req: { ...buy("1", "70.00").req, symbol: "ACME" } },
      buy("1", "70.00"),
    ]);
    expect(outcomes.map((o) => (o.ok ? o.value.status : o.code))).toEqual(["symbol_mismatch", "new"]);
  });
});
