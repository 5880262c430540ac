-- Retention (store.Prune) deletes finished deliveries by age: this partial index holds only the
-- terminal ones, ordered by last change, so each prune batch reads just the rows it deletes and
-- never walks over pending or retrying deliveries.
CREATE INDEX deliveries_prune ON deliveries (updated_at) WHERE status IN ('delivered', 'dead_lettered', 'excluded');
