-- Business hours as routing's `business_hours.updated` shows them, per team or inbox:
-- what `conversation.within_business_hours` is evaluated with.
CREATE TABLE business_hours (
    account_id  TEXT NOT NULL,
    -- The team's or the inbox's id.
    owner_id    TEXT NOT NULL,
    body        BYTEA NOT NULL,
    PRIMARY KEY (account_id, owner_id)
);
