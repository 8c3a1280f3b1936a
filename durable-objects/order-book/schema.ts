/**
 * SQLite schema of an OrderBook object. Applied once per wake by `migrate()` inside
 * `blockConcurrencyWhile`; append a new version to change it, never edit a shipped one.
 *
 * Every table is STRICT, so a price or quantity can only ever be stored as an INTEGER (ticks / lots), never
 * REAL. The JSON bodies hold the engine's commands and events, whose prices and quantities are integers too.
 * @internal
 */
import type { Migration } from "../sql.ts";

export const ORDER_BOOK_SCHEMA = "order_book";

export const ORDER_BOOK_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "book config, command journal, engine snapshots, transactional outbox",
    up: `
      CREATE TABLE book_config (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        symbol TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;

      -- One row per committed command batch: the commands exactly as processed and the events they produced.
      CREATE TABLE journal (
        id INTEGER PRIMARY KEY,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        md_seq INTEGER NOT NULL,
        command_count INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        commands TEXT NOT NULL,
        events TEXT NOT NULL,
        parts INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      -- Bodies too large for one row (SQLite rows are capped at 2 MB) are split here.
      CREATE TABLE journal_parts (
        journal_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (journal_id, part)
      ) STRICT;

      -- Engine snapshots; each covers the journal up to journal_id.
      CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY,
        journal_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        md_seq INTEGER NOT NULL,
        state_hash TEXT NOT NULL,
        parts INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE snapshot_parts (
        snapshot_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, part)
      ) STRICT;

      -- Transactional outbox, written in the same transaction as the journal row: one row per batch and
      -- receiver (an account's UserSession, or the queue). The events themselves are read from the journal
      -- row it references, so they are stored once. Deleted once delivered.
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        journal_id INTEGER NOT NULL,
        destination TEXT NOT NULL CHECK (destination IN ('session', 'queue')),
        account TEXT,
        event_count INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
      ) STRICT;
      CREATE INDEX outbox_due ON outbox (next_attempt_at, id);
    `,
  },
  {
    version: 2,
    description:
      "the journal is the outbox (a delivery cursor over it; outbox rows only for receivers that fell behind); compressed journal bodies",
    up: `
      -- Journal rows after delivered_through are committed batches not yet delivered; committing a batch
      -- writes only its journal row. A receiver whose delivery failed (or that waits behind an earlier
      -- failed row of its own) gets its part of a batch as a row of the outbox table, as in version 1.
      -- Rows written by version 1 are exactly such rows: they stay and are delivered as before.
      CREATE TABLE outbox_cursor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        delivered_through INTEGER NOT NULL
      ) STRICT;
      INSERT INTO outbox_cursor (id, delivered_through) SELECT 1, coalesce(max(id), 0) FROM journal;

      -- A batch's commands and events as one Brotli body (their JSON texts joined by a newline, about 7×
      -- smaller); commands and events are '' then. Small batches, batches too large for one row
      -- (journal_parts) and rows written before keep the text columns. The events text is either flat or
      -- grouped by command ([[...], [...]]); readers flatten it.
      ALTER TABLE journal ADD COLUMN body_z BLOB;
    `,
  },
  {
    version: 3,
    description:
      "a command journal: a batch's events are stored only when the outbox could not otherwise have them; snapshot hashes of their text",
    up: `
      -- Rows from this version on hold the commands only (as text, or Brotli in body_z): recovery replays
      -- commands, and the outbox delivers from memory. The events of a batch (those the outbox delivers:
      -- all but L2 book deltas) are written to journal_events only when the outbox still needs them and
      -- the object would otherwise lose them: pushed out of memory before delivery, or behind a snapshot
      -- (the replay after a restart regenerates exactly the batches after the latest snapshot).
      -- events_at: row (in the columns of the row, as versions 1 and 2 wrote), none, table.
      ALTER TABLE journal ADD COLUMN events_at TEXT NOT NULL DEFAULT 'row' CHECK (events_at IN ('row', 'none', 'table'));
      -- Brotli of the JSON of the events, in pieces under the 2 MB row limit.
      CREATE TABLE journal_events (
        journal_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (journal_id, part)
      ) STRICT;
      -- What state_hash of a snapshot hashes: state, the canonical stateHash() of the engine (written
      -- before); text, the JSON text of the snapshot (cheaper; on wake the restored engine must give it back).
      ALTER TABLE snapshots ADD COLUMN hash_of TEXT NOT NULL DEFAULT 'state' CHECK (hash_of IN ('state', 'text'));
    `,
  },
  {
    version: 4,
    description: "stored events as packed bytes",
    up: `
      -- How a journal_events body is written: json, Brotli of the events' JSON (version 3); pack, the bytes
      -- of the events' pack (shared/engine/wire.ts, packToBytes), written straight from the engine's rows.
      ALTER TABLE journal_events ADD COLUMN format TEXT NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'pack'));
    `,
  },
];
