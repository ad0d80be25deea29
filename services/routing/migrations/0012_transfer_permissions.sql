-- Who may transfer to whom: the agent's role in the directory, the account's policy,
-- and the role the requester had (onward offers of a team transfer follow it).
ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent';
ALTER TABLE settings ADD COLUMN transfer_policy JSONB;
ALTER TABLE transfers ADD COLUMN requester_role TEXT NOT NULL DEFAULT 'agent';
