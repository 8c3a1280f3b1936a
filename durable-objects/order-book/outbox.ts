/**
 * Transactional outbox of an OrderBook.
 *
 * `enqueue` runs inside the commit transaction, so an event is in the outbox exactly when its batch is in
 * the journal. `drain` (called from the alarm) delivers due rows and deletes them only after delivery
 * succeeded: a crash between send and delete sends again, and receivers dedupe on the stable event id.
 * Delivery is therefore at-least-once and the effect exactly-once.
 *
 * One row per committed batch and receiver; it references the batch's journal row, where the events are
 * stored once (writing them again per receiver would triple the bytes each commit writes).
 * - `session` rows: the batch's events about one account, delivered with `UserSession.applyBookEvents`.
 *   Rows of one account are delivered in order, and a failing account is retried with back-off without
 *   holding up the others.
 * - `queue` rows: the batch's events (all but L2 deltas) as {@link TradeEventMessage}s for the
 *   `trade-events` Queue, packed 100 to a message (shared/queue-pack.ts) and sent with `sendBatch`.
 * @internal
 */
import {
  type AccountBookEvent,
  accountsOf,
  bookEventId,
  isAccountEvent,
  type TradeEventMessage,
  tradeEventMessage,
} from "../../shared/book-events.ts";
import type { EngineEvent } from "../../shared/engine/types.ts";
import { packBodies } from "../../shared/queue-pack.ts";
import type { Env } from "../../workers/env.ts";
import type { Sql } from "../sql.ts";

/** Reads the events of one journal row. */
export type EventSource = (journalId: number) => EngineEvent[];

/** Where the outbox delivers. The default goes to the real bindings; tests wrap it to inject failures. */
export interface OutboxTransport {
  /** Deliver events to one account's UserSession; resolves once applied (idempotent by event id). */
  deliverToSession(account: string, symbol: string, events: AccountBookEvent[]): Promise<unknown>;
  /** Publish at most {@link QUEUE_BATCH} events to the trade-events Queue (one `sendBatch`). */
  publish(messages: TradeEventMessage[]): Promise<void>;
}

/**
 * Events per `publish`: packed 100 to a Queue message (shared/queue-pack.ts), that is at most 5 messages
 * and ~200 KB per `sendBatch` (limits: 100 messages, 256 KB).
 */
export const QUEUE_BATCH = 500;
/**
 * Upper bound of one serialised {@link TradeEventMessage}: at most five ids of ≤ 128 characters, a reason
 * code and numbers. Packs are sized with it (50 events per ~100 KB pack) instead of serialising each one.
 */
const BOOK_MESSAGE_MAX_BYTES = 2_000;
/** Events per `applyBookEvents` call. */
export const SESSION_BATCH = 500;

export function envTransport(env: Pick<Env, "USER_SESSION" | "TRADE_EVENTS">): OutboxTransport {
  return {
    async deliverToSession(account, symbol, events) {
      const stub = env.USER_SESSION.get(env.USER_SESSION.idFromName(account));
      return stub.applyBookEvents(symbol, events);
    },
    async publish(messages) {
      // A book event message is small and bounded (ids ≤ 128 characters): no need to measure each one.
      await env.TRADE_EVENTS.sendBatch(
        packBodies(messages, () => BOOK_MESSAGE_MAX_BYTES).map((body) => ({
          body,
          contentType: "json" as const,
        })),
      );
    },
  };
}

export interface OutboxPolicy {
  /**
   * How long after a commit the alarm drains the outbox, so that deliveries of close commits batch. While
   * commits keep coming the alarm re-arms itself at this interval (a heartbeat), so requests do not pay for
   * `setAlarm` (a storage write their reply would wait for); only the first commit after an idle period
   * arms it. It is also the extra delay before a resting order's owner hears of a fill.
   */
  delayMs: number;
  /** Rows read per drain round. */
  rowsPerRound: number;
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
  roundsPerAlarm: 20,
  sessionConcurrency: 16,
  retryBaseMs: 250,
  retryMaxMs: 60_000,
};

export interface DrainReport {
  /** Rows delivered and deleted. */
  delivered: number;
  /** Rows whose delivery failed this time (rescheduled). */
  failed: number;
  /** Earliest time a remaining row is due, or null when the outbox is empty. */
  nextDueAt: number | null;
}

interface OutboxRow {
  id: number;
  journal_id: number;
  destination: "session" | "queue";
  account: string | null;
  attempts: number;
}

export class Outbox {
  transport: OutboxTransport;
  policy: OutboxPolicy;
  private readonly sql: Sql;
  private readonly symbol: string;
  private readonly sizes: { tickSize: string; lotSize: string };
  private readonly events: EventSource;
  private draining: Promise<DrainReport> | null = null;

  constructor(
    sql: Sql,
    symbol: string,
    sizes: { tickSize: string; lotSize: string },
    events: EventSource,
    transport: OutboxTransport,
    policy: OutboxPolicy = DEFAULT_OUTBOX_POLICY,
  ) {
    this.sql = sql;
    this.symbol = symbol;
    this.sizes = sizes;
    this.events = events;
    this.transport = transport;
    this.policy = policy;
  }

  /**
   * Write the outbox rows of journal row `journalId` (whose events are `events`): one queue row when any
   * event is published, and one session row per account concerned. Call inside the commit transaction.
   * Returns the rows written.
   */
  enqueue(journalId: number, events: readonly EngineEvent[], now: number): number {
    let published = 0;
    let perAccount: Map<string, number> | undefined;
    for (const e of events) {
      if (e.type === "book") continue;
      published++;
      if (!isAccountEvent(e)) continue;
      perAccount ??= new Map();
      for (const account of accountsOf(e)) perAccount.set(account, (perAccount.get(account) ?? 0) + 1);
    }
    let rows = 0;
    if (published > 0) {
      this.sql.run`INSERT INTO outbox (journal_id, destination, account, event_count, created_at)
        VALUES (${journalId}, 'queue', NULL, ${published}, ${now})`;
      rows++;
    }
    if (perAccount !== undefined) {
      for (const [account, count] of perAccount) {
        this.sql.run`INSERT INTO outbox (journal_id, destination, account, event_count, created_at)
          VALUES (${journalId}, 'session', ${account}, ${count}, ${now})`;
        rows++;
      }
    }
    return rows;
  }

  /** Oldest journal row an undelivered outbox row still needs (null when the outbox is empty). */
  oldestJournalId(): number | null {
    return this.sql.one<{ j: number | null }>`SELECT min(journal_id) AS j FROM outbox`?.j ?? null;
  }

  /** The account events of a journal row, stamped with their ids, by account (one pass over the row). */
  private accountEvents(batch: readonly EngineEvent[]): Map<string, AccountBookEvent[]> {
    const out = new Map<string, AccountBookEvent[]>();
    for (const e of batch) {
      if (!isAccountEvent(e)) continue;
      const stamped: AccountBookEvent = {
        ...e,
        eventId: bookEventId(this.symbol, e.seq),
        symbol: this.symbol,
      };
      for (const account of accountsOf(e)) {
        const list = out.get(account);
        if (list === undefined) out.set(account, [stamped]);
        else if (list[list.length - 1] !== stamped) list.push(stamped);
      }
    }
    return out;
  }

  private queueMessages(batch: readonly EngineEvent[]): TradeEventMessage[] {
    const out: TradeEventMessage[] = [];
    for (const e of batch) {
      const m = tradeEventMessage(this.symbol, this.sizes, e);
      if (m !== null) out.push(m);
    }
    return out;
  }

  /** Rows waiting for delivery. */
  pending(): { rows: number; failing: number } {
    const row = this.sql.one<{ rows: number; failing: number | null }>`
      SELECT count(*) AS rows, sum(attempts > 0) AS failing FROM outbox`;
    return { rows: row?.rows ?? 0, failing: row?.failing ?? 0 };
  }

  /**
   * Earliest time a drain can deliver something, or null when empty. An account waiting for a retry is
   * due when its latest back-off ends (its newer rows wait behind the failed one).
   */
  nextDueAt(): number | null {
    return (
      this.sql.one<{ t: number | null }>`SELECT min(due) AS t FROM (
        SELECT max(next_attempt_at) AS due FROM outbox WHERE destination = 'session' GROUP BY account
        UNION ALL
        SELECT min(next_attempt_at) AS due FROM outbox WHERE destination = 'queue')`?.t ?? null
    );
  }

  /**
   * Deliver due rows. Safe to call again while a drain runs (it joins the running one) and after a crash
   * (undeleted rows are simply sent again).
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
      const { delivered, failed, read } = await this.round(now(), now);
      report.delivered += delivered;
      report.failed += failed;
      if (read < this.policy.rowsPerRound || delivered + failed === 0) break;
    }
    report.nextDueAt = this.nextDueAt();
    return report;
  }

  private async round(
    at: number,
    now: () => number,
  ): Promise<{ delivered: number; failed: number; read: number }> {
    const rows = this.sql<OutboxRow & Record<string, string | number | null>>`
      SELECT id, journal_id, destination, account, attempts FROM outbox
      WHERE next_attempt_at <= ${at} ORDER BY id LIMIT ${this.policy.rowsPerRound}`;
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
    const byAccount = new Map<number, Map<string, AccountBookEvent[]>>();
    const eventsFor = (journalId: number, account: string): AccountBookEvent[] => {
      let split = byAccount.get(journalId);
      if (split === undefined) {
        split = this.accountEvents(batchOf(journalId));
        byAccount.set(journalId, split);
      }
      return split.get(account) ?? [];
    };
    // Accounts with an earlier row waiting for a retry are skipped, so each account sees its events in order.
    const backingOff = new Set(
      this.sql<{ account: string }>`
        SELECT DISTINCT account FROM outbox WHERE destination = 'session' AND next_attempt_at > ${at}`.map(
        (r) => r.account,
      ),
    );
    const sessions = new Map<string, OutboxRow[]>();
    const queueRows: OutboxRow[] = [];
    for (const row of rows) {
      if (row.destination === "queue") queueRows.push(row);
      else if (row.account !== null && !backingOff.has(row.account)) {
        const list = sessions.get(row.account);
        if (list === undefined) sessions.set(row.account, [row]);
        else list.push(row);
      }
    }
    const done: number[] = [];
    const failures: { rows: OutboxRow[]; error: unknown }[] = [];

    const accounts = [...sessions];
    let next = 0;
    const worker = async () => {
      while (next < accounts.length) {
        const entry = accounts[next++];
        if (entry === undefined) break;
        const [account, accountRows] = entry;
        const events = accountRows.flatMap((r) => eventsFor(r.journal_id, account));
        try {
          for (let i = 0; i < events.length; i += SESSION_BATCH) {
            await this.transport.deliverToSession(account, this.symbol, events.slice(i, i + SESSION_BATCH));
          }
          for (const r of accountRows) done.push(r.id);
        } catch (error) {
          failures.push({ rows: accountRows, error });
        }
      }
    };
    const queueDelivery = this.publishRows(queueRows, batchOf, done, failures);
    await Promise.all([
      ...Array.from({ length: Math.min(this.policy.sessionConcurrency, accounts.length) }, worker),
      queueDelivery,
    ]);

    const retryAt = now();
    this.sql.transaction(() => {
      if (done.length > 0) {
        const ids = JSON.stringify(done);
        this.sql.run`DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(${ids}))`;
      }
      for (const { rows: failed, error } of failures) {
        const message = (error instanceof Error ? error.message : String(error)).slice(0, 500);
        for (const r of failed) {
          const delay = Math.min(this.policy.retryMaxMs, this.policy.retryBaseMs * 2 ** r.attempts);
          this.sql.run`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ${retryAt + delay},
            last_error = ${message} WHERE id = ${r.id}`;
        }
      }
    });
    const failed = failures.reduce((n, f) => n + f.rows.length, 0);
    if (failed > 0) {
      console.warn(
        JSON.stringify({
          level: "warn",
          msg: "outbox delivery failed",
          symbol: this.symbol,
          rows: failed,
          error: failures.map((f) => (f.error instanceof Error ? f.error.message : String(f.error)))[0],
        }),
      );
    }
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
      for (const m of this.queueMessages(batchOf(row.journal_id))) messages.push(m);
      ends.push(messages.length);
    }
    let sent = 0;
    let finished = 0;
    try {
      while (sent < messages.length) {
        const batch = messages.slice(sent, sent + QUEUE_BATCH);
        await this.transport.publish(batch);
        sent += batch.length;
        while (finished < rows.length && (ends[finished] ?? 0) <= sent) {
          done.push((rows[finished] as OutboxRow).id);
          finished++;
        }
      }
    } catch (error) {
      failures.push({ rows: rows.slice(finished), error });
    }
  }
}
