/**
 * Helpers for the OrderBook tests (workers pool).
 * @internal
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { type AccountBookEvent, bookEventId, type TradeEventMessage } from "../../shared/book-events.ts";
import { findSymbol, type SymbolSpec } from "../../shared/symbols.ts";
import type { OrderBook } from "../order-book.ts";
import type { OutboxTransport } from "./outbox.ts";

/** A fresh, listed book with ACME's rules under a unique name. */
export async function freshBook(overrides: Partial<SymbolSpec> = {}) {
  const symbol = `T${crypto.randomUUID().slice(0, 8).toUpperCase()}`;
  const acme = findSymbol("ACME") as SymbolSpec;
  const stub = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol));
  await stub.configure({ ...acme, ...overrides, symbol, name: `test book ${symbol}` });
  return { symbol, stub };
}

/**
 * An idempotent receiver standing in for UserSessions and the queue consumer: it records every delivery
 * (to count redeliveries) and applies each event id once per account (the effect).
 */
export class Receiver {
  /** Every `deliverToSession` call that reached the receiver, in order, its events stamped with their ids. */
  deliveries: { account: string; events: AccountBookEvent[] }[] = [];
  /** Every `publish` call that reached the receiver. */
  published: TradeEventMessage[][] = [];
  private readonly inboxes = new Map<string, Map<string, AccountBookEvent>>();

  /** The events applied for `account`, once each, in first-delivery order. */
  applied(account: string): AccountBookEvent[] {
    return [...(this.inboxes.get(account)?.values() ?? [])];
  }

  /** Queue messages, once per id. */
  messages(): Map<string, TradeEventMessage> {
    return new Map(this.published.flat().map((m) => [m.id, m]));
  }

  transport(
    faults: (call: {
      kind: "session" | "queue";
      account?: string;
      n: number;
    }) => "ok" | "fail-before" | "fail-after" = () => "ok",
  ): OutboxTransport {
    let n = 0;
    return {
      deliverToSession: async (account, symbol, received) => {
        const fault = faults({ kind: "session", account, n: n++ });
        if (fault === "fail-before") throw new Error(`${account} unreachable`);
        // As a UserSession does: each event's id from the symbol and its seq.
        const events = received.map((e) => ({ ...e, eventId: bookEventId(symbol, e.seq), symbol }));
        this.deliveries.push({ account, events });
        let inbox = this.inboxes.get(account);
        if (inbox === undefined) {
          inbox = new Map();
          this.inboxes.set(account, inbox);
        }
        let fresh = 0;
        for (const e of events) {
          if (!inbox.has(e.eventId)) {
            inbox.set(e.eventId, e);
            fresh++;
          }
        }
        if (fault === "fail-after") throw new Error("crash after send");
        return fresh;
      },
      publish: async (messages) => {
        const fault = faults({ kind: "queue", n: n++ });
        if (fault === "fail-before") throw new Error("queue unavailable");
        this.published.push(messages);
        if (fault === "fail-after") throw new Error("crash after send");
      },
    };
  }

  /** Install this receiver as the outbox transport of a live book. */
  async install(
    stub: DurableObjectStub<OrderBook>,
    faults?: Parameters<Receiver["transport"]>[0],
  ): Promise<void> {
    const transport = this.transport(faults);
    await runInDurableObject(stub, (book: OrderBook) => {
      book.outboxPolicy.retryBaseMs = 0;
      book.transport = transport;
    });
  }
}

/** A unique account name for one test. */
export function account(label: string): string {
  return `${label}-${crypto.randomUUID().slice(0, 8)}`;
}

export function limit(
  orderId: string,
  acct: string,
  side: "buy" | "sell",
  qty: number,
  limitPrice: number,
  extra: { tif?: "day" | "gtc" | "ioc" | "fok"; expiresAt?: number } = {},
) {
  return {
    kind: "place" as const,
    orderId,
    account: acct,
    side,
    type: "limit" as const,
    tif: extra.tif ?? ("gtc" as const),
    qty,
    limitPrice,
    ...(extra.expiresAt === undefined ? {} : { expiresAt: extra.expiresAt }),
  };
}
