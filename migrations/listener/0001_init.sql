-- listener: initial schema. Runs as role paimon_listener with search_path = listener.
-- The listener produces messages rather than consuming them, so it has no
-- processed_messages table. Its tables (checkpoints, recent block hashes, chain_events)
-- arrive in later migrations with the issue that builds the listener; this file only
-- establishes the schema, its role and the migration history.
COMMENT ON SCHEMA listener IS 'Paimon listener: chain checkpoints, reorg window, decoded chain events';
