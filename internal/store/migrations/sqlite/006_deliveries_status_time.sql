-- A destination's deliveries in a status (dead letters, the backlog) are listed oldest first:
-- with updated_at in the index the listing reads its rows in order and stops at the page size,
-- and no planner (SQLite's sampled statistics included) prefers scanning the destination's
-- whole history through deliveries_destination_time instead.
DROP INDEX deliveries_status;
CREATE INDEX deliveries_status ON deliveries (status, destination_id, updated_at);
