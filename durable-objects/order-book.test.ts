import {
  abortAllDurableObjects,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { brotliCompressSync, brotliDecompressSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { type TradeEventMessage, tradeEventMessage } from "../shared/book-events.ts";
import type { EngineEvent, FillEvent } from "../shared/engine/types.ts";
import { unpackEvents } from "../shared/engine/wire.ts";
import { isBookEventPack, unpack } from "../shared/queue-pack.ts";
import { type BookCommand, packCommands } from "./order-book/commands.ts";
import { envTransport, QUEUE_BATCH } from "./order-book/outbox.ts";
import { account, freshBook, limit, Receiver } from "./order-book/test-helpers.ts";
import { workload } from "./order-book/workload.ts";
import type { OrderBook } from "./order-book.ts";

const types = (events: EngineEvent[]) => events.map((e) => e.type);

/**
 * Install `receiver` as the book's transport, release the retries the test held back, and run the alarm
 * until the outbox is empty.
 */
async function deliverAll(stub: DurableObjectStub<OrderBook>, receiver: Receiver): Promise<void> {
  await receiver.install(stub);
  await runInDurableObject(stub, (_book, state) => {
    state.storage.sql.exec("UPDATE outbox SET next_attempt_at = 0");
  });
  for (let i = 0; i < 5 && (await stub.status()).outbox.pending > 0; i++) {
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
  }
  expect((await stub.status()).outbox.pending).toBe(0);
}

describe("OrderBook RPC", () => {
  it("matches a crossing order against the resting one and returns the fill", async () => {
    const { stub } = await freshBook();
    const [seller, buyer] = [account("seller"), account("buyer")];
    const resting = await stub.submit(limit("s1", seller, "sell", 100, 10_130));
    expect(types(resting)).toEqual(["accepted", "book"]);

    const taking = await stub.submit(limit("b1", buyer, "buy", 40, 10_135));
    expect(types(taking)).toEqual(["accepted", "fill", "book"]);
    const fill = taking.find((e): e is FillEvent => e.type === "fill");
    expect(fill).toMatchObject({
      price: 10_130,
      qty: 40,
      makerOrderId: "s1",
      takerOrderId: "b1",
      makerAccount: seller,
      takerAccount: buyer,
      takerSide: "buy",
      makerLeavesQty: 60,
      takerStatus: "filled",
    });

    const status = await stub.status();
    expect(status.bestAsk).toEqual([10_130, 60]);
    expect(status.bestBid).toBeNull();
    expect(status.lastTradePrice).toBe(10_130);
    expect(status.openOrders).toBe(1);
  });

  it("cancels a resting order and removes its level from the book", async () => {
    const { stub } = await freshBook();
    const trader = account("trader");
    await stub.submit(limit("o1", trader, "buy", 10, 9_990));
    const canceled = await stub.submit({ kind: "cancel", orderId: "o1", account: trader });
    expect(types(canceled)).toEqual(["canceled", "book"]);
    expect(canceled[0]).toMatchObject({ orderId: "o1", reason: "user", canceledQty: 10 });
    const snapshot = await stub.snapshot(10);
    expect(snapshot.bids).toEqual([]);
    expect(await stub.submit({ kind: "cancel", orderId: "o1" })).toMatchObject([
      { type: "rejected", reason: "order_not_open" },
    ]);
  });

  it("answers a batch with each command's events in order, committed as one journal batch", async () => {
    const { stub } = await freshBook();
    const trader = account("t");
    const before = await stub.status();
    const results = unpackEvents(
      await stub.submitMany([
        limit("a", trader, "buy", 5, 9_900),
        limit("b", trader, "buy", 5, 9_901),
        { kind: "cancel", orderId: "a" },
        { kind: "cancel", orderId: "missing" },
      ]),
    );
    expect(results.map(types)).toEqual([
      ["accepted", "book"],
      ["accepted", "book"],
      ["canceled", "book"],
      ["rejected"],
    ]);
    const after = await stub.status();
    expect(after.journal.lastBatch).toBe(before.journal.lastBatch + 1);
    expect(after.bestBid).toEqual([9_901, 5]);
  });

  it("takes a batch as packed commands and answers the same events as for the objects", async () => {
    const odd = [
      { kind: "place", orderId: 42, account: { a: 1 }, side: "buy", type: "limit", tif: "gtc", qty: "5" },
      {
        kind: "place",
        orderId: "odd1",
        account: "t",
        side: "up",
        type: "limit",
        tif: "gtc",
        qty: Number.NaN,
      },
      {
        kind: "place",
        orderId: "odd2",
        account: "t",
        side: "buy",
        type: "limit",
        tif: "gtc",
        qty: 1,
        postOnly: "y",
      },
      { kind: "replace", orderId: "odd2", newOrderId: null, qty: Number.POSITIVE_INFINITY },
      { kind: "cancel", orderId: "odd2", account: "t", extra: "dropped" },
    ] as unknown as BookCommand[];
    const flow = [...workload({ seed: 5, count: 300, idPrefix: "p", centre: 10_000 }), ...odd].map((c) => ({
      ...c,
      now: 1_750_000_000_000,
    }));
    const objects = await freshBook();
    const packed = await freshBook();
    const fromObjects = unpackEvents(await objects.stub.submitMany(flow));
    const fromPack = unpackEvents(await packed.stub.submitMany(packCommands(flow)));
    expect(fromPack).toStrictEqual(fromObjects);
    expect(JSON.stringify(fromPack)).toBe(JSON.stringify(fromObjects));
    expect(fromPack.flat().some((e) => e.type === "fill")).toBe(true);
    expect(fromPack.slice(-5).map(types)).toEqual([
      ["rejected"],
      ["rejected"],
      ["rejected"],
      ["rejected"],
      ["rejected"],
    ]);
    expect(() => packCommands([42 as never])).toThrow(/invalid_input/);
    expect(() => packCommands([{ kind: "halt" } as never])).toThrow(/invalid_input/);
    const [a, b] = [await objects.stub.status(), await packed.stub.status()];
    expect([b.seq, b.openOrders, b.bestBid, b.bestAsk]).toEqual([a.seq, a.openOrders, a.bestBid, a.bestAsk]);
  });

  it("refuses a pack that does not hold together, and changes nothing", async () => {
    const { stub } = await freshBook();
    const before = await stub.status();
    const good = packCommands([limit("g1", account("t"), "buy", 1, 9_900)]);
    const bad = [
      { ...good, v: 2 },
      { ...good, n: good.n.slice(0, good.n.length - 1) },
      { ...good, s: "" },
      { ...good, d: [] },
      { ...good, n: Array.from(good.n) },
      { v: 1, n: new Float64Array([1, 7]), s: "", d: [] },
      { v: 1, n: new Float64Array([1e9]), s: "", d: [] },
    ];
    await runInDurableObject(stub, async (book: OrderBook) => {
      for (const pack of bad) {
        await expect(book.submitMany(pack as typeof good)).rejects.toThrow(/invalid_input/);
      }
    });
    expect((await stub.status()).journal.lastBatch).toBe(before.journal.lastBatch);
  });

  it("gives each caller of a shared commit its own commands' events, packed or not", async () => {
    const { stub } = await freshBook();
    const maker = account("maker");
    expect(unpackEvents(await stub.submitMany([]))).toEqual([]);
    // The first call commits at once; the next three share the following commit: each gets its own
    // commands' events, in the form it asked for.
    const before = await stub.status();
    const [, single, objects, packed] = await runInDurableObject(stub, (book: OrderBook) =>
      Promise.all([
        book.submit(limit("k0", maker, "buy", 1, 9_899)),
        book.submit(limit("k1", maker, "buy", 1, 9_900)),
        book.submitMany([limit("k2", maker, "buy", 1, 9_901)]).then(unpackEvents),
        book.submitMany(
          packCommands([limit("k3", maker, "buy", 1, 9_902), { kind: "cancel", orderId: "missing" }]),
        ),
      ]),
    );
    expect((await stub.status()).journal.lastBatch).toBe(before.journal.lastBatch + 2);
    expect(single.map((e) => e.type)).toEqual(["accepted", "book"]);
    expect(objects.map(types)).toEqual([["accepted", "book"]]);
    const last = unpackEvents(packed);
    expect(last.map(types)).toEqual([["accepted", "book"], ["rejected"]]);
    expect(last[0]?.[0]).toMatchObject({ type: "accepted", orderId: "k3" });
    expect(last[0]?.[0]?.seq).toBe((objects[0]?.at(-1)?.seq ?? 0) + 1);
  });

  it("commits calls that arrive while a commit is on its way to disk together, each with its own events", async () => {
    const { stub } = await freshBook();
    const trader = account("t");
    const before = await stub.status();
    const results = await runInDurableObject(stub, (book: OrderBook) =>
      // Five calls in one turn: the first commits at once, the other four wait for it and share a commit.
      Promise.all([0, 1, 2, 3, 4].map((i) => book.submit(limit(`g${i}`, trader, "buy", 1, 9_900 + i)))),
    );
    expect(results.map((events) => events.map((e) => e.type === "accepted" && e.orderId))).toEqual([
      ["g0", false],
      ["g1", false],
      ["g2", false],
      ["g3", false],
      ["g4", false],
    ]);
    const after = await stub.status();
    expect(after.journal.lastBatch).toBe(before.journal.lastBatch + 2);
    // And concurrent callers through the stub each get their own answer.
    const many = await Promise.all(
      [5, 6, 7, 8, 9, 10, 11, 12].map((i) => stub.submit(limit(`c${i}`, trader, "sell", 1, 10_100 + i))),
    );
    many.forEach((events, k) => {
      expect(events[0]).toMatchObject({ type: "accepted", orderId: `c${k + 5}` });
    });
    expect((await stub.status()).openOrders).toBe(13);
  });

  it("uses the caller's now when given and the object's clock otherwise", async () => {
    const { stub } = await freshBook();
    const trader = account("t");
    const [withNow] = await stub.submit({ ...limit("n1", trader, "buy", 1, 9_000), now: 1_700_000_000_000 });
    expect(withNow?.ts).toBe(1_700_000_000_000);
    const [withoutNow] = await stub.submit(limit("n2", trader, "buy", 1, 9_000));
    expect(withoutNow?.ts).toBeGreaterThan(1_700_000_000_000);
  });

  it("returns rejects as events and throws only for values that are not book commands", async () => {
    const { stub } = await freshBook();
    const rejected = await stub.submit({ ...limit("r1", account("t"), "buy", 0, 9_000) });
    expect(rejected).toMatchObject([{ type: "rejected", reason: "invalid_qty", orderId: "r1" }]);
    // A place far outside the 10 % band around 100.00.
    const banded = await stub.submit(limit("r2", account("t"), "buy", 1, 50_000));
    expect(banded).toMatchObject([{ type: "rejected", reason: "price_out_of_band" }]);
    // Errors are asserted inside the object: a rejecting RPC through the stub leaks an unhandled rejection
    // in the workers pool (cloudflare/workers-sdk#14736) although the caller does receive it.
    await runInDurableObject(stub, async (book: OrderBook) => {
      await expect(book.submit({ kind: "halt" } as never)).rejects.toThrow(/invalid_input/);
      await expect(book.submitMany([limit("x", "a", "buy", 1, 9_000), 42 as never])).rejects.toThrow(
        /invalid_input/,
      );
    });
    // Nothing of the refused batch was processed.
    expect(await stub.submit({ kind: "cancel", orderId: "x" })).toMatchObject([
      { type: "rejected", reason: "unknown_order" },
    ]);
  });

  it("rejects new orders while halted, keeps resting ones, and trades again after resume", async () => {
    const { stub } = await freshBook();
    const [maker, taker] = [account("maker"), account("taker")];
    await stub.submit(limit("m1", maker, "sell", 10, 10_000));
    const halted = await stub.halt();
    expect(halted.halted).toBe(true);
    expect(halted.openOrders).toBe(1);
    expect(await stub.submit(limit("t1", taker, "buy", 10, 10_000))).toMatchObject([
      { type: "rejected", reason: "halted" },
    ]);
    expect((await stub.snapshot()).halted).toBe(true);
    const resumed = await stub.resume();
    expect(resumed.halted).toBe(false);
    expect(types(await stub.submit(limit("t2", taker, "buy", 10, 10_000)))).toEqual([
      "accepted",
      "fill",
      "book",
    ]);
  });

  it("cancels every open order on cancelAll, stops included", async () => {
    const { stub } = await freshBook();
    const trader = account("t");
    await stub.submitMany([
      limit("c1", trader, "buy", 1, 9_900),
      limit("c2", trader, "sell", 1, 10_100),
      {
        kind: "place",
        orderId: "c3",
        account: trader,
        side: "buy",
        type: "stop",
        tif: "gtc",
        qty: 1,
        stopPrice: 10_500,
      },
    ]);
    expect((await stub.status()).openOrders).toBe(3);
    expect(await stub.cancelAll()).toEqual({ canceled: 3 });
    const status = await stub.status();
    expect(status.openOrders).toBe(0);
    expect(status.bestBid).toBeNull();
  });

  it("configures a catalog symbol from the catalog on first wake", async () => {
    const stub = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName("DYNA"));
    const status = await stub.status();
    expect(status).toMatchObject({
      symbol: "DYNA",
      name: "Dynamo Robotics",
      referencePrice: 1_234,
      halted: false,
    });
  });

  it("refuses to trade a name that is neither in the catalog nor configured, and stores nothing for it", async () => {
    const stub = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName("NOPE-UNLISTED"));
    await runInDurableObject(stub, async (book: OrderBook) => {
      await expect(book.submit(limit("x", "a", "buy", 1, 100))).rejects.toThrow(/symbol_not_listed/);
    });
    expect(await stub.ping()).toBe("pong");
    const tables = await runInDurableObject(stub, (_book, state) =>
      state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray(),
    );
    expect(tables.filter((t) => !String(t.name).startsWith("_cf"))).toEqual([]);
  });

  it("keeps prices and quantities in STRICT tables, so no column can hold a REAL", async () => {
    const { stub } = await freshBook();
    const ddl = await runInDurableObject(stub, (_book, state) =>
      state.storage.sql
        .exec<{ name: string; sql: string }>(
          "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'",
        )
        .toArray(),
    );
    expect(ddl.map((t) => t.name).sort()).toEqual([
      "book_config",
      "journal",
      "journal_events",
      "journal_parts",
      "outbox",
      "outbox_cursor",
      "snapshot_parts",
      "snapshots",
    ]);
    for (const t of ddl) {
      expect(t.sql).toMatch(/\)\s*STRICT$/);
      expect(t.sql).not.toMatch(/REAL/);
    }
  });
});

describe("OrderBook durability", () => {
  it("rebuilds the same state after eviction from the latest snapshot plus the journal tail", async () => {
    const { symbol, stub } = await freshBook();
    await runInDurableObject(stub, (book: OrderBook) => {
      book.policy.snapshotEveryCommands = 150;
      book.policy.snapshotCommandsPerOpenOrder = 0;
    });
    const flow = workload({ seed: 7, count: 400, idPrefix: "r", centre: 10_000 });
    for (let i = 0; i < 200; i += 50) await stub.submitMany(flow.slice(i, i + 50));
    // The alarm takes the snapshot (more than 150 commands since the last one)…
    await runDurableObjectAlarm(stub);
    const afterSnapshot = await stub.status();
    expect(afterSnapshot.journal.snapshotBatch).toBe(afterSnapshot.journal.lastBatch);
    // …and more batches and single orders form the tail.
    for (let i = 200; i < 380; i += 60) await stub.submitMany(flow.slice(i, i + 60));
    for (const cmd of flow.slice(380)) await stub.submit(cmd);

    const before = await stub.status();
    const bookBefore = await stub.snapshot(1000);
    expect(before.openOrders).toBeGreaterThan(0);

    await evictDurableObject(stub);
    const fresh = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol));
    const after = await fresh.status();
    expect(after.stateHash).toBe(before.stateHash);
    expect(after.seq).toBe(before.seq);
    expect(after.mdSeq).toBe(before.mdSeq);
    expect(after.recovery.fromSnapshotJournalId).toBe(afterSnapshot.journal.snapshotBatch);
    expect(after.recovery.replayedBatches).toBe(
      before.journal.lastBatch - afterSnapshot.journal.snapshotBatch,
    );
    expect(await fresh.snapshot(1000)).toEqual(bookBefore);

    // And it keeps trading from where it was.
    const next = await fresh.submit(limit("after-restart", account("t"), "buy", 1, 9_000));
    expect(next[0]?.seq).toBe(before.seq + 1);
  });

  it("waits for more commands between snapshots of a big book: snapshotCommandsPerOpenOrder per open order", async () => {
    const { symbol, stub } = await freshBook();
    await runInDurableObject(stub, (book: OrderBook) => {
      book.policy.snapshotEveryCommands = 50;
      book.policy.snapshotCommandsPerOpenOrder = 2;
    });
    const trader = account("t");
    const initial = (await stub.status()).journal.snapshotBatch;
    // 100 commands, 100 open orders: the interval is 200 commands, not 50.
    await stub.submitMany(
      Array.from({ length: 100 }, (_, i) => limit(`big${i}`, trader, "buy", 1, 9_900 - i)),
    );
    await runDurableObjectAlarm(stub);
    expect((await stub.status()).journal.snapshotBatch).toBe(initial);
    // 160 commands, 40 open orders: the interval is 80, and it has passed.
    await stub.submitMany(
      Array.from({ length: 60 }, (_, i) => ({ kind: "cancel" as const, orderId: `big${i}` })),
    );
    await runDurableObjectAlarm(stub);
    const snapshotted = await stub.status();
    expect(snapshotted.openOrders).toBe(40);
    expect(snapshotted.journal.snapshotBatch).toBe(snapshotted.journal.lastBatch);
    // Recovery starts from it.
    await evictDurableObject(stub);
    const after = await env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol)).status();
    expect(after.stateHash).toBe(snapshotted.stateHash);
    expect(after.recovery.fromSnapshotJournalId).toBe(snapshotted.journal.snapshotBatch);
  });

  it("rebuilds from the journal alone when no snapshot was taken yet", async () => {
    const { symbol, stub } = await freshBook();
    const flow = workload({ seed: 11, count: 120, idPrefix: "j", centre: 10_000 });
    await stub.submitMany(flow.slice(0, 60));
    for (const cmd of flow.slice(60)) await stub.submit(cmd);
    const before = await stub.status();
    expect(before.journal.snapshotBatch).toBe(0);

    await evictDurableObject(stub);
    const after = await env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol)).status();
    expect(after.stateHash).toBe(before.stateHash);
    expect(after.recovery).toEqual({
      fromSnapshotJournalId: null,
      replayedBatches: 61,
      replayedCommands: 120,
    });
  });

  it("rebuilds the same state after an abort (no graceful shutdown)", async () => {
    const { symbol, stub } = await freshBook();
    await runInDurableObject(stub, (book: OrderBook) => {
      book.policy.snapshotEveryCommands = 100;
      book.policy.snapshotCommandsPerOpenOrder = 0;
    });
    const flow = workload({ seed: 5, count: 300, idPrefix: "a", centre: 10_000 });
    await stub.submitMany(flow.slice(0, 200));
    await runDurableObjectAlarm(stub);
    for (const cmd of flow.slice(200)) await stub.submit(cmd);
    const before = await stub.status();

    await abortAllDurableObjects();
    const after = await env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol)).status();
    expect(after.stateHash).toBe(before.stateHash);
    expect(after.recovery.replayedBatches).toBe(100);
    expect(after.outbox.pending).toBe(before.outbox.pending);
  });

  it("journals a batch of commands larger than one SQLite row in parts, and replays it", async () => {
    const { symbol, stub } = await freshBook();
    await runInDurableObject(stub, (book: OrderBook) => {
      book.policy.maxBatch = 3000;
    });
    const maker = account(`maker-${"m".repeat(100)}`);
    // 3,000 commands with long ids: about 1 MB of JSON, over the 600,000 characters one row takes.
    await stub.submitMany(
      Array.from({ length: 3000 }, (_, i) =>
        limit(`deep-${i}-${"x".repeat(100)}`, maker, "sell", 1, 10_000 + (i % 900)),
      ),
    );
    const parts = await runInDurableObject(stub, (_b, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM journal_parts").one(),
    );
    expect(parts.n).toBeGreaterThan(1);
    const before = await stub.status();
    expect(before.openOrders).toBe(3000);
    await evictDurableObject(stub);
    const after = await env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol)).status();
    expect(after.stateHash).toBe(before.stateHash);
    expect(after.recovery.replayedCommands).toBe(3000);
  });

  it("lets go of a batch's events once delivered, and keeps those a failing receiver still needs", async () => {
    const { stub } = await freshBook();
    const [maker, taker] = [account("maker"), account("taker")];
    const receiver = new Receiver();
    await receiver.install(stub);
    for (let b = 0; b < 3; b++) {
      await stub.submitMany([
        limit(`r${b}`, maker, "sell", 2, 10_010),
        limit(`t${b}`, taker, "buy", 2, 10_010),
      ]);
    }
    expect((await stub.status()).outbox.eventsInMemory).toBeGreaterThan(0);
    await deliverAll(stub, receiver);
    expect((await stub.status()).outbox).toMatchObject({ pending: 0, eventsInMemory: 0 });

    // The maker's UserSession is down: its part of the next batch waits, held in memory, and is
    // delivered from there once it is back.
    const down = new Receiver();
    await down.install(stub, (call) =>
      call.kind === "session" && call.account === maker ? "fail-before" : "ok",
    );
    await runInDurableObject(stub, (book: OrderBook) => {
      book.outboxPolicy.retryBaseMs = 3_600_000;
    });
    await stub.submitMany([limit("r9", maker, "sell", 2, 10_010), limit("t9", taker, "buy", 2, 10_010)]);
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    const waiting = (await stub.status()).outbox;
    expect(waiting.pending).toBeGreaterThan(0);
    expect(waiting.eventsInMemory).toBeGreaterThan(0);
    const back = new Receiver();
    await deliverAll(stub, back);
    expect(back.applied(maker).some((e) => e.type === "accepted" && e.orderId === "r9")).toBe(true);
    expect((await stub.status()).outbox.eventsInMemory).toBe(0);
  });

  it("stores the events of undelivered batches pushed out of memory, and delivers them", async () => {
    const { symbol, stub } = await freshBook();
    // Until the receiver below is installed, every delivery fails and waits an hour for its retry: the
    // object's own alarms (they fire by themselves) cannot deliver anything behind the test's back.
    await new Receiver().install(stub, () => "fail-before");
    await runInDurableObject(stub, (book: OrderBook) => {
      book.policy.recentEvents = 4;
      book.outboxPolicy.retryBaseMs = 3_600_000;
    });
    const [maker, taker] = [account("maker"), account("taker")];
    const answers: EngineEvent[][] = [];
    for (let b = 0; b < 5; b++) {
      const [rest, take] = unpackEvents(
        await stub.submitMany([
          limit(`r${b}`, maker, "sell", 2, 10_010),
          limit(`t${b}`, taker, "buy", 2, 10_010),
        ]),
      );
      answers.push([...(rest ?? []), ...(take ?? [])]);
    }
    // All five batches wait for delivery, and only the newest fits in memory. They are stored as packs;
    // the first is turned into what schema version 3 wrote (Brotli of the events' JSON), which is read too.
    const firstBatch = (await stub.status()).journal.lastBatch - answers.length + 1;
    const stored = await runInDurableObject(stub, (_b, state) => {
      const sql = state.storage.sql;
      const rows = sql
        .exec<{ id: number; format: string }>(
          "SELECT DISTINCT journal_id AS id, format FROM journal_events ORDER BY 1",
        )
        .toArray();
      const first = rows[0]?.id ?? 0;
      const events = answers[first - firstBatch]?.filter((e) => e.type !== "book") ?? [];
      expect(events.length).toBeGreaterThan(0);
      sql.exec("DELETE FROM journal_events WHERE journal_id = ?", first);
      sql.exec(
        "INSERT INTO journal_events (journal_id, part, body, format) VALUES (?, 0, ?, 'json')",
        first,
        new Uint8Array(brotliCompressSync(JSON.stringify(events))).buffer,
      );
      return rows;
    });
    expect(stored.length).toBeGreaterThanOrEqual(3);
    expect(stored.every((r) => r.format === "pack")).toBe(true);
    const receiver = new Receiver();
    await deliverAll(stub, receiver);
    const ids = (events: EngineEvent[], who: string) =>
      events
        .filter((e) => e.type !== "book" && (e.type === "fill" || ("account" in e && e.account === who)))
        .map((e) => `${symbol}:${e.seq}`);
    expect(receiver.applied(taker).map((e) => e.eventId)).toEqual(answers.flatMap((a) => ids(a, taker)));
    expect(receiver.applied(maker).map((e) => e.eventId)).toEqual(answers.flatMap((a) => ids(a, maker)));
    expect([...receiver.messages().keys()]).toEqual(
      answers
        .flat()
        .filter((e) => e.type === "fill")
        .map((e) => `${symbol}:${e.seq}`),
    );
  });

  it("stores what a failing receiver still needs before a snapshot covers it, and delivers it after a restart", async () => {
    const { symbol, stub } = await freshBook();
    const [maker, taker] = [account("maker"), account("taker")];
    const down = new Receiver();
    await down.install(stub, (call) => (call.kind === "session" ? "fail-before" : "ok"));
    await runInDurableObject(stub, (book: OrderBook) => {
      book.policy.snapshotEveryCommands = 1;
      book.policy.snapshotCommandsPerOpenOrder = 0;
    });
    await stub.submitMany(
      Array.from({ length: 300 }, (_, i) => limit(`s${i}`, maker, "sell", 1, 10_000 + (i % 50))),
    );
    const [sweep] = unpackEvents(
      await stub.submitMany([
        {
          kind: "place",
          orderId: "sweep",
          account: taker,
          side: "buy",
          type: "market",
          tif: "ioc",
          qty: 300,
        },
      ]),
    );
    // The alarm: the queue takes everything, the sessions fail, and a snapshot covers both batches.
    await runDurableObjectAlarm(stub);
    const status = await stub.status();
    expect(status.journal.snapshotBatch).toBe(status.journal.lastBatch);
    expect(status.outbox.failing).toBeGreaterThan(0);
    const stored = await runInDurableObject(stub, (_b, state) =>
      state.storage.sql
        .exec<{ n: number }>("SELECT count(DISTINCT journal_id) AS n FROM journal_events")
        .one(),
    );
    expect(stored.n).toBe(2);
    // Hold the retries for an hour, so no alarm of the restarted object delivers them before the receiver
    // below is installed (a fresh instance delivers through the real bindings).
    await runInDurableObject(stub, async (_book, state) => {
      state.storage.sql.exec("UPDATE outbox SET next_attempt_at = ?", Date.now() + 3_600_000);
      await state.storage.deleteAlarm();
    });

    await evictDurableObject(stub);
    const fresh = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol));
    expect((await fresh.status()).recovery.replayedBatches).toBe(0);
    const back = new Receiver();
    await deliverAll(fresh, back);
    expect(back.applied(maker).filter((e) => e.type === "accepted")).toHaveLength(300);
    const fills = back.applied(taker).filter((e) => e.type === "fill");
    expect(fills.map((e) => e.eventId)).toEqual(
      (sweep ?? []).filter((e) => e.type === "fill").map((e) => `${symbol}:${e.seq}`),
    );
  });

  it("takes over a book written by schema version 1: text journal rows and per-receiver outbox rows", async () => {
    const { symbol, stub } = await freshBook();
    const [maker, taker] = [account("maker"), account("taker")];
    await stub.submit(limit("v1", maker, "sell", 10, 10_010));
    await stub.submitMany([limit("v2", taker, "buy", 4, 10_010), limit("v3", taker, "buy", 1, 9_000)]);
    await runDurableObjectAlarm(stub);
    const last = await stub.submit(limit("v4", taker, "buy", 2, 10_010));
    const before = await stub.status();
    // Turn the storage back into version 1: journal bodies as text (events flat), no cursor, and the last
    // batch still undelivered as v1 wrote it (one outbox row per receiver).
    await runInDurableObject(stub, (_book, state) => {
      const sql = state.storage.sql;
      const rows = sql
        .exec<{ id: number; commands: string; events: string; body_z: ArrayBuffer | null }>(
          "SELECT id, commands, events, body_z FROM journal",
        )
        .toArray();
      // Version 1 stored every batch's events; only the undelivered last one is read back here.
      for (const row of rows) {
        const commands =
          row.body_z === null
            ? row.commands
            : brotliDecompressSync(new Uint8Array(row.body_z)).toString("utf8");
        const events = row.id === before.journal.lastBatch ? last : [];
        sql.exec(
          "UPDATE journal SET commands = ?, events = ? WHERE id = ?",
          commands,
          JSON.stringify(events),
          row.id,
        );
      }
      sql.exec("DROP TABLE journal_events");
      sql.exec("ALTER TABLE journal DROP COLUMN events_at");
      sql.exec("ALTER TABLE snapshots DROP COLUMN hash_of");
      sql.exec("ALTER TABLE journal DROP COLUMN body_z");
      sql.exec("DROP TABLE outbox_cursor");
      sql.exec("UPDATE _schema_versions SET version = 1 WHERE component = 'order_book'");
      const lastId = before.journal.lastBatch;
      sql.exec(
        `INSERT INTO outbox (journal_id, destination, account, event_count, created_at)
         VALUES (?, 'queue', NULL, 2, 0), (?, 'session', ?, 2, 0), (?, 'session', ?, 1, 0)`,
        lastId,
        lastId,
        taker,
        lastId,
        maker,
      );
      // Held for an hour: no alarm of the restarted object delivers them before the receiver is installed.
      sql.exec("UPDATE outbox SET next_attempt_at = ?", Date.now() + 3_600_000);
    });
    await evictDurableObject(stub);
    const fresh = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol));
    const after = await fresh.status();
    expect(after.stateHash).toBe(before.stateHash);
    expect(after.outbox).toMatchObject({ pending: 3, failing: 0 });
    const receiver = new Receiver();
    await deliverAll(fresh, receiver);
    const fill = last.find((e) => e.type === "fill");
    expect(receiver.applied(taker).map((e) => e.type)).toEqual(["accepted", "fill"]);
    expect(receiver.applied(maker).map((e) => e.eventId)).toEqual([`${symbol}:${fill?.seq}`]);
    // The v1 queue row covers the batch's accepted and fill events; only the fill is published now.
    expect([...receiver.messages().keys()]).toEqual([`${symbol}:${fill?.seq}`]);
    // New batches are written in the new layout and replay after the old ones.
    await fresh.submit(limit("v5", maker, "sell", 1, 10_020));
    const latest = await fresh.status();
    await evictDurableObject(fresh);
    const again = await env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol)).status();
    expect(again.stateHash).toBe(latest.stateHash);
  });

  it("expires a good-till order at its expiresAt from the alarm and tells its owner", async () => {
    const { stub } = await freshBook();
    const receiver = new Receiver();
    await receiver.install(stub);
    const trader = account("expiring");
    await stub.submit(limit("e1", trader, "buy", 3, 9_950, { expiresAt: Date.now() + 30 }));
    await new Promise((r) => setTimeout(r, 60));
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    expect((await stub.status()).openOrders).toBe(0);
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    expect(receiver.applied(trader).map((e) => e.type)).toEqual(["accepted", "expired"]);
    expect(receiver.applied(trader)[1]).toMatchObject({ orderId: "e1", expiredQty: 3 });
  });
});

describe("OrderBook outbox", () => {
  /** A maker and a taker trade; every account event must reach both accounts. */
  async function tradeBetween(stub: DurableObjectStub<OrderBook>, maker: string, taker: string) {
    await stub.submit(limit("mk1", maker, "sell", 100, 10_010));
    await stub.submit(limit("mk2", maker, "sell", 100, 10_020));
    const taking = await stub.submit(limit("tk1", taker, "buy", 150, 10_020));
    await stub.submit({ kind: "cancel", orderId: "mk2", account: maker });
    return taking;
  }
  const MAKER_EVENTS = ["accepted", "accepted", "fill", "fill", "canceled"];
  const TAKER_EVENTS = ["accepted", "fill", "fill"];

  it("delivers each account event to its owner once in effect, even when the alarm runs twice", async () => {
    const { symbol, stub } = await freshBook();
    const receiver = new Receiver();
    await receiver.install(stub);
    const [maker, taker] = [account("maker"), account("taker")];
    await tradeBetween(stub, maker, taker);
    expect((await stub.status()).outbox.pending).toBeGreaterThan(0);

    // Twice in a row, and twice at the same time.
    await runDurableObjectAlarm(stub);
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    await runInDurableObject(stub, (book: OrderBook) => Promise.all([book.alarm(), book.alarm()]));
    expect((await stub.status()).outbox.pending).toBe(0);

    const makerEvents = receiver.applied(maker);
    const takerEvents = receiver.applied(taker);
    expect(makerEvents.map((e) => e.type)).toEqual(MAKER_EVENTS);
    expect(takerEvents.map((e) => e.type)).toEqual(TAKER_EVENTS);
    for (const e of [...makerEvents, ...takerEvents]) {
      expect(e.eventId).toBe(`${symbol}:${e.seq}`);
      expect(e.symbol).toBe(symbol);
    }
    // The fills carry the same ids on both sides…
    const fillIds = (list: typeof makerEvents) => list.filter((e) => e.type === "fill").map((e) => e.eventId);
    expect(fillIds(makerEvents)).toEqual(fillIds(takerEvents));
    // …and nothing was sent twice when nothing failed.
    const sent = receiver.deliveries.flatMap((d) => d.events.map((e) => `${d.account}/${e.eventId}`));
    expect(new Set(sent).size).toBe(sent.length);
  });

  it("retries a failed delivery and a crash between send and delete without a duplicate effect", async () => {
    const { stub } = await freshBook();
    const [maker, taker] = [account("maker"), account("taker")];
    const receiver = new Receiver();
    let makerCalls = 0;
    let takerCalls = 0;
    await receiver.install(stub, ({ account: to }) => {
      // The maker's first delivery arrives but the object "crashes" before deleting its outbox rows;
      // the taker's first delivery never arrives.
      if (to === maker && makerCalls++ === 0) return "fail-after";
      if (to === taker && takerCalls++ === 0) return "fail-before";
      return "ok";
    });
    await tradeBetween(stub, maker, taker);

    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    expect((await stub.status()).outbox.failing).toBeGreaterThan(0);
    expect(receiver.applied(taker)).toEqual([]);

    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    expect((await stub.status()).outbox).toEqual({ pending: 0, failing: 0, eventsInMemory: 0 });

    expect(receiver.applied(maker).map((e) => e.type)).toEqual(MAKER_EVENTS);
    expect(receiver.applied(taker).map((e) => e.type)).toEqual(TAKER_EVENTS);
    // The maker's events really were delivered twice (at least once), and applied once.
    expect(receiver.deliveries.filter((d) => d.account === maker).length).toBe(2);
  });

  it("keeps each account's events in order when a later batch is committed while an earlier one waits for a retry", async () => {
    const { stub } = await freshBook();
    const trader = account("ordered");
    const receiver = new Receiver();
    let calls = 0;
    await receiver.install(stub, ({ kind }) => (kind === "session" && calls++ === 0 ? "fail-before" : "ok"));
    await runInDurableObject(stub, (book: OrderBook) => {
      book.outboxPolicy.retryBaseMs = 60_000;
    });
    await stub.submit(limit("first", trader, "buy", 1, 9_900));
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    // The first row is backing off for a minute; the second must wait behind it, not overtake it.
    await stub.submit(limit("second", trader, "buy", 1, 9_901));
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    expect(receiver.applied(trader)).toEqual([]);
    await runInDurableObject(stub, (book: OrderBook) => {
      book.outboxPolicy.retryBaseMs = 0;
    });
    await runInDurableObject(stub, (_book, state) =>
      state.storage.sql.exec("UPDATE outbox SET next_attempt_at = 0"),
    );
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    expect(receiver.applied(trader).map((e) => e.type === "accepted" && e.orderId)).toEqual([
      "first",
      "second",
    ]);
  });

  it("publishes the events of one publish packed, as Queue messages of at most 100 events", async () => {
    const sent: { body: unknown; contentType?: string }[][] = [];
    const transport = envTransport({
      USER_SESSION: env.USER_SESSION,
      TRADE_EVENTS: {
        async sendBatch(messages: { body: unknown; contentType?: string }[]) {
          sent.push(messages);
        },
      } as unknown as Queue,
    });
    const sizes = { tickSize: "0.01", lotSize: "1" };
    const messages = Array.from({ length: QUEUE_BATCH }, (_, i) => {
      const fill: FillEvent = {
        type: "fill",
        seq: i + 1,
        commandSeq: i + 1,
        ts: 1_750_000_000_000 + i,
        fillId: i + 1,
        price: 10_000 + (i % 7),
        qty: 1 + (i % 5),
        takerOrderId: `t-${i}`,
        makerOrderId: `m-${i}`,
        takerAccount: `acct-${i % 3}`,
        makerAccount: `acct-${3 + (i % 4)}`,
        takerSide: i % 2 === 0 ? "buy" : "sell",
        takerLeavesQty: 0,
        makerLeavesQty: i % 2,
        takerStatus: "filled",
        makerStatus: i % 2 === 0 ? "filled" : "partially_filled",
      };
      return tradeEventMessage("PK", sizes, fill) as TradeEventMessage;
    });
    await transport.publish(messages);
    expect(sent).toHaveLength(1);
    const bodies = sent[0] ?? [];
    expect(bodies.every((m) => m.contentType === "v8")).toBe(true);
    const packs = bodies.map((m) => structuredClone(m.body));
    expect(packs.every((p) => isBookEventPack(p))).toBe(true);
    expect(packs).toHaveLength(QUEUE_BATCH / 100);
    // The consumer reads back the very messages the book built.
    expect(packs.flatMap((p) => unpack(p))).toStrictEqual(messages);
  });

  it(`publishes every fill and status event, and no order-lifecycle event, to the queue with stable ids, at most ${QUEUE_BATCH} per send`, async () => {
    const { symbol, stub } = await freshBook();
    const receiver = new Receiver();
    let queueCalls = 0;
    // The second send fails once: its messages (and the rows after it) are sent again.
    await receiver.install(stub, ({ kind }) =>
      kind === "queue" && ++queueCalls === 2 ? "fail-before" : "ok",
    );
    const flow = workload({ seed: 3, count: 2_000, idPrefix: "q", centre: 10_000 });
    const results = [
      ...unpackEvents(await stub.submitMany(flow.slice(0, 1_000))),
      ...unpackEvents(await stub.submitMany(packCommands(flow.slice(1_000)))),
    ];
    await stub.halt();
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());
    await runInDurableObject(stub, (book: OrderBook) => book.alarm());

    // Two sends, the second failed, then its retry.
    expect(queueCalls).toBeGreaterThanOrEqual(3);
    expect(receiver.published.length).toBeGreaterThanOrEqual(2);
    expect(receiver.published.every((batch) => batch.length <= QUEUE_BATCH)).toBe(true);
    // Orders' own events reach the queue from their UserSessions (account.order), not from the book.
    const expected = results.flat().filter((e) => e.type === "fill");
    expect(expected.length).toBeGreaterThan(QUEUE_BATCH);
    const byId = receiver.messages();
    const haltSeq = (await stub.status()).seq;
    expect([...byId.keys()].sort()).toEqual(
      [...expected.map((e) => `${symbol}:${e.seq}`), `${symbol}:${haltSeq}`].sort(),
    );
    for (const e of expected) {
      const m = byId.get(`${symbol}:${e.seq}`);
      expect(m?.type).toBe("fill");
      expect(m?.event).toEqual(e);
    }
    expect(byId.get(`${symbol}:${haltSeq}`)).toMatchObject({
      type: "trading_status",
      event: { halted: true },
    });
    expect((await stub.status()).outbox.pending).toBe(0);
  });

  it("finishes a queue row written by an older version whose batch now publishes nothing, without a send", async () => {
    const { symbol, stub } = await freshBook();
    await new Receiver().install(stub);
    await stub.submit(limit("quiet", account("a"), "buy", 1, 9_990));
    await runDurableObjectAlarm(stub);
    // Versions that published order events left queue rows like this one behind a failed send; the
    // object finds it when it wakes.
    await runInDurableObject(stub, (_book, state) => {
      const id = state.storage.sql.exec<{ id: number }>("SELECT max(id) AS id FROM journal").one().id;
      state.storage.sql.exec(
        "INSERT INTO outbox (journal_id, destination, account, event_count, created_at, next_attempt_at) VALUES (?, 'queue', NULL, 1, 0, ?)",
        id,
        Date.now() + 3_600_000,
      );
    });
    await evictDurableObject(stub);
    const fresh = env.ORDER_BOOK.get(env.ORDER_BOOK.idFromName(symbol));
    expect((await fresh.status()).outbox.pending).toBe(1);
    const receiver = new Receiver();
    await deliverAll(fresh, receiver);
    expect(receiver.published).toEqual([]);
  });

  it("delivers through the real UserSession and trade-events bindings", async () => {
    const { stub } = await freshBook();
    await tradeBetween(stub, account("maker"), account("taker"));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stub.status()).outbox).toEqual({ pending: 0, failing: 0, eventsInMemory: 0 });
  });

  it("re-arms the alarm while work remains", async () => {
    const { stub } = await freshBook();
    await new Receiver().install(stub);
    await stub.submit(limit("al1", account("a"), "buy", 1, 9_999));
    const armed = await runInDurableObject(stub, (_b, state) => state.storage.getAlarm());
    expect(armed).not.toBeNull();
    await runDurableObjectAlarm(stub);
    expect((await stub.status()).outbox.pending).toBe(0);
    // A snapshot is still due later (age rule), so an alarm stays armed for it.
    const next = await runInDurableObject(stub, (_b, state) => state.storage.getAlarm());
    expect(next).not.toBeNull();
  });
});
