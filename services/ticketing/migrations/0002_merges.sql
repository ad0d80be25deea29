-- A merged ticket points at the ticket it was merged into.
ALTER TABLE tickets ADD COLUMN merged_into UUID;
