-- The inboxes of each account as the conversation service announces them
-- (`inbox.created`): business hours and routing rules may refer only to these.
CREATE TABLE known_inboxes (
    account_id TEXT NOT NULL,
    inbox_id   UUID NOT NULL,
    PRIMARY KEY (account_id, inbox_id)
);
-- Inboxes that routing settings already refer to stay valid.
INSERT INTO known_inboxes (account_id, inbox_id)
SELECT DISTINCT account_id, scope_id FROM business_hours WHERE scope = 'inbox'
ON CONFLICT DO NOTHING;
