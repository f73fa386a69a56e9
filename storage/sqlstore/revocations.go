package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RevokeAccessToken puts the access token with tokenID (its jti) on the
// deny-list until expiresAt. Revoking it again keeps the later expiry.
func (s *Store) RevokeAccessToken(ctx context.Context, tokenID string, expiresAt time.Time) error {
	if tokenID == "" {
		return errors.New("sqlstore: revoke access token: token id is required")
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO revoked_access_tokens (token_id, expires_at) VALUES (?, ?)
		ON CONFLICT (token_id) DO UPDATE SET expires_at = excluded.expires_at
		WHERE excluded.expires_at > revoked_access_tokens.expires_at`,
		tokenID, millis(expiresAt))
	if err != nil {
		return dbError("sqlstore: revoke access token", err)
	}
	return nil
}

// IsAccessTokenRevoked reports whether tokenID is on the deny-list. An entry
// stays until DeleteExpiredRevocations removes it, after the token itself
// has expired.
func (s *Store) IsAccessTokenRevoked(ctx context.Context, tokenID string) (bool, error) {
	var revoked bool
	err := s.queryRow(ctx, s.db,
		`SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE token_id = ?)`, tokenID).Scan(&revoked)
	if err != nil {
		return false, fmt.Errorf("sqlstore: is access token revoked: %w", err)
	}
	return revoked, nil
}

// DeleteExpiredRevocations removes entries whose token expired before now.
func (s *Store) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int64, error) {
	return s.execCount(ctx, s.db, "sqlstore: delete expired revocations",
		`DELETE FROM revoked_access_tokens WHERE expires_at < ?`, millis(now))
}
