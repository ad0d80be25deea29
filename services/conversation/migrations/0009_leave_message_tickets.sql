-- Inboxes whose leave-a-message chats become tickets.
ALTER TABLE inboxes ADD COLUMN ticket_on_leave_message BOOLEAN NOT NULL DEFAULT false;
