-- deliveries_status held every delivery, so each one delivered moved in it (a delete and an
-- insert on SQLite; on PostgreSQL its upsert added an entry). Delivered rows are never looked up
-- by status alone: a destination's delivered ones are read through deliveries_destination_time.
-- The index now holds the others only (pending, retrying, dead-lettered, excluded). SQLite uses a
-- partial index only for a query that names its predicate, so every query of it says
-- "status <> 'delivered'" (store.undelivered).
DROP INDEX deliveries_status;
CREATE INDEX deliveries_undelivered ON deliveries (status, destination_id, updated_at) WHERE status <> 'delivered';
