-- Agent notifications, preferences, and the little of other services' data they
-- need, kept from events: the agent directory and who has which ticket.

CREATE TABLE agents (
    account_id TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    email      TEXT NOT NULL DEFAULT '',
    role       TEXT NOT NULL DEFAULT 'agent',
    team_ids   TEXT[] NOT NULL DEFAULT '{}',
    presence   TEXT NOT NULL DEFAULT 'offline',
    PRIMARY KEY (account_id, id)
);

CREATE TABLE tickets (
    account_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    number      BIGINT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    assignee_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, id)
);

CREATE TABLE agent_notifications (
    account_id      TEXT NOT NULL,
    id              UUID NOT NULL,
    agent_id        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL DEFAULT '',
    conversation_id TEXT NOT NULL DEFAULT '',
    ticket_id       TEXT NOT NULL DEFAULT '',
    transfer_id     TEXT NOT NULL DEFAULT '',
    deadline        TIMESTAMPTZ,
    -- Repeats with the same key collapse into the unread notification.
    collapse_key    TEXT NOT NULL,
    count           INT NOT NULL DEFAULT 1,
    read_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX agent_notifications_unread
    ON agent_notifications (account_id, agent_id, collapse_key) WHERE read_at IS NULL;
CREATE INDEX agent_notifications_list
    ON agent_notifications (account_id, agent_id, created_at DESC, id DESC);

CREATE TABLE notification_preferences (
    account_id TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    in_app     BOOLEAN NOT NULL,
    email      BOOLEAN NOT NULL,
    sound      BOOLEAN NOT NULL,
    desktop    BOOLEAN NOT NULL,
    PRIMARY KEY (account_id, agent_id, kind)
);
