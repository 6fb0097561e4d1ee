-- operation_nonces: one row per (wallet, nonce) an EIP-712 "Operation" signature used
-- (libcommon/opsig.h). It is inserted in the same transaction as the operation's effect:
-- a replayed signature finds its row and is refused, and an operation that fails rolls
-- its nonce back so the same signature may be retried until its deadline.
CREATE TABLE operation_nonces (
  wallet   text        NOT NULL,
  nonce    numeric(78) NOT NULL,
  action   text        NOT NULL,
  used_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (wallet, nonce)
);
