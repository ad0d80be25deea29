-- Note templates for transfers (the four built-in ones live in the code), and the
-- template and fields a transfer was sent with.
CREATE TABLE transfer_templates (
    account_id TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    fields     TEXT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
ALTER TABLE transfers
    ADD COLUMN template_id TEXT NOT NULL DEFAULT '',
    ADD COLUMN fields      JSONB NOT NULL DEFAULT '{}';
