-- Customer satisfaction ratings, and lookups by team now that routing assigns teams.

ALTER TABLE conversations
    ADD COLUMN csat_rating  INT CHECK (csat_rating BETWEEN 1 AND 5),
    ADD COLUMN csat_comment TEXT;

CREATE INDEX conversations_team ON conversations (account_id, team_id, last_activity_at DESC);
