-- An update keeps the destinations it was queued for (a JSON array of destination IDs; NULL
-- before this migration and for updates queued nowhere). Their pending deliveries are then
-- known from the update's row while the status writer holds their own rows back to write
-- them merged into their first outcome (store.StatusWriter, issue #12).
ALTER TABLE updates ADD COLUMN queued TEXT;
