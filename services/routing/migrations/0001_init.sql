-- Routing service schema. Queue and assignment changes of one account are
-- serialised by a transaction-scoped advisory lock on the account, so any number
-- of replicas can route without double assignment or exceeding capacity.

CREATE TABLE settings (
    account_id             TEXT PRIMARY KEY,
    default_strategy       TEXT NOT NULL,
    skill_fallback_seconds INT NOT NULL,
    max_queue_length       INT NOT NULL,
    max_wait_seconds       INT NOT NULL,
    overflow_action        TEXT NOT NULL,
    overflow_team_id       UUID,
    leave_message_text     TEXT NOT NULL,
    offline_policy         TEXT NOT NULL,
    pooled_mode            BOOLEAN NOT NULL,
    presence_idle_seconds  INT NOT NULL,
    default_handle_seconds INT NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE teams (
    id         UUID PRIMARY KEY,
    account_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

CREATE TABLE agents (
    account_id       TEXT NOT NULL,
    id               TEXT NOT NULL,
    name             TEXT NOT NULL,
    email            TEXT NOT NULL DEFAULT '',
    languages        TEXT[] NOT NULL DEFAULT '{}',
    max_chats        INT NOT NULL,
    channel_capacity JSONB NOT NULL DEFAULT '{}',
    presence         TEXT NOT NULL DEFAULT 'offline',
    presence_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at     TIMESTAMPTZ,
    last_assigned_at TIMESTAMPTZ,
    resolved_count   BIGINT NOT NULL DEFAULT 0,
    csat_sum         BIGINT NOT NULL DEFAULT 0,
    csat_count       BIGINT NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);

CREATE TABLE agent_teams (
    account_id TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    team_id    UUID NOT NULL REFERENCES teams (id),
    PRIMARY KEY (account_id, agent_id, team_id),
    FOREIGN KEY (account_id, agent_id) REFERENCES agents (account_id, id)
);

CREATE TABLE agent_skills (
    account_id TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    skill      TEXT NOT NULL,
    level      INT NOT NULL,
    PRIMARY KEY (account_id, agent_id, skill),
    FOREIGN KEY (account_id, agent_id) REFERENCES agents (account_id, id)
);

-- What routing knows of conversations (fed by conversation events).
CREATE TABLE conversations (
    account_id         TEXT NOT NULL,
    id                 UUID NOT NULL,
    inbox_id           UUID NOT NULL,
    contact_id         UUID NOT NULL,
    channel            TEXT NOT NULL,
    status             TEXT NOT NULL,
    priority           INT NOT NULL DEFAULT 0,
    labels             TEXT[] NOT NULL DEFAULT '{}',
    attributes         JSONB NOT NULL DEFAULT '{}',
    contact_attributes JSONB NOT NULL DEFAULT '{}',
    first_message      TEXT NOT NULL DEFAULT '',
    last_agent_id      TEXT,
    last_team_id       UUID,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
CREATE INDEX conversations_contact ON conversations (account_id, contact_id, created_at DESC);

CREATE TABLE queue (
    account_id      TEXT NOT NULL,
    conversation_id UUID NOT NULL,
    team_id         UUID,
    required_skills TEXT[] NOT NULL DEFAULT '{}',
    priority_class  INT NOT NULL,
    strategy        TEXT NOT NULL,
    channel         TEXT NOT NULL,
    enqueued_at     TIMESTAMPTZ NOT NULL,
    stage           INT NOT NULL DEFAULT 0,
    not_before      TIMESTAMPTZ,
    position        INT NOT NULL DEFAULT 0,
    estimate_secs   INT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, conversation_id)
);
CREATE INDEX queue_order ON queue (account_id, priority_class, enqueued_at, conversation_id);

-- Open assignments: what counts against capacity.
CREATE TABLE assignments (
    account_id      TEXT NOT NULL,
    conversation_id UUID NOT NULL,
    agent_id        TEXT NOT NULL,
    team_id         UUID,
    channel         TEXT NOT NULL,
    assigned_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, conversation_id),
    FOREIGN KEY (account_id, agent_id) REFERENCES agents (account_id, id)
);
CREATE INDEX assignments_agent ON assignments (account_id, agent_id);

-- History for statistics and wait estimates.
CREATE TABLE assignment_log (
    id              BIGSERIAL PRIMARY KEY,
    account_id      TEXT NOT NULL,
    conversation_id UUID NOT NULL,
    agent_id        TEXT NOT NULL,
    team_id         UUID,
    reason          TEXT NOT NULL,
    waited_seconds  INT NOT NULL,
    assigned_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    released_at     TIMESTAMPTZ
);
CREATE INDEX assignment_log_account ON assignment_log (account_id, assigned_at DESC);
CREATE INDEX assignment_log_open ON assignment_log (account_id, conversation_id) WHERE released_at IS NULL;

CREATE TABLE overflow_log (
    id              BIGSERIAL PRIMARY KEY,
    account_id      TEXT NOT NULL,
    conversation_id UUID NOT NULL,
    from_team_id    UUID,
    action          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX overflow_log_account ON overflow_log (account_id, at DESC);

CREATE TABLE routing_rules (
    id              UUID PRIMARY KEY,
    account_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    position        INT NOT NULL,
    condition       JSONB NOT NULL,
    target_team_id  UUID REFERENCES teams (id),
    required_skills TEXT[] NOT NULL DEFAULT '{}',
    priority_class  INT NOT NULL,
    strategy        TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX routing_rules_order ON routing_rules (account_id, position, created_at);

CREATE TABLE business_hours (
    account_id            TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    scope_id              UUID NOT NULL,
    spec                  JSONB NOT NULL,
    out_of_office_message TEXT NOT NULL DEFAULT '',
    policy                TEXT NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, scope, scope_id)
);
