-- Notifications travel through the delivery engine (docs/survey-watch.md, "Delivery"): each
-- notification's deliveries are rows of deliveries and parked, sent by the channel's lane.
-- The parallel sender's tables go. Deliveries still queued in them when this runs are not
-- carried over (survey watch had not been released with them).
DROP TABLE notification_attempts;
DROP TABLE notification_deliveries;
