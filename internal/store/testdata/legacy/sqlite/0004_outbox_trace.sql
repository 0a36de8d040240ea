-- The trace context of the request that made each change, as a W3C
-- traceparent and tracestate ('' when it had none): the delivery continues
-- that trace, however much later it happens.
ALTER TABLE webhook_outbox ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_outbox ADD COLUMN tracestate TEXT NOT NULL DEFAULT '';
