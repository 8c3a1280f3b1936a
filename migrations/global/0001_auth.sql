-- Global database (prepx): the directories that find a user's shard, and the admin audit log.
-- Idempotent: safe to run more than once. Mirrors workers/db/schema/global.ts.

CREATE TABLE IF NOT EXISTS email_directory (
  email       text        PRIMARY KEY CHECK (email = lower(email)),
  user_id     uuid        NOT NULL UNIQUE,
  shard       integer     NOT NULL CHECK (shard >= 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS api_keys (
  key_id        text        PRIMARY KEY,
  user_id       uuid        NOT NULL,
  shard         integer     NOT NULL CHECK (shard >= 0),
  name          text        NOT NULL,
  secret_hash   text        NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_user_idx ON api_keys (user_id, created_at);

CREATE TABLE IF NOT EXISTS audit_log (
  id             bigserial   PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT now(),
  actor_user_id  uuid        NOT NULL,
  actor_via      text        NOT NULL CHECK (actor_via IN ('jwt', 'api_key')),
  actor_key_id   text,
  action         text        NOT NULL,
  target         text        NOT NULL,
  details        jsonb       NOT NULL DEFAULT '{}'::jsonb,
  request_id     text        NOT NULL,
  ip             text
);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_actor_idx ON audit_log (actor_user_id, at);
