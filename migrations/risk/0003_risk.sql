-- risk: thresholds, the metric time series (range-partitioned by time) with hourly and daily
-- rollups, level state and risk events, the emergency protocol, the redemption requests risk
-- records itself from chain.events, daily snapshots and the outgoing-message queue.
-- Amounts are token base units (18 decimals) in NUMERIC(78,0); ratios are basis points.

-- Every number of ARCHITECTURE §5 (Risk) is a row, so operators change rules without a deploy.
-- direction: 'above' = bad when the value rises past the threshold, 'below' = when it falls.
-- clear_margin is the hysteresis: a level clears only once the value is back past its
-- threshold by this much, so a value sitting on a threshold cannot flap.
-- warning / critical NULL = that level is not used for the metric (it is only monitored).
CREATE TABLE risk_thresholds (
  metric       text        PRIMARY KEY CHECK (metric ~ '^[a-z][a-z0-9_.]*$'),
  direction    text        NOT NULL CHECK (direction IN ('above', 'below')),
  warning      numeric(78,0) CHECK (warning >= 0),
  critical     numeric(78,0) CHECK (critical >= 0),
  clear_margin numeric(78,0) NOT NULL DEFAULT 0 CHECK (clear_margin >= 0),
  unit         text        NOT NULL CHECK (unit IN ('bps', 'seconds')),
  description  text        NOT NULL DEFAULT '',
  updated_at   timestamptz NOT NULL DEFAULT now(),
  updated_by   text        NOT NULL DEFAULT 'migration',
  CHECK (warning IS NULL OR critical IS NULL OR
         (direction = 'above' AND critical >= warning) OR
         (direction = 'below' AND critical <= warning))
);

INSERT INTO risk_thresholds (metric, direction, warning, critical, clear_margin, unit, description) VALUES
  ('liquidity.l1_ratio',        'below', 800,   500,   50,   'bps',     'L1 (USDT held) / NAV'),
  ('liquidity.l1l2_ratio',      'below', NULL,  NULL,  100,  'bps',     'L1 + L2 / NAV (monitored)'),
  ('liquidity.coverage',        'below', 15000, 10000, 1000, 'bps',     '(L1 + L2) / redemptions due in 7 days, x10000'),
  ('price.nav_change_24h',      'above', 200,   500,   25,   'bps',     '|share price change| over 24 h'),
  ('price.oracle_staleness',    'above', 3600,  21600, 300,  'seconds', 'oldest oracle answer age'),
  ('price.source_deviation',    'above', 200,   500,   25,   'bps',     'largest deviation between price sources'),
  ('concentration.largest',     'above', 3000,  4000,  100,  'bps',     'largest single asset / NAV'),
  ('concentration.top3',        'above', 6000,  7500,  100,  'bps',     'three largest assets / NAV'),
  ('redemption.requested_24h',  'above', 1000,  2000,  100,  'bps',     'redemptions requested in 24 h / NAV');

-- Other numbers of the risk rules (text, validated by services/risk/store.c).
CREATE TABLE risk_settings (
  key         text        PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_.]*$'),
  value       text        NOT NULL CHECK (value ~ '^[0-9]{1,78}$'),
  description text        NOT NULL DEFAULT '',
  updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO risk_settings (key, value, description) VALUES
  ('coverage.horizon_s',      '604800', 'redemptions due within this many seconds count for coverage'),
  ('redemption.window_s',     '86400',  'window of the requested-redemptions metric'),
  ('nav.change_window_s',     '86400',  'window of the NAV change metric'),
  ('emergency.l1_target_bps', '1000',   'L1 share the emergency top-up asks rebalance to restore'),
  ('emergency.topup_within_s','86400',  'deadline of the emergency top-up request');

-- One row per metric, subject and minute. subject '' = the fund; else an asset address
-- (asset.value / asset.balance / asset.weight). Native range partitioning by month; the
-- daily partition job (risk_ensure_partitions) keeps partitions ahead of time.
CREATE TABLE risk_metrics_series (
  ts      timestamptz   NOT NULL,
  metric  text          NOT NULL,
  subject text          NOT NULL DEFAULT '',
  value   numeric(78,0) NOT NULL,
  block   bigint
) PARTITION BY RANGE (ts);
CREATE INDEX risk_metrics_series_idx ON risk_metrics_series (metric, subject, ts);

-- Creates the monthly partitions covering [from, to). Idempotent.
CREATE FUNCTION risk_ensure_partitions(from_ts timestamptz, to_ts timestamptz) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  m timestamptz := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  n integer := 0;
  name text;
BEGIN
  WHILE m < to_ts LOOP
    name := 'risk_metrics_series_' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
    IF to_regclass(name) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF risk_metrics_series FOR VALUES FROM (%L) TO (%L)',
                     name, m, (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
      n := n + 1;
    END IF;
    m := (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
  END LOOP;
  RETURN n;
END $$;
SELECT risk_ensure_partitions(now() - interval '2 months', now() + interval '3 months');

-- Rollups kept by a statement trigger, so a year of history resampled to 1 h or 1 d reads
-- a few thousand rows instead of half a million. first_ts / last_ts make merging
-- order-independent (late rows still give the right open / close).
CREATE TABLE risk_metrics_rollup (
  width    text          NOT NULL CHECK (width IN ('1h', '1d')),
  metric   text          NOT NULL,
  subject  text          NOT NULL,
  bucket   timestamptz   NOT NULL,
  open     numeric(78,0) NOT NULL,
  high     numeric(78,0) NOT NULL,
  low      numeric(78,0) NOT NULL,
  close    numeric(78,0) NOT NULL,
  sum      numeric       NOT NULL,
  n        bigint        NOT NULL,
  first_ts timestamptz   NOT NULL,
  last_ts  timestamptz   NOT NULL,
  PRIMARY KEY (width, metric, subject, bucket)
);

CREATE FUNCTION risk_rollup_merge() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO risk_metrics_rollup AS r
    (width, metric, subject, bucket, open, high, low, close, sum, n, first_ts, last_ts)
  SELECT w.width, s.metric, s.subject,
         CASE w.width WHEN '1h' THEN date_trunc('hour', s.ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                      ELSE date_trunc('day', s.ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END AS bucket,
         (array_agg(s.value ORDER BY s.ts))[1], max(s.value), min(s.value),
         (array_agg(s.value ORDER BY s.ts DESC))[1], sum(s.value), count(*), min(s.ts), max(s.ts)
    FROM new_rows s CROSS JOIN (VALUES ('1h'), ('1d')) AS w(width)
   GROUP BY 1, 2, 3, 4
  ON CONFLICT (width, metric, subject, bucket) DO UPDATE SET
    open     = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.open ELSE r.open END,
    close    = CASE WHEN excluded.last_ts >= r.last_ts THEN excluded.close ELSE r.close END,
    high     = greatest(r.high, excluded.high),
    low      = least(r.low, excluded.low),
    sum      = r.sum + excluded.sum,
    n        = r.n + excluded.n,
    first_ts = least(r.first_ts, excluded.first_ts),
    last_ts  = greatest(r.last_ts, excluded.last_ts);
  RETURN NULL;
END $$;
CREATE TRIGGER risk_metrics_series_rollup AFTER INSERT ON risk_metrics_series
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION risk_rollup_merge();

-- Current level per metric (0 ok, 1 warning, 2 critical) and its open event.
CREATE TABLE risk_levels (
  metric     text          PRIMARY KEY,
  level      smallint      NOT NULL CHECK (level BETWEEN 0 AND 2),
  value      numeric(78,0),
  event_id   bigint,
  changed_at timestamptz   NOT NULL DEFAULT now()
);

-- A row per level change away from ok; resolved when the metric leaves that level
-- (a move warning -> critical resolves the warning row and opens a critical one).
CREATE TABLE risk_events (
  id             bigserial     PRIMARY KEY,
  metric         text          NOT NULL,
  level          text          NOT NULL CHECK (level IN ('warning', 'critical')),
  previous_level text          NOT NULL CHECK (previous_level IN ('info', 'warning', 'critical')),
  value          numeric(78,0),
  threshold      numeric(78,0),
  block          bigint,
  opened_at      timestamptz   NOT NULL DEFAULT now(),
  resolved_at    timestamptz,
  resolved_value numeric(78,0),
  acked_at       timestamptz,
  acked_by       text,
  ack_note       text
);
CREATE INDEX risk_events_open_idx ON risk_events (metric) WHERE resolved_at IS NULL;
CREATE INDEX risk_events_time_idx ON risk_events (opened_at DESC, id DESC);

-- The emergency protocol: at most one active run, so it starts exactly once per crisis.
CREATE TABLE risk_emergencies (
  id            bigserial   PRIMARY KEY,
  status        text        NOT NULL CHECK (status IN ('active', 'resolved')),
  trigger_event bigint      REFERENCES risk_events (id),
  metric        text        NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  resolved_at   timestamptz,
  topup_needed  numeric(78,0),
  decision      text
);
CREATE UNIQUE INDEX risk_emergencies_one_active ON risk_emergencies ((true)) WHERE status = 'active';

-- Redemption requests as risk sees them on chain.events (coverage and 24 h requested).
CREATE TABLE redemption_requests (
  request_id   numeric(78,0) PRIMARY KEY,
  gross_assets numeric(78,0) NOT NULL,
  fee          numeric(78,0) NOT NULL DEFAULT 0,
  channel      smallint      NOT NULL,
  requested_at timestamptz   NOT NULL,
  settle_at    timestamptz   NOT NULL,
  status       text          NOT NULL CHECK (status IN ('pending', 'approved', 'settled', 'rejected', 'cancelled')),
  event_id     text          NOT NULL,
  updated_at   timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX redemption_requests_open_idx ON redemption_requests (settle_at) WHERE status IN ('pending', 'approved');
CREATE INDEX redemption_requests_time_idx ON redemption_requests (requested_at);

-- Daily snapshots at 00:00 UTC: the close of each fund metric for the day before.
CREATE TABLE daily_snapshots (
  day           date          PRIMARY KEY,
  taken_at      timestamptz   NOT NULL DEFAULT now(),
  backfilled    boolean       NOT NULL DEFAULT false,
  as_of         timestamptz   NOT NULL,
  total_assets  numeric(78,0),
  total_supply  numeric(78,0),
  share_price   numeric(78,0),
  l1_value      numeric(78,0),
  metrics       jsonb         NOT NULL,
  levels        jsonb         NOT NULL
);
CREATE TABLE asset_holdings_snapshots (
  day        date          NOT NULL REFERENCES daily_snapshots (day) ON DELETE CASCADE,
  asset      text          NOT NULL,
  balance    numeric(78,0),
  value      numeric(78,0),
  weight_bps numeric(78,0),
  PRIMARY KEY (day, asset)
);

-- include: outgoing_messages.sql
