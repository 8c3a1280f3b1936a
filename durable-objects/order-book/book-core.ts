/**
 * The durable heart of an OrderBook object: the engine, its journal, snapshots and outbox, and the commit
 * path that ties them together. Uses only the SQL helper, so it holds no sockets and no alarms; the
 * Durable Object class around it does.
 *
 * Durability design:
 * - Every committed batch is one journal row: the commands exactly as processed, `now` included, written
 *   in one synchronous transaction. Replies leave only once it is durable (the object's output gate).
 * - The journal is also the outbox: a batch is undelivered while its row lies after the outbox's delivery
 *   cursor (see outbox.ts), so the row that makes a batch durable also puts it in the outbox.
 * - A batch's events are not written at commit: the engine is deterministic, so they are a function of the
 *   commands. The outbox delivers them from memory (`RecentEvents`); after a restart, the replay of the
 *   batches after the latest snapshot regenerates them. They are stored (journal_events) only where
 *   neither works: a batch the outbox still needs that is pushed out of memory by newer ones, or that a
 *   new snapshot is about to cover (replay starts after it). Events are ~80 % of a batch's JSON: not
 *   serialising and writing them gave `submitMany` 13–38 % more orders per second (docs/adr/0007).
 * - Recovery is the latest engine snapshot plus a replay of the journal's commands after it. The engine is
 *   deterministic, and each replayed batch must end on the engine seq it recorded, or the wake fails.
 * - Snapshots are taken by the alarm every `snapshotEveryCommands` commands (more for a big book, see
 *   `snapshotCommandsPerOpenOrder`), or after `snapshotMaxAgeMs` of activity, split into parts under
 *   SQLite's 2 MB row limit; the two latest are kept.
 * - Journal rows are pruned once both kept snapshots cover them, the outbox no longer needs them, and
 *   they are older than the audit window (`journalRetentionMs`).
 * - Rows of receivers that fell behind reference their journal row, so each batch is stored once.
 * @internal
 */
import { EventLog } from "../../shared/engine/event-log.ts";
import { MatchingEngine, stateHashOf } from "../../shared/engine/index.ts";
import type { EngineCommand, EngineEvent } from "../../shared/engine/types.ts";
import { referencePriceTicks, type SymbolSpec, symbolRules } from "../../shared/symbols.ts";
import type { Sql } from "../sql.ts";
import { Journal } from "./journal.ts";
import { countSequenced, MarketDataFormatter } from "./market-data.ts";
import { type DrainReport, Outbox, type OutboxTransport } from "./outbox.ts";
import type { SequencedMessage } from "./protocol.ts";

export interface BookPolicy {
  /** Take a snapshot once this many commands were journaled since the last one… */
  snapshotEveryCommands: number;
  /**
   * …and at least this many per open order. A snapshot costs in proportion to the book (every open order
   * serialised, hashed and written: ~50 ms for 20,000 orders), a replay in proportion to the commands
   * since the last one (~3 µs each), so a fixed interval made a big, busy book stall for a snapshot every
   * few thousand orders of its own. With the interval a multiple of the book's size, snapshots cost each
   * command a bounded share whatever the book's size, and recovery replays at most that multiple of the
   * snapshot it loads. 0: `snapshotEveryCommands` alone.
   */
  snapshotCommandsPerOpenOrder: number;
  /** …or once anything was journaled and the last snapshot is older than this. */
  snapshotMaxAgeMs: number;
  /** Journal rows covered by every kept snapshot are deleted after this long (audit window). */
  journalRetentionMs: number;
  /** Largest `submitMany`. */
  maxBatch: number;
  /**
   * Events of undelivered batches kept in memory for the outbox at most (as event-log rows, ~130 bytes
   * each; only those it delivers, L2 book deltas are left out): 80,000 hold ~500 batches of 100 orders,
   * several seconds of a busy book whose receivers lag. Delivered batches leave at once (`drainOutbox`).
   */
  recentEvents: number;
}

/** Rows of a commit's event log: a batch of 1,000 orders writes ~2,500; it grows when needed… */
const LOG_ROWS = 4096;
/** …and is replaced by a new one when it grew past this (a log row is ~130 bytes). */
const LOG_KEEP_ROWS = 16_384;

export const DEFAULT_BOOK_POLICY: BookPolicy = {
  snapshotEveryCommands: 10_000,
  snapshotCommandsPerOpenOrder: 4,
  snapshotMaxAgeMs: 60_000,
  journalRetentionMs: 24 * 60 * 60 * 1000,
  maxBatch: 1000,
  recentEvents: 80_000,
};

/** How the last wake rebuilt the book. */
export interface RecoveryInfo {
  /** Journal row covered by the snapshot it started from (null: started from an empty book). */
  fromSnapshotJournalId: number | null;
  replayedBatches: number;
  replayedCommands: number;
}

export interface CommitResult {
  /**
   * Every event of the batch as rows, the expiry pass's (if any) first. The book reuses this log for its
   * next commit: read it before then (`eventsOf`, `packLog`).
   */
  log: EventLog;
  /** The rows of given command `k` are `[bounds[k], bounds[k + 1])`. */
  bounds: number[];
  /** Sequenced market-data messages (only when asked for). */
  messages: SequencedMessage[] | null;
  /** Halt / resume in this batch: the trading status after it. */
  statusChanged: boolean;
  /** Whether a journal row was written (then the outbox has a batch to deliver). */
  journaled: boolean;
}

export class BookCore {
  readonly spec: SymbolSpec;
  readonly engine: MatchingEngine;
  readonly journal: Journal;
  readonly outbox: Outbox;
  readonly md: MarketDataFormatter;
  readonly recovery: RecoveryInfo;
  policy: BookPolicy;
  /** Seq of the last market-data message (delta or trade). */
  mdSeq: number;
  commandsSinceSnapshot: number;
  lastSnapshotAt: number;

  private readonly recent: RecentEvents;
  /** The rows of the batch being committed, reused from commit to commit (see `CommitResult.log`). */
  private log = new EventLog(LOG_ROWS);

  private constructor(
    recent: RecentEvents,
    spec: SymbolSpec,
    engine: MatchingEngine,
    journal: Journal,
    outbox: Outbox,
    recovery: RecoveryInfo,
    state: { mdSeq: number; commandsSinceSnapshot: number; lastSnapshotAt: number },
    policy: BookPolicy,
  ) {
    this.recent = recent;
    this.spec = spec;
    this.engine = engine;
    this.journal = journal;
    this.outbox = outbox;
    this.md = new MarketDataFormatter(spec);
    this.recovery = recovery;
    this.mdSeq = state.mdSeq;
    this.commandsSinceSnapshot = state.commandsSinceSnapshot;
    this.lastSnapshotAt = state.lastSnapshotAt;
    this.policy = policy;
  }

  /** Earliest `expiresAt` of an open order, or null. */
  get nextExpiryAt(): number | null {
    return this.engine.nextExpiryAt;
  }

  /**
   * Rebuild the book: the latest snapshot (or an empty book from `spec`), then every journaled batch after
   * it, checking that each replayed batch ends on the engine seq it ended on when it was first processed.
   */
  static open(
    sql: Sql,
    spec: SymbolSpec,
    transport: OutboxTransport,
    now: number,
    policy: BookPolicy = DEFAULT_BOOK_POLICY,
  ): BookCore {
    const journal = new Journal(sql);
    const snap = journal.latestSnapshot();
    let engine: MatchingEngine;
    let mdSeq = 0;
    if (snap !== null) {
      engine = MatchingEngine.restore(snap.state);
      // The restored engine must snapshot to exactly what was stored.
      const hash =
        snap.hashOf === "text" ? stateHashOf(JSON.stringify(engine.snapshot())) : engine.stateHash();
      if (hash !== snap.stateHash) {
        throw new Error(`${spec.symbol}: snapshot hash ${hash} differs from stored ${snap.stateHash}`);
      }
      mdSeq = snap.mdSeq;
    } else {
      engine = new MatchingEngine(symbolRules(spec), { referencePrice: referencePriceTicks(spec) });
    }
    const recent = new RecentEvents(() => policy.recentEvents);
    const outbox = new Outbox(
      sql,
      spec.symbol,
      spec,
      (id) => {
        const events = recent.get(id) ?? journal.events(id);
        // Unreachable while RecentEvents' eviction and takeSnapshot store what is needed: fail loudly, never skip.
        if (events === null) throw new Error(`${spec.symbol}: events of journal ${id} are lost`);
        return events;
      },
      () => journal.lastId,
      transport,
    );
    // Batches the outbox has yet to deliver get their events back from the replay.
    const needed = outbox.oldestJournalId();
    const log = new EventLog(1024);
    let replayedBatches = 0;
    let replayedCommands = 0;
    for (const batch of journal.tail(snap?.journalId ?? 0)) {
      log.clear();
      for (const cmd of batch.commands) engine.process(cmd, log);
      if (engine.seq !== batch.lastSeq) {
        throw new Error(
          `${spec.symbol}: replay of journal ${batch.id} ended at seq ${engine.seq}, journal says ${batch.lastSeq}`,
        );
      }
      if (needed !== null && batch.id >= needed) {
        recent.add(batch.id, deliverable(log), (id, events) => journal.storeEvents(id, events));
      }
      mdSeq = batch.mdSeq;
      replayedBatches++;
      replayedCommands += batch.commands.length;
    }
    return new BookCore(
      recent,
      spec,
      engine,
      journal,
      outbox,
      { fromSnapshotJournalId: snap?.journalId ?? null, replayedBatches, replayedCommands },
      {
        mdSeq,
        commandsSinceSnapshot: replayedCommands,
        lastSnapshotAt: snap?.createdAt ?? now,
      },
      policy,
    );
  }

  /**
   * Process `commands` (already normalised, `now` filled in) and make the batch durable: one journal row
   * (which also puts its events in the outbox), written synchronously. An expiry pass runs first when an
   * open order's `expiresAt` has come. If the write fails the in-memory engine is ahead of storage: the
   * caller must discard this object (the Durable Object aborts itself) so the next wake rebuilds from
   * storage.
   */
  commit(commands: readonly EngineCommand[], now: number, buildMessages: boolean): CommitResult {
    const processed: EngineCommand[] = [];
    // A rare huge batch (an expiry pass over thousands of orders) grows the log; do not keep that size.
    if (this.log.capacity > LOG_KEEP_ROWS) this.log = new EventLog(LOG_ROWS);
    const log = this.log;
    log.clear();
    if (this.nextExpiryAt !== null && this.nextExpiryAt <= now) {
      const tick: EngineCommand = { kind: "tick", now };
      processed.push(tick);
      this.engine.process(tick, log);
    }
    const bounds = [log.length];
    for (const cmd of commands) {
      this.engine.process(cmd, log);
      processed.push(cmd);
      bounds.push(log.length);
    }
    const result: CommitResult = {
      log,
      bounds,
      messages: null,
      statusChanged: false,
      journaled: false,
    };
    if (processed.length === 0) return result;

    for (let i = 0; i < log.length; i++) {
      if (log.type(i) === "trading_status") result.statusChanged = true;
    }
    if (buildMessages) {
      result.messages = this.md.batch(log, this.mdSeq);
      this.mdSeq += result.messages.length;
    } else {
      this.mdSeq += countSequenced(log);
    }
    // One row: the batch is durable and in the outbox (it lies after the delivery cursor) at once.
    const journalId = this.journal.append({
      commands: processed,
      firstSeq: log.length > 0 ? log.seq(0) : 0,
      lastSeq: log.length > 0 ? log.seq(log.length - 1) : this.engine.seq,
      mdSeq: this.mdSeq,
      createdAt: now,
    });
    this.recent.add(journalId, deliverable(log), (id, evicted) => this.storeIfNeeded(id, evicted));
    result.journaled = true;
    this.commandsSinceSnapshot += processed.length;
    return result;
  }

  /**
   * Deliver what the outbox holds (`Outbox.drain`), then let go of the events of every batch no receiver
   * needs any more. Why: kept until the count bound pushed them out, a busy book held 80,000 delivered
   * event objects at all times, long-lived enough to be promoted, and the old generation's collections
   * then walked them again and again; the outbox needs only the batches after its cursor and those of
   * receivers that fell behind.
   */
  async drainOutbox(now: () => number): Promise<DrainReport> {
    const report = await this.outbox.drain(now);
    this.recent.releaseBefore(this.outbox.oldestJournalId());
    return report;
  }

  /** Events held in memory for the outbox (undelivered batches, and any that a failing receiver awaits). */
  get recentEventCount(): number {
    return this.recent.size;
  }

  /** A batch leaves memory: store its events if the outbox has yet to deliver them. */
  private storeIfNeeded(journalId: number, events: EventLog): void {
    const needed = this.outbox.oldestJournalId();
    if (needed !== null && journalId >= needed) this.journal.storeEvents(journalId, events);
  }

  /** Whether a snapshot is due at `now`, and if not, when the age rule will make it due. */
  snapshotDue(now: number): { due: boolean; at: number | null } {
    if (this.commandsSinceSnapshot === 0) return { due: false, at: null };
    const at = this.lastSnapshotAt + this.policy.snapshotMaxAgeMs;
    const every = Math.max(
      this.policy.snapshotEveryCommands,
      this.policy.snapshotCommandsPerOpenOrder * this.engine.openOrderCount,
    );
    return { due: this.commandsSinceSnapshot >= every || now >= at, at };
  }

  /** Snapshot the engine as of the last journal row, then prune journal rows outside the audit window. */
  takeSnapshot(now: number): { journalId: number; pruned: number } {
    const journalId = this.journal.lastId;
    // A replay after a restart starts after this snapshot: it can no longer give back what it covers.
    const needed = this.outbox.oldestJournalId();
    if (needed !== null) this.recent.storeFrom(needed, (id, events) => this.journal.storeEvents(id, events));
    const text = JSON.stringify(this.engine.snapshot());
    this.journal.writeSnapshot({
      journalId,
      seq: this.engine.seq,
      mdSeq: this.mdSeq,
      createdAt: now,
      text,
      textHash: stateHashOf(text),
    });
    this.commandsSinceSnapshot = 0;
    this.lastSnapshotAt = now;
    // Rows the outbox has yet to deliver are kept whatever their age.
    const pruned = this.journal.prune(now - this.policy.journalRetentionMs, needed);
    return { journalId, pruned };
  }
}

/**
 * The events the outbox delivers (to accounts and the queue): all but L2 book deltas, as rows of a log of
 * their own. Rows, not objects: they wait for the outbox's next drain (~20 ms), long enough for objects to
 * survive a young-generation collection and be copied; a log is three arrays however many events it holds.
 */
function deliverable(log: EventLog): EventLog {
  let count = 0;
  for (let i = 0; i < log.length; i++) if (log.type(i) !== "book") count++;
  const out = new EventLog(count);
  for (let i = 0; i < log.length; i++) if (log.type(i) !== "book") out.copyRow(log, i);
  return out;
}

/** The events of the commit's command `k` (in the order given to `commit`), as objects. */
export function eventsOf(result: CommitResult, k: number): EngineEvent[] {
  return result.log.events(result.bounds[k], result.bounds[k + 1]);
}

/**
 * The events of the latest committed batches, from which the outbox delivers (the journal holds commands
 * only). Bounded by event count: a batch pushed out goes to `evict`, which stores it if the outbox still
 * needs it (a receiver that has been failing for a while, a long backlog). Each batch is stored at most once.
 */
class RecentEvents {
  private readonly batches = new Map<number, { events: EventLog; stored: boolean }>();
  private events = 0;
  /** The bound, read on every add (a policy the object may change while it runs). */
  private readonly maxEvents: () => number;

  constructor(maxEvents: () => number) {
    this.maxEvents = maxEvents;
  }

  /** A batch's events as objects (built for each call: the outbox asks once per delivery round). */
  get(journalId: number): EngineEvent[] | undefined {
    return this.batches.get(journalId)?.events.events();
  }

  /** Events held. */
  get size(): number {
    return this.events;
  }

  /**
   * Forget the batches before `journalId` (the oldest one the outbox still needs), or every batch when
   * it needs none (null). Batches arrive in journal order, so they are the first ones of the map.
   */
  releaseBefore(journalId: number | null): void {
    for (const [id, batch] of this.batches) {
      if (journalId !== null && id >= journalId) break;
      this.batches.delete(id);
      this.events -= batch.events.length;
    }
  }

  add(journalId: number, events: EventLog, evict: (id: number, events: EventLog) => void): void {
    this.batches.set(journalId, { events, stored: false });
    this.events += events.length;
    for (const [id, old] of this.batches) {
      if (this.events <= this.maxEvents() || id === journalId) break;
      if (!old.stored) evict(id, old.events);
      this.batches.delete(id);
      this.events -= old.events.length;
    }
  }

  /** Store every batch from `journalId` on that is not stored yet. */
  storeFrom(journalId: number, store: (id: number, events: EventLog) => void): void {
    for (const [id, batch] of this.batches) {
      if (id < journalId || batch.stored) continue;
      store(id, batch.events);
      batch.stored = true;
    }
  }
}
