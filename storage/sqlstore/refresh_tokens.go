package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hostportal/idp/storage"
)

const refreshTokenColumns = `token_hash, family_id, user_id, client_id, scopes, audience, amr, acr,
	auth_time, created_at, expires_at, used_at, revoked_at`

func scanRefreshToken(sc scanner) (*storage.RefreshToken, error) {
	var (
		t                                         storage.RefreshToken
		scopes, audience, amr                     string
		authTime, created, expires, used, revoked int64
	)
	if err := sc.Scan(&t.TokenHash, &t.FamilyID, &t.UserID, &t.ClientID, &scopes, &audience, &amr,
		&t.ACR, &authTime, &created, &expires, &used, &revoked); err != nil {
		return nil, err
	}
	var err error
	if t.Scopes, err = decodeList(scopes); err != nil {
		return nil, err
	}
	if t.Audience, err = decodeList(audience); err != nil {
		return nil, err
	}
	if t.AMR, err = decodeList(amr); err != nil {
		return nil, err
	}
	t.AuthTime, t.CreatedAt, t.ExpiresAt = fromMillis(authTime), fromMillis(created), fromMillis(expires)
	t.UsedAt, t.RevokedAt = fromMillis(used), fromMillis(revoked)
	return &t, nil
}

// insertRefreshToken stores t with q, in or out of a transaction.
func (s *Store) insertRefreshToken(ctx context.Context, q querier, op string, t *storage.RefreshToken) error {
	if t.TokenHash == "" || t.FamilyID == "" {
		return fmt.Errorf("%s: token hash and family id are required", op)
	}
	lists, err := encodeLists(t.Scopes, t.Audience, t.AMR)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = s.exec(ctx, q, `INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.TokenHash, t.FamilyID, t.UserID, t.ClientID, lists[0], lists[1], lists[2], t.ACR,
		millis(t.AuthTime), millis(t.CreatedAt), millis(t.ExpiresAt), millis(t.UsedAt), millis(t.RevokedAt))
	if err != nil {
		return dbError(op, err)
	}
	return nil
}

// CreateRefreshToken stores t. ErrConflict if the hash exists; ErrNotFound
// if its user or client does not.
func (s *Store) CreateRefreshToken(ctx context.Context, t *storage.RefreshToken) error {
	return s.insertRefreshToken(ctx, s.db, "sqlstore: create refresh token", t)
}

// RefreshTokenByHash returns the token with hash; ErrNotFound if none.
func (s *Store) RefreshTokenByHash(ctx context.Context, hash string) (*storage.RefreshToken, error) {
	t, err := scanRefreshToken(s.queryRow(ctx, s.db,
		`SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE token_hash = ?`, hash))
	if err != nil {
		return nil, dbError("sqlstore: refresh token by hash", err)
	}
	return t, nil
}

// RotateRefreshToken marks oldHash used and stores next, in one transaction.
//
// The conditional UPDATE is what makes concurrent rotations safe: in
// PostgreSQL a second UPDATE of the row waits for the first transaction and
// then re-checks used_at = 0, which no longer holds; in SQLite the write
// lock taken at BEGIN lets only one rotation in at a time. Either way exactly
// one caller sees one affected row.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next *storage.RefreshToken, now time.Time) error {
	const op = "sqlstore: rotate refresh token"
	usedAt, err := stamp(op, now)
	if err != nil {
		return err
	}
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		n, err := s.execCount(ctx, tx, op,
			`UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at = 0 AND revoked_at = 0`,
			usedAt, oldHash)
		if err != nil {
			return err
		}
		if n == 0 {
			var one int
			err := s.queryRow(ctx, tx, `SELECT 1 FROM refresh_tokens WHERE token_hash = ?`, oldHash).Scan(&one)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
			case err != nil:
				return dbError(op, err)
			}
			return fmt.Errorf("%s: %w", op, storage.ErrTokenUsed)
		}
		return s.insertRefreshToken(ctx, tx, op+": store next", next)
	})
}

// RevokeRefreshTokenFamily revokes every token of the family not yet
// revoked (a token revoked earlier keeps its first RevokedAt).
func (s *Store) RevokeRefreshTokenFamily(ctx context.Context, familyID string, now time.Time) error {
	const op = "sqlstore: revoke refresh token family"
	revokedAt, err := stamp(op, now)
	if err != nil {
		return err
	}
	_, err = s.execCount(ctx, s.db, op,
		`UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at = 0`,
		revokedAt, familyID)
	return err
}

// RevokeUserRefreshTokens revokes the user's tokens, only those of clientID
// when it is not empty.
func (s *Store) RevokeUserRefreshTokens(ctx context.Context, userID, clientID string, now time.Time) error {
	const op = "sqlstore: revoke user refresh tokens"
	revokedAt, err := stamp(op, now)
	if err != nil {
		return err
	}
	query := `UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0`
	args := []any{revokedAt, userID}
	if clientID != "" {
		query += ` AND client_id = ?`
		args = append(args, clientID)
	}
	_, err = s.execCount(ctx, s.db, op, query, args...)
	return err
}

// DeleteExpiredRefreshTokens removes tokens that expired before now.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int64, error) {
	return s.execCount(ctx, s.db, "sqlstore: delete expired refresh tokens",
		`DELETE FROM refresh_tokens WHERE expires_at < ?`, millis(now))
}

// stamp encodes the time a token is marked used or revoked. The columns
// read 0 as "not yet", so a zero now would silently do nothing; refuse it.
func stamp(op string, now time.Time) (int64, error) {
	ms := millis(now)
	if ms == 0 {
		return 0, fmt.Errorf("%s: now is not set", op)
	}
	return ms, nil
}
