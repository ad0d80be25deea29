-- How an inbox's quiet conversations end, and its satisfaction survey.
ALTER TABLE inboxes ADD COLUMN lifecycle JSONB;
ALTER TABLE inboxes ADD COLUMN csat_survey JSONB;
