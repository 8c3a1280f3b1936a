// The UserSession's account-event outbox (what Postgres learns about an account, and when).
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { AccountEvent } from "../shared/history/events.ts";
import {
  balancesFromLedger,
  compareBalances,
  type LedgerSum,
  ledgerLines,
} from "../shared/history/ledger.ts";
import type { AccountOutbox } from "./user-session/outbox.ts";
import type { UserSession } from "./user-session.ts";

type Stub = DurableObjectStub<UserSession>;

const sessionOf = (userId: string): Stub => env.USER_SESSION.get(env.USER_SESSION.idFromName(userId));

/** Replaces the object's queue transport with a recorder (optionally failing). */
async function capture(stub: Stub) {
  const sink = { events: [] as AccountEvent[], calls: 0, failing: false };
  await runInDurableObject(stub, (instance) => {
    (instance as unknown as { outbox: AccountOutbox }).outbox.transport = {
      async publish(events) {
        sink.calls++;
        if (sink.failing) throw new Error("queue unavailable");
        sink.events.push(...events);
      },
    };
  });
  return sink;
}

/** Runs the alarm until the outbox is empty. */
async function drain(stub: Stub, userId: string) {
  await vi.waitFor(
    async () => {
      await runDurableObjectAlarm(stub);
      expect((await stub.ledgerBalances(userId)).outbox.rows).toBe(0);
    },
    { timeout: 5_000, interval: 50 },
  );
}

function ledgerOf(events: AccountEvent[]) {
  const sums = new Map<string, LedgerSum>();
  for (const e of events) {
    for (const l of ledgerLines(e)) {
      const key = `${l.account}|${l.symbol}|${l.asset}`;
      const prev = sums.get(key);
      sums.set(key, { ...l, amount: BigInt(prev?.amount ?? 0) + BigInt(l.amount) });
    }
  }
  return balancesFromLedger([...sums.values()]);
}

describe("UserSession account outbox", () => {
  it("publishes every change as events with gap-free seqs whose ledger adds up to the account", {
    timeout: 20_000,
  }, async () => {
    const [seller, buyer] = [crypto.randomUUID(), crypto.randomUUID()];
    const [s, b] = [sessionOf(seller), sessionOf(buyer)];
    const [sSink, bSink] = [await capture(s), await capture(b)];

    expect((await s.grantShares(seller, "DYNA", "20", "12.34")).ok).toBe(true);
    const sell = await s.placeOrder(seller, {
      symbol: "DYNA",
      side: "sell",
      type: "limit",
      time_in_force: "gtc",
      qty: "5",
      limit_price: "12.34",
    });
    expect(sell.ok).toBe(true);
    const buy = await b.placeOrder(buyer, {
      symbol: "DYNA",
      side: "buy",
      type: "limit",
      time_in_force: "gtc",
      qty: "5",
      limit_price: "12.34",
    });
    expect(buy).toMatchObject({ ok: true, value: { status: "filled" } });
    // The seller learns of the fill through the book's outbox.
    const sellId = sell.ok ? sell.value.id : "";
    const book = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName("DYNA"));
    await vi.waitFor(
      async () => {
        await runDurableObjectAlarm(book);
        const order = await s.getOrder(seller, sellId);
        expect(order).toMatchObject({ value: { status: "filled" } });
      },
      { timeout: 10_000, interval: 50 },
    );
    await Promise.all([drain(s, seller), drain(b, buyer)]);

    for (const [userId, stub, sink] of [
      [seller, s, sSink],
      [buyer, b, bSink],
    ] as const) {
      const { seq, balances } = await stub.ledgerBalances(userId);
      expect(sink.events.map((e) => e.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
      expect(new Set(sink.events.map((e) => e.id)).size).toBe(seq);
      expect(sink.events.every((e) => e.userId === userId && e.kind === "account")).toBe(true);
      expect(compareBalances(balances!, ledgerOf(sink.events))).toEqual([]);
    }
    expect(sSink.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["account.opened", "account.grant", "account.order", "account.fill"]),
    );
    const buyerFill = bSink.events.find((e) => e.type === "account.fill");
    expect(buyerFill).toMatchObject({
      id: expect.stringMatching(/^fill:DYNA:\d+:/),
      fill: { side: "buy", qtyLots: 5, priceTicks: 1234, cashDeltaMicros: -61_700_000, liquidity: "taker" },
    });
    const statuses = bSink.events.flatMap((e) => (e.type === "account.order" ? [e.order.status] : []));
    // Published from the book's answer on: a `pending_new` order (on its way to the book) is not an event.
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses).not.toContain("pending_new");
    expect(statuses.at(-1)).toBe("filled");
  });

  it("keeps events it could not publish and publishes them later", async () => {
    const userId = crypto.randomUUID();
    const stub = sessionOf(userId);
    const sink = await capture(stub);
    sink.failing = true;
    await stub.grantShares(userId, "EPIC", "3", "75.00");
    await runDurableObjectAlarm(stub);
    const stuck = await stub.ledgerBalances(userId);
    expect(stuck.outbox).toEqual({ rows: 2, failing: 2 });
    expect(sink.calls).toBeGreaterThan(0);

    sink.failing = false;
    await drain(stub, userId);
    expect(sink.events.map((e) => e.type)).toEqual(["account.opened", "account.grant"]);
    expect(compareBalances((await stub.ledgerBalances(userId)).balances!, ledgerOf(sink.events))).toEqual([]);
  });

  it("publishes nothing of a rolled-back change and keeps its sequence gap-free, also while it drains from memory", async () => {
    const userId = crypto.randomUUID();
    const stub = sessionOf(userId);
    const sink = await capture(stub);
    await stub.grantShares(userId, "EPIC", "2", "75.00");
    // This drain empties the table: from here on the outbox knows every row without reading the table.
    await drain(stub, userId);
    const grant = sink.events.find((e) => e.type === "account.grant") as AccountEvent;
    await runInDurableObject(stub, (instance) => {
      const { outbox, sql } = instance as unknown as {
        outbox: AccountOutbox;
        sql: { transaction<T>(fn: () => T): T };
      };
      const { kind: _k, v: _v, id: _i, userId: _u, seq: _s, ts: _t, epoch: _e, ...body } = grant;
      expect(() =>
        sql.transaction(() => {
          outbox.enqueue({ userId, epoch: 0, ts: Date.now() }, body as never, (seq) => `rolled-back:${seq}`);
          throw new Error("the change failed");
        }),
      ).toThrow("the change failed");
    });
    await stub.grantShares(userId, "EPIC", "1", "75.00");
    await drain(stub, userId);
    expect(sink.events.some((e) => e.id.startsWith("rolled-back"))).toBe(false);
    expect(sink.events.map((e) => e.seq)).toEqual(sink.events.map((_, i) => i + 1));
    expect(compareBalances((await stub.ledgerBalances(userId)).balances!, ledgerOf(sink.events))).toEqual([]);
  });

  it("resets as closing and opening entries, so the ledger follows the account through a reset", async () => {
    const userId = crypto.randomUUID();
    const stub = sessionOf(userId);
    const sink = await capture(stub);
    await stub.grantShares(userId, "EPIC", "4", "75.00");
    await stub.resetAccount(userId);
    await drain(stub, userId);
    const reset = sink.events.find((e) => e.type === "account.reset");
    expect(reset).toMatchObject({ epoch: 1, before: { positions: [{ symbol: "EPIC", qtyLots: 4 }] } });
    const { balances } = await stub.ledgerBalances(userId);
    expect(balances?.positions).toEqual([]);
    expect(compareBalances(balances!, ledgerOf(sink.events))).toEqual([]);
  });

  it("continues its sequence after every event was published and the object restarted", async () => {
    const userId = crypto.randomUUID();
    const stub = sessionOf(userId);
    const first = await capture(stub);
    await stub.grantShares(userId, "EPIC", "2", "75.00");
    await drain(stub, userId);
    const before = (await stub.historyCursor(userId)).seq;
    expect(first.events.map((e) => e.seq)).toEqual(Array.from({ length: before }, (_, i) => i + 1));

    await evictDurableObject(stub);
    const second = await capture(stub);
    expect((await stub.historyCursor(userId)).seq).toBe(before);
    await stub.grantShares(userId, "EPIC", "1", "75.00");
    await drain(stub, userId);
    expect(second.events.map((e) => e.seq)).toEqual([before + 1]);
  });

  it("publishes the balances and orders of an account that existed before its outbox", async () => {
    const userId = crypto.randomUUID();
    const stub = sessionOf(userId);
    await capture(stub);
    await stub.grantShares(userId, "EPIC", "2", "75.00");
    await drain(stub, userId);
    // Turn the clock back: no outbox schema, as in an object created before the account outbox existed.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("DROP TABLE account_outbox");
      state.storage.sql.exec("DROP TABLE account_outbox_meta");
      state.storage.sql.exec("DELETE FROM _schema_versions WHERE component = 'account_outbox'");
    });
    await evictDurableObject(stub);
    const pending = await runInDurableObject(stub, (instance, state) => {
      const rows = state.storage.sql
        .exec<{ body: string }>("SELECT body FROM account_outbox ORDER BY seq")
        .toArray()
        .map((r) => JSON.parse(r.body) as AccountEvent);
      (instance as unknown as { outbox: AccountOutbox }).outbox.transport = { publish: async () => {} };
      return rows;
    });
    expect(pending[0]).toMatchObject({
      type: "account.opened",
      seq: 1,
      carriedOver: true,
      balances: { positions: [{ symbol: "EPIC", qtyLots: 2, costBasisMicros: 150_000_000 }] },
    });
    expect(compareBalances((await stub.ledgerBalances(userId)).balances!, ledgerOf(pending))).toEqual([]);
  });
});

describe("UserSession alarm", () => {
  it("finds the orders still waiting for their book through an index, not a scan of every order", async () => {
    const userId = crypto.randomUUID();
    const stub = sessionOf(userId);
    await stub.ledgerBalances(userId);
    const plans = await runInDurableObject(stub, (_instance, state) =>
      [
        "SELECT body FROM orders WHERE status = 'pending_new' AND created_at < 0",
        "SELECT count(*) AS n FROM orders WHERE status = 'pending_new'",
      ].map((query) =>
        state.storage.sql
          .exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`)
          .toArray()
          .map((r) => r.detail)
          .join("; "),
      ),
    );
    for (const plan of plans) {
      expect(plan).toMatch(/USING (COVERING )?INDEX orders_pending/);
      expect(plan).not.toMatch(/SCAN orders(?! USING)/);
    }
  });
});
