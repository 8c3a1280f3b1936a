-- Global database (prepx): platform analytics rollups (docs/analytics.md). Written by the `analytics`
-- processor of the trade-events consumer (workers/consumers/analytics-processor.ts) and by the API-call
-- flush (workers/analytics/api-calls.ts); read by GET /admin/analytics. Mirrors workers/db/schema/analytics.ts.
-- Platform figures span every user, so they live here, not on the user shards: one place to query, and the
-- admin report never fans out. Fills and volume by symbol come from market_bars (0003), not from here.

-- What has been counted, once per fact key (`o:<order id>`, `r:<order id>`, `f:<fill event id>`): the dedupe
-- of at-least-once delivery. Only keys that this insert returns are added to analytics_minute. Rows older
-- than the redelivery horizon are pruned by the scheduled job (30 days; docs/analytics.md).
CREATE TABLE analytics_facts (
  key     text COLLATE "C" PRIMARY KEY,
  minute  timestamptz NOT NULL
);
CREATE INDEX analytics_facts_minute_idx ON analytics_facts (minute);

-- Per-minute counters: metric (`orders`, `rejections`, `account_fills`, `fees`) by dimension (symbol, or the
-- rejection reason). Sums of facts, so they are exact; fees in micro-USD.
CREATE TABLE analytics_minute (
  metric  text NOT NULL,
  minute  timestamptz NOT NULL,
  dim     text NOT NULL DEFAULT '',
  value   bigint NOT NULL,
  PRIMARY KEY (metric, minute, dim)
);

-- Users whose orders or fills changed in a minute: a set, so distinct users over any interval are exact.
CREATE TABLE analytics_active_users (
  minute   timestamptz NOT NULL,
  user_id  uuid NOT NULL,
  bot      boolean NOT NULL,
  PRIMARY KEY (minute, user_id)
);

-- API calls per minute, route pattern, status and latency bucket (shared/analytics/latency.ts: bucket k holds
-- durations in (2^((k-1)/4), 2^(k/4)] ms). Counts are the Redis counters' totals for the minute, written with
-- GREATEST, so flushing a minute again (or while it is still open) never counts a call twice.
CREATE TABLE api_call_minute (
  minute  timestamptz NOT NULL,
  method  text NOT NULL,
  route   text NOT NULL,
  status  smallint NOT NULL,
  bucket  smallint NOT NULL,
  calls   bigint NOT NULL,
  PRIMARY KEY (minute, method, route, status, bucket)
);

-- Error answers per minute, route, status and error code (`insufficient_buying_power`, `validation_failed`, …).
CREATE TABLE api_error_minute (
  minute  timestamptz NOT NULL,
  method  text NOT NULL,
  route   text NOT NULL,
  status  smallint NOT NULL,
  code    text NOT NULL,
  calls   bigint NOT NULL,
  PRIMARY KEY (minute, method, route, status, code)
);
