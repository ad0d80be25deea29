-- Email: each account's sender identity and template overrides, and the outbound
-- mail (queue and log in one: mail is far rarer than webhooks).

CREATE TABLE email_settings (
    account_id             TEXT PRIMARY KEY,
    from_name              TEXT NOT NULL DEFAULT '',
    from_address           TEXT NOT NULL DEFAULT '',
    reply_to               TEXT NOT NULL DEFAULT '',
    ticket_emails_disabled BOOLEAN NOT NULL DEFAULT false,
    -- {"<kind>": {"subject": …, "text": …, "html": …}}
    templates              JSONB NOT NULL DEFAULT '{}',
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE emails (
    id              UUID PRIMARY KEY,
    account_id      TEXT NOT NULL,
    -- One email per cause per recipient set: `<event id>:<kind>` or a command's key.
    dedupe_key      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    sender          TEXT NOT NULL,
    reply_to        TEXT NOT NULL DEFAULT '',
    recipients      TEXT[] NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    in_reply_to     TEXT NOT NULL DEFAULT '',
    auto_submitted  TEXT NOT NULL DEFAULT '',
    ticket_id       TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    attempts        INT NOT NULL DEFAULT 0,
    step            INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_until   TIMESTAMPTZ,
    error           TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    UNIQUE (account_id, dedupe_key)
);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'queued';
CREATE INDEX emails_list ON emails (account_id, created_at DESC, id DESC);
