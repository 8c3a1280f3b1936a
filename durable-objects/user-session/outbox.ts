/**
 * Transactional outbox of a UserSession: account events for the system of record.
 *
 * `enqueue` runs inside the SQLite transaction of the change it describes (an order snapshot, a fill with
 * its money figures, a grant, a reset, the opening balances), so an event exists exactly when its change
 * committed. The account's event sequence number (`seq`) is assigned there too, from a counter row in the
 * same transaction: 1, 2, 3, … with no gaps, which is what lets Postgres tell how far a user's history is
 * complete. `drain` (from the alarm) publishes due rows to the `trade-events` Queue and deletes them only
 * after `sendBatch` succeeded: at-least-once delivery, and consumers dedupe on the stable event id.
 *
 * The pattern is the OrderBook's (`durable-objects/order-book/outbox.ts`), simpler: one destination, and no
 * ordering requirement (consumers keep the highest `seq` of an order and sum ledger lines, so any delivery
 * order gives the same result).
 * @internal
 */
import type { AccountEvent, AccountEventBody } from "../../shared/history/events.ts";
import { ACCOUNT_EVENT_VERSION } from "../../shared/history/events.ts";
import { packBodies } from "../../shared/queue-pack.ts";
import type { Env } from "../../workers/env.ts";
import type { Migration, Sql } from "../sql.ts";

export const ACCOUNT_OUTBOX_COMPONENT = "account_outbox";

export const ACCOUNT_OUTBOX_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "account event outbox and the account's event sequence",
    up: `
      CREATE TABLE account_outbox_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_seq INTEGER NOT NULL
      ) STRICT;
      INSERT INTO account_outbox_meta (id, last_seq) VALUES (1, 0);
      CREATE TABLE account_outbox (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
      ) STRICT;
      CREATE INDEX account_outbox_due ON account_outbox (next_attempt_at, seq);
    `,
  },
];

/** Where the outbox publishes. The default is the `trade-events` Queue; tests wrap it to inject failures. */
export interface AccountOutboxTransport {
  /**
   * Publish at most {@link MAX_BATCH_MESSAGES} events (one `sendBatch`); `jsonChars[i]` is the length of
   * the JSON text of `events[i]` (the outbox stores it), so packing need not serialise each event to size it.
   */
  publish(events: AccountEvent[], jsonChars: readonly number[]): Promise<void>;
}

/** Queues accept at most 100 messages and 256 KB per `sendBatch`. */
export const MAX_BATCH_MESSAGES = 100;
const MAX_BATCH_BYTES = 200_000;
/** Delay between a commit and the alarm that publishes it, so close commits share a `sendBatch`. */
export const OUTBOX_DELAY_MS = 20;

/** Publishes a drained batch as packs (shared/queue-pack.ts): usually one Queue message per batch. */
export function queueTransport(env: Pick<Env, "TRADE_EVENTS">): AccountOutboxTransport {
  return {
    async publish(events, jsonChars) {
      await env.TRADE_EVENTS.sendBatch(
        packBodies(events, (_, i) => jsonChars[i] ?? 0).map((body) => ({
          body,
          contentType: "json" as const,
        })),
      );
    },
  };
}

export interface AccountOutboxPolicy {
  /** Batches per drain before the alarm re-arms itself. */
  batchesPerDrain: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

export const DEFAULT_ACCOUNT_OUTBOX_POLICY: AccountOutboxPolicy = {
  batchesPerDrain: 20,
  retryBaseMs: 250,
  retryMaxMs: 60_000,
};

export interface AccountDrainReport {
  published: number;
  failed: number;
  /** Earliest time a remaining row is due, or null when the outbox is empty. */
  nextDueAt: number | null;
}

/**
 * The one alarm of a UserSession serves several purposes (settling unanswered orders, draining the
 * outbox); `arm` only ever moves it earlier, so no purpose postpones another.
 */
export class AlarmClock {
  private at: number | null = null;
  private readonly storage: DurableObjectStorage;

  constructor(storage: DurableObjectStorage) {
    this.storage = storage;
  }

  /** Call once on wake (inside blockConcurrencyWhile) with `await storage.getAlarm()`. */
  loaded(at: number | null): void {
    this.at = at;
  }

  /** Call when the alarm starts: it is no longer armed. */
  fired(): void {
    this.at = null;
  }

  /**
   * Call when a transaction rolled back: a `setAlarm` made inside it is undone with it, so the next `arm`
   * must set the alarm again instead of trusting the time remembered here.
   */
  forget(): void {
    this.at = null;
  }

  /** Arm for `at` unless already armed for that time or earlier. */
  arm(at: number): Promise<void> {
    if (this.at !== null && this.at <= at) return Promise.resolve();
    this.at = at;
    return this.storage.setAlarm(at);
  }
}

/** Rows beyond this many (a queue outage) are left to the table. */
const MAX_WAITING_IN_MEMORY = 10_000;

interface OutboxRow {
  seq: number;
  body: string;
  attempts: number;
}

export class AccountOutbox {
  transport: AccountOutboxTransport;
  policy: AccountOutboxPolicy;
  private readonly sql: Sql;
  private readonly clock: AlarmClock;
  private draining: Promise<AccountDrainReport> | null = null;
  /**
   * The latest sequence number handed out, or null until read. It is the greater of the meta row (written
   * when published rows are deleted) and the newest row still waiting: an `UPDATE … RETURNING` per event
   * was one of the costlier statements of every order. A rolled-back transaction may have handed out
   * numbers it never wrote, so a rollback makes it read again.
   */
  private last: number | null = null;
  /**
   * Every row of the table, oldest first, while this object knows them all; `null` while it does not (after
   * a wake that found rows, a failed publish, a rolled-back transaction, or more than
   * {@link MAX_WAITING_IN_MEMORY} rows). Drains then publish from here instead of reading the rows back:
   * that `SELECT` of the bodies, and the look-ups of `nextDueAt` and `pending`, were about 3 % of workerd's
   * thread in load tests. A drain that finds the table empty starts it again.
   */
  private waiting: { seq: number; body: string }[] | null = null;

  constructor(
    sql: Sql,
    clock: AlarmClock,
    transport: AccountOutboxTransport,
    policy: AccountOutboxPolicy = DEFAULT_ACCOUNT_OUTBOX_POLICY,
  ) {
    this.sql = sql;
    this.clock = clock;
    this.transport = transport;
    this.policy = policy;
    sql.onRollback(() => {
      this.last = null;
      this.waiting = null;
      clock.forget();
    });
  }

  private countRows(): number {
    return this.sql.one<{ n: number }>`SELECT count(*) AS n FROM account_outbox`?.n ?? 0;
  }

  private readLast(): number {
    const row = this.sql.one<{ last_seq: number | null }>`
      SELECT max((SELECT last_seq FROM account_outbox_meta WHERE id = 1),
        coalesce((SELECT max(seq) FROM account_outbox), 0)) AS last_seq`;
    if (row?.last_seq === null || row?.last_seq === undefined)
      throw new Error("account outbox is not initialised");
    return row.last_seq;
  }

  /**
   * Append an event. Call inside the transaction of the change: the sequence number and the row commit
   * (or roll back) with it. `idOf(seq)` names the event unless the body has a natural id (fills).
   */
  enqueue(
    head: { userId: string; epoch: number; ts: number },
    body: AccountEventBody,
    idOf: (seq: number) => string,
  ): AccountEvent {
    const seq = (this.last ?? this.readLast()) + 1;
    const event = {
      kind: "account",
      v: ACCOUNT_EVENT_VERSION,
      id: idOf(seq),
      userId: head.userId,
      seq,
      ts: head.ts,
      epoch: head.epoch,
      ...body,
    } as AccountEvent;
    const text = JSON.stringify(event);
    this.sql.run`INSERT INTO account_outbox (seq, event_id, type, body, created_at)
      VALUES (${seq}, ${event.id}, ${event.type}, ${text}, ${head.ts})`;
    this.last = seq;
    if (this.waiting !== null) {
      this.waiting.push({ seq, body: text });
      if (this.waiting.length > MAX_WAITING_IN_MEMORY) this.waiting = null;
    }
    void this.clock.arm(head.ts + OUTBOX_DELAY_MS);
    return event;
  }

  /** Sequence number of the latest event (0 before the first). */
  lastSeq(): number {
    this.last ??= this.readLast();
    return this.last;
  }

  /** Rows waiting for delivery, and how many of them have failed at least once. */
  pending(): { rows: number; failing: number } {
    if (this.waiting !== null) return { rows: this.waiting.length, failing: 0 };
    const row = this.sql.one<{ rows: number; failing: number | null }>`
      SELECT count(*) AS rows, sum(attempts > 0) AS failing FROM account_outbox`;
    return { rows: row?.rows ?? 0, failing: row?.failing ?? 0 };
  }

  nextDueAt(): number | null {
    // Rows known in memory have never failed: all are due.
    if (this.waiting !== null) return this.waiting.length > 0 ? 0 : null;
    return (
      this.sql.one<{ t: number | null }>`SELECT min(next_attempt_at) AS t FROM account_outbox`?.t ?? null
    );
  }

  /** Arm the alarm for the earliest remaining row, if any. */
  rearm(now: number): Promise<void> {
    const due = this.nextDueAt();
    return due === null ? Promise.resolve() : this.clock.arm(Math.max(due, now));
  }

  /** Publish due rows. Joins a drain already running; after a crash undeleted rows are simply sent again. */
  drain(now: () => number): Promise<AccountDrainReport> {
    this.draining ??= this.drainBatches(now).finally(() => {
      this.draining = null;
    });
    return this.draining;
  }

  private async drainBatches(now: () => number): Promise<AccountDrainReport> {
    const report: AccountDrainReport = { published: 0, failed: 0, nextDueAt: null };
    for (let i = 0; i < this.policy.batchesPerDrain; i++) {
      const fromMemory = this.waiting !== null;
      const rows: OutboxRow[] =
        this.waiting !== null
          ? this.waiting.slice(0, MAX_BATCH_MESSAGES).map((w) => ({ ...w, attempts: 0 }))
          : this.sql<OutboxRow & Record<string, string | number>>`
        SELECT seq, body, attempts FROM account_outbox WHERE next_attempt_at <= ${now()}
        ORDER BY seq LIMIT ${MAX_BATCH_MESSAGES}`;
      if (rows.length === 0) {
        // Nothing due. An empty table means every row from now on passes through `enqueue`.
        if (!fromMemory && this.countRows() === 0) this.waiting = [];
        break;
      }
      // Keep a batch under the Queues byte limit (a reset of a large account is a big message).
      const batch: OutboxRow[] = [];
      let bytes = 0;
      for (const row of rows) {
        if (batch.length > 0 && bytes + row.body.length > MAX_BATCH_BYTES) break;
        batch.push(row);
        bytes += row.body.length;
      }
      try {
        await this.transport.publish(
          batch.map((r) => JSON.parse(r.body) as AccountEvent),
          batch.map((r) => r.body.length),
        );
      } catch (error) {
        const message = (error instanceof Error ? error.message : String(error)).slice(0, 500);
        const at = now();
        // Rows with a back-off: the table decides again what is due.
        this.waiting = null;
        this.sql.transaction(() => {
          for (const r of batch) {
            const delay = Math.min(this.policy.retryMaxMs, this.policy.retryBaseMs * 2 ** r.attempts);
            this.sql.run`UPDATE account_outbox SET attempts = attempts + 1, next_attempt_at = ${at + delay},
              last_error = ${message} WHERE seq = ${r.seq}`;
          }
        });
        report.failed += batch.length;
        console.warn(
          JSON.stringify({
            level: "warn",
            msg: "account outbox publish failed",
            rows: batch.length,
            error: message,
          }),
        );
        break;
      }
      // One statement for the whole batch.
      const published = JSON.stringify(batch.map((r) => r.seq));
      const newest = Math.max(...batch.map((r) => r.seq));
      // The meta row keeps the sequence once its newest rows are gone.
      this.sql.transaction(() => {
        this.sql.run`UPDATE account_outbox_meta SET last_seq = max(last_seq, ${newest}) WHERE id = 1`;
        this.sql.run`DELETE FROM account_outbox WHERE seq IN (SELECT value FROM json_each(${published}))`;
      });
      // The batch is the oldest rows in memory (newer ones may have joined behind it meanwhile).
      if (this.waiting !== null && this.waiting[0]?.seq === batch[0]?.seq)
        this.waiting.splice(0, batch.length);
      else this.waiting = null;
      report.published += batch.length;
    }
    report.nextDueAt = this.nextDueAt();
    return report;
  }
}
