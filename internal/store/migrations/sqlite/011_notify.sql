-- Notification channels and the notifications sent to them: each notification is recorded
-- once by its stable ID (the primary key), with one delivery per channel and every attempt.
CREATE TABLE notification_channels (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    url            TEXT NOT NULL,
    sealed_secret  BLOB,
    secret_last4   TEXT NOT NULL DEFAULT '',
    events         TEXT NOT NULL,
    connection_ids TEXT NOT NULL,
    version        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER
);
CREATE UNIQUE INDEX notification_channels_name_live ON notification_channels (name) WHERE deleted_at IS NULL;

CREATE TABLE notifications (
    id            TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    subject       TEXT NOT NULL DEFAULT '',
    occurred_at   INTEGER NOT NULL,
    body          TEXT NOT NULL,
    text          TEXT NOT NULL,
    links         TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE INDEX notifications_subject ON notifications (connection_id, subject);

CREATE TABLE notification_deliveries (
    id               TEXT PRIMARY KEY,
    notification_id  TEXT NOT NULL REFERENCES notifications (id),
    channel_id       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          INTEGER,
    first_attempt_at INTEGER,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_until      INTEGER NOT NULL DEFAULT 0,
    delivered_at     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (notification_id, channel_id)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_at);
CREATE INDEX notification_deliveries_channel ON notification_deliveries (channel_id, created_at);

CREATE TABLE notification_attempts (
    delivery_id TEXT NOT NULL,
    n           INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    error       TEXT NOT NULL,
    latency_ms  INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
