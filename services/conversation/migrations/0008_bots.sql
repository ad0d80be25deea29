-- A bot that answers an inbox first, and the menus bots offer.
ALTER TABLE inboxes ADD COLUMN bot JSONB;
ALTER TABLE messages ADD COLUMN menu JSONB NOT NULL DEFAULT '[]',
                     ADD COLUMN menu_choice TEXT NOT NULL DEFAULT '';
