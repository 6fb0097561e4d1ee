-- listener: the hash and address checks of chain_events without a regex (issue 4
-- benchmark). Runs as paimon_listener, search_path = listener.
--
-- Measured with COPY of 100,000 rows into this table, the three character-class
-- regexes still cost about a quarter of the insert (PostgreSQL runs its regex engine
-- once per value, 64 characters at a time). The listener is this table's only writer
-- and builds these values itself: hashes and addresses go through evid_hash_norm /
-- the ABI decoder, which accept exactly 0x + lowercase hex of the right length and
-- reject the log otherwise. The table keeps the checks that are free — the length and
-- the 0x prefix — so a value of the wrong kind (a number, a decimal id) still cannot
-- land in these columns. block_hashes, written once per block, keeps its regexes.
ALTER TABLE chain_events
    DROP CONSTRAINT chain_events_block_hash_check,
    DROP CONSTRAINT chain_events_tx_hash_check,
    DROP CONSTRAINT chain_events_address_check,
    ADD CONSTRAINT chain_events_block_hash_check
        CHECK (octet_length(block_hash) = 66 AND left(block_hash, 2) = '0x'),
    ADD CONSTRAINT chain_events_tx_hash_check
        CHECK (octet_length(tx_hash) = 66 AND left(tx_hash, 2) = '0x'),
    ADD CONSTRAINT chain_events_address_check
        CHECK (octet_length(address) = 42 AND left(address, 2) = '0x');
