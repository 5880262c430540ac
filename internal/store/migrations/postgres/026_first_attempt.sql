-- A delivery delivered at its first attempt keeps that attempt on its own row (first_*): its
-- time, status code, latency and reason; its outcome is "delivered" and it has no error. It
-- then has no attempts row. Every other attempt (retries, failures, later successes) is still
-- an attempts row. The columns are NULL on every other delivery, and on deliveries written
-- before this migration (their first attempts are attempts rows).
ALTER TABLE deliveries ADD COLUMN first_attempt_at BIGINT;
ALTER TABLE deliveries ADD COLUMN first_status_code BIGINT;
ALTER TABLE deliveries ADD COLUMN first_latency_ms DOUBLE PRECISION;
ALTER TABLE deliveries ADD COLUMN first_reason TEXT;
