-- api: users, wallets, API keys, refresh tokens and the hash-chained audit log.
-- Runs as role paimon_api with search_path = api (paimon-migrate). The daemon logs in as
-- paimon_api and qualifies every table with "api." so its own search_path does not matter.

CREATE TABLE api.users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text UNIQUE,
    password_hash text,
    role          text NOT NULL CHECK (role IN ('super_admin', 'admin', 'operator', 'viewer')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- a wallet-only account (SIWE sign-up) has neither email nor password
    CHECK ((email IS NULL) = (password_hash IS NULL)),
    CHECK (email IS NULL OR email = lower(email))
);

CREATE TABLE api.wallets (
    address    text PRIMARY KEY CHECK (address ~ '^0x[0-9a-f]{40}$'),
    user_id    uuid NOT NULL REFERENCES api.users (id) ON DELETE CASCADE,
    chain_id   bigint NOT NULL CHECK (chain_id > 0),
    linked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wallets_user_idx ON api.wallets (user_id);

-- Only the SHA-256 of a key is stored; the prefix lets an operator recognise a key in
-- lists and lets the lookup use an index without revealing the secret.
CREATE TABLE api.api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES api.users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix       text NOT NULL UNIQUE,
    key_hash     text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    role         text NOT NULL CHECK (role IN ('super_admin', 'admin', 'operator', 'viewer')),
    scopes       text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_user_idx ON api.api_keys (user_id);

-- A family is one login; every refresh rotates the token inside it. Presenting a
-- token that was already rotated (used_at set) is reuse: the whole family is revoked.
CREATE TABLE api.refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES api.users (id) ON DELETE CASCADE,
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    revoke_reason text
);
CREATE INDEX refresh_tokens_family_idx ON api.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON api.refresh_tokens (user_id);

-- Append-only, hash-chained: hash = SHA-256(prev_hash || canonical row), computed by
-- the gateway (services/api/audit.c documents the canonical form). seq orders the
-- chain; the first row's prev_hash is 64 zeros.
CREATE TABLE api.audit_logs (
    seq         bigint PRIMARY KEY CHECK (seq > 0),
    at_ms       bigint NOT NULL,
    actor       text NOT NULL,
    role        text NOT NULL,
    method      text NOT NULL,
    route       text NOT NULL,
    target      text NOT NULL,
    status      integer NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    request_id  text NOT NULL,
    ip          text NOT NULL,
    body_sha256 text NOT NULL,
    prev_hash   text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash        text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_actor_idx ON api.audit_logs (actor, seq);
CREATE INDEX audit_logs_at_idx ON api.audit_logs (at_ms);

-- The table's owner could otherwise UPDATE or DELETE its own rows; the trigger makes
-- any such statement fail, and the hash chain makes an edit that bypasses it visible.
CREATE FUNCTION api.audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER audit_logs_no_update BEFORE UPDATE OR DELETE ON api.audit_logs
    FOR EACH ROW EXECUTE FUNCTION api.audit_logs_append_only();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON api.audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION api.audit_logs_append_only();
