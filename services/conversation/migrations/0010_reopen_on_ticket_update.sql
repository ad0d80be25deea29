-- Inboxes whose resolved chats reopen when their ticket tells the customer something.
ALTER TABLE inboxes ADD COLUMN reopen_on_ticket_update BOOLEAN NOT NULL DEFAULT false;
