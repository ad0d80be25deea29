-- Whether `inbox.created` has been published for the inbox. Inboxes created before the
-- event existed are announced once by the service when it starts.
ALTER TABLE inboxes ADD COLUMN announced BOOLEAN NOT NULL DEFAULT false;
