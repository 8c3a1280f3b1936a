-- Global database (prepx): queue messages that could not be processed (issue 8).
-- Written by the trade-events-dlq consumer (workers/consumers/dead-letters.ts); see docs/runbooks/database.md.
CREATE TABLE dead_letters (
  message_id   text PRIMARY KEY,
  queue        text NOT NULL,
  event_id     text,
  reason       text NOT NULL,
  attempts     integer NOT NULL,
  body         jsonb,
  received_at  timestamptz NOT NULL DEFAULT now(),
  resolved_at  timestamptz
);
CREATE INDEX dead_letters_open_idx ON dead_letters (received_at) WHERE resolved_at IS NULL;
