package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hostportal/idp/storage"
)

// SetTOTP stores t as the user's enrolment, replacing any earlier one (its
// secret, LastStep and CreatedAt all). ErrNotFound if the user does not
// exist.
func (s *Store) SetTOTP(ctx context.Context, t *storage.TOTP) error {
	const op = "sqlstore: set totp"
	if t.UserID == "" || len(t.Secret) == 0 {
		return fmt.Errorf("%s: user id and secret are required", op)
	}
	// An upsert, so that two concurrent enrolments cannot both miss the row
	// and collide on the insert.
	_, err := s.exec(ctx, s.db, `INSERT INTO user_totp (user_id, secret, last_step, created_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, last_step = excluded.last_step,
			created_at = excluded.created_at`,
		t.UserID, t.Secret, t.LastStep, millis(t.CreatedAt))
	if err != nil {
		return dbError(op, err)
	}
	return nil
}

// TOTPByUser returns the user's enrolment; ErrNotFound if there is none.
func (s *Store) TOTPByUser(ctx context.Context, userID string) (*storage.TOTP, error) {
	var (
		t       storage.TOTP
		created int64
	)
	err := s.queryRow(ctx, s.db, `SELECT user_id, secret, last_step, created_at FROM user_totp WHERE user_id = ?`,
		userID).Scan(&t.UserID, &t.Secret, &t.LastStep, &created)
	if err != nil {
		return nil, dbError("sqlstore: totp by user", err)
	}
	t.CreatedAt = fromMillis(created)
	return &t, nil
}

// AdvanceTOTPStep sets the user's LastStep to step if step is greater, and
// reports whether it did; ErrNotFound if the user has no enrolment.
//
// The conditional UPDATE is the whole check: in PostgreSQL a second UPDATE
// of the row waits for the first and then re-checks last_step < step, which
// no longer holds; SQLite runs one writer at a time. Either way, of
// concurrent calls with one step exactly one sees an affected row.
func (s *Store) AdvanceTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	const op = "sqlstore: advance totp step"
	n, err := s.execCount(ctx, s.db, op,
		`UPDATE user_totp SET last_step = ? WHERE user_id = ? AND last_step < ?`, step, userID, step)
	if err != nil {
		return false, err
	}
	if n > 0 {
		return true, nil
	}
	var one int
	err = s.queryRow(ctx, s.db, `SELECT 1 FROM user_totp WHERE user_id = ?`, userID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	case err != nil:
		return false, dbError(op, err)
	}
	return false, nil
}

// DeleteTOTP removes the user's enrolment; deleting one that does not exist
// is not an error.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	_, err := s.execCount(ctx, s.db, "sqlstore: delete totp", `DELETE FROM user_totp WHERE user_id = ?`, userID)
	return err
}
