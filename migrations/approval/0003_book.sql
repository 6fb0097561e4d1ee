-- approval: the redemption book, approval tickets and their records, editable policies, SLA
-- timers, the settlement forecast and the service's own outgoing-message queue.
-- Amounts are token base units (18 decimals) in NUMERIC(78,0); never floating point.

-- Every number of ARCHITECTURE §5 is a row here, so operators change rules without a deploy.
-- Values are text so one table holds amounts (base units), durations (seconds), counts and
-- percentages; services/approval/policy.c validates each key's kind on load and on PUT.
CREATE TABLE approval_policies (
  key         text        PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_.]*$'),
  value       text        NOT NULL CHECK (value ~ '^[0-9]{1,78}$'),
  description text        NOT NULL DEFAULT '',
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text        NOT NULL DEFAULT 'migration'
);

INSERT INTO approval_policies (key, value, description) VALUES
  ('threshold.standard',      '100000000000000000000000', 'standard redemptions above this (base units) need a ticket'),
  ('threshold.emergency',     '30000000000000000000000',  'emergency redemptions above this (base units) need a ticket'),
  ('threshold.rebalance',     '50000000000000000000000',  'rebalances above this (base units) need a ticket'),
  ('tier.1.below',            '100000000000000000000000', 'amounts below this need tier.1.approvals approvals'),
  ('tier.1.approvals',        '1', 'distinct approvals below tier.1.below'),
  ('tier.2.below',            '1000000000000000000000000', 'amounts below this need tier.2.approvals approvals'),
  ('tier.2.approvals',        '2', 'distinct approvals below tier.2.below'),
  ('tier.3.approvals',        '3', 'distinct approvals at or above tier.2.below'),
  ('settle.standard_s',       '604800', 'standard settlement delay from the request block time (T+7)'),
  ('settle.emergency_s',      '86400',  'emergency settlement delay from the request block time (T+1)'),
  ('sla.standard_s',          '86400', 'SLA of a standard redemption ticket'),
  ('sla.emergency_s',         '7200',  'SLA of an emergency redemption ticket'),
  ('sla.rebalance_s',         '14400', 'SLA of a rebalance ticket'),
  ('sla.other_s',             '14400', 'SLA of any other ticket (manual operations, emergency mode)'),
  ('sla.reminder_pct',        '50',  'reminder at this share of the SLA'),
  ('sla.escalate_admin_pct',  '100', 'escalation to admins at this share of the SLA'),
  ('sla.escalate_super_pct',  '200', 'escalation to super-admins at this share of the SLA'),
  ('forecast.days',           '7',   'settlement forecast horizon in days'),
  ('vote.max_deadline_s',     '86400', 'a signed vote deadline may be at most this far ahead');

-- One row per on-chain redemption request (RedemptionRequested). status follows the chain;
-- decision is what this service decided and sent (through the outbox).
CREATE TABLE redemption_requests (
  id              text          PRIMARY KEY,  -- "<chainId>:<vault>:<requestId>"
  chain_id        bigint        NOT NULL CHECK (chain_id > 0),
  vault           text          NOT NULL CHECK (vault ~ '^0x[0-9a-f]{40}$'),
  request_id      numeric(78,0) NOT NULL CHECK (request_id >= 0),
  channel         text          NOT NULL CHECK (channel IN ('standard', 'emergency')),
  owner           text          NOT NULL CHECK (owner ~ '^0x[0-9a-f]{40}$'),
  receiver        text          NOT NULL CHECK (receiver ~ '^0x[0-9a-f]{40}$'),
  shares          numeric(78,0) NOT NULL CHECK (shares >= 0),
  gross_assets    numeric(78,0) NOT NULL CHECK (gross_assets >= 0),
  fee             numeric(78,0) NOT NULL CHECK (fee >= 0),
  net_assets      numeric(78,0) NOT NULL CHECK (net_assets >= 0),
  status          text          NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'approved', 'rejected', 'settled', 'cancelled', 'removed')),
  approval_mode   text          NOT NULL CHECK (approval_mode IN ('auto', 'ticket')),
  decision        text          CHECK (decision IN ('approve', 'reject')),
  ticket_id       text,
  requested_at    timestamptz   NOT NULL,  -- block time of the request
  due_at          timestamptz   NOT NULL,  -- T+7 / T+1 from policy
  chain_settle_at timestamptz   NOT NULL,  -- settleTime the vault fixed
  settle_attempts integer       NOT NULL DEFAULT 0,
  settle_state    text          NOT NULL DEFAULT 'none'
                  CHECK (settle_state IN ('none', 'waiting_liquidity', 'queued', 'done')),
  block_number    bigint        NOT NULL,
  block_hash      text          NOT NULL,
  tx_hash         text          NOT NULL,
  event_id        text          NOT NULL,
  decided_by      text,
  reject_reason   text,
  settled_assets  numeric(78,0),
  created_at      timestamptz   NOT NULL DEFAULT now(),
  updated_at      timestamptz   NOT NULL DEFAULT now(),
  UNIQUE (chain_id, vault, request_id)
);
CREATE INDEX redemption_requests_status_idx ON redemption_requests (status, due_at);
CREATE INDEX redemption_requests_owner_idx ON redemption_requests (owner, id);
CREATE INDEX redemption_requests_created_idx ON redemption_requests (created_at, id);

-- A ticket asks people to decide something: a redemption above its threshold, or anything that
-- arrives on approval.requests (rebalance plans, emergency-mode changes, manual operations) with
-- the payload to execute once approved. (kind, ref) makes a redelivered request one ticket.
CREATE TABLE approval_tickets (
  id                 text          PRIMARY KEY,
  kind               text          NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
  ref                text          NOT NULL,
  redemption_id      text          REFERENCES redemption_requests (id),
  amount             numeric(78,0) NOT NULL DEFAULT 0 CHECK (amount >= 0),
  required_approvals integer       NOT NULL CHECK (required_approvals BETWEEN 1 AND 20),
  approvals          integer       NOT NULL DEFAULT 0,
  status             text          NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'approved', 'rejected', 'cancelled')),
  requester          text          NOT NULL DEFAULT '',
  requester_wallet   text,
  source             text          NOT NULL DEFAULT '',
  reply_topic        text,
  payload            jsonb         NOT NULL DEFAULT '{}',
  reason             text,
  sla_ms             bigint        NOT NULL CHECK (sla_ms > 0),
  created_at         timestamptz   NOT NULL DEFAULT now(),
  decided_at         timestamptz,
  updated_at         timestamptz   NOT NULL DEFAULT now(),
  UNIQUE (kind, ref)
);
CREATE INDEX approval_tickets_status_idx ON approval_tickets (status, created_at, id);
ALTER TABLE redemption_requests
  ADD CONSTRAINT redemption_requests_ticket_fk FOREIGN KEY (ticket_id) REFERENCES approval_tickets (id);

-- Append-only trail of every action (who, what, signature, when). One vote per approver per
-- ticket and one use of a (wallet, nonce) pair are enforced here, so two racing requests
-- cannot both count.
CREATE TABLE approval_records (
  id            bigserial    PRIMARY KEY,
  ticket_id     text         REFERENCES approval_tickets (id),
  redemption_id text         REFERENCES redemption_requests (id),
  action        text         NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*$'),
  actor         text         NOT NULL,
  actor_role    text,
  wallet        text,
  signature     text,
  nonce         numeric(78,0),
  deadline      bigint,
  detail        jsonb        NOT NULL DEFAULT '{}',
  at            timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX approval_records_ticket_idx ON approval_records (ticket_id, id);
CREATE INDEX approval_records_redemption_idx ON approval_records (redemption_id, id);
CREATE UNIQUE INDEX approval_records_one_vote ON approval_records (ticket_id, actor)
  WHERE action IN ('vote_approve', 'vote_reject');
CREATE UNIQUE INDEX approval_records_one_vote_wallet ON approval_records (ticket_id, wallet)
  WHERE action IN ('vote_approve', 'vote_reject');
CREATE UNIQUE INDEX approval_records_nonce ON approval_records (wallet, nonce)
  WHERE action IN ('vote_approve', 'vote_reject');

-- SLA timers are rows so they survive restarts; a once-per-cluster job sweeps the due ones.
-- step: 0 nothing sent yet, 1 reminder sent, 2 admins escalated, 3 super-admins escalated.
CREATE TABLE sla_timers (
  ticket_id   text         PRIMARY KEY REFERENCES approval_tickets (id),
  started_at  timestamptz  NOT NULL,
  sla_ms      bigint       NOT NULL CHECK (sla_ms > 0),
  step        smallint     NOT NULL DEFAULT 0 CHECK (step BETWEEN 0 AND 3),
  next_at     timestamptz,
  closed_at   timestamptz
);
CREATE INDEX sla_timers_due_idx ON sla_timers (next_at) WHERE closed_at IS NULL;

-- The settlement forecast: what falls due per day over the horizon against L1, recomputed by
-- a once-per-cluster job. shortfall > 0 means L1 will not cover the cumulative amount that day.
CREATE TABLE settlement_forecast (
  day          date          PRIMARY KEY,
  due_count    integer       NOT NULL,
  due_assets   numeric(78,0) NOT NULL,
  cumulative   numeric(78,0) NOT NULL,
  l1_balance   numeric(78,0) NOT NULL,
  shortfall    numeric(78,0) NOT NULL,
  computed_at  timestamptz   NOT NULL DEFAULT now()
);

-- Messages this service publishes are written in the same transaction as the change they
-- describe and published after COMMIT (and re-published by a timer if Redis was away), so a
-- decision is never lost between the database and the bus. Ids are deterministic: consumers
-- dedupe redeliveries.
-- include: outgoing_messages.sql
