-- migrate:no-transaction
-- Every user shard: GET /v1/analytics/me reads a user's grants, opening balances and resets from the ledger
-- (workers/analytics/user.ts). They are a handful of lines among the user's many fill lines, so a partial
-- index finds them without visiting the fills' lines. CONCURRENTLY: ledger_entries is large and written all
-- the time; the build must not block the consumer.
CREATE INDEX CONCURRENTLY IF NOT EXISTS ledger_entries_user_nonfill_idx ON ledger_entries (user_id, seq) WHERE kind <> 'fill';
