-- Initial schema (PostgreSQL). Times are unix milliseconds UTC, 0 for "not
-- set"; string lists and maps are JSON text. Keys that are ordered or paged
-- on use COLLATE "C" so that PostgreSQL sorts them byte-wise like SQLite and
-- Go do, whatever the database's locale.

-- +goose Up
CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,
    username       TEXT    COLLATE "C" NOT NULL,
    email          TEXT    NOT NULL DEFAULT '',
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    name           TEXT    NOT NULL DEFAULT '',
    phone          TEXT    NOT NULL DEFAULT '',
    phone_verified BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash  TEXT    NOT NULL DEFAULT '',
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT  NOT NULL DEFAULT 0,
    updated_at     BIGINT  NOT NULL DEFAULT 0
);
-- Usernames are stored lower-cased, so a plain unique index makes them
-- unique case-insensitively.
CREATE UNIQUE INDEX users_username ON users (username);

CREATE TABLE clients (
    id                        TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    name                      TEXT    NOT NULL DEFAULT '',
    secret_hash               TEXT    NOT NULL DEFAULT '',
    public                    BOOLEAN NOT NULL DEFAULT FALSE,
    redirect_uris             TEXT    NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '[]',
    grant_types               TEXT    NOT NULL DEFAULT '[]',
    scopes                    TEXT    NOT NULL DEFAULT '[]',
    first_party               BOOLEAN NOT NULL DEFAULT FALSE,
    require_mfa               BOOLEAN NOT NULL DEFAULT FALSE,
    source                    TEXT    NOT NULL DEFAULT '',
    created_at                BIGINT  NOT NULL DEFAULT 0,
    updated_at                BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE signing_keys (
    id          TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    algorithm   TEXT    NOT NULL,
    private_key BYTEA   NOT NULL,
    public_key  BYTEA   NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('active', 'retired')),
    created_at  BIGINT  NOT NULL DEFAULT 0,
    expires_at  BIGINT  NOT NULL DEFAULT 0
);
-- At most one active key, whatever the callers do.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

CREATE TABLE refresh_tokens (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    family_id  TEXT   NOT NULL,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT   NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT   NOT NULL DEFAULT '[]',
    audience   TEXT   NOT NULL DEFAULT '[]',
    amr        TEXT   NOT NULL DEFAULT '[]',
    acr        TEXT   NOT NULL DEFAULT '',
    auth_time  BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0,
    used_at    BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_client ON refresh_tokens (user_id, client_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE consents (
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT   NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT   NOT NULL DEFAULT '[]',
    updated_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE revoked_access_tokens (
    token_id   TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);

-- No foreign key to users: the audit log outlives the accounts it mentions.
CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time       BIGINT NOT NULL,
    type       TEXT   NOT NULL,
    actor      TEXT   NOT NULL DEFAULT '',
    user_id    TEXT   NOT NULL DEFAULT '',
    username   TEXT   NOT NULL DEFAULT '',
    client_id  TEXT   NOT NULL DEFAULT '',
    ip         TEXT   NOT NULL DEFAULT '',
    user_agent TEXT   NOT NULL DEFAULT '',
    result     TEXT   NOT NULL DEFAULT '',
    details    TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_user_time ON audit_events (user_id, time);
CREATE INDEX audit_events_time ON audit_events (time);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE revoked_access_tokens;
DROP TABLE consents;
DROP TABLE refresh_tokens;
DROP TABLE signing_keys;
DROP TABLE clients;
DROP TABLE users;
