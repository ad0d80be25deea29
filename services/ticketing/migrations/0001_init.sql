-- Tickets, their comments, transcripts and history; statuses and custom fields.

-- Statuses an account added to the built-in ones.
CREATE TABLE statuses (
    account_id     TEXT NOT NULL,
    key            TEXT NOT NULL,
    category       TEXT NOT NULL,
    label          TEXT NOT NULL,
    external_label TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);

CREATE TABLE field_definitions (
    account_id TEXT NOT NULL,
    key        TEXT NOT NULL,
    label      TEXT NOT NULL,
    type       TEXT NOT NULL,
    options    TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);

-- The last ticket number of each account: taken under the row lock of the creating
-- transaction, so numbers have no gaps (a rolled-back creation gives its number back).
CREATE TABLE counters (
    account_id  TEXT PRIMARY KEY,
    last_number BIGINT NOT NULL
);

CREATE TABLE tickets (
    account_id           TEXT NOT NULL,
    id                   UUID NOT NULL,
    number               BIGINT NOT NULL,
    subject              TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL,
    status_category      TEXT NOT NULL,
    priority             TEXT NOT NULL,
    type                 TEXT NOT NULL,
    category             TEXT NOT NULL DEFAULT '',
    requester            JSONB NOT NULL,
    requester_contact_id UUID,
    assignee_id          TEXT,
    group_id             UUID,
    tags                 TEXT[] NOT NULL DEFAULT '{}',
    custom_fields        JSONB NOT NULL DEFAULT '{}',
    source               TEXT NOT NULL,
    conversation_ids     UUID[] NOT NULL DEFAULT '{}',
    attachments          JSONB NOT NULL DEFAULT '[]',
    due_at               TIMESTAMPTZ,
    follower_ids         TEXT[] NOT NULL DEFAULT '{}',
    device               JSONB,
    request_id           TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    solved_at            TIMESTAMPTZ,
    version              BIGINT NOT NULL DEFAULT 1,
    comment_count        INT NOT NULL DEFAULT 0,
    -- Full-text search: subject and description, and every comment's words.
    doc                  TSVECTOR GENERATED ALWAYS AS
                             (to_tsvector('simple', subject || ' ' || description)) STORED,
    comments_doc         TSVECTOR NOT NULL DEFAULT ''::tsvector,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, number)
);
CREATE UNIQUE INDEX tickets_request ON tickets (account_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX tickets_search ON tickets USING GIN ((doc || comments_doc));
CREATE INDEX tickets_requester ON tickets (account_id, requester_contact_id, number);
CREATE INDEX tickets_conversations ON tickets USING GIN (conversation_ids);
CREATE INDEX tickets_updated ON tickets (account_id, updated_at, number);

CREATE TABLE comments (
    account_id        TEXT NOT NULL,
    id                UUID NOT NULL,
    ticket_id         UUID NOT NULL,
    author_kind       INT NOT NULL,
    author_id         TEXT NOT NULL,
    body              TEXT NOT NULL,
    public            BOOLEAN NOT NULL,
    attachments       JSONB NOT NULL DEFAULT '[]',
    client_comment_id TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, ticket_id) REFERENCES tickets (account_id, id)
);
CREATE INDEX comments_ticket ON comments (account_id, ticket_id, id);
CREATE UNIQUE INDEX comments_client ON comments (account_id, client_comment_id)
    WHERE client_comment_id IS NOT NULL;

-- The chat a ticket was made from, as it was then.
CREATE TABLE transcripts (
    account_id      TEXT NOT NULL,
    ticket_id       UUID NOT NULL,
    conversation_id UUID NOT NULL,
    lines           JSONB NOT NULL,
    truncated       BOOLEAN NOT NULL,
    PRIMARY KEY (account_id, ticket_id),
    FOREIGN KEY (account_id, ticket_id) REFERENCES tickets (account_id, id)
);

-- Who changed what, when, from what to what.
CREATE TABLE ticket_events (
    account_id TEXT NOT NULL,
    id         UUID NOT NULL,
    ticket_id  UUID NOT NULL,
    actor_kind INT NOT NULL,
    actor_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    changes    JSONB NOT NULL DEFAULT '[]',
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE INDEX ticket_events_ticket ON ticket_events (account_id, ticket_id, id);
