-- The transaction outbox (libcommon/outbox.c; this DDL must match outbox.h), included by
-- every service that sends transactions.
-- A row exists before anything is signed or sent; nonce, fees and the raw signed bytes are stored
-- (status signed) before the broadcast, so a crash in between re-sends the same bytes.
CREATE TABLE transactions (
  id               bigserial    PRIMARY KEY,
  idempotency_key  text         NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 200),
  chain_id         bigint       NOT NULL CHECK (chain_id > 0),
  from_address     text         NOT NULL CHECK (from_address ~ '^0x[0-9a-f]{40}$'),
  to_address       text         NOT NULL CHECK (to_address ~ '^0x[0-9a-f]{40}$'),
  value            numeric(78,0) NOT NULL DEFAULT 0 CHECK (value >= 0),
  data             bytea        NOT NULL DEFAULT '\x',
  gas_limit        bigint       CHECK (gas_limit > 0),
  tx_type          smallint     CHECK (tx_type IN (0, 2)),
  nonce            bigint       CHECK (nonce >= 0),
  max_fee          numeric(78,0) CHECK (max_fee >= 0),
  max_priority_fee numeric(78,0) CHECK (max_priority_fee >= 0),
  gas_price        numeric(78,0) CHECK (gas_price >= 0),
  status           text         NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'signed', 'sent', 'confirmed', 'reverted', 'failed')),
  tx_hash          text         CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
  raw_tx           bytea,
  block_number     bigint       CHECK (block_number >= 0),
  error            text,
  revert_reason    text,
  purpose          text         NOT NULL DEFAULT '',
  created_at       timestamptz  NOT NULL DEFAULT now(),
  updated_at       timestamptz  NOT NULL DEFAULT now(),
  sent_at          timestamptz,
  confirmed_at     timestamptz,
  -- Once signed, a row always carries what is needed to re-send it after a crash.
  CHECK (status IN ('pending', 'failed')
         OR (nonce IS NOT NULL AND raw_tx IS NOT NULL AND tx_hash IS NOT NULL AND tx_type IS NOT NULL))
);
-- outbox_step claims rows by (status, chain, signer) in id order.
CREATE INDEX transactions_claim_idx ON transactions (status, chain_id, from_address, id);
-- The database refuses a second live transaction with the same nonce, whatever happens to the
-- Redis nonce lease; the nonce query (max nonce of signed|sent rows) uses it too.
CREATE UNIQUE INDEX transactions_nonce_uniq ON transactions (chain_id, from_address, nonce)
  WHERE status IN ('signed', 'sent', 'confirmed', 'reverted');
CREATE INDEX transactions_tx_hash_idx ON transactions (tx_hash) WHERE tx_hash IS NOT NULL;

-- Every signed variant of a transaction (the first one and each fee-bump replacement): any of them
-- may be the one that gets mined, so receipts are looked up for all.
CREATE TABLE transaction_attempts (
  id               bigserial    PRIMARY KEY,
  tx_id            bigint       NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
  tx_hash          text         NOT NULL UNIQUE CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
  raw_tx           bytea        NOT NULL,
  max_fee          numeric(78,0),
  max_priority_fee numeric(78,0),
  gas_price        numeric(78,0),
  created_at       timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX transaction_attempts_tx_idx ON transaction_attempts (tx_id, id);
