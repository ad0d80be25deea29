-- The W3C trace context each piece of work was queued in, so that running its rules
-- later (by any replica) joins the trace of the action that caused the event.
ALTER TABLE pending ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
