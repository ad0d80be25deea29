-- Each aggregate's queued events form a lane: only its oldest unfinished event (the
-- head) may be claimed, so that a claim reads the heads alone however long the
-- lanes grow. Delayed runs are heads of their own. A finished head hands the lane
-- to the next event.
ALTER TABLE pending ADD COLUMN head BOOLEAN NOT NULL DEFAULT false;
UPDATE pending p SET head = true
 WHERE p.rule_id IS NOT NULL
    OR NOT EXISTS (SELECT 1 FROM pending q
                    WHERE q.aggregate = p.aggregate AND q.rule_id IS NULL AND q.id < p.id);
CREATE INDEX pending_heads ON pending (due_at, id) WHERE head;
-- Runs in progress, by aggregate (one at a time per aggregate).
CREATE INDEX pending_claimed ON pending (aggregate) WHERE claimed_until IS NOT NULL;
DROP INDEX pending_due;
