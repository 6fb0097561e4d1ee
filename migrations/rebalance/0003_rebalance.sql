-- rebalance: asset configuration, triggers, plans with their legs, the executor's fence and
-- the service's outgoing-message queue (services/rebalance/store.c owns the queries).

-- One row per vault asset. Tier, weights and price feed mirror the vault (chain.asset_added /
-- asset_target_changed / asset_removed and every plan's chain read keep them in step); min trade,
-- slippage bound and enabled are operator settings the chain does not hold.
CREATE TABLE asset_configs (
  token          text          PRIMARY KEY CHECK (token ~ '^0x[0-9a-f]{40}$'),
  symbol         text          NOT NULL DEFAULT '' CHECK (length(symbol) <= 32),
  tier           smallint      NOT NULL CHECK (tier IN (2, 3)),
  target_bps     integer       NOT NULL CHECK (target_bps BETWEEN 0 AND 10000),
  min_bps        integer       NOT NULL CHECK (min_bps BETWEEN 0 AND 10000),
  max_bps        integer       NOT NULL CHECK (max_bps BETWEEN 0 AND 10000),
  min_trade      numeric(78,0) NOT NULL DEFAULT 100000000000000000000 CHECK (min_trade >= 0),
  slippage_bps   integer       NOT NULL DEFAULT 50 CHECK (slippage_bps BETWEEN 0 AND 5000),
  price_feed     text          CHECK (price_feed ~ '^0x[0-9a-f]{40}$'),
  enabled        boolean       NOT NULL DEFAULT true,
  listed         boolean       NOT NULL DEFAULT true,
  -- Last chain event applied: an older (re-delivered or reordered) event never overwrites it.
  chain_block    bigint        NOT NULL DEFAULT 0,
  chain_log      bigint        NOT NULL DEFAULT 0,
  updated_by     text          NOT NULL DEFAULT 'chain',
  updated_at     timestamptz   NOT NULL DEFAULT now(),
  CHECK (min_bps <= target_bps AND target_bps <= max_bps)
);

-- Why a plan should be made. Triggers that arrive while a plan runs stay pending and are
-- coalesced into the next plan (consumed_by set when a plan takes them).
CREATE TABLE rebalance_triggers (
  id           bigserial    PRIMARY KEY,
  kind         text         NOT NULL CHECK (kind IN ('schedule', 'deviation', 'l1_band', 'liquidity',
                                                     'large_deposit', 'manual', 'risk')),
  detail       jsonb        NOT NULL DEFAULT '{}',
  -- USDT L1 should reach (liquidity requests), base units.
  l1_needed    numeric(78,0) CHECK (l1_needed >= 0),
  source_id    text         UNIQUE,
  consumed_by  text,
  created_at   timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX rebalance_triggers_pending_idx ON rebalance_triggers (id) WHERE consumed_by IS NULL;

-- A plan from creation to verification: what was planned at which block, what the simulation
-- said, who approved, what was sent and what the vault held before and after.
CREATE TABLE rebalance_history (
  id            text          PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
  status        text          NOT NULL CHECK (status IN ('noop', 'failed', 'awaiting_approval',
                                 'approved', 'rejected', 'executing', 'executed', 'verified',
                                 'mismatch')),
  triggers      jsonb         NOT NULL DEFAULT '[]',
  block_number  bigint        NOT NULL CHECK (block_number >= 0),
  traded        numeric(78,0) NOT NULL DEFAULT 0,
  nav           numeric(78,0) NOT NULL DEFAULT 0,
  plan          jsonb         NOT NULL,
  simulation    jsonb,
  approval      jsonb,
  before_state  jsonb         NOT NULL,
  after_state   jsonb,
  error         text,
  fence         bigint        NOT NULL DEFAULT 0,
  created_at    timestamptz   NOT NULL DEFAULT now(),
  updated_at    timestamptz   NOT NULL DEFAULT now(),
  finished_at   timestamptz
);
CREATE INDEX rebalance_history_created_idx ON rebalance_history (created_at DESC, id DESC);
-- One plan in flight at a time, whatever the replicas do.
CREATE UNIQUE INDEX rebalance_history_one_active ON rebalance_history ((true))
  WHERE status IN ('awaiting_approval', 'approved', 'executing');

CREATE TABLE rebalance_legs (
  plan_id          text          NOT NULL REFERENCES rebalance_history (id) ON DELETE CASCADE,
  seq              integer       NOT NULL CHECK (seq >= 0),
  token            text          NOT NULL CHECK (token ~ '^0x[0-9a-f]{40}$'),
  side             text          NOT NULL CHECK (side IN ('sell', 'buy')),
  amount_in        numeric(78,0) NOT NULL CHECK (amount_in > 0),
  expected_out     numeric(78,0) NOT NULL CHECK (expected_out >= 0),
  min_out          numeric(78,0) NOT NULL CHECK (min_out >= 0),
  value            numeric(78,0) NOT NULL CHECK (value >= 0),
  simulated_out    numeric(78,0),
  -- The outbox row's key: a leg is queued at most once, so a resumed plan never repeats it.
  idempotency_key  text          NOT NULL UNIQUE,
  status           text          NOT NULL DEFAULT 'planned'
                   CHECK (status IN ('planned', 'queued', 'confirmed', 'reverted', 'failed')),
  tx_hash          text          CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
  error            text,
  updated_at       timestamptz   NOT NULL DEFAULT now(),
  PRIMARY KEY (plan_id, seq)
);

-- The fence of the last executor that wrote (lock.h rule 2): a stale lease holder's write
-- finds last_fence above its own and stops.
CREATE TABLE executor_fence (
  id          smallint PRIMARY KEY CHECK (id = 1),
  last_fence  bigint   NOT NULL DEFAULT 0
);
INSERT INTO executor_fence (id, last_fence) VALUES (1, 0);

-- Messages (approval requests, alerts, updates) written in the transaction that causes them
-- and published after COMMIT; ids are deterministic so consumers dedupe re-publishes.
-- include: outgoing_messages.sql
