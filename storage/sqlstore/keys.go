package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hostportal/idp/storage"
)

// ListKeys returns every signing key, newest first.
func (s *Store) ListKeys(ctx context.Context) ([]*storage.SigningKey, error) {
	rows, err := s.query(ctx, s.db, `SELECT id, algorithm, private_key, public_key, state, created_at, expires_at
		FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, dbError("sqlstore: list keys", err)
	}
	defer rows.Close()
	var keys []*storage.SigningKey
	for rows.Next() {
		var (
			k                storage.SigningKey
			created, expires int64
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &k.PublicKey, &k.State, &created, &expires); err != nil {
			return nil, fmt.Errorf("sqlstore: list keys: %w", err)
		}
		k.CreatedAt, k.ExpiresAt = fromMillis(created), fromMillis(expires)
		keys = append(keys, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list keys: %w", err)
	}
	return keys, nil
}

// ActivateKey retires every active key (ExpiresAt = retireUntil) and stores
// k as the active key, in one transaction. k.State and k.ExpiresAt are set
// to match what was stored. ErrConflict if a key with k.ID exists.
func (s *Store) ActivateKey(ctx context.Context, k *storage.SigningKey, retireUntil time.Time) error {
	if k.ID == "" {
		return errors.New("sqlstore: activate key: id is required")
	}
	op := fmt.Sprintf("sqlstore: activate key %q", k.ID)
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		if s.dialect == dialectPostgres {
			// Under READ COMMITTED two concurrent rotations would both retire
			// the old key and then collide on the one-active-key index; the
			// lock (which lets readers through) makes the second wait and
			// retire the first one's key instead. SQLite's write lock, taken
			// at BEGIN, already serialises them.
			if _, err := s.exec(ctx, tx, `LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return dbError(op+": lock", err)
			}
		}
		if _, err := s.exec(ctx, tx, `UPDATE signing_keys SET state = ?, expires_at = ? WHERE state = ?`,
			storage.KeyRetired, millis(retireUntil), storage.KeyActive); err != nil {
			return dbError(op+": retire", err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO signing_keys
			(id, algorithm, private_key, public_key, state, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, 0)`,
			k.ID, k.Algorithm, k.PrivateKey, k.PublicKey, storage.KeyActive, millis(k.CreatedAt)); err != nil {
			return dbError(op, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	k.State, k.ExpiresAt = storage.KeyActive, time.Time{}
	return nil
}

// DeleteExpiredKeys removes retired keys whose ExpiresAt is before now.
func (s *Store) DeleteExpiredKeys(ctx context.Context, now time.Time) (int64, error) {
	return s.execCount(ctx, s.db, "sqlstore: delete expired keys",
		`DELETE FROM signing_keys WHERE state = ? AND expires_at < ?`, storage.KeyRetired, millis(now))
}
