-- A conversation is looked up by its account and id. With only the primary key on
-- `id`, a statement first planned while the table was empty (a fresh install) kept
-- scanning the account's `conversations_team` entries for every lookup until the
-- table was next analysed: each lookup read all of the account's conversations. An
-- index on exactly (account_id, id) is the plan for these lookups at any size.
CREATE UNIQUE INDEX conversations_account_id ON conversations (account_id, id);
