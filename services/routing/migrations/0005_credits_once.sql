-- An agent's resolution count and CSAT totals count each conversation once: a
-- conversation resolved again after a reopen, or rated again, does not add up.
CREATE TABLE resolution_credits (
    account_id      TEXT NOT NULL,
    conversation_id UUID NOT NULL,
    agent_id        TEXT NOT NULL,
    PRIMARY KEY (account_id, conversation_id, agent_id)
);
CREATE TABLE conversation_ratings (
    account_id      TEXT NOT NULL,
    conversation_id UUID NOT NULL,
    agent_id        TEXT NOT NULL,
    rating          INT NOT NULL,
    PRIMARY KEY (account_id, conversation_id)
);
