package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ConsentedScopes returns the scopes the user granted the client, nil if
// none.
func (s *Store) ConsentedScopes(ctx context.Context, userID, clientID string) ([]string, error) {
	const op = "sqlstore: consented scopes"
	var enc string
	err := s.queryRow(ctx, s.db, `SELECT scopes FROM consents WHERE user_id = ? AND client_id = ?`,
		userID, clientID).Scan(&enc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, dbError(op, err)
	}
	scopes, err := decodeList(enc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return scopes, nil
}

// GrantConsent replaces the scopes the user granted the client. ErrNotFound
// if the user or the client does not exist.
func (s *Store) GrantConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error {
	const op = "sqlstore: grant consent"
	enc, err := encodeList(scopes)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	// An upsert, so that two concurrent grants cannot both miss the row and
	// collide on the insert. Both dialects read this syntax alike.
	_, err = s.exec(ctx, s.db, `INSERT INTO consents (user_id, client_id, scopes, updated_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
		userID, clientID, enc, millis(now))
	if err != nil {
		return dbError(op, err)
	}
	return nil
}

// RevokeConsent forgets what the user granted the client; revoking a
// consent that does not exist is not an error.
func (s *Store) RevokeConsent(ctx context.Context, userID, clientID string) error {
	_, err := s.execCount(ctx, s.db, "sqlstore: revoke consent",
		`DELETE FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID)
	return err
}
