-- Transfers: a conversation offered by its agent to another, who accepts or rejects.
CREATE TABLE transfers (
    account_id      TEXT NOT NULL,
    id              UUID NOT NULL,
    conversation_id UUID NOT NULL,
    from_agent_id   TEXT NOT NULL,
    to_agent_id     TEXT NOT NULL,
    note            TEXT NOT NULL,
    state           TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    requested_by    TEXT NOT NULL,
    requested_at    TIMESTAMPTZ NOT NULL,
    deadline        TIMESTAMPTZ NOT NULL,
    decided_at      TIMESTAMPTZ,
    PRIMARY KEY (account_id, id)
);
-- One pending transfer per conversation.
CREATE UNIQUE INDEX transfers_pending ON transfers (account_id, conversation_id) WHERE state = 'pending';
CREATE INDEX transfers_conversation ON transfers (account_id, conversation_id, requested_at);
CREATE INDEX transfers_receiver ON transfers (account_id, to_agent_id) WHERE state = 'pending';

ALTER TABLE settings ADD COLUMN transfer_timeout_seconds INT NOT NULL DEFAULT 30;
