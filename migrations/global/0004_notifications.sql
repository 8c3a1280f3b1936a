-- Global database (prepx): notifications (issue 10). Mirrors workers/db/schema/notifications.ts;
-- see docs/notifications.md.

-- Price alerts live here, not on the user's shard: they are evaluated per symbol against every trade batch
-- of the trade-events consumer, and one indexed statement over one table finds (and locks) the alerts a
-- batch's price range can change. Users list their own alerts through price_alerts_user_idx.
CREATE TABLE price_alerts (
  id                        uuid        PRIMARY KEY,
  user_id                   uuid        NOT NULL,
  symbol                    text        NOT NULL,
  direction                 text        NOT NULL CHECK (direction IN ('above', 'below')),
  -- The alert price in the symbol's ticks (integer) and as the decimal string the API shows.
  target_ticks              bigint      NOT NULL CHECK (target_ticks > 0),
  target_price              text        NOT NULL,
  frequency                 text        NOT NULL CHECK (frequency IN ('once', 'repeating')),
  status                    text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'triggered')),
  -- A repeating alert disarms when it fires and re-arms on a trade on the other side of the target.
  armed                     boolean     NOT NULL DEFAULT true,
  -- Highest book sequence number of the symbol this alert has evaluated (see shared/notifications/alerts.ts).
  last_seq                  bigint      NOT NULL DEFAULT 0,
  trigger_count             integer     NOT NULL DEFAULT 0,
  last_triggered_at         timestamptz(3),
  last_trigger_price_ticks  bigint,
  created_at                timestamptz(3) NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX price_alerts_active_idx ON price_alerts (symbol, direction, target_ticks) WHERE status = 'active';
CREATE INDEX price_alerts_user_idx ON price_alerts (user_id, created_at, id);

-- The development and test sink: what email / SMS / Web Push would have sent when no provider is
-- configured. Shown at /dev/outbox (development and test only). Deliberately no unique key: a message
-- sent twice must show up twice.
CREATE TABLE notification_sink (
  id               bigserial   PRIMARY KEY,
  notification_id  text        NOT NULL,
  user_id          uuid        NOT NULL,
  channel          text        NOT NULL,
  recipient        text        NOT NULL,
  subject          text,
  body             text        NOT NULL,
  html             text,
  created_at       timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX notification_sink_user_idx ON notification_sink (user_id, id);
