-- Tables shaped like the conversation service's message path, in their own schema,
-- for pgbench's message-shaped transaction (message.sql).
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE TABLE bench.conversations (
    id               BIGINT PRIMARY KEY,
    account_id       TEXT NOT NULL,
    next_sequence    BIGINT NOT NULL DEFAULT 1,
    last_activity_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    waiting_since    TIMESTAMPTZ,
    version          BIGINT NOT NULL DEFAULT 1
);
CREATE TABLE bench.messages (
    id              UUID PRIMARY KEY,
    account_id      TEXT NOT NULL,
    conversation_id BIGINT NOT NULL,
    sequence        BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    sender_id       TEXT NOT NULL,
    content         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, sequence)
);
CREATE TABLE bench.outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    subject      TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO bench.conversations (id, account_id) SELECT g, 'load' FROM generate_series(1, 1000) g;
