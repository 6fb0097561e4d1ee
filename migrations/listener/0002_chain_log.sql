-- listener: checkpoints, the reorg window, the decoded event log and the scanned ranges
-- the gap checker proves coverage with. Runs as paimon_listener, search_path = listener.

-- One row per chain. `fence` is the lease fencing token of the last writer: a writer
-- whose fence is lower than the stored one lost its lease and must stop
-- (UPDATE ... WHERE fence <= $f).
CREATE TABLE checkpoints (
    chain_id     bigint PRIMARY KEY CHECK (chain_id > 0),
    start_block  bigint NOT NULL CHECK (start_block >= 0),
    last_block   bigint NOT NULL CHECK (last_block >= -1), -- -1: nothing read yet
    last_hash    text CHECK (last_hash ~ '^0x[0-9a-f]{64}$'),
    last_time    timestamptz,
    fence        bigint NOT NULL DEFAULT 0,
    halted       text, -- set when a reorg deeper than the window stopped the listener
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The recent canonical blocks as this listener saw them (the reorg window): a new
-- block's parent hash is compared with these to detect a reorg and walk back to the
-- common ancestor.
CREATE TABLE block_hashes (
    chain_id     bigint NOT NULL,
    number       bigint NOT NULL CHECK (number >= 0),
    hash         text NOT NULL CHECK (hash ~ '^0x[0-9a-f]{64}$'),
    parent_hash  text NOT NULL CHECK (parent_hash ~ '^0x[0-9a-f]{64}$'),
    block_time   timestamptz NOT NULL,
    PRIMARY KEY (chain_id, number)
);

-- Every decoded event, including the ones a reorg orphaned (removed = true). Native
-- range partitioning by block time (monthly); ensure_partitions() creates months ahead
-- (a scheduled job calls it) and the default partition catches anything else (e.g. a
-- backfill of old history). `id` is the message id on chain.events: deterministic,
-- <chainId>:<txHash>:<logIndex>, with a suffix when a transaction is re-included in
-- another block after a reorg (consumers dedupe on the id, so the re-included event
-- needs its own). The same id can therefore appear on a removed row and never twice
-- on live rows of one block.
CREATE TABLE chain_events (
    seq                bigserial NOT NULL,
    id                 text NOT NULL,
    chain_id           bigint NOT NULL,
    block_number       bigint NOT NULL CHECK (block_number >= 0),
    block_hash         text NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    block_time         timestamptz NOT NULL,
    tx_hash            text NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    tx_index           integer NOT NULL CHECK (tx_index >= 0),
    log_index          integer NOT NULL CHECK (log_index >= 0),
    address            text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    event              text NOT NULL,
    signature          text NOT NULL,
    args               jsonb NOT NULL,
    priority           text NOT NULL CHECK (priority IN ('critical', 'high', 'normal')),
    removed            boolean NOT NULL DEFAULT false,
    removed_at         timestamptz,
    published          boolean NOT NULL DEFAULT false,
    published_at       timestamptz,
    removed_published  boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    -- a log is (block hash, log index); block_time is in the key because a partitioned
    -- table's unique keys must include the partition key (block_hash fixes it anyway).
    PRIMARY KEY (chain_id, block_hash, log_index, block_time)
) PARTITION BY RANGE (block_time);

CREATE TABLE chain_events_default PARTITION OF chain_events DEFAULT;

-- Read paths: by block range (+ cursor), by event name, by tx hash, by seq (publish
-- marking), and the re-publish scan of rows not yet on the stream.
CREATE INDEX chain_events_block_idx ON chain_events (chain_id, block_number, log_index, seq);
CREATE INDEX chain_events_event_idx ON chain_events (chain_id, event, block_number, log_index);
CREATE INDEX chain_events_tx_idx ON chain_events (chain_id, tx_hash);
CREATE INDEX chain_events_seq_idx ON chain_events (seq);
CREATE INDEX chain_events_unpublished_idx ON chain_events (chain_id, block_number, log_index)
    WHERE (NOT published AND NOT removed) OR (removed AND published AND NOT removed_published);

-- Block ranges whose logs were read and committed (contiguous ranges are merged as
-- they grow). The gap checker proves [start_block, checkpoint] is covered.
CREATE TABLE scanned_ranges (
    chain_id    bigint NOT NULL,
    from_block  bigint NOT NULL CHECK (from_block >= 0),
    to_block    bigint NOT NULL,
    scanned_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (to_block >= from_block),
    PRIMARY KEY (chain_id, from_block, to_block)
);

-- Creates the monthly partitions of chain_events from this month to `months_ahead`
-- months ahead (idempotent). A month whose rows already sit in the default partition
-- is skipped (attaching would fail); those rows stay readable there.
CREATE FUNCTION ensure_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql SET search_path = listener AS $$
DECLARE
    m date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    made integer := 0;
    name text;
    i integer;
BEGIN
    IF months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months_ahead out of range: %', months_ahead;
    END IF;
    FOR i IN 0..months_ahead LOOP
        name := format('chain_events_%s', to_char(m, 'YYYYMM'));
        IF to_regclass(format('listener.%I', name)) IS NULL
           AND NOT EXISTS (SELECT 1 FROM chain_events_default
                           WHERE block_time >= (m::timestamp AT TIME ZONE 'UTC')
                             AND block_time < (m + interval '1 month')::timestamp AT TIME ZONE 'UTC') THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF chain_events FOR VALUES FROM (%L) TO (%L)',
                           name, (m::timestamp AT TIME ZONE 'UTC'),
                           ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
            made := made + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END $$;

SELECT ensure_partitions(2);
