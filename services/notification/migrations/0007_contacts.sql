-- Contacts as the conversation service's events show them: where a conversation of
-- an email inbox is answered.
CREATE TABLE contacts (
    account_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    email       TEXT NOT NULL DEFAULT '',
    -- The address was proven (given by staff, an integration or a signed identity),
    -- not merely typed in by a visitor: only such an address is written to.
    verified    BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (account_id, id)
);
