-- api: initial schema. Runs as role paimon_api with search_path = api.
-- The gateway's tables (users, wallets, api_keys, refresh_tokens, audit_logs) arrive
-- in later migrations with the issues that build authentication and the audit trail;
-- this file only establishes the schema, its role and the migration history.
COMMENT ON SCHEMA api IS 'Paimon API gateway: users, wallets, API keys, refresh tokens, audit log';
