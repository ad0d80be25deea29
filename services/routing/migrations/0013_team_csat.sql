-- Satisfaction per team: each rating counts for the conversation's team as well as
-- its agent, and a changed rating is taken off both before the new one is added.
ALTER TABLE teams
    ADD COLUMN csat_sum   BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN csat_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversation_ratings ADD COLUMN team_id UUID;
