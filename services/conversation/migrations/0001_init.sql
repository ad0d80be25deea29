-- Conversation service schema: inboxes, contacts, conversations, messages.
-- Every row carries account_id and every query filters on it.

CREATE TABLE inboxes (
    id               UUID PRIMARY KEY,
    account_id       TEXT NOT NULL,
    name             TEXT NOT NULL,
    channel_kind     TEXT NOT NULL,
    public_key       TEXT NOT NULL UNIQUE,
    greeting_message TEXT NOT NULL DEFAULT '',
    reopen_policy    TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX inboxes_account ON inboxes (account_id, id);

CREATE TABLE contacts (
    id                UUID PRIMARY KEY,
    account_id        TEXT NOT NULL,
    external_id       TEXT,
    name              TEXT NOT NULL DEFAULT '',
    email             TEXT,
    phone             TEXT NOT NULL DEFAULT '',
    custom_attributes JSONB NOT NULL DEFAULT '{}',
    device            JSONB NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX contacts_external_id ON contacts (account_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX contacts_email ON contacts (account_id, lower(email)) WHERE email IS NOT NULL;

CREATE TABLE conversations (
    id                UUID PRIMARY KEY,
    account_id        TEXT NOT NULL,
    inbox_id          UUID NOT NULL REFERENCES inboxes (id),
    contact_id        UUID NOT NULL REFERENCES contacts (id),
    channel_kind      TEXT NOT NULL,
    status            TEXT NOT NULL,
    snoozed_until     TIMESTAMPTZ,
    priority          TEXT NOT NULL DEFAULT 'none',
    labels            TEXT[] NOT NULL DEFAULT '{}',
    custom_attributes JSONB NOT NULL DEFAULT '{}',
    assignee_id       TEXT,
    team_id           TEXT,
    waiting_since     TIMESTAMPTZ,
    first_reply_at    TIMESTAMPTZ,
    last_activity_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    status_actor_kind INT NOT NULL DEFAULT 0,
    status_actor_id   TEXT NOT NULL DEFAULT '',
    version           BIGINT NOT NULL DEFAULT 1,
    next_sequence     BIGINT NOT NULL DEFAULT 1,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX conversations_activity ON conversations (account_id, last_activity_at DESC, id DESC);
CREATE INDEX conversations_contact ON conversations (account_id, contact_id, last_activity_at DESC);
CREATE INDEX conversations_status ON conversations (account_id, status, last_activity_at DESC);
CREATE INDEX conversations_assignee ON conversations (account_id, assignee_id, last_activity_at DESC);
CREATE INDEX conversations_labels ON conversations USING GIN (labels);

CREATE TABLE messages (
    id                UUID PRIMARY KEY,
    account_id        TEXT NOT NULL,
    conversation_id   UUID NOT NULL REFERENCES conversations (id),
    sequence          BIGINT NOT NULL,
    kind              TEXT NOT NULL,
    sender_kind       INT NOT NULL,
    sender_id         TEXT NOT NULL,
    content           TEXT NOT NULL,
    attachments       JSONB NOT NULL DEFAULT '[]',
    client_message_id TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, sequence)
);
CREATE UNIQUE INDEX messages_client_id ON messages (account_id, client_message_id) WHERE client_message_id IS NOT NULL;
