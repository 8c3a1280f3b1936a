/**
 * Transactional outbox of an OrderBook.
 *
 * The journal is the outbox. A committed batch is undelivered exactly when its journal row lies after the
 * delivery cursor (`outbox_cursor.delivered_through`), so an event is in the outbox exactly when its batch
 * is in the journal, and committing a batch writes nothing but its journal row. `drain` (called from the
 * alarm) delivers the batches after the cursor and moves the cursor past them only afterwards: a crash
 * between send and cursor update sends again, and receivers dedupe on the stable event id. Delivery is
 * therefore at-least-once and the effect exactly-once.
 *
 * Receivers of a batch:
 * - each account concerned: the batch's events about it, delivered with `UserSession.applyBookEvents`
 *   (one call per account per drain round, carrying every batch of the round);
 * - the `trade-events` Queue: the batch's trades, trading-status and reference-price changes as
 *   {@link TradeEventMessage}s (shared/book-events.ts says why order-lifecycle events are not among them), packed
 *   into Queue messages (shared/queue-pack.ts) and sent with `sendBatch`.
 *
 * A receiver that fails does not hold up the others: its part of each batch is written to the `outbox`
 * table (one row per batch and receiver, referencing the journal row where the events are stored once) in
 * the same transaction that moves the cursor, and retried with back-off. Its later batches join that table
 * behind the failed one (with no back-off of their own), so each account sees its events in order.
 * @internal
 */
import {
  type AccountEngineEvent,
  accountsOf,
  isAccountEvent,
  type TradeEventMessage,
  tradeEventMessage,
} from "../../shared/book-events.ts";
import type { EngineEvent } from "../../shared/engine/types.ts";
import { packEvents } from "../../shared/engine/wire.ts";
import {
  type BookEventPack,
  bookPackBytes,
  groupBySize,
  packBookEventMessages,
} from "../../shared/queue-pack.ts";
import type { Env } from "../../workers/env.ts";
import type { Sql } from "../sql.ts";

/** Reads the events of one journal row. */
export type EventSource = (journalId: number) => EngineEvent[];

/** Where the outbox delivers. The default goes to the real bindings; tests wrap it to inject failures. */
export interface OutboxTransport {
  /**
   * Deliver events to one account's UserSession; resolves once applied (idempotent by event id, which the
   * receiver derives from the symbol and each event's seq: `bookEventId`).
   */
  deliverToSession(account: string, symbol: string, events: AccountEngineEvent[]): Promise<unknown>;
  /** Publish at most {@link QUEUE_BATCH} events to the trade-events Queue (one `sendBatch`). */
  publish(messages: TradeEventMessage[]): Promise<void>;
}

/**
 * Events per `publish`: packed up to 100 to a Queue message (shared/queue-pack.ts), that is at least 5
 * messages, usually ~150 KB, in one `sendBatch`.
 */
export const QUEUE_BATCH = 500;
/**
 * Bytes per `sendBatch` at most (the limits: 100 messages and 256 KB). Five full packs of fills between
 * 128-character ids would not fit, so a publish may take more than one call.
 */
const SEND_BATCH_MAX_BYTES = 250_000;
/** Events per `applyBookEvents` call. */
export const SESSION_BATCH = 500;

export function envTransport(env: Pick<Env, "USER_SESSION" | "TRADE_EVENTS">): OutboxTransport {
  return {
    async deliverToSession(account, symbol, events) {
      const stub = env.USER_SESSION.get(env.USER_SESSION.idFromName(account));
      // Packed: the receiver derives each event's id from the symbol and its seq.
      return stub.applyBookEvents(symbol, packEvents([events]));
    },
    async publish(messages) {
      const first = messages[0];
      if (first === undefined) return;
      // Packed (shared/queue-pack.ts): the consumer builds the messages again from the events. A call
      // that fails after an earlier one succeeded fails the publish: all of it is sent again, and
      // consumers dedupe on the event ids.
      const sizes = { tickSize: first.tickSize, lotSize: first.lotSize };
      const packs = packBookEventMessages(
        first.symbol,
        sizes,
        messages.map((m) => m.event),
      );
      for (const batch of groupBySize(packs, bookPackBytes, SEND_BATCH_MAX_BYTES)) {
        await sendPacks(env.TRADE_EVENTS, batch);
      }
    },
  };
}

async function sendPacks(queue: Queue, packs: readonly BookEventPack[]): Promise<void> {
  // "v8": a pack's Float64Array crosses as bytes (JSON would write it as an object of numbers).
  await queue.sendBatch(packs.map((body) => ({ body, contentType: "v8" as const })));
}

export interface OutboxPolicy {
  /**
   * How long after a commit the alarm drains the outbox, so that deliveries of close commits batch. While
   * commits keep coming the alarm re-arms itself at this interval (a heartbeat), so requests do not pay for
   * `setAlarm` (a storage write their reply would wait for); only the first commit after an idle period
   * arms it. It is also the extra delay before a resting order's owner hears of a fill.
   */
  delayMs: number;
  /** Outbox-table rows (receivers that fell behind) read per drain round. */
  rowsPerRound: number;
  /** Journal batches after the cursor delivered per drain round. */
  batchesPerRound: number;
  /** Rounds per alarm before it re-arms itself (keeps one alarm invocation short). */
  roundsPerAlarm: number;
  /** Concurrent UserSession deliveries. */
  sessionConcurrency: number;
  /** Back-off after the n-th failed attempt: min(max, base × 2^(n-1)). */
  retryBaseMs: number;
  retryMaxMs: number;
}

export const DEFAULT_OUTBOX_POLICY: OutboxPolicy = {
  delayMs: 20,
  rowsPerRound: 500,
  batchesPerRound: 100,
  roundsPerAlarm: 20,
  sessionConcurrency: 16,
  retryBaseMs: 250,
  retryMaxMs: 60_000,
};

export interface DrainReport {
  /** Deliveries that succeeded: (batch, receiver) pairs. */
  delivered: number;
  /** (batch, receiver) pairs whose delivery failed this time (rescheduled). */
  failed: number;
  /** Earliest time remaining work is due, or null when the outbox is empty. */
  nextDueAt: number | null;
}

interface OutboxRow {
  id: number;
  journal_id: number;
  destination: "session" | "queue";
  account: string | null;
  attempts: number;
}

/** One receiver's part of the batches after the cursor that goes to the `outbox` table. */
interface Spill {
  destination: "session" | "queue";
  account: string | null;
  /** The journal rows holding this receiver's events, with the number of its events in each. */
  batches: Map<number, number>;
  /** False: not tried, it waits behind an earlier row of the same receiver. */
  attempted: boolean;
  error: unknown;
}

export class Outbox {
  transport: OutboxTransport;
  policy: OutboxPolicy;
  private readonly sql: Sql;
  private readonly symbol: string;
  private readonly sizes: { tickSize: string; lotSize: string };
  private readonly events: EventSource;
  /** Id of the last committed journal row. */
  private readonly lastJournalId: () => number;
  /** Journal rows up to here are delivered, or have their undelivered parts in the `outbox` table. */
  private cursor: number;
  /**
   * Rows in the `outbox` table (receivers that fell behind), counted on wake and again after every
   * transaction that writes the table. Almost always 0, and then a drain, `nextDueAt` and `pending` skip
   * their queries of the table: a busy book drains every `delayMs`, and those queries were a few per cent
   * of workerd's thread in load tests.
   */
  private behindRows: number;
  private draining: Promise<DrainReport> | null = null;

  constructor(
    sql: Sql,
    symbol: string,
    sizes: { tickSize: string; lotSize: string },
    events: EventSource,
    lastJournalId: () => number,
    transport: OutboxTransport,
    policy: OutboxPolicy = DEFAULT_OUTBOX_POLICY,
  ) {
    this.sql = sql;
    this.symbol = symbol;
    this.sizes = sizes;
    this.events = events;
    this.lastJournalId = lastJournalId;
    this.transport = transport;
    this.policy = policy;
    this.cursor =
      sql.one<{ through: number }>`SELECT delivered_through AS through FROM outbox_cursor WHERE id = 1`
        ?.through ?? 0;
    this.behindRows = this.countRows();
  }

  private countRows(): number {
    return this.sql.one<{ n: number }>`SELECT count(*) AS n FROM outbox`?.n ?? 0;
  }

  /** Oldest journal row the outbox still needs (null when everything is delivered). */
  oldestJournalId(): number | null {
    const fresh = this.lastJournalId() > this.cursor ? this.cursor + 1 : null;
    if (this.behindRows === 0) return fresh;
    const row = this.sql.one<{ j: number | null }>`SELECT min(journal_id) AS j FROM outbox`?.j ?? null;
    if (row === null) return fresh;
    return fresh === null ? row : Math.min(row, fresh);
  }

  /**
   * Undelivered work: rows of receivers that fell behind plus committed batches after the cursor; and how
   * many of the rows failed at least once.
   */
  pending(): { rows: number; failing: number } {
    const fresh = Math.max(0, this.lastJournalId() - this.cursor);
    if (this.behindRows === 0) return { rows: fresh, failing: 0 };
    const row = this.sql.one<{ rows: number; failing: number | null }>`
      SELECT count(*) AS rows, sum(attempts > 0) AS failing FROM outbox`;
    return {
      rows: (row?.rows ?? 0) + fresh,
      failing: row?.failing ?? 0,
    };
  }

  /**
   * Earliest time a drain can deliver something, or null when empty. Batches after the cursor are due at
   * once; a receiver waiting for a retry is due when its latest back-off ends (its newer rows wait behind
   * the failed one).
   */
  nextDueAt(): number | null {
    if (this.lastJournalId() > this.cursor) return 0;
    if (this.behindRows === 0) return null;
    return (
      this.sql.one<{ t: number | null }>`SELECT min(due) AS t FROM (
        SELECT max(next_attempt_at) AS due FROM outbox WHERE destination = 'session' GROUP BY account
        UNION ALL
        SELECT max(next_attempt_at) AS due FROM outbox WHERE destination = 'queue')`?.t ?? null
    );
  }

  /**
   * Deliver what is due. Safe to call again while a drain runs (it joins the running one) and after a
   * crash (what was not recorded as delivered is simply sent again).
   */
  drain(now: () => number): Promise<DrainReport> {
    this.draining ??= this.drainRounds(now).finally(() => {
      this.draining = null;
    });
    return this.draining;
  }

  private async drainRounds(now: () => number): Promise<DrainReport> {
    const report: DrainReport = { delivered: 0, failed: 0, nextDueAt: null };
    for (let round = 0; round < this.policy.roundsPerAlarm; round++) {
      // Rows of receivers that fell behind first, so that their newer batches find them gone.
      const behind = await this.retryRound(now(), now);
      const fresh = await this.freshRound(now);
      report.delivered += behind.delivered + fresh.delivered;
      report.failed += behind.failed + fresh.failed;
      const more = behind.read >= this.policy.rowsPerRound || this.lastJournalId() > this.cursor;
      if (!more || behind.delivered + behind.failed + fresh.delivered + fresh.failed + fresh.read === 0) {
        break;
      }
    }
    report.nextDueAt = this.nextDueAt();
    return report;
  }

  /** The account events of a batch, by account (one pass over the batch). */
  private accountEvents(batch: readonly EngineEvent[]): Map<string, AccountEngineEvent[]> {
    const out = new Map<string, AccountEngineEvent[]>();
    for (const e of batch) {
      if (!isAccountEvent(e)) continue;
      for (const account of accountsOf(e)) {
        const list = out.get(account);
        if (list === undefined) out.set(account, [e]);
        else if (list[list.length - 1] !== e) list.push(e);
      }
    }
    return out;
  }

  private queueMessages(batch: readonly EngineEvent[], out: TradeEventMessage[]): void {
    for (const e of batch) {
      const m = tradeEventMessage(this.symbol, this.sizes, e);
      if (m !== null) out.push(m);
    }
  }

  /** Deliver `events` to one account in calls of at most {@link SESSION_BATCH} events. */
  private async deliver(account: string, events: AccountEngineEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += SESSION_BATCH) {
      await this.transport.deliverToSession(
        account,
        this.symbol,
        i === 0 && events.length <= SESSION_BATCH ? events : events.slice(i, i + SESSION_BATCH),
      );
    }
  }

  /** Run `work` for each item with at most `concurrency` of them at a time. */
  private async eachConcurrently<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < items.length) await work(items[next++] as T);
    };
    await Promise.all(Array.from({ length: Math.min(this.policy.sessionConcurrency, items.length) }, worker));
  }

  /**
   * Deliver the committed batches after the cursor (up to `batchesPerRound`), then, in one transaction,
   * record the parts that could not be delivered in the `outbox` table and move the cursor past them.
   */
  private async freshRound(now: () => number): Promise<{ delivered: number; failed: number; read: number }> {
    const from = this.cursor;
    const to = Math.min(this.lastJournalId(), from + this.policy.batchesPerRound);
    if (to <= from) return { delivered: 0, failed: 0, read: 0 };

    // Receivers with rows in the table wait behind them, so each sees its events in order.
    const behind =
      this.behindRows === 0
        ? []
        : this.sql<{ destination: string; account: string | null }>`
      SELECT DISTINCT destination, account FROM outbox`;
    const sessionsBehind = new Set<string>();
    let queueBehind = false;
    for (const r of behind) {
      if (r.destination === "queue") queueBehind = true;
      else if (r.account !== null) sessionsBehind.add(r.account);
    }

    const perAccount = new Map<string, { events: AccountEngineEvent[]; batches: Map<number, number> }>();
    const messages: TradeEventMessage[] = [];
    /** Journal id of each batch with queue messages, and the index one past its last message. */
    const queueBatches: { journalId: number; end: number }[] = [];
    for (let journalId = from + 1; journalId <= to; journalId++) {
      const batch = this.events(journalId);
      if (batch.length === 0) continue;
      for (const [account, events] of this.accountEvents(batch)) {
        let entry = perAccount.get(account);
        if (entry === undefined) {
          entry = { events: [], batches: new Map() };
          perAccount.set(account, entry);
        }
        for (const e of events) entry.events.push(e);
        entry.batches.set(journalId, events.length);
      }
      const before = messages.length;
      this.queueMessages(batch, messages);
      if (messages.length > before) queueBatches.push({ journalId, end: messages.length });
    }

    const spills: Spill[] = [];
    let delivered = 0;
    const sendable: [string, { events: AccountEngineEvent[]; batches: Map<number, number> }][] = [];
    for (const [account, entry] of perAccount) {
      if (sessionsBehind.has(account)) {
        spills.push({
          destination: "session",
          account,
          batches: entry.batches,
          attempted: false,
          error: null,
        });
      } else sendable.push([account, entry]);
    }
    const sessions = this.eachConcurrently(sendable, async ([account, entry]) => {
      try {
        await this.deliver(account, entry.events);
        delivered += entry.batches.size;
      } catch (error) {
        spills.push({ destination: "session", account, batches: entry.batches, attempted: true, error });
      }
    });
    /** The queue's part of `queueBatches[first..]`: journal id → its number of messages. */
    const queueCounts = (first: number) => {
      const counts = new Map<number, number>();
      let start = first === 0 ? 0 : (queueBatches[first - 1]?.end ?? 0);
      for (const b of queueBatches.slice(first)) {
        counts.set(b.journalId, b.end - start);
        start = b.end;
      }
      return counts;
    };
    const queue = (async () => {
      if (queueBatches.length === 0) return;
      if (queueBehind) {
        spills.push({
          destination: "queue",
          account: null,
          batches: queueCounts(0),
          attempted: false,
          error: null,
        });
        return;
      }
      const sent = await this.publishInOrder(
        messages,
        queueBatches.map((b) => b.end),
      );
      delivered += sent.finished;
      if (sent.failed) {
        // The batches not completely sent are retried (messages of theirs already sent go again).
        spills.push({
          destination: "queue",
          account: null,
          batches: queueCounts(sent.finished),
          attempted: true,
          error: sent.error,
        });
      }
    })();
    await Promise.all([sessions, queue]);

    const at = now();
    let failed = 0;
    this.sql.transaction(() => {
      // Per receiver, rows go in journal order (`batches` was filled that way), which the retries keep.
      for (const spill of spills) {
        const message = spill.attempted ? errorText(spill.error) : null;
        const attempts = spill.attempted ? 1 : 0;
        const nextAttemptAt = spill.attempted ? at + this.backoff(0) : 0;
        for (const [journalId, count] of spill.batches) {
          this.sql
            .run`INSERT INTO outbox (journal_id, destination, account, event_count, created_at, attempts, next_attempt_at, last_error)
            VALUES (${journalId}, ${spill.destination}, ${spill.account}, ${count}, ${at}, ${attempts}, ${nextAttemptAt}, ${message})`;
          if (spill.attempted) failed++;
        }
      }
      this.sql.run`UPDATE outbox_cursor SET delivered_through = ${to} WHERE id = 1`;
    });
    this.cursor = to;
    if (spills.length > 0) this.behindRows = this.countRows();
    this.warn(spills.find((s) => s.attempted)?.error, failed);
    return { delivered, failed, read: to - from };
  }

  /** Back-off after `attempts` failed attempts so far. */
  private backoff(attempts: number): number {
    return Math.min(this.policy.retryMaxMs, this.policy.retryBaseMs * 2 ** attempts);
  }

  /** One log line per round with failures: how many (batch, receiver) rows, and the first error. */
  private warn(error: unknown, rows: number): void {
    if (rows === 0) return;
    console.warn(
      JSON.stringify({
        level: "warn",
        msg: "outbox delivery failed",
        symbol: this.symbol,
        rows,
        error: errorText(error),
      }),
    );
  }

  /** Deliver the due rows of the `outbox` table (receivers that fell behind), oldest first. */
  private async retryRound(
    at: number,
    now: () => number,
  ): Promise<{ delivered: number; failed: number; read: number }> {
    if (this.behindRows === 0) return { delivered: 0, failed: 0, read: 0 };
    // A receiver with a row waiting for a retry is skipped altogether, so each sees its events in order.
    const rows = this.sql<OutboxRow & Record<string, string | number | null>>`
      SELECT id, journal_id, destination, account, attempts FROM outbox AS o
      WHERE next_attempt_at <= ${at} AND NOT EXISTS (
        SELECT 1 FROM outbox AS w
        WHERE w.destination = o.destination AND w.account IS o.account AND w.next_attempt_at > ${at})
      ORDER BY id LIMIT ${this.policy.rowsPerRound}`;
    if (rows.length === 0) return { delivered: 0, failed: 0, read: 0 };
    // Each journal row is read and parsed once per round, however many receivers it has.
    const batches = new Map<number, EngineEvent[]>();
    const batchOf = (journalId: number): EngineEvent[] => {
      let batch = batches.get(journalId);
      if (batch === undefined) {
        batch = this.events(journalId);
        batches.set(journalId, batch);
      }
      return batch;
    };
    const byAccount = new Map<number, Map<string, AccountEngineEvent[]>>();
    const eventsFor = (journalId: number, account: string): AccountEngineEvent[] => {
      let split = byAccount.get(journalId);
      if (split === undefined) {
        split = this.accountEvents(batchOf(journalId));
        byAccount.set(journalId, split);
      }
      return split.get(account) ?? [];
    };
    const sessions = new Map<string, OutboxRow[]>();
    const queueRows: OutboxRow[] = [];
    for (const row of rows) {
      if (row.destination === "queue") queueRows.push(row);
      else if (row.account !== null) {
        const list = sessions.get(row.account);
        if (list === undefined) sessions.set(row.account, [row]);
        else list.push(row);
      }
    }
    const done: number[] = [];
    const failures: { rows: OutboxRow[]; error: unknown }[] = [];

    const deliveries = this.eachConcurrently([...sessions], async ([account, accountRows]) => {
      try {
        await this.deliver(
          account,
          accountRows.flatMap((r) => eventsFor(r.journal_id, account)),
        );
        for (const r of accountRows) done.push(r.id);
      } catch (error) {
        failures.push({ rows: accountRows, error });
      }
    });
    await Promise.all([deliveries, this.publishRows(queueRows, batchOf, done, failures)]);

    const retryAt = now();
    this.sql.transaction(() => {
      if (done.length > 0) {
        const ids = JSON.stringify(done);
        this.sql.run`DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(${ids}))`;
      }
      for (const { rows: failed, error } of failures) {
        const message = errorText(error);
        for (const r of failed) {
          this.sql
            .run`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ${retryAt + this.backoff(r.attempts)},
            last_error = ${message} WHERE id = ${r.id}`;
        }
      }
    });
    this.behindRows = this.countRows();
    const failed = failures.reduce((n, f) => n + f.rows.length, 0);
    this.warn(failures[0]?.error, failed);
    return { delivered: done.length, failed, read: rows.length };
  }

  /**
   * Pack queue rows into sendBatch calls of ≤ {@link QUEUE_BATCH} events, in row order. A row is done once the call
   * holding its last message succeeded; after a failed call, that row and all later ones are retried
   * (messages of theirs already sent go again, and consumers dedupe on the id).
   */
  private async publishRows(
    rows: OutboxRow[],
    batchOf: (journalId: number) => EngineEvent[],
    done: number[],
    failures: { rows: OutboxRow[]; error: unknown }[],
  ): Promise<void> {
    if (rows.length === 0) return;
    const messages: TradeEventMessage[] = [];
    /** Index into `messages` one past each row's last message. */
    const ends: number[] = [];
    for (const row of rows) {
      this.queueMessages(batchOf(row.journal_id), messages);
      ends.push(messages.length);
    }
    const sent = await this.publishInOrder(messages, ends);
    for (const row of rows.slice(0, sent.finished)) done.push(row.id);
    if (sent.failed) failures.push({ rows: rows.slice(sent.finished), error: sent.error });
  }

  /**
   * Send `messages` in sendBatch calls of ≤ {@link QUEUE_BATCH}, in order, until one fails. `ends[i]` is one
   * past the last message of unit i (a journal batch, an outbox row); `finished` counts the units whose
   * messages all went out.
   */
  private async publishInOrder(
    messages: readonly TradeEventMessage[],
    ends: readonly number[],
  ): Promise<{ finished: number; failed: false } | { finished: number; failed: true; error: unknown }> {
    let sent = 0;
    let finished = 0;
    // Units with no messages before the first send (a row of a batch that publishes nothing) are done.
    while (finished < ends.length && (ends[finished] ?? 0) <= 0) finished++;
    try {
      while (sent < messages.length) {
        const batch = messages.slice(sent, sent + QUEUE_BATCH);
        await this.transport.publish(batch);
        sent += batch.length;
        while (finished < ends.length && (ends[finished] ?? 0) <= sent) finished++;
      }
    } catch (error) {
      return { finished, failed: true, error };
    }
    return { finished, failed: false };
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 500);
}
