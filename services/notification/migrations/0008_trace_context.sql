-- The W3C trace context each delivery and email was queued in, so that sending it
-- later (by any replica) joins the trace of the customer action that caused it.
ALTER TABLE deliveries ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE emails ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
