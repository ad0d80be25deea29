-- Macros: named sets of actions staff apply by hand.
CREATE TABLE macros (
    account_id   TEXT NOT NULL,
    id           UUID NOT NULL,
    name         TEXT NOT NULL,
    -- The Macro message (description, actions).
    body         BYTEA NOT NULL,
    create_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX macros_name ON macros (account_id, lower(name));
