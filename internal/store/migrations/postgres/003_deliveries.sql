CREATE TABLE updates (
    update_id   TEXT PRIMARY KEY,
    profile_key TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    routed_at   BIGINT NOT NULL,
    audiences   TEXT NOT NULL
);
CREATE INDEX updates_received ON updates (received_at);

CREATE TABLE deliveries (
    delivery_id      TEXT PRIMARY KEY,
    update_id        TEXT NOT NULL,
    destination_id   TEXT NOT NULL,
    status           TEXT NOT NULL,
    reason           TEXT NOT NULL DEFAULT '',
    attempts         BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    email_hash       TEXT,
    external_id_hash TEXT,
    payload          BYTEA
);
CREATE INDEX deliveries_update ON deliveries (update_id);
CREATE INDEX deliveries_destination_time ON deliveries (destination_id, updated_at);
CREATE INDEX deliveries_status ON deliveries (status, destination_id);
CREATE INDEX deliveries_email ON deliveries (email_hash) WHERE email_hash IS NOT NULL;
CREATE INDEX deliveries_external_id ON deliveries (external_id_hash) WHERE external_id_hash IS NOT NULL;

CREATE TABLE attempts (
    delivery_id TEXT NOT NULL,
    n           BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status_code BIGINT NOT NULL,
    latency_ms  DOUBLE PRECISION NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, n)
);
