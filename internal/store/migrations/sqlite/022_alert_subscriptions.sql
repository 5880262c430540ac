-- Alert subscriptions (docs/alerts.md): the operator's webhooks, their episodes (one row per
-- subscription, condition and destination; open while the condition holds: the once-per-episode
-- guard every node writes through) and the alerts fired, with their delivery state and lease.
CREATE TABLE alert_subscriptions (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    url             TEXT NOT NULL,
    sealed_secret   BLOB NOT NULL,
    secret_last4    TEXT NOT NULL,
    events          TEXT NOT NULL,
    destination_ids TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);
CREATE UNIQUE INDEX alert_subscriptions_name_live ON alert_subscriptions (name) WHERE deleted_at IS NULL;

CREATE TABLE alert_episodes (
    subscription_id TEXT NOT NULL,
    cond            TEXT NOT NULL,
    destination_id  TEXT NOT NULL,
    is_open         BOOLEAN NOT NULL,
    opened_at       INTEGER NOT NULL,
    cleared_at      INTEGER,
    PRIMARY KEY (subscription_id, cond, destination_id)
);
CREATE INDEX alert_episodes_open ON alert_episodes (is_open);

CREATE TABLE alert_events (
    id               TEXT PRIMARY KEY,
    subscription_id  TEXT NOT NULL,
    event            TEXT NOT NULL,
    destination_id   TEXT NOT NULL,
    destination_name TEXT NOT NULL,
    message          TEXT NOT NULL,
    data             TEXT NOT NULL,
    fired_at         INTEGER NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          INTEGER NOT NULL,
    first_attempt_at INTEGER,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_until      INTEGER NOT NULL DEFAULT 0,
    delivered_at     INTEGER
);
CREATE INDEX alert_events_due ON alert_events (status, next_at);
CREATE INDEX alert_events_fired ON alert_events (fired_at);
CREATE INDEX alert_events_destination ON alert_events (destination_id, fired_at);
