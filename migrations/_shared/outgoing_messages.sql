-- Transactional outgoing bus messages (libcommon/txmsg.c; this DDL must match txmsg.h):
-- written in the transaction that makes a change, published after COMMIT.
CREATE TABLE outgoing_messages (
  seq          bigserial    PRIMARY KEY,
  topic        text         NOT NULL,
  priority     text         NOT NULL CHECK (priority IN ('critical', 'high', 'normal')),
  envelope     text         NOT NULL,
  created_at   timestamptz  NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outgoing_messages_unpublished_idx ON outgoing_messages (seq) WHERE published_at IS NULL;
