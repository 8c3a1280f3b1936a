-- User-shard databases (prepx_shard_<n>): per-user history written by the queue consumers.
-- Consumers record each event id they have applied, so at-least-once delivery has exactly-once effects.
CREATE TABLE processed_events (
  event_id text PRIMARY KEY,
  processed_at timestamptz NOT NULL DEFAULT now()
);
