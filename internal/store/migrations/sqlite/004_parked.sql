-- Deliveries that must wait longer than a short in-memory retry (backoff, open circuit, paused
-- destination, full lane) wait here, outside RAM, in per-(destination, profile) order (seq).
CREATE TABLE parked (
    delivery_id      TEXT PRIMARY KEY,
    destination_id   TEXT NOT NULL,
    profile_key      TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    due_at           INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at INTEGER,
    job              BLOB NOT NULL
);
CREATE INDEX parked_due ON parked (destination_id, due_at);
CREATE INDEX parked_profile ON parked (destination_id, profile_key, seq);

-- One node at a time sends to a destination: the holder of its claim.
CREATE TABLE destination_claims (
    destination_id TEXT PRIMARY KEY,
    node_id        TEXT NOT NULL,
    expires_at     INTEGER NOT NULL
);

CREATE TABLE alerts (
    id             TEXT PRIMARY KEY,
    destination_id TEXT NOT NULL,
    kind           TEXT NOT NULL,
    message        TEXT NOT NULL,
    at             INTEGER NOT NULL
);
CREATE INDEX alerts_destination ON alerts (destination_id, at);
