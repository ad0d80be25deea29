-- Team transfers: each offer is a transfer; a declined or unanswered offer hands on to
-- the next agent of the team (a new transfer linked to it) until nobody is left.
ALTER TABLE transfers
    ADD COLUMN to_team_id  UUID,
    ADD COLUMN declined_by TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN previous_id UUID,
    ADD COLUMN next_id     UUID,
    ADD COLUMN exhausted   BOOLEAN NOT NULL DEFAULT false;
