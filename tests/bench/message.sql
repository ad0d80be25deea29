-- One message, shaped like SendMessage: lock the conversation, insert the message,
-- update the conversation, insert the outbox row.
\set conv random(1, :conversations)
BEGIN;
SELECT next_sequence FROM bench.conversations WHERE id = :conv FOR UPDATE;
INSERT INTO bench.messages (id, account_id, conversation_id, sequence, kind, sender_id, content)
    SELECT gen_random_uuid(), 'load', :conv, next_sequence, 'incoming', 'visitor', 'lg 123456789'
    FROM bench.conversations WHERE id = :conv;
UPDATE bench.conversations SET next_sequence = next_sequence + 1, last_activity_at = now(),
    waiting_since = coalesce(waiting_since, now()), version = version + 1 WHERE id = :conv;
INSERT INTO bench.outbox (event_id, subject, payload)
    VALUES (gen_random_uuid(), 'load.message.created', decode(repeat('ab', 400), 'hex'));
COMMIT;
