package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hostportal/idp/storage"
)

// lockUser, inside a transaction, checks that the user exists (ErrNotFound
// otherwise) and, in PostgreSQL, locks their row until the transaction ends,
// so that the transactions that rewrite one user's recovery codes take
// turns. Without it, under READ COMMITTED, a ReplaceRecoveryCodes running
// beside a ConsumeRecoveryCode would not see (and so keep) the replacement
// code the other inserts. FOR NO KEY UPDATE does not block inserts elsewhere
// that merely reference the user. SQLite needs no lock: the write lock
// taken at BEGIN already lets one such transaction in at a time.
func (s *Store) lockUser(ctx context.Context, tx *sql.Tx, op, userID string) error {
	query := `SELECT 1 FROM users WHERE id = ?`
	if s.dialect == dialectPostgres {
		query += ` FOR NO KEY UPDATE`
	}
	var one int
	if err := s.queryRow(ctx, tx, query, userID).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: user does not exist: %w", op, storage.ErrNotFound)
		}
		return dbError(op, err)
	}
	return nil
}

// ReplaceRecoveryCodes deletes every recovery code of the user and stores
// hashes instead, in one transaction. ErrNotFound if the user does not
// exist; ErrConflict (and nothing changed) if hashes repeats a hash.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, now time.Time) error {
	const op = "sqlstore: replace recovery codes"
	for _, h := range hashes {
		if h == "" {
			return fmt.Errorf("%s: empty hash", op)
		}
	}
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		if err := s.lockUser(ctx, tx, op, userID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
			return dbError(op+": delete", err)
		}
		for _, h := range hashes {
			if _, err := s.exec(ctx, tx, `INSERT INTO recovery_codes (user_id, code_hash, created_at)
				VALUES (?, ?, ?)`, userID, h, millis(now)); err != nil {
				return dbError(op, err)
			}
		}
		return nil
	})
}

// ConsumeRecoveryCode deletes the user's code with hash and stores
// replacementHash in its place, in one transaction. ErrNotFound if the user
// has no such code (or does not exist); ErrConflict (and nothing changed)
// if the user already has replacementHash. Of concurrent consumers of one
// code exactly one succeeds: they take turns on the user (see lockUser),
// and every one after the first finds the code gone.
func (s *Store) ConsumeRecoveryCode(ctx context.Context, userID, hash, replacementHash string, now time.Time) error {
	const op = "sqlstore: consume recovery code"
	if replacementHash == "" {
		return fmt.Errorf("%s: replacement hash is required", op)
	}
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		if err := s.lockUser(ctx, tx, op, userID); err != nil {
			return err
		}
		n, err := s.execCount(ctx, tx, op,
			`DELETE FROM recovery_codes WHERE user_id = ? AND code_hash = ?`, userID, hash)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO recovery_codes (user_id, code_hash, created_at)
			VALUES (?, ?, ?)`, userID, replacementHash, millis(now)); err != nil {
			return dbError(op+": store replacement", err)
		}
		return nil
	})
}

// CountRecoveryCodes returns how many recovery codes the user has (0 for a
// user that does not exist).
func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?`, userID).Scan(&n); err != nil {
		return 0, dbError("sqlstore: count recovery codes", err)
	}
	return n, nil
}

// DeleteRecoveryCodes removes every recovery code of the user; a user with
// none is not an error.
func (s *Store) DeleteRecoveryCodes(ctx context.Context, userID string) error {
	_, err := s.execCount(ctx, s.db, "sqlstore: delete recovery codes",
		`DELETE FROM recovery_codes WHERE user_id = ?`, userID)
	return err
}
