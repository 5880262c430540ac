CREATE TABLE destinations (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    url                   TEXT NOT NULL,
    username              TEXT NOT NULL,
    sealed_token          BYTEA NOT NULL,
    token_last4           TEXT NOT NULL,
    identity_mappings     TEXT NOT NULL,
    attribute_mappings    TEXT NOT NULL,
    audiences             TEXT NOT NULL,
    rate_limit_per_minute INTEGER NOT NULL,
    enabled               BOOLEAN NOT NULL,
    paused                BOOLEAN NOT NULL,
    version               BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    deleted_at            BIGINT
);
CREATE UNIQUE INDEX destinations_name_live ON destinations (name) WHERE deleted_at IS NULL;
CREATE INDEX destinations_updated_at ON destinations (updated_at);
