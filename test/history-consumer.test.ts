// The trade-events consumer against the real local Postgres (primary, replica, two shards),
// through the same Neon driver and proxy the worker uses. Batches are built by hand, so redelivery,
// shuffling and failures are exact.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { withClient } from "../scripts/stack/pg.ts";
import { type TradeEventMessage, tradeEventMessage } from "../shared/book-events.ts";
import type { FillEvent } from "../shared/engine/types.ts";
import { balancesFromLedger, balancesOf, compareBalances, type LedgerSum } from "../shared/history/ledger.ts";
import { packBodies, packBookEvents } from "../shared/queue-pack.ts";
import { consumeDeadLetters } from "../workers/consumers/dead-letters.ts";
import { createHistoryProcessor } from "../workers/consumers/history-processor.ts";
import {
  consumeTradeEvents,
  type TradeEvent,
  type TradeEventProcessor,
} from "../workers/consumers/trade-events.ts";
import { db } from "../workers/db/index.ts";
import { accountStreams } from "../workers/db/schema/history.ts";
import type { Env } from "../workers/env.ts";
import { fillsPageQuery, ordersPage, ordersPageQuery } from "../workers/history/queries.ts";
import { prng, type SimSession, simulateSession } from "./support/history-sim.ts";

const stackEnv = inject("stackEnv");
const shardUrls = JSON.parse(stackEnv.SHARD_DATABASE_URLS ?? "[]") as string[];
const replicaUrls = JSON.parse(stackEnv.SHARD_REPLICA_URLS ?? "[]") as string[];
const deadLettered: unknown[] = [];
const env = {
  ...stackEnv,
  TRADE_EVENTS_DLQ: {
    async send(body: unknown) {
      deadLettered.push(body);
    },
  },
} as unknown as Env;

/** A hand-made MessageBatch that records what the consumer did with each message. */
function batchOf(bodies: readonly unknown[], queue = "trade-events", attempts = 1) {
  const outcome = new Map<string, "ack" | "retry">();
  const messages = bodies.map((body, i) => {
    const id = `msg-${i}-${crypto.randomUUID().slice(0, 8)}`;
    return {
      id,
      timestamp: new Date(),
      body,
      attempts,
      ack: () => outcome.set(id, "ack"),
      retry: () => outcome.set(id, "retry"),
    };
  });
  const batch = {
    queue,
    messages,
    ackAll: () => {
      for (const m of messages) m.ack();
    },
    retryAll: () => {
      for (const m of messages) m.retry();
    },
  } as unknown as MessageBatch<unknown>;
  const of = (state: "ack" | "retry") =>
    messages.filter((m) => outcome.get(m.id) === state).map((m) => m.body);
  return { batch, outcome, acked: () => of("ack"), retried: () => of("retry") };
}

async function consume(bodies: readonly unknown[], processors?: TradeEventProcessor[]) {
  const pending: Promise<unknown>[] = [];
  const b = batchOf(bodies);
  const report = await consumeTradeEvents(b.batch, env, { waitUntil: (p) => pending.push(p) }, processors);
  await Promise.all(pending);
  return { ...b, report };
}

/** Delivers events in batches of at most 100, as the Queue would. */
async function deliver(events: readonly unknown[], processors?: TradeEventProcessor[]) {
  for (let i = 0; i < events.length; i += 100) {
    const r = await consume(events.slice(i, i + 100), processors);
    expect(r.retried()).toEqual([]);
  }
}

const shardOf = (userId: string) => db(env).shardOf(userId);

/** Random user ids, `perShard` of them on each shard. */
function usersOnBothShards(perShard: number): string[] {
  const picked = new Map<number, string[]>();
  while ([0, 1].some((s) => (picked.get(s)?.length ?? 0) < perShard)) {
    const id = crypto.randomUUID();
    const list = picked.get(shardOf(id)) ?? [];
    if (list.length < perShard) list.push(id);
    picked.set(shardOf(id), list);
  }
  return [...(picked.get(0) ?? []), ...(picked.get(1) ?? [])];
}

const query = <R>(url: string, text: string, values: unknown[] = []) =>
  withClient(url, async (c) => (await c.query<R>(text, values)).rows);

/** Everything the consumer wrote about `users`, on every shard (processing times left out). */
async function dump(users: readonly string[]) {
  const out: Record<string, unknown[]> = {};
  for (const [i, url] of shardUrls.entries()) {
    const q = (text: string) => query(url, text, [users]);
    out[`shard${i}`] = [
      await q(
        "SELECT event_id, user_id, seq, type FROM processed_events WHERE user_id = ANY($1) ORDER BY event_id",
      ),
      await q(
        "SELECT user_id, applied_through FROM account_streams WHERE user_id = ANY($1) ORDER BY user_id",
      ),
      await q(
        "SELECT id, user_id, status, open, filled_qty_lots, seq, body FROM orders WHERE user_id = ANY($1) ORDER BY id",
      ),
      await q("SELECT * FROM fills WHERE user_id = ANY($1) ORDER BY id"),
      await q("SELECT * FROM ledger_entries WHERE user_id = ANY($1) ORDER BY event_id, line"),
      await q("SELECT * FROM positions_snapshot WHERE user_id = ANY($1) ORDER BY user_id, symbol"),
      await q("SELECT * FROM account_daily WHERE user_id = ANY($1) ORDER BY user_id, day"),
    ];
  }
  return out;
}

async function forget(users: readonly string[]) {
  for (const url of shardUrls) {
    for (const table of [
      "processed_events",
      "account_streams",
      "orders",
      "fills",
      "ledger_entries",
      "positions_snapshot",
      "account_daily",
    ]) {
      await query(url, `DELETE FROM ${table} WHERE user_id = ANY($1)`, [users]);
    }
  }
}

async function ledgerBalances(userId: string) {
  const sums = await query<LedgerSum>(
    shardUrls[shardOf(userId)] as string,
    "SELECT account, symbol, asset, sum(amount) AS amount FROM ledger_entries WHERE user_id = $1 GROUP BY 1, 2, 3",
    [userId],
  );
  return balancesFromLedger(sums);
}

/** The ledger of every user equals its account, every stream is complete, and rows sit on the user's shard. */
async function expectSessionRecorded(sim: SimSession) {
  for (const userId of sim.userIds) {
    const account = sim.accounts.get(userId);
    if (!account) throw new Error("no account");
    expect(compareBalances(balancesOf(account), await ledgerBalances(userId))).toEqual([]);
    const lastSeq = Math.max(...sim.events.filter((e) => e.userId === userId).map((e) => e.seq));
    const home = shardUrls[shardOf(userId)] as string;
    const [stream] = await query<{ applied_through: string }>(
      home,
      "SELECT applied_through FROM account_streams WHERE user_id = $1",
      [userId],
    );
    expect(Number(stream?.applied_through)).toBe(lastSeq);
    for (const [i, url] of shardUrls.entries()) {
      const [{ n }] = (await query<{ n: string }>(
        url,
        "SELECT count(*) AS n FROM ledger_entries WHERE user_id = $1",
        [userId],
      )) as [{ n: string }];
      if (url === home) expect(Number(n)).toBeGreaterThan(0);
      else expect(Number(n), `user ${userId} has ledger rows on shard ${i}`).toBe(0);
    }
  }
  // Double entry: every event's lines sum to zero per asset.
  for (const url of shardUrls) {
    const unbalanced = await query(
      url,
      "SELECT event_id, asset FROM ledger_entries WHERE user_id = ANY($1) GROUP BY 1, 2 HAVING sum(amount) <> 0",
      [sim.userIds],
    );
    expect(unbalanced).toEqual([]);
  }
}

function shuffle<T>(items: readonly T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe("the history consumer", { timeout: 60_000 }, () => {
  let sim: SimSession;
  let reference: Awaited<ReturnType<typeof dump>>;

  beforeAll(async () => {
    // Two users on each shard.
    sim = simulateSession({ userIds: usersOnBothShards(2), steps: 40, seed: 8 });
  });

  afterAll(async () => {
    if (sim) await forget(sim.userIds);
  });

  it("writes a random trading session so that each ledger adds up to its account", async () => {
    const t = performance.now();
    await deliver(sim.events);
    const ms = performance.now() - t;
    console.log(
      `[history] ${sim.events.length} events in ${Math.ceil(sim.events.length / 100)} batches: ${Math.round(ms)} ms ` +
        `(${Math.round((sim.events.length / ms) * 1000)} events/s)`,
    );
    await expectSessionRecorded(sim);
    reference = await dump(sim.userIds);
  });

  it("changes nothing when the same batches are delivered again", async () => {
    await deliver(sim.events);
    expect(await dump(sim.userIds)).toEqual(reference);
  });

  it("ends in the same rows when delivered shuffled, split differently and duplicated", async () => {
    await forget(sim.userIds);
    const rand = prng(81);
    const noisy = shuffle([...sim.events, ...sim.events.filter(() => rand() < 0.3)], rand);
    for (let i = 0; i < noisy.length; ) {
      const size = 20 + Math.floor(rand() * 81);
      const chunk = noisy.slice(i, i + size);
      await deliver(chunk);
      if (rand() < 0.3) await deliver(chunk); // a redelivery of the whole batch
      i += size;
    }
    expect(await dump(sim.userIds)).toEqual(reference);
  });

  it("commits the healthy shard and retries the failed one when a batch fails mid-way", async () => {
    await forget(sim.userIds);
    let failing = true;
    const flaky = createHistoryProcessor({
      afterWrite(shard) {
        // After the writes, before the commit: everything of this transaction must roll back.
        if (failing && shard === 1) throw new Error("connection to shard 1 lost");
      },
    });
    const batch = sim.events.slice(0, 60);
    const first = await consume(batch, [flaky]);
    const onShard1 = batch.filter((e) => shardOf(e.userId) === 1);
    expect(first.retried()).toEqual(onShard1);
    expect(first.acked()).toHaveLength(batch.length - onShard1.length);
    const shard1Users = sim.userIds.filter((u) => shardOf(u) === 1);
    const [{ n }] = (await query<{ n: string }>(
      shardUrls[1] as string,
      "SELECT count(*) AS n FROM processed_events WHERE user_id = ANY($1)",
      [shard1Users],
    )) as [{ n: string }];
    expect(Number(n)).toBe(0);

    // The Queue redelivers the whole batch (at-least-once), then the rest of the session arrives.
    failing = false;
    expect((await consume(batch, [flaky])).retried()).toEqual([]);
    await deliver(sim.events.slice(60), [flaky]);
    expect(await dump(sim.userIds)).toEqual(reference);
  });

  it("isolates one failing event: the rest of its shard's batch commits, and it follows on retry", async () => {
    await forget(sim.userIds);
    const bad = sim.events[40];
    if (!bad) throw new Error("session too short");
    let failing = true;
    const picky = createHistoryProcessor({
      afterWrite(_shard, events) {
        if (failing && events.some((e) => e.id === bad.id)) throw new Error("constraint violated");
      },
    });
    const batch = sim.events.slice(0, 60);
    const first = await consume(batch, [picky]);
    expect(first.retried()).toEqual([bad]);
    // Its user's history stops just before it: later events are stored but not yet "complete".
    const [stream] = await query<{ applied_through: string }>(
      shardUrls[shardOf(bad.userId)] as string,
      "SELECT applied_through FROM account_streams WHERE user_id = $1",
      [bad.userId],
    );
    expect(Number(stream?.applied_through)).toBe(bad.seq - 1);

    failing = false;
    expect((await consume([bad], [picky])).acked()).toEqual([bad]);
    await deliver(sim.events.slice(60));
    expect(await dump(sim.userIds)).toEqual(reference);
  });

  it("sends poison to the dead-letter queue with an alert line and acknowledges it", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    deadLettered.length = 0;
    const fill = sim.events.find((e) => e.type === "account.fill");
    if (fill?.type !== "account.fill") throw new Error("no fill");
    const unbalanced = {
      ...fill,
      id: `${fill.id}:tampered`,
      fill: { ...fill.fill, cashDeltaMicros: fill.fill.cashDeltaMicros + 1 },
    };
    const bodies = [{ kind: "account", type: "account.fill", id: "x" }, "not an event", unbalanced];
    const r = await consume(bodies);
    const lines = errors.mock.calls.map((c) => String(c[0]));
    errors.mockRestore();
    expect(r.acked()).toEqual(bodies);
    expect(deadLettered).toEqual([
      expect.objectContaining({ deadLetter: 1, eventId: "x", reason: expect.stringContaining("Invalid") }),
      expect.objectContaining({ deadLetter: 1, body: "not an event" }),
      expect.objectContaining({
        deadLetter: 1,
        eventId: unbalanced.id,
        reason: expect.stringContaining("balance"),
      }),
    ]);
    const alerts = lines.filter((l) => l.includes('"alert":"dlq"'));
    expect(alerts).toHaveLength(3);
    expect(JSON.parse(alerts[0] as string)).toMatchObject({ level: "error", alert: "dlq", eventId: "x" });
  });

  it("reads packed messages event by event: same rows, poison parked alone, a failure retries the pack", async () => {
    await forget(sim.userIds);
    for (const pack of packBodies(sim.events)) {
      // Each pack twice in one batch: a redelivery changes nothing.
      const r = await consume([pack, pack]);
      expect(r.acked()).toEqual([pack, pack]);
    }
    expect(await dump(sim.userIds)).toEqual(reference);

    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => {});
    deadLettered.length = 0;
    const mixed = { pack: 1, bodies: [sim.events[0], "not an event"] };
    const parked = await consume([mixed]);
    expect(parked.acked()).toEqual([mixed]);
    expect(deadLettered).toEqual([expect.objectContaining({ deadLetter: 1, body: "not an event" })]);

    const second = sim.events[1];
    if (!second) throw new Error("session too short");
    const failing: TradeEventProcessor = {
      name: "failing",
      async process() {
        return { failed: new Map([[second.id, new Error("store unavailable")]]) };
      },
    };
    const pack = { pack: 1, bodies: sim.events.slice(0, 3) };
    const retried = await consume([pack], [failing]);
    errors.mockRestore();
    warnings.mockRestore();
    expect(retried.retried()).toEqual([pack]);
    expect(retried.acked()).toEqual([]);
  });

  it("stores dead letters in the global database for an operator", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const envelope = {
      deadLetter: 1,
      queue: "trade-events",
      messageId: `dl-${crypto.randomUUID()}`,
      eventId: "e1",
      reason: "bad",
      attempts: 1,
      body: { a: 1 },
    };
    const moved = { id: `moved-${crypto.randomUUID()}` };
    const b = batchOf([envelope, moved], "trade-events-dlq", 6);
    const pending: Promise<unknown>[] = [];
    await consumeDeadLetters(b.batch, env, { waitUntil: (p) => pending.push(p) });
    await consumeDeadLetters(b.batch, env, { waitUntil: (p) => pending.push(p) });
    await Promise.all(pending);
    errors.mockRestore();
    const rows = await query<{ message_id: string; reason: string; event_id: string | null }>(
      stackEnv.DATABASE_URL as string,
      "SELECT message_id, reason, event_id FROM dead_letters WHERE message_id = $1 OR event_id = $2 ORDER BY reason",
      [envelope.messageId, moved.id],
    );
    expect(rows).toEqual([
      { message_id: envelope.messageId, reason: "poison: bad", event_id: "e1" },
      { message_id: expect.any(String), reason: "retries exhausted", event_id: moved.id },
    ]);
  });
});

describe("a book's packed events", () => {
  const sizes = { tickSize: "0.01", lotSize: "1" };
  const fills: FillEvent[] = Array.from({ length: 3 }, (_, i) => ({
    type: "fill",
    seq: 10 + i,
    commandSeq: 5 + i,
    ts: 1_750_000_000_000 + i,
    fillId: 1 + i,
    price: 10_000 + i,
    qty: 2 + i,
    takerOrderId: `taker-${i}`,
    makerOrderId: `maker-${i}`,
    takerAccount: "acct-t",
    makerAccount: `acct-m${i}`,
    takerSide: "buy",
    takerLeavesQty: 2 - i,
    makerLeavesQty: 0,
    takerStatus: i === 2 ? "filled" : "partially_filled",
    makerStatus: "filled",
  }));
  const messages = fills.map((f) => tradeEventMessage("PKQ", sizes, f) as TradeEventMessage);
  // As the consumer receives a "v8" body: a structured clone of what the book sent.
  const pack = structuredClone(packBookEvents("PKQ", sizes, fills));
  const seen: TradeEvent[] = [];
  const recorder: TradeEventProcessor = {
    name: "recorder",
    async process(_env, events) {
      seen.push(...events);
      return { failed: new Map() };
    },
  };

  it("reach the processors as the messages the book built, one event each", async () => {
    seen.length = 0;
    const r = await consume([pack], [recorder]);
    expect(r.acked()).toEqual([pack]);
    expect(seen).toStrictEqual(messages.map((m) => ({ kind: "book", id: m.id, message: m })));
  });

  it("that do not hold together are parked whole, readable as JSON, and processed by nobody", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    seen.length = 0;
    deadLettered.length = 0;
    const broken = { ...pack, events: { ...pack.events, n: pack.events.n.slice(0, 7) } };
    const r = await consume([broken], [recorder]);
    errors.mockRestore();
    expect(r.acked()).toEqual([broken]);
    expect(seen).toEqual([]);
    expect(deadLettered).toEqual([
      expect.objectContaining({
        deadLetter: 1,
        reason: expect.stringContaining("invalid_pack"),
        body: expect.objectContaining({
          bookPack: 1,
          events: expect.objectContaining({ n: Array.from(broken.events.n) }),
        }),
      }),
    ]);
    expect(JSON.parse(JSON.stringify(deadLettered[0]))).toEqual(deadLettered[0]);
  });

  it("moved to the dead-letter queue are stored as the JSON pack of their messages, ready to replay", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const b = batchOf([pack], "trade-events-dlq", 6);
    const pending: Promise<unknown>[] = [];
    await consumeDeadLetters(b.batch, env, { waitUntil: (p) => pending.push(p) });
    await Promise.all(pending);
    errors.mockRestore();
    const id = (b.batch.messages[0] as Message<unknown>).id;
    const [row] = await query<{ body: unknown }>(
      stackEnv.DATABASE_URL as string,
      "SELECT body FROM dead_letters WHERE message_id = $1",
      [id],
    );
    expect(row?.body).toEqual({ pack: 1, bodies: JSON.parse(JSON.stringify(messages)) });
    // Sent again as it was stored, the consumer takes it.
    seen.length = 0;
    const replay = await consume([row?.body], [recorder]);
    expect(replay.acked()).toEqual([row?.body]);
    expect(seen.map((e) => e.id)).toEqual(messages.map((m) => m.id));
  });
});

describe("history reads", () => {
  let sim: SimSession;

  beforeAll(async () => {
    sim = simulateSession({ userIds: usersOnBothShards(1), steps: 60, seed: 21 });
    await deliver(sim.events);
  });

  afterAll(async () => {
    if (sim) await forget(sim.userIds);
  });

  it("run on the read replica and see what the consumer wrote once the replica has replayed it", async () => {
    const userId = sim.userIds[0] as string;
    const shard = db(env).forUser(userId);
    const standby = await shard
      .select({ standby: sql<boolean>`pg_is_in_recovery()` })
      .from(accountStreams)
      .limit(1);
    expect(standby[0]?.standby).toBe(true);
    const lastSeq = Math.max(...sim.events.filter((e) => e.userId === userId).map((e) => e.seq));
    await vi.waitFor(
      async () => {
        const page = await ordersPage(shard, userId, { status: "all", limit: 500, direction: "desc" });
        expect(page.through).toBe(lastSeq);
        const onPrimary = await ordersPage(shard.$primary, userId, {
          status: "all",
          limit: 500,
          direction: "desc",
        });
        expect(page.rows).toEqual(onPrimary.rows);
        expect(page.rows.length).toBeGreaterThan(0);
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(replicaUrls).toHaveLength(2);
  });

  it("use the indexes made for them (EXPLAIN)", async () => {
    const url = shardUrls[0] as string;
    // Enough rows that a sequential scan would be the planner's choice without the indexes.
    await query(
      url,
      `WITH u AS (SELECT gen_random_uuid() AS user_id FROM generate_series(1, 40))
       INSERT INTO orders (id, user_id, client_order_id, symbol, side, type, time_in_force, status, open, qty_lots,
         filled_qty_lots, created_at, updated_at, seq, body)
       SELECT 'explain-' || u.user_id || '-' || g, u.user_id, 'c' || g, 'ACME', 'buy', 'limit', 'gtc',
         CASE WHEN g % 3 = 0 THEN 'new' ELSE 'filled' END, g % 3 = 0, 1, 1,
         now() - g * interval '1 minute', now(), g, '{}'::jsonb
       FROM u, generate_series(1, 500) g`,
    );
    await query(
      url,
      `INSERT INTO fills (id, user_id, order_id, book_event_id, symbol, side, price_ticks, qty_lots, tick_size, lot_size,
         notional_micros, fee_micros, realized_pl_micros, cash_delta_micros, position_qty_lots,
         position_cost_basis_micros, liquidity, at, seq)
       SELECT 'f-' || id, user_id, id, 'ACME:' || seq, symbol, side, 100, 1, 0.01, 1, 1, 0, 0, -1, 1, 1, 'taker',
         created_at, seq FROM orders WHERE id LIKE 'explain-%'`,
    );
    await query(url, "ANALYZE orders; ANALYZE fills; ANALYZE ledger_entries; ANALYZE account_streams");
    const [{ user_id: someone }] = (await query<{ user_id: string }>(
      url,
      "SELECT user_id FROM orders WHERE id LIKE 'explain-%' LIMIT 1",
    )) as [{ user_id: string }];
    const shard = db(env).shard(0);
    const plans: Record<string, string> = {};
    const explain = async (name: string, q: { toSQL(): { sql: string; params: unknown[] } }) => {
      const { sql, params } = q.toSQL();
      const rows = await query<{ "QUERY PLAN": string }>(url, `EXPLAIN ${sql}`, params);
      plans[name] = rows.map((r) => r["QUERY PLAN"]).join("\n");
    };
    await explain(
      "closed orders",
      ordersPageQuery(shard, someone, { status: "closed", limit: 50, direction: "desc" }),
    );
    await explain(
      "all orders",
      ordersPageQuery(shard, someone, { status: "all", limit: 50, direction: "asc" }),
    );
    await explain("fill activities", fillsPageQuery(shard, someone, { direction: "desc", pageSize: 100 }));
    const ledger = await query<{ "QUERY PLAN": string }>(
      url,
      "EXPLAIN SELECT account, symbol, asset, sum(amount) FROM ledger_entries WHERE user_id = $1 AND seq <= $2 GROUP BY 1, 2, 3",
      [someone, 1000],
    );
    plans.ledger = ledger.map((r) => r["QUERY PLAN"]).join("\n");
    try {
      expect(plans["closed orders"]).toContain("orders_user_closed_idx");
      expect(plans["all orders"]).toContain("orders_user_created_idx");
      expect(plans["fill activities"]).toContain("fills_user_at_idx");
      expect(plans.ledger).toContain("ledger_entries_user_idx");
      for (const plan of Object.values(plans))
        expect(plan).not.toMatch(/Seq Scan on (orders|fills|ledger_entries)/);
    } finally {
      await query(url, "DELETE FROM fills WHERE id LIKE 'f-explain-%'");
      await query(url, "DELETE FROM orders WHERE id LIKE 'explain-%'");
    }
  });
});
