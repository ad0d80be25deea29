-- Rules, their run log, the queue of events (and delayed runs) waiting to be run, and
-- the projections of other services' data that conditions look at.

CREATE TABLE rules (
    account_id   TEXT NOT NULL,
    id           UUID NOT NULL,
    position     INT NOT NULL,
    event        TEXT NOT NULL,
    active       BOOLEAN NOT NULL,
    -- The Rule message (name, description, conditions, actions, delay).
    body         BYTEA NOT NULL,
    create_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE INDEX rules_order ON rules (account_id, position, id);

-- One row per rule considered for an event (fired, failed, stopped, scheduled or
-- dropped); rules whose conditions did not hold are not logged.
CREATE TABLE rule_runs (
    account_id       TEXT NOT NULL,
    id               UUID NOT NULL,
    rule_id          UUID NOT NULL,
    event_id         TEXT NOT NULL,
    conversation_id  TEXT NOT NULL DEFAULT '',
    ticket_id        TEXT NOT NULL DEFAULT '',
    outcome          TEXT NOT NULL,
    -- The state the rule acted on (`conversation:<id>:<version>`): a rule acts at
    -- most once on one state, however many rule-caused events show it.
    observed         TEXT NOT NULL DEFAULT '',
    -- The RuleRun message.
    body             BYTEA NOT NULL,
    create_time      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE INDEX rule_runs_recent ON rule_runs (account_id, create_time DESC, id DESC);
CREATE INDEX rule_runs_rule ON rule_runs (account_id, rule_id, create_time DESC);
CREATE INDEX rule_runs_conversation ON rule_runs (account_id, conversation_id, create_time DESC)
    WHERE conversation_id <> '';
CREATE INDEX rule_runs_ticket ON rule_runs (account_id, ticket_id, create_time DESC)
    WHERE ticket_id <> '';
CREATE INDEX rule_runs_created ON rule_runs (create_time);
CREATE INDEX rule_runs_observed ON rule_runs (account_id, rule_id, observed) WHERE observed <> '';

-- Work: an event whose rules are to be run (rule_id NULL), or one delayed rule's run,
-- due at `due_at`. Runs of one aggregate (conversation or ticket) are taken in order.
CREATE TABLE pending (
    id             BIGSERIAL PRIMARY KEY,
    account_id     TEXT NOT NULL,
    aggregate      TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    event_kind     TEXT NOT NULL,
    payload        BYTEA NOT NULL,
    -- The conversation (or ticket) before the event, encoded, for `changed`.
    previous       BYTEA,
    rule_id        UUID,
    -- A delayed run: the episode it was armed in.
    episode        TEXT NOT NULL DEFAULT '',
    due_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_until  TIMESTAMPTZ,
    attempts       INT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pending_due ON pending (due_at, id);
CREATE INDEX pending_aggregate ON pending (aggregate, id);
-- One armed run per delayed rule and aggregate.
CREATE UNIQUE INDEX pending_delayed ON pending (account_id, rule_id, aggregate)
    WHERE rule_id IS NOT NULL;

-- Conversations as the last event showed them, with what episodes are measured by.
CREATE TABLE conversations (
    account_id                TEXT NOT NULL,
    id                        TEXT NOT NULL,
    version                   BIGINT NOT NULL,
    body                      BYTEA NOT NULL,
    status                    TEXT NOT NULL,
    status_since              TIMESTAMPTZ NOT NULL,
    last_sequence             BIGINT NOT NULL DEFAULT 0,
    last_message_id           TEXT NOT NULL DEFAULT '',
    last_customer_message_id  TEXT NOT NULL DEFAULT '',
    last_agent_id             TEXT NOT NULL DEFAULT '',
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE TABLE contacts (
    account_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        BYTEA NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE inboxes (
    account_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        BYTEA NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE tickets (
    account_id    TEXT NOT NULL,
    id            TEXT NOT NULL,
    body          BYTEA NOT NULL,
    status        TEXT NOT NULL,
    status_since  TIMESTAMPTZ NOT NULL,
    update_time   TIMESTAMPTZ,
    PRIMARY KEY (account_id, id)
);
