-- A replay checks, per dead letter, whether its destination already received a newer update of
-- the same profile (order per profile and destination holds across replays): by profile key.
CREATE INDEX updates_profile ON updates (profile_key, received_at);
