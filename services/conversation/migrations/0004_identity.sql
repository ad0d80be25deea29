-- Visitor identity: a contact's external id and email count only when verified (given
-- by staff, an integration, or a visitor with a valid identity hash). Unverified
-- identities are kept for display but never matched, and never collide.
ALTER TABLE contacts ADD COLUMN identity_verified BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE contacts ALTER COLUMN identity_verified SET DEFAULT false;
DROP INDEX contacts_external_id;
CREATE UNIQUE INDEX contacts_external_id ON contacts (account_id, external_id)
    WHERE external_id IS NOT NULL AND identity_verified;
DROP INDEX contacts_email;
CREATE INDEX contacts_email ON contacts (account_id, lower(email))
    WHERE email IS NOT NULL AND identity_verified;

ALTER TABLE inboxes ADD COLUMN identity_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE inboxes ADD COLUMN visitor_attribute_keys TEXT[] NOT NULL DEFAULT '{}';
UPDATE inboxes SET identity_secret = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
