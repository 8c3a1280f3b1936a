-- Every user shard (prepx_shard_<n>): users and their rotating refresh tokens.
-- Idempotent: safe to run more than once. Mirrors workers/db/schema/shard.ts.

CREATE TABLE IF NOT EXISTS users (
  id                        uuid        PRIMARY KEY,
  email                     text        NOT NULL CHECK (email = lower(email)),
  display_name              text        NOT NULL,
  password_hash             text        NOT NULL,
  role                      text        NOT NULL DEFAULT 'trader' CHECK (role IN ('trader', 'admin')),
  base_currency             char(3)     NOT NULL DEFAULT 'USD',
  notification_preferences  jsonb       NOT NULL DEFAULT '{}'::jsonb,
  status                    text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
  created_at                timestamptz(3) NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now(),
  closed_at                 timestamptz
);
CREATE INDEX IF NOT EXISTS users_created_idx ON users (created_at, id);

CREATE TABLE IF NOT EXISTS refresh_tokens (
  id           uuid        PRIMARY KEY,
  user_id      uuid        NOT NULL REFERENCES users (id),
  family_id    uuid        NOT NULL,
  token_hash   text        NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz,
  replaced_by  uuid,
  revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_user_idx ON refresh_tokens (user_id);
