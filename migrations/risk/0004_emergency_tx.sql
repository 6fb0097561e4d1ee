-- risk: what happened to each emergency's approval ticket. An approved decision on an active
-- emergency queues setEmergencyMode(true) in risk.transactions (the outbox) in the same
-- transaction; tx_key is that row's idempotency key, so the emergency row says which
-- transaction turned emergency mode on (or why none was sent, in tx_note).
ALTER TABLE risk_emergencies
  ADD COLUMN decided_at timestamptz,
  ADD COLUMN tx_key     text,
  ADD COLUMN tx_note    text;
