-- Deliveries waiting for an attempt move to a small table of their own: claiming and
-- finishing them no longer touches an index of the (large, long-kept) delivery log,
-- whose rows are then updated in place (heap-only) when an attempt is recorded.

CREATE TABLE queue (
    delivery_id   UUID PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
    endpoint_id   UUID NOT NULL,
    due_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Taken by a sender until then (a crashed sender's claim runs out).
    claimed_until TIMESTAMPTZ
) WITH (fillfactor = 70);
CREATE INDEX queue_due ON queue (endpoint_id, due_at);

INSERT INTO queue (delivery_id, endpoint_id, due_at)
SELECT id, endpoint_id, next_attempt_at FROM deliveries WHERE status = 'pending';

DROP INDEX deliveries_due;
ALTER TABLE deliveries DROP COLUMN claimed_until;
