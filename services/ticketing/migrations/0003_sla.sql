-- SLA: business-hours calendars, policies in order, and each ticket's log of clock
-- marks from which its targets' standings are derived.
CREATE TABLE calendars (
    account_id TEXT NOT NULL,
    id         UUID NOT NULL,
    name       TEXT NOT NULL,
    spec       JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);

CREATE TABLE sla_policies (
    account_id      TEXT NOT NULL,
    id              UUID NOT NULL,
    name            TEXT NOT NULL,
    position        INT NOT NULL,
    filter          JSONB NOT NULL,
    targets         JSONB NOT NULL,
    calendar_id     UUID,
    warning_seconds BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);

CREATE TABLE sla_marks (
    account_id TEXT NOT NULL,
    ticket_id  UUID NOT NULL,
    seq        BIGSERIAL,
    metric     TEXT NOT NULL,
    mark       TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, ticket_id, seq)
);

ALTER TABLE tickets ADD COLUMN sla_policy_id UUID,
                    ADD COLUMN sla JSONB NOT NULL DEFAULT '[]';
