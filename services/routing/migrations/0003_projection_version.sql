-- Conversation events may be handled out of order by different replicas: keep the
-- conversation version the projection reflects, and ignore older events.
ALTER TABLE conversations ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
