-- Second factors (PostgreSQL): authenticator-app enrolments, recovery codes
-- and remembered devices. Times are unix milliseconds UTC, 0 for "not set".
-- Every row belongs to a user and goes with them.

-- +goose Up
-- At most one enrolment per user. secret is sealed by the caller; last_step
-- is the last accepted TOTP time step, so that no code is accepted twice.
CREATE TABLE user_totp (
    user_id    TEXT   NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     BYTEA  NOT NULL,
    last_step  BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL DEFAULT 0
);

-- Hashes of one-time recovery codes; a used code is deleted (and replaced).
-- The primary key makes a code unique per user, and its leading column
-- serves every lookup by user_id, so no index of user_id alone is needed.
CREATE TABLE recovery_codes (
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT   NOT NULL,
    created_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, code_hash)
);

-- Browsers that may skip the second factor until expires_at. token_hash is
-- the SHA-256 (hex) of the device's token. The id breaks ties in the
-- newest-first listing, byte-wise like SQLite.
CREATE TABLE remembered_devices (
    id           TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   TEXT   NOT NULL UNIQUE,
    description  TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT NOT NULL DEFAULT 0,
    expires_at   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX remembered_devices_user ON remembered_devices (user_id, created_at);
CREATE INDEX remembered_devices_expires ON remembered_devices (expires_at);

-- +goose Down
DROP TABLE remembered_devices;
DROP TABLE recovery_codes;
DROP TABLE user_totp;
