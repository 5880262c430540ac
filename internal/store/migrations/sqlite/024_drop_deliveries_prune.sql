-- Retention prunes by destination through deliveries_status (store.Prune): the partial index on
-- updated_at cost every delivery an index insert on the hot path for a pass that runs hourly.
DROP INDEX deliveries_prune;
