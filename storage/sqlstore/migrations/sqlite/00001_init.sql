-- Initial schema (SQLite). Times are unix milliseconds UTC, 0 for "not set";
-- booleans are 0/1; string lists and maps are JSON text.

-- +goose Up
CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,
    username       TEXT    NOT NULL,
    email          TEXT    NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    name           TEXT    NOT NULL DEFAULT '',
    phone          TEXT    NOT NULL DEFAULT '',
    phone_verified INTEGER NOT NULL DEFAULT 0 CHECK (phone_verified IN (0, 1)),
    password_hash  TEXT    NOT NULL DEFAULT '',
    disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at     INTEGER NOT NULL DEFAULT 0,
    updated_at     INTEGER NOT NULL DEFAULT 0
);
-- Usernames are stored lower-cased, so a plain unique index makes them
-- unique case-insensitively.
CREATE UNIQUE INDEX users_username ON users (username);

CREATE TABLE clients (
    id                        TEXT    NOT NULL PRIMARY KEY,
    name                      TEXT    NOT NULL DEFAULT '',
    secret_hash               TEXT    NOT NULL DEFAULT '',
    public                    INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    redirect_uris             TEXT    NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '[]',
    grant_types               TEXT    NOT NULL DEFAULT '[]',
    scopes                    TEXT    NOT NULL DEFAULT '[]',
    first_party               INTEGER NOT NULL DEFAULT 0 CHECK (first_party IN (0, 1)),
    require_mfa               INTEGER NOT NULL DEFAULT 0 CHECK (require_mfa IN (0, 1)),
    source                    TEXT    NOT NULL DEFAULT '',
    created_at                INTEGER NOT NULL DEFAULT 0,
    updated_at                INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE signing_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    algorithm   TEXT    NOT NULL,
    private_key BLOB    NOT NULL,
    public_key  BLOB    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('active', 'retired')),
    created_at  INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER NOT NULL DEFAULT 0
);
-- At most one active key, whatever the callers do.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

CREATE TABLE refresh_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    family_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL DEFAULT '[]',
    audience   TEXT    NOT NULL DEFAULT '[]',
    amr        TEXT    NOT NULL DEFAULT '[]',
    acr        TEXT    NOT NULL DEFAULT '',
    auth_time  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL DEFAULT 0,
    used_at    INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_client ON refresh_tokens (user_id, client_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE consents (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL DEFAULT '[]',
    updated_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE revoked_access_tokens (
    token_id   TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);

-- No foreign key to users: the audit log outlives the accounts it mentions.
CREATE TABLE audit_events (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    actor      TEXT    NOT NULL DEFAULT '',
    user_id    TEXT    NOT NULL DEFAULT '',
    username   TEXT    NOT NULL DEFAULT '',
    client_id  TEXT    NOT NULL DEFAULT '',
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    result     TEXT    NOT NULL DEFAULT '',
    details    TEXT    NOT NULL DEFAULT '{}'
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
