-- Survey watch: connections to Qualtrics accounts, their sync runs and claims, and the data
-- synced from API v3 (see docs/survey-watch.md).
CREATE TABLE survey_connections (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    base_url            TEXT NOT NULL,
    sealed_token        BLOB NOT NULL,
    token_last4         TEXT NOT NULL,
    sealed_events_key   BLOB,
    brand_id            TEXT NOT NULL DEFAULT '',
    incremental_every   INTEGER NOT NULL,
    full_every          INTEGER NOT NULL,
    expiry_lead         INTEGER NOT NULL,
    low_completion_below REAL NOT NULL DEFAULT 0,
    bounce_rate_above   REAL NOT NULL DEFAULT 0,
    version             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    deleted_at          INTEGER,
    sync_requested_at   INTEGER,
    last_incremental_at INTEGER,
    last_full_at        INTEGER,
    surveys_since       INTEGER
);
CREATE UNIQUE INDEX survey_connections_name_live ON survey_connections (name) WHERE deleted_at IS NULL;

CREATE TABLE survey_connection_claims (
    connection_id TEXT PRIMARY KEY,
    node_id       TEXT NOT NULL,
    expires_at    INTEGER NOT NULL
);

CREATE TABLE survey_sync_runs (
    id            TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL,
    mode          TEXT NOT NULL,
    node_id       TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    outcome       TEXT NOT NULL,
    counts        TEXT NOT NULL DEFAULT '{}',
    requests      INTEGER NOT NULL DEFAULT 0,
    error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX survey_sync_runs_connection ON survey_sync_runs (connection_id, started_at);

CREATE TABLE survey_users (
    connection_id  TEXT NOT NULL,
    id             TEXT NOT NULL,
    username       TEXT NOT NULL,
    email          TEXT NOT NULL,
    first_name     TEXT NOT NULL,
    last_name      TEXT NOT NULL,
    user_type      TEXT NOT NULL,
    account_status TEXT NOT NULL,
    division_id    TEXT NOT NULL,
    PRIMARY KEY (connection_id, id)
);

CREATE TABLE surveys (
    connection_id TEXT NOT NULL,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    owner_id      TEXT NOT NULL,
    last_modified INTEGER NOT NULL,
    creation_date INTEGER NOT NULL,
    is_active     INTEGER NOT NULL,
    expires_at    INTEGER,
    PRIMARY KEY (connection_id, id)
);
CREATE INDEX surveys_id ON surveys (id);

CREATE TABLE survey_distributions (
    connection_id   TEXT NOT NULL,
    id              TEXT NOT NULL,
    survey_id       TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    mailing_list_id TEXT NOT NULL,
    request_type    TEXT NOT NULL,
    request_status  TEXT NOT NULL,
    created_date    INTEGER NOT NULL,
    send_date       INTEGER,
    link_expires_at INTEGER,
    stats           TEXT NOT NULL,
    PRIMARY KEY (connection_id, id)
);
CREATE INDEX survey_distributions_survey ON survey_distributions (connection_id, survey_id);
CREATE INDEX survey_distributions_id ON survey_distributions (id);

CREATE TABLE survey_history (
    connection_id         TEXT NOT NULL,
    distribution_id       TEXT NOT NULL,
    contact_id            TEXT NOT NULL,
    status                TEXT NOT NULL,
    sent_at               INTEGER,
    opened_at             INTEGER,
    response_id           TEXT NOT NULL,
    response_started_at   INTEGER,
    response_completed_at INTEGER,
    survey_link           TEXT NOT NULL,
    PRIMARY KEY (connection_id, distribution_id, contact_id)
);

CREATE TABLE survey_links (
    connection_id   TEXT NOT NULL,
    distribution_id TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    email           TEXT NOT NULL,
    email_lc        TEXT NOT NULL,
    first_name      TEXT NOT NULL,
    last_name       TEXT NOT NULL,
    link            TEXT NOT NULL,
    link_expires_at INTEGER,
    status          TEXT NOT NULL,
    PRIMARY KEY (connection_id, distribution_id, contact_id)
);
CREATE INDEX survey_links_email ON survey_links (email_lc);

CREATE TABLE survey_directories (
    connection_id TEXT NOT NULL,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    PRIMARY KEY (connection_id, id)
);

CREATE TABLE survey_contacts (
    connection_id TEXT NOT NULL,
    directory_id  TEXT NOT NULL,
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    ext_ref       TEXT NOT NULL,
    PRIMARY KEY (connection_id, directory_id, id)
);
