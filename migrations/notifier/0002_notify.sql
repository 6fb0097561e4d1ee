-- notifier: channels, routing tree, silences, alert/group state, the delivery outbox and
-- the delivery log. Runs as paimon_notifier with search_path = notifier; the daemon
-- qualifies every name with notifier. because its login role has no search_path.

-- A channel is one destination (a Slack webhook, a Telegram bot with its chats, an SMTP
-- relay with its recipients, or the fan-out to webhook subscriptions). The URL / token is a
-- secret: either the NAME of an environment variable (secret_env) or an AES-256-GCM sealed
-- blob (secret_sealed, key from PAIMON_MASTER_KEY, AAD = channel id). Never both.
CREATE TABLE channels (
  id            text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  type          text        NOT NULL CHECK (type IN ('slack', 'telegram', 'email', 'webhook')),
  config        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
  secret_env    text        CHECK (secret_env ~ '^[A-Z_][A-Z0-9_]{0,127}$'),
  secret_sealed bytea,
  enabled       boolean     NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (secret_env IS NULL OR secret_sealed IS NULL)
);

-- Routing tree (Alertmanager semantics): the implicit root matches everything and only
-- logs; children are tried in position order, a matching child is descended into, and
-- unless it has continue = true the walk stops at the first matching sibling.
-- channels may hold '*' = every enabled channel. Empty channels = log only.
CREATE TABLE routes (
  id                 text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  parent_id          text        REFERENCES routes (id) ON DELETE CASCADE,
  position           integer     NOT NULL DEFAULT 0,
  matchers           jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(matchers) = 'array'),
  channels           text[]      NOT NULL DEFAULT '{}',
  continue_matching  boolean     NOT NULL DEFAULT false,
  group_by           text[]      NOT NULL DEFAULT '{}',
  group_wait_ms      bigint      NOT NULL DEFAULT 30000 CHECK (group_wait_ms >= 0),
  group_interval_ms  bigint      NOT NULL DEFAULT 300000 CHECK (group_interval_ms >= 0),
  repeat_interval_ms bigint      NOT NULL DEFAULT 14400000 CHECK (repeat_interval_ms > 0),
  send_resolved      boolean     NOT NULL DEFAULT true,
  active             boolean     NOT NULL DEFAULT true,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX routes_parent_idx ON routes (parent_id, position);

-- Silences mute matching alerts between starts_at and ends_at; expiring one sets ends_at.
CREATE TABLE silences (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  matchers   jsonb       NOT NULL CHECK (jsonb_typeof(matchers) = 'array'),
  starts_at  timestamptz NOT NULL DEFAULT now(),
  ends_at    timestamptz NOT NULL,
  created_by text        NOT NULL,
  comment    text        NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (ends_at > starts_at)
);
CREATE INDEX silences_active_idx ON silences (ends_at, starts_at);

-- One row per de-duplication key: the alert's latest state.
CREATE TABLE alerts (
  dedup_key   text        PRIMARY KEY,
  severity    text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  category    text        NOT NULL,
  source      text        NOT NULL,
  title       text        NOT NULL,
  message     text        NOT NULL DEFAULT '',
  link        text,
  labels      jsonb       NOT NULL DEFAULT '{}',
  status      text        NOT NULL CHECK (status IN ('firing', 'resolved')),
  occurrences bigint      NOT NULL DEFAULT 1,
  first_seen  timestamptz NOT NULL DEFAULT now(),
  last_seen   timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz,
  last_notified_at timestamptz,
  last_message_id  text    NOT NULL
);
CREATE INDEX alerts_last_seen_idx ON alerts (last_seen);

-- An aggregation group: the alerts of one route with equal group_by values. The
-- timings are copied from the route when the group is born so a route edit cannot
-- strand a group. next_flush_at NULL = idle (nothing to say until something changes).
CREATE TABLE alert_groups (
  route_id           text        NOT NULL,
  group_key          text        NOT NULL,
  channels           text[]      NOT NULL,
  group_interval_ms  bigint      NOT NULL,
  repeat_interval_ms bigint      NOT NULL,
  send_resolved      boolean     NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  next_flush_at      timestamptz,
  last_notified_at   timestamptz,
  PRIMARY KEY (route_id, group_key)
);
CREATE INDEX alert_groups_due_idx ON alert_groups (next_flush_at) WHERE next_flush_at IS NOT NULL;

-- Membership; notified_status is what the group last told its channels about the alert
-- (NULL: not yet), so a flush knows which resolved notices are owed.
CREATE TABLE group_members (
  route_id        text NOT NULL,
  group_key       text NOT NULL,
  dedup_key       text NOT NULL REFERENCES alerts (dedup_key) ON DELETE CASCADE,
  notified_status text CHECK (notified_status IN ('firing', 'resolved')),
  PRIMARY KEY (route_id, group_key, dedup_key),
  FOREIGN KEY (route_id, group_key) REFERENCES alert_groups (route_id, group_key) ON DELETE CASCADE
);
CREATE INDEX group_members_alert_idx ON group_members (dedup_key);

-- Generic webhook receivers: per-subscription secret (sealed, AAD = id) and event filters
-- ('alert.firing', 'alert.resolved', 'test', 'alert.*', '*').
CREATE TABLE webhook_subscriptions (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  url           text        NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
  secret_sealed bytea       NOT NULL,
  events        text[]      NOT NULL DEFAULT '{*}',
  active        boolean     NOT NULL DEFAULT true,
  description   text        NOT NULL DEFAULT '',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The outbox: one row per message to send to one target (a Telegram chat, a webhook
-- subscription, or '' for single-target channels). Written in the same transaction as the
-- alert state that caused it; delivery workers claim rows with FOR UPDATE SKIP LOCKED and
-- a lease, so replicas never send the same row twice while its lease holds.
CREATE TABLE notifications (
  id              bigserial   PRIMARY KEY,
  channel_id      text        NOT NULL,
  target          text        NOT NULL DEFAULT '',
  kind            text        NOT NULL CHECK (kind IN ('alert', 'test', 'fallback')),
  event           text        NOT NULL,
  route_id        text,
  group_key       text,
  payload         jsonb       NOT NULL,
  status          text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  lease_owner     text,
  lease_until     timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  sent_at         timestamptz
);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX notifications_lease_idx ON notifications (lease_until) WHERE status = 'sending';
CREATE INDEX notifications_channel_idx ON notifications (channel_id, created_at);

-- Every attempt, successful or not.
CREATE TABLE deliveries (
  id              bigserial   PRIMARY KEY,
  notification_id bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  channel_id      text        NOT NULL,
  channel_type    text        NOT NULL,
  target          text        NOT NULL DEFAULT '',
  attempt         integer     NOT NULL,
  outcome         text        NOT NULL
                              CHECK (outcome IN ('sent', 'retry', 'rate_limited', 'dead')),
  status_code     integer,
  latency_ms      integer     NOT NULL,
  error           text,
  at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_notification_idx ON deliveries (notification_id);
CREATE INDEX deliveries_channel_idx ON deliveries (channel_id, id);
CREATE INDEX deliveries_outcome_idx ON deliveries (outcome, id);

-- Defaults (ARCHITECTURE §5): critical -> every channel, warning -> operators' Slack and
-- Telegram, info -> log only. Secrets come from the environment; a channel whose secret
-- or targets are not configured is skipped with a log line.
INSERT INTO channels (id, type, config, secret_env) VALUES
  ('ops-slack', 'slack', '{}', 'PAIMON_SLACK_WEBHOOK_URL'),
  ('ops-telegram', 'telegram', '{"chat_ids": []}', 'PAIMON_TELEGRAM_BOT_TOKEN'),
  ('ops-email', 'email', '{"to": []}', 'PAIMON_SMTP_PASSWORD'),
  ('webhooks', 'webhook', '{}', NULL);

INSERT INTO routes (id, position, matchers, channels, group_by, group_wait_ms,
                    group_interval_ms, repeat_interval_ms) VALUES
  ('critical', 0, '[{"name":"severity","op":"=","value":"critical"}]', '{*}', '{dedup_key}',
   0, 60000, 3600000),
  ('warning', 1, '[{"name":"severity","op":"=","value":"warning"}]',
   '{ops-slack,ops-telegram}', '{category}', 30000, 300000, 14400000),
  ('info', 2, '[{"name":"severity","op":"=","value":"info"}]', '{}', '{}', 0, 300000,
   86400000);
