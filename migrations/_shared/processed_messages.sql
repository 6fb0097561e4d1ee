-- processed_messages is the bus's exactly-once guard: a handler's effects commit in the
-- same transaction as the (topic, message_id) row, so a redelivered message is a no-op.
CREATE TABLE processed_messages (
  topic       text        NOT NULL,
  message_id  text        NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, message_id)
);
-- Lets retention jobs prune old ids by age without scanning the whole table.
CREATE INDEX processed_messages_processed_at_idx ON processed_messages (processed_at);
