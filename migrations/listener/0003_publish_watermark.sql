-- listener: a faster backfill path (issue 4 benchmark) with the same guarantees.
--
-- "Published" becomes a watermark in the checkpoint row instead of a flag per event:
-- every live event of the chain at or below published_block is on the stream. One
-- UPDATE per batch replaces one UPDATE per row (which, touching a column of a partial
-- index, could never be a HOT update and rewrote every index entry of the row). After
-- a crash between commit and publish the listener re-sends the events above the
-- watermark; their ids are deterministic and consumers dedupe on the id.
-- chain_events.published keeps its meaning for removed rows (set when a reorg orphans
-- an event: was it on the stream, i.e. does it need a compensation?) and for rows
-- written before this migration; a live row is published when
-- `published OR block_number <= checkpoints.published_block`.
ALTER TABLE checkpoints ADD COLUMN published_block bigint NOT NULL DEFAULT -1;

UPDATE checkpoints c SET published_block = coalesce(
    (SELECT min(e.block_number) - 1 FROM chain_events e
     WHERE e.chain_id = c.chain_id AND NOT e.published AND NOT e.removed),
    c.last_block);

-- Indexes no read path needs any more: publish marking by seq is gone (compensations,
-- rare, are found through the small partial index below), and the unpublished scan
-- now walks chain_events_block_idx above the watermark.
DROP INDEX chain_events_seq_idx;
DROP INDEX chain_events_unpublished_idx;

-- Orphans that were on the stream and whose compensation is not out yet: empty
-- except right after a reorg.
CREATE INDEX chain_events_compensate_idx ON chain_events (chain_id, block_number, log_index)
    WHERE removed AND published AND NOT removed_published;

-- The same validation for a fraction of the cost: PostgreSQL's regex engine expands a
-- bounded repetition ({64}) into a large automaton, and three such checks cost more
-- per row than the rest of the insert (measured with COPY: ~30 us of ~40 us/row).
-- An unbounded class plus the exact length accepts exactly the same strings.
ALTER TABLE chain_events
    DROP CONSTRAINT chain_events_block_hash_check,
    DROP CONSTRAINT chain_events_tx_hash_check,
    DROP CONSTRAINT chain_events_address_check,
    ADD CONSTRAINT chain_events_block_hash_check
        CHECK (length(block_hash) = 66 AND block_hash ~ '^0x[0-9a-f]+$'),
    ADD CONSTRAINT chain_events_tx_hash_check
        CHECK (length(tx_hash) = 66 AND tx_hash ~ '^0x[0-9a-f]+$'),
    ADD CONSTRAINT chain_events_address_check
        CHECK (length(address) = 42 AND address ~ '^0x[0-9a-f]+$');

-- The tx-hash lookups (/v1/events?tx_hash=, re-inclusion ids) are equalities: a hash
-- index serves them, and inserting random 66-character keys into it costs a fraction
-- of what the btree did.
DROP INDEX chain_events_tx_idx;
CREATE INDEX chain_events_tx_idx ON chain_events USING hash (tx_hash);

-- Hashes and event names are ASCII compared byte-wise: the "C" collation orders them
-- exactly as the database's libc locale would, without a strcoll per comparison in
-- the primary key and the event index (~20% of the insert cost).
ALTER TABLE chain_events
    ALTER COLUMN block_hash TYPE text COLLATE "C",
    ALTER COLUMN tx_hash TYPE text COLLATE "C",
    ALTER COLUMN event TYPE text COLLATE "C";

-- The same uniqueness with block_number leading: a block hash fixes its number, so
-- (chain, number, log index, hash, time) is unique exactly when (chain, hash, log
-- index, time) is, but new rows now land at the right edge of the index instead of
-- at random places keyed by a hash.
ALTER TABLE chain_events
    DROP CONSTRAINT chain_events_pkey,
    ADD PRIMARY KEY (chain_id, block_number, log_index, block_hash, block_time);
