-- Every user shard (prepx_shard_<n>): notification preferences, Web Push subscriptions, each user's
-- notifications and the per-channel delivery record that is also the dedupe store (issue 10).
-- Mirrors workers/db/schema/notifications.ts; see docs/notifications.md.

-- One row per user who changed anything; no row = the defaults of shared/notifications/types.ts.
CREATE TABLE notification_preferences (
  user_id                 uuid        PRIMARY KEY,
  language                text        NOT NULL DEFAULT 'en',
  timezone                text        NOT NULL DEFAULT 'UTC',
  -- Quiet hours as minutes after local midnight; both null = none.
  quiet_start             smallint    CHECK (quiet_start BETWEEN 0 AND 1439),
  quiet_end               smallint    CHECK (quiet_end BETWEEN 0 AND 1439),
  -- {"email": false, …} and {"price_alert": {"sms": true}, …}: only what differs from the defaults.
  channels                jsonb       NOT NULL DEFAULT '{}'::jsonb,
  types                   jsonb       NOT NULL DEFAULT '{}'::jsonb,
  email                   text,
  phone                   text,
  -- Buying-power warning level (micro-USD) and its state: below or not, and how many times it crossed.
  bp_threshold_micros     bigint      CHECK (bp_threshold_micros > 0),
  bp_below                boolean     NOT NULL DEFAULT false,
  bp_crossings            integer     NOT NULL DEFAULT 0,
  updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_preferences_bp_idx ON notification_preferences (user_id)
  WHERE bp_threshold_micros IS NOT NULL;

CREATE TABLE push_subscriptions (
  id               uuid        PRIMARY KEY,
  user_id          uuid        NOT NULL,
  endpoint         text        NOT NULL,
  p256dh           text        NOT NULL,
  auth             text        NOT NULL,
  created_at       timestamptz(3) NOT NULL DEFAULT now(),
  last_success_at  timestamptz,
  UNIQUE (user_id, endpoint)
);

-- A user's notifications (the in-app inbox, GET /v1/notifications), rendered in the user's language.
CREATE TABLE notifications (
  id           text        PRIMARY KEY,
  user_id      uuid        NOT NULL,
  type         text        NOT NULL,
  title        text        NOT NULL,
  body         text        NOT NULL,
  vars         jsonb       NOT NULL,
  occurred_at  timestamptz(3) NOT NULL,
  created_at   timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC, id DESC);

-- One row per (notification, channel): the dedupe store. A consumer claims a row (status 'sending')
-- before it calls the provider and marks it 'sent' after; see docs/notifications.md, "Exactly when".
CREATE TABLE notification_deliveries (
  notification_id      text        NOT NULL,
  channel              text        NOT NULL CHECK (channel IN ('in_app', 'push', 'email', 'sms')),
  user_id              uuid        NOT NULL,
  status               text        NOT NULL
                         CHECK (status IN ('sending', 'sent', 'failed', 'deferred', 'skipped', 'dead')),
  reason               text,
  attempts             integer     NOT NULL DEFAULT 0,
  claimed_at           timestamptz,
  not_before           timestamptz,
  sent_at              timestamptz,
  provider_message_id  text,
  last_error           text,
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (notification_id, channel)
);
CREATE INDEX notification_deliveries_user_idx ON notification_deliveries (user_id);
