-- The highest routing assignment sequence applied to each conversation: older
-- routing.assigned / routing.unassigned events arriving late are ignored.
ALTER TABLE conversations ADD COLUMN routing_sequence BIGINT NOT NULL DEFAULT 0;
