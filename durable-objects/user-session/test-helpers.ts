/**
 * Helpers of the UserSession tests (workers pool): stubs, a resting sell, and book fills in the shape the
 * book's outbox delivers them.
 * @internal
 */
import { env } from "cloudflare:workers";
import { type AccountBookEvent, bookEventId } from "../../shared/book-events.ts";
import type { EngineEvent } from "../../shared/engine/types.ts";

export const sessionOf = (userId: string) => env.USER_SESSION.get(env.USER_SESSION.idFromName(userId));
export const bookOf = (symbol: string) => env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol));

/** The fills among a book command's events, as `applyBookEvents` receives them from the book's outbox. */
export const fillsOf = (symbol: string, events: readonly EngineEvent[]): AccountBookEvent[] =>
  events.flatMap((e) =>
    e.type === "fill" ? [{ ...e, eventId: bookEventId(symbol, e.seq), symbol } as AccountBookEvent] : [],
  );

/** Grants `grant` shares at 75.00, then rests a GTC limit sell of `qty` at `price`; returns its order id. */
export async function restingSell(
  seller: string,
  symbol: string,
  order: { grant: string; qty: string; price: string },
) {
  const session = sessionOf(seller);
  const granted = await session.grantShares(seller, symbol, order.grant, "75.00");
  if (!granted.ok) throw new Error(`granting shares failed: ${JSON.stringify(granted)}`);
  const placed = await session.placeOrder(seller, {
    symbol,
    side: "sell",
    type: "limit",
    time_in_force: "gtc",
    qty: order.qty,
    limit_price: order.price,
  });
  if (!placed.ok) throw new Error(`placing the sell failed: ${JSON.stringify(placed)}`);
  return { session, orderId: placed.value.id };
}
