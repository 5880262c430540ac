-- Notification channels and the notifications sent to them: each notification is recorded
-- once by its stable ID (the primary key), with one delivery per channel and every attempt.
CREATE TABLE notification_channels (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    url            TEXT NOT NULL,
    sealed_secret  BYTEA,
    secret_last4   TEXT NOT NULL DEFAULT '',
    events         TEXT NOT NULL,
    connection_ids TEXT NOT NULL,
    version        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    deleted_at     BIGINT
);
CREATE UNIQUE INDEX notification_channels_name_live ON notification_channels (name) WHERE deleted_at IS NULL;

CREATE TABLE notifications (
    id            TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    subject       TEXT NOT NULL DEFAULT '',
    occurred_at   BIGINT NOT NULL,
    body          TEXT NOT NULL,
    text          TEXT NOT NULL,
    links         TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE INDEX notifications_subject ON notifications (connection_id, subject);

CREATE TABLE notification_deliveries (
    id               TEXT PRIMARY KEY,
    notification_id  TEXT NOT NULL REFERENCES notifications (id),
    channel_id       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_at          BIGINT,
    first_attempt_at BIGINT,
    last_status_code BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_until      BIGINT NOT NULL DEFAULT 0,
    delivered_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (notification_id, channel_id)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_at);
CREATE INDEX notification_deliveries_channel ON notification_deliveries (channel_id, created_at);

CREATE TABLE notification_attempts (
    delivery_id TEXT NOT NULL,
    n           BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status_code BIGINT NOT NULL,
    error       TEXT NOT NULL,
    latency_ms  BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, n)
);
