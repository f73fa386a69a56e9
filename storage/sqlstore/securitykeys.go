package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hostportal/idp/storage"
)

var _ storage.SecurityKeys = (*Store)(nil)

// WebAuthnHandle returns the user's WebAuthn user handle, storing candidate
// as it when the user has none yet. ErrNotFound if the user does not exist;
// ErrConflict if candidate is already another user's handle.
//
// The insert does nothing when the user already has a handle, so of
// concurrent first calls the one that inserts first wins and the others read
// its handle back: in PostgreSQL a second insert of the user_id waits for the
// first to commit and then skips; SQLite runs one writer at a time.
func (s *Store) WebAuthnHandle(ctx context.Context, userID string, candidate []byte) ([]byte, error) {
	const op = "sqlstore: webauthn handle"
	if userID == "" || len(candidate) == 0 {
		return nil, fmt.Errorf("%s: user id and candidate handle are required", op)
	}
	read := func() ([]byte, error) {
		var handle []byte
		err := s.queryRow(ctx, s.db, `SELECT handle FROM webauthn_handles WHERE user_id = ?`, userID).Scan(&handle)
		return handle, err
	}
	// Every call but the first finds the handle here, without a write.
	handle, err := read()
	if err == nil {
		return handle, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, dbError(op, err)
	}
	// A user that does not exist fails the foreign key: ErrNotFound.
	if _, err := s.exec(ctx, s.db, `INSERT INTO webauthn_handles (user_id, handle) VALUES (?, ?)
		ON CONFLICT (user_id) DO NOTHING`, userID, candidate); err != nil {
		return nil, dbError(op, err)
	}
	handle, err = read()
	if err != nil {
		// No row after the insert: the user was deleted in between.
		return nil, dbError(op, err)
	}
	return handle, nil
}

// UserIDByWebAuthnHandle returns the id of the user whose handle it is;
// ErrNotFound if it is nobody's.
func (s *Store) UserIDByWebAuthnHandle(ctx context.Context, handle []byte) (string, error) {
	var userID string
	if err := s.queryRow(ctx, s.db, `SELECT user_id FROM webauthn_handles WHERE handle = ?`, handle).Scan(&userID); err != nil {
		return "", dbError("sqlstore: user by webauthn handle", err)
	}
	return userID, nil
}

const securityKeyColumns = `id, user_id, credential_id, name, credential, sign_count, created_at, last_used_at`

func scanSecurityKey(sc scanner) (*storage.SecurityKey, error) {
	var (
		k             storage.SecurityKey
		signCount     int64
		created, used int64
	)
	if err := sc.Scan(&k.ID, &k.UserID, &k.CredentialID, &k.Name, &k.Credential, &signCount, &created, &used); err != nil {
		return nil, err
	}
	k.SignCount = uint32(signCount) // the schema's CHECK keeps it in range
	k.CreatedAt, k.LastUsedAt = fromMillis(created), fromMillis(used)
	return &k, nil
}

// CreateSecurityKey stores k. ErrConflict if its id or credential id is
// stored already (for any user); ErrNotFound if its user does not exist.
func (s *Store) CreateSecurityKey(ctx context.Context, k *storage.SecurityKey) error {
	const op = "sqlstore: create security key"
	if k.ID == "" || k.UserID == "" || len(k.CredentialID) == 0 || len(k.Credential) == 0 {
		return fmt.Errorf("%s: id, user id, credential id and credential are required", op)
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO security_keys (`+securityKeyColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.UserID, k.CredentialID, k.Name, k.Credential, int64(k.SignCount),
		millis(k.CreatedAt), millis(k.LastUsedAt))
	if err != nil {
		return dbError(op, err)
	}
	return nil
}

// ListSecurityKeys returns the user's keys, oldest (by CreatedAt) first.
func (s *Store) ListSecurityKeys(ctx context.Context, userID string) ([]*storage.SecurityKey, error) {
	const op = "sqlstore: list security keys"
	rows, err := s.query(ctx, s.db, `SELECT `+securityKeyColumns+` FROM security_keys
		WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var keys []*storage.SecurityKey
	for rows.Next() {
		k, err := scanSecurityKey(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return keys, nil
}

// CountSecurityKeys returns how many keys the user has (0 for a user that
// does not exist).
func (s *Store) CountSecurityKeys(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM security_keys WHERE user_id = ?`, userID).Scan(&n); err != nil {
		return 0, dbError("sqlstore: count security keys", err)
	}
	return n, nil
}

// SecurityKeyByCredentialID returns the key with that credential id, whoever
// it belongs to; ErrNotFound if there is none.
func (s *Store) SecurityKeyByCredentialID(ctx context.Context, credentialID []byte) (*storage.SecurityKey, error) {
	k, err := scanSecurityKey(s.queryRow(ctx, s.db,
		`SELECT `+securityKeyColumns+` FROM security_keys WHERE credential_id = ?`, credentialID))
	if err != nil {
		return nil, dbError("sqlstore: security key by credential id", err)
	}
	return k, nil
}

// UseSecurityKey sets the key's credential, counter and LastUsedAt if its
// stored counter is still oldSignCount, and reports whether it did;
// ErrNotFound if the key does not exist.
//
// As in AdvanceTOTPStep, the conditional UPDATE is the whole check: in
// PostgreSQL a second UPDATE of the row waits for the first and then
// re-checks sign_count = oldSignCount against the row the first wrote;
// SQLite runs one writer at a time. So of concurrent uses that move the
// counter from one value exactly one sees an affected row.
func (s *Store) UseSecurityKey(ctx context.Context, id string, oldSignCount, newSignCount uint32, credential []byte, now time.Time) (bool, error) {
	const op = "sqlstore: use security key"
	if len(credential) == 0 {
		return false, fmt.Errorf("%s: credential is required", op)
	}
	n, err := s.execCount(ctx, s.db, op,
		`UPDATE security_keys SET credential = ?, sign_count = ?, last_used_at = ?
		WHERE id = ? AND sign_count = ?`,
		credential, int64(newSignCount), millis(now), id, int64(oldSignCount))
	if err != nil {
		return false, err
	}
	if n > 0 {
		return true, nil
	}
	var one int
	err = s.queryRow(ctx, s.db, `SELECT 1 FROM security_keys WHERE id = ?`, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	case err != nil:
		return false, dbError(op, err)
	}
	return false, nil
}

// DeleteSecurityKey removes the user's key id; ErrNotFound if the user has
// no key with that id (another user's key with that id stays).
func (s *Store) DeleteSecurityKey(ctx context.Context, userID, id string) error {
	return s.execOne(ctx, s.db, "sqlstore: delete security key",
		`DELETE FROM security_keys WHERE id = ? AND user_id = ?`, id, userID)
}

// DeleteSecurityKeys removes every key of the user and returns how many
// there were. The user's WebAuthn handle stays.
func (s *Store) DeleteSecurityKeys(ctx context.Context, userID string) (int64, error) {
	return s.execCount(ctx, s.db, "sqlstore: delete security keys",
		`DELETE FROM security_keys WHERE user_id = ?`, userID)
}
