-- Wait estimates read the most recently released assignments of an account.
CREATE INDEX assignment_log_released ON assignment_log (account_id, released_at DESC) WHERE released_at IS NOT NULL;
