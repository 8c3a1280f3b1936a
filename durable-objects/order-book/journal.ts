/**
 * The OrderBook's durable log: one journal row per committed command batch (its commands; its events only
 * when stored on purpose, see docs/adr/0007-command-journal.md), periodic engine snapshots, and the reads
 * recovery needs (latest snapshot, then the journal tail after it).
 * @internal
 */
import { brotliCompressSync, brotliDecompressSync, constants } from "node:zlib";
import type { EventLog } from "../../shared/engine/event-log.ts";
import type { EngineCommand, EngineEvent, EngineSnapshot } from "../../shared/engine/types.ts";
import { packFromBytes, packLog, packToBytes, unpackEvents } from "../../shared/engine/wire.ts";
import type { Sql } from "../sql.ts";

const BROTLI_FASTEST = {
  params: { [constants.BROTLI_PARAM_QUALITY]: 0, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT },
};

/**
 * For a batch's commands (every commit): a 64 KB window (lgwin 16) instead of the default 4 MB. The encoder
 * sets up less per call, a third faster for the 13 KB of a batch of 100 orders in Node (45 vs 68 µs), and
 * the output is byte for byte as small, since such a text is far shorter than either window. Rows written
 * with the default window (and the Brotli event bodies of schema version 3) read the same: any Brotli
 * decoder reads both.
 */
export const BROTLI_FASTEST_SMALL = {
  params: { ...BROTLI_FASTEST.params, [constants.BROTLI_PARAM_LGWIN]: 16 },
};

/**
 * Brotli at its fastest quality: a batch's JSON (which repeats every key) shrinks about 8× (13 KB to
 * 1.6 KB for 100 orders), and the journal keeps its rows for the audit window. At that size the commit
 * costs about the same either way (docs/capacity.md, "Where a batch's time goes"); with events in the row,
 * as version 2 wrote it, a 60 KB row committed in ~1 ms and an 8 KB one in ~0.45 ms.
 */
function compress(text: string): ArrayBuffer {
  const out = brotliCompressSync(text, BROTLI_FASTEST_SMALL);
  return out.byteOffset === 0 && out.byteLength === out.buffer.byteLength
    ? (out.buffer as ArrayBuffer)
    : (out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer);
}

function decompress(body: ArrayBuffer): string {
  return brotliDecompressSync(new Uint8Array(body)).toString("utf8");
}

/**
 * The commands of a body: version 2 joined commands and events (`${commands}\n${events}`), later versions
 * hold commands only.
 */
function firstLine(joined: string): string {
  const end = joined.indexOf("\n");
  return end === -1 ? joined : joined.slice(0, end);
}

/** Stored events are split into pieces of at most this many bytes (rows are capped at 2 MB). */
const EVENT_PART_BYTES = 1_500_000;

/** Smaller batches (a single order's is ~1 KB) fit in one page as text, so compressing them saves nothing. */
const COMPRESS_FROM_CHARS = 4_000;

/**
 * Largest text written to one row, in UTF-16 code units. SQLite in Durable Objects caps a row at 2 MB and
 * one code unit takes at most 3 bytes of UTF-8, so 600,000 units stay below 1.8 MB.
 */
export const PART_CHARS = 600_000;

/** Split `text` into pieces of at most `size` code units without cutting a surrogate pair. */
export function splitText(text: string, size = PART_CHARS): string[] {
  const parts: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    parts.push(text.slice(start, end));
    start = end;
  }
  return parts;
}

export interface JournalEntry {
  commands: readonly EngineCommand[];
  /** First and last engine seq of the batch's events (0 / 0 when there are none). */
  firstSeq: number;
  lastSeq: number;
  /** Market-data seq after this batch. */
  mdSeq: number;
  createdAt: number;
}

export interface StoredSnapshot {
  journalId: number;
  seq: number;
  mdSeq: number;
  /**
   * What `stateHash` hashes: "text", `stateHashOf` of the snapshot's JSON text (what is written now: the
   * text exists anyway, and the canonical form takes tens of milliseconds for a big book); "state", the
   * engine's `stateHash()` (snapshots written before schema version 3).
   */
  hashOf: "state" | "text";
  stateHash: string;
  createdAt: number;
  state: EngineSnapshot;
}

/** A snapshot to store: the engine's `snapshot()` as JSON text, and `stateHashOf` that text. */
export interface SnapshotToWrite {
  journalId: number;
  seq: number;
  mdSeq: number;
  createdAt: number;
  text: string;
  textHash: string;
}

export interface TailBatch {
  id: number;
  lastSeq: number;
  mdSeq: number;
  commands: EngineCommand[];
}

export class Journal {
  private readonly sql: Sql;
  /** Id of the last journal row (0 when empty). */
  lastId: number;

  constructor(sql: Sql) {
    this.sql = sql;
    this.lastId = sql.one<{ id: number | null }>`SELECT max(id) AS id FROM journal`?.id ?? 0;
  }

  /**
   * Append one batch's commands (one row, or one row and its parts in one transaction); its events are
   * not stored (see {@link storeEvents}). Returns its journal id.
   */
  append(entry: JournalEntry): number {
    const id = this.lastId + 1;
    const commands = JSON.stringify(entry.commands);
    const count = entry.commands.length;
    if (commands.length < COMPRESS_FROM_CHARS) {
      this.sql
        .run`INSERT INTO journal (id, first_seq, last_seq, md_seq, command_count, created_at, commands, events, events_at, parts)
        VALUES (${id}, ${entry.firstSeq}, ${entry.lastSeq}, ${entry.mdSeq}, ${count}, ${entry.createdAt}, ${commands}, '', 'none', 0)`;
    } else if (commands.length <= PART_CHARS) {
      this.sql
        .run`INSERT INTO journal (id, first_seq, last_seq, md_seq, command_count, created_at, commands, events, events_at, body_z, parts)
        VALUES (${id}, ${entry.firstSeq}, ${entry.lastSeq}, ${entry.mdSeq}, ${count}, ${entry.createdAt}, '', '', 'none', ${compress(commands)}, 0)`;
    } else {
      const parts = splitText(commands);
      this.sql.transaction(() => {
        this.sql
          .run`INSERT INTO journal (id, first_seq, last_seq, md_seq, command_count, created_at, commands, events, events_at, parts)
          VALUES (${id}, ${entry.firstSeq}, ${entry.lastSeq}, ${entry.mdSeq}, ${count}, ${entry.createdAt}, '', '', 'none', ${parts.length})`;
        parts.forEach((body, part) => {
          this.sql.run`INSERT INTO journal_parts (journal_id, part, body) VALUES (${id}, ${part}, ${body})`;
        });
      });
    }
    this.lastId = id;
    return id;
  }

  /**
   * Store the events of journal row `id` that the outbox delivers (the caller's copy already leaves out L2
   * book deltas), for when the object can no longer keep or regenerate them (see book-core.ts). Idempotent.
   * Written as their pack's bytes (`packToBytes`), straight from the rows: a book whose receivers lag
   * stores every batch it pushes out of memory, on its commit path, and building the events as objects,
   * their JSON and Brotli took three times as long (~320 against ~96 µs per batch of 100 orders in Node).
   */
  storeEvents(id: number, events: EventLog): void {
    const body = packToBytes(packLog(events, [0, events.length]));
    this.sql.run`DELETE FROM journal_events WHERE journal_id = ${id}`;
    for (let part = 0, at = 0; at < body.length || part === 0; part++, at += EVENT_PART_BYTES) {
      const piece = body.slice(at, at + EVENT_PART_BYTES).buffer;
      this.sql
        .run`INSERT INTO journal_events (journal_id, part, body, format) VALUES (${id}, ${part}, ${piece}, 'pack')`;
    }
    this.sql.run`UPDATE journal SET events_at = 'table' WHERE id = ${id}`;
  }

  /** Journal rows after `afterId`, oldest first, read in pages. */
  *tail(afterId: number, pageSize = 64): Generator<TailBatch> {
    let cursor = afterId;
    for (;;) {
      const rows = this.sql<{
        id: number;
        last_seq: number;
        md_seq: number;
        commands: string;
        body_z: ArrayBuffer | null;
        parts: number;
      }>`SELECT id, last_seq, md_seq, commands, body_z, parts FROM journal WHERE id > ${cursor} ORDER BY id LIMIT ${pageSize}`;
      for (const row of rows) {
        const commands =
          row.body_z === null && row.parts === 0
            ? row.commands
            : firstLine(row.body_z !== null ? decompress(row.body_z) : this.joinedParts(row.id));
        yield {
          id: row.id,
          lastSeq: row.last_seq,
          mdSeq: row.md_seq,
          commands: JSON.parse(commands) as EngineCommand[],
        };
        cursor = row.id;
      }
      if (rows.length < pageSize) return;
    }
  }

  /**
   * The stored events of one journal row: all of them for rows written before the command journal, those
   * the outbox delivers for rows whose events were stored later; null when they were never stored (the
   * object keeps them in memory or regenerates them on wake) or the row is gone.
   */
  events(id: number): EngineEvent[] | null {
    const row = this.sql.one<{
      events: string;
      events_at: "row" | "none" | "table";
      body_z: ArrayBuffer | null;
      parts: number;
    }>`SELECT events, events_at, body_z, parts FROM journal WHERE id = ${id}`;
    if (row === undefined || row.events_at === "none") return null;
    let text: string;
    if (row.events_at === "table") {
      const pieces = this.sql<{
        body: ArrayBuffer;
        format: "json" | "pack";
      }>`SELECT body, format FROM journal_events WHERE journal_id = ${id} ORDER BY part`;
      const body = new Uint8Array(pieces.reduce((n, p) => n + p.body.byteLength, 0));
      let at = 0;
      for (const p of pieces) {
        body.set(new Uint8Array(p.body), at);
        at += p.body.byteLength;
      }
      if (pieces[0]?.format === "pack") return unpackEvents(packFromBytes(body))[0] ?? [];
      text = decompress(body.buffer);
    } else if (row.body_z !== null || row.parts > 0) {
      const joined = row.body_z !== null ? decompress(row.body_z) : this.joinedParts(id);
      text = joined.slice(joined.indexOf("\n") + 1);
    } else {
      text = row.events;
    }
    // Rows hold the events flat or grouped by command (version 2's bodies).
    return (JSON.parse(text) as (EngineEvent | EngineEvent[])[]).flat();
  }

  private joinedParts(id: number): string {
    return this.sql<{ body: string }>`SELECT body FROM journal_parts WHERE journal_id = ${id} ORDER BY part`
      .map((r) => r.body)
      .join("");
  }

  /** Store a snapshot of the engine as of journal row `journalId`, keeping the `keep` latest. */
  writeSnapshot(snap: SnapshotToWrite, keep = 2): number {
    const createdAt = snap.createdAt;
    const parts = splitText(snap.text);
    return this.sql.transaction(() => {
      const row = this.sql.one<{
        id: number;
      }>`INSERT INTO snapshots (journal_id, seq, md_seq, state_hash, hash_of, parts, created_at)
        VALUES (${snap.journalId}, ${snap.seq}, ${snap.mdSeq}, ${snap.textHash}, 'text', ${parts.length}, ${createdAt}) RETURNING id`;
      const id = row?.id ?? 0;
      parts.forEach((body, part) => {
        this.sql.run`INSERT INTO snapshot_parts (snapshot_id, part, body) VALUES (${id}, ${part}, ${body})`;
      });
      const old = this.sql<{ id: number }>`SELECT id FROM snapshots ORDER BY id DESC LIMIT -1 OFFSET ${keep}`;
      for (const { id: oldId } of old) {
        this.sql.run`DELETE FROM snapshot_parts WHERE snapshot_id = ${oldId}`;
        this.sql.run`DELETE FROM snapshots WHERE id = ${oldId}`;
      }
      return id;
    });
  }

  /** Journal id covered by the latest snapshot (0 when there is none). */
  latestSnapshotJournalId(): number {
    return this.sql.one<{ j: number | null }>`SELECT max(journal_id) AS j FROM snapshots`?.j ?? 0;
  }

  latestSnapshot(): StoredSnapshot | null {
    const row = this.sql.one<{
      id: number;
      journal_id: number;
      seq: number;
      md_seq: number;
      state_hash: string;
      hash_of: "state" | "text";
      parts: number;
      created_at: number;
    }>`SELECT id, journal_id, seq, md_seq, state_hash, hash_of, parts, created_at FROM snapshots ORDER BY id DESC LIMIT 1`;
    if (row === undefined) return null;
    const bodies = this.sql<{
      body: string;
    }>`SELECT body FROM snapshot_parts WHERE snapshot_id = ${row.id} ORDER BY part`;
    if (bodies.length !== row.parts) {
      throw new Error(`snapshot ${row.id} has ${bodies.length} of ${row.parts} parts`);
    }
    return {
      journalId: row.journal_id,
      seq: row.seq,
      mdSeq: row.md_seq,
      hashOf: row.hash_of,
      stateHash: row.state_hash,
      createdAt: row.created_at,
      state: JSON.parse(bodies.map((b) => b.body).join("")) as EngineSnapshot,
    };
  }

  /**
   * Delete journal rows that every kept snapshot already covers, that are older than `before` (audit
   * retention) and that come before `keepFrom` (the oldest row the outbox still reads, if any).
   * Returns the number of rows deleted.
   */
  prune(before: number, keepFrom: number | null, limit = 5000): number {
    const covered = this.sql.one<{ j: number | null }>`SELECT min(journal_id) AS j FROM snapshots`?.j ?? 0;
    const floor = keepFrom === null ? covered : Math.min(covered, keepFrom - 1);
    if (floor <= 0) return 0;
    const ids = this.sql<{
      id: number;
      parts: number;
    }>`SELECT id, parts FROM journal WHERE id <= ${floor} AND created_at < ${before} ORDER BY id LIMIT ${limit}`;
    if (ids.length === 0) return 0;
    const maxId = ids[ids.length - 1]?.id ?? 0;
    this.sql.transaction(() => {
      this.sql.run`DELETE FROM journal_parts WHERE journal_id <= ${maxId}`;
      this.sql.run`DELETE FROM journal_events WHERE journal_id <= ${maxId}`;
      this.sql.run`DELETE FROM journal WHERE id <= ${maxId}`;
    });
    return ids.length;
  }
}
