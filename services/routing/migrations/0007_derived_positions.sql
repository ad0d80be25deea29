-- A waiting chat's position is derived from the queue's order when it is read, never
-- stored: a chat leaving the head of a long queue no longer rewrites every row behind it.
ALTER TABLE queue DROP COLUMN position, DROP COLUMN estimate_secs;
CREATE INDEX queue_team_order ON queue (account_id, team_id, priority_class, enqueued_at, conversation_id);
