-- Security keys and passkeys (SQLite): WebAuthn credentials and each user's
-- WebAuthn user handle. Times are unix milliseconds UTC, 0 for "not set".
-- Every row belongs to a user and goes with them.

-- +goose Up
-- The user handle a user's credentials are registered under: random bytes,
-- created on first need, never derived from the username. It outlives the
-- user's keys, so that a passkey registered again keeps the same handle, but
-- not the user: an account that reuses a deleted user's id gets a new one.
CREATE TABLE webauthn_handles (
    user_id TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle  BLOB NOT NULL UNIQUE
);

-- One row per credential. credential_id is the authenticator's id, unique
-- across users (the login looks keys up by it); credential is the mfa
-- package's encoding, which the store never reads; sign_count copies the
-- counter inside it, so that a use can compare and set it atomically.
CREATE TABLE security_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB    NOT NULL UNIQUE,
    name          TEXT    NOT NULL DEFAULT '',
    credential    BLOB    NOT NULL,
    sign_count    INTEGER NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
    created_at    INTEGER NOT NULL DEFAULT 0,
    last_used_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX security_keys_user ON security_keys (user_id, created_at);

-- +goose Down
DROP TABLE security_keys;
DROP TABLE webauthn_handles;
