package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hostportal/idp/storage"
)

const userColumns = `id, username, email, email_verified, name, phone, phone_verified,
	password_hash, disabled, created_at, updated_at`

func scanUser(sc scanner) (*storage.User, error) {
	var (
		u                storage.User
		created, updated int64
	)
	if err := sc.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.Name, &u.Phone,
		&u.PhoneVerified, &u.PasswordHash, &u.Disabled, &created, &updated); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &u, nil
}

// CreateUser stores u with its username lower-cased (u.Username is updated
// to match); ErrConflict when the username or id is taken.
func (s *Store) CreateUser(ctx context.Context, u *storage.User) error {
	if u.ID == "" || u.Username == "" {
		return errors.New("sqlstore: create user: id and username are required")
	}
	username := strings.ToLower(u.Username)
	_, err := s.exec(ctx, s.db, `INSERT INTO users (`+userColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, username, u.Email, u.EmailVerified, u.Name, u.Phone, u.PhoneVerified,
		u.PasswordHash, u.Disabled, millis(u.CreatedAt), millis(u.UpdatedAt))
	if err != nil {
		return dbError(fmt.Sprintf("sqlstore: create user %q", username), err)
	}
	u.Username = username
	return nil
}

// UserByID returns the user with id; ErrNotFound if there is none.
func (s *Store) UserByID(ctx context.Context, id string) (*storage.User, error) {
	u, err := scanUser(s.queryRow(ctx, s.db, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return nil, dbError("sqlstore: user by id", err)
	}
	return u, nil
}

// UserByUsername finds a user by username, case-insensitively (usernames
// are stored lower-cased); ErrNotFound if there is none.
func (s *Store) UserByUsername(ctx context.Context, username string) (*storage.User, error) {
	u, err := scanUser(s.queryRow(ctx, s.db, `SELECT `+userColumns+` FROM users WHERE username = ?`,
		strings.ToLower(username)))
	if err != nil {
		return nil, dbError(fmt.Sprintf("sqlstore: user by username %q", username), err)
	}
	return u, nil
}

// ListUsers returns users ordered by username. Search matches a substring
// of username, e-mail or name, case-insensitively (in SQLite only ASCII
// letters fold; PostgreSQL folds all of Unicode).
func (s *Store) ListUsers(ctx context.Context, q storage.UserQuery) ([]*storage.User, error) {
	var (
		where []string
		args  []any
	)
	if q.After != "" {
		where = append(where, "username > ?")
		args = append(args, q.After)
	}
	if q.Search != "" {
		pattern := "%" + escapeLike(strings.ToLower(q.Search)) + "%"
		where = append(where, `(username LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\' OR LOWER(name) LIKE ? ESCAPE '\')`)
		args = append(args, pattern, pattern, pattern)
	}
	query := `SELECT ` + userColumns + ` FROM users`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY username LIMIT ?"
	args = append(args, limitOrDefault(q.Limit))

	rows, err := s.query(ctx, s.db, query, args...)
	if err != nil {
		return nil, dbError("sqlstore: list users", err)
	}
	defer rows.Close()
	var users []*storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list users: %w", err)
	}
	return users, nil
}

// escapeLike makes s match literally inside a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// UpdateUser writes the mutable profile fields of the user with u.ID.
func (s *Store) UpdateUser(ctx context.Context, u *storage.User) error {
	return s.execOne(ctx, s.db, "sqlstore: update user",
		`UPDATE users SET email = ?, email_verified = ?, name = ?, phone = ?, phone_verified = ?,
			disabled = ?, updated_at = ?
		WHERE id = ?`,
		u.Email, u.EmailVerified, u.Name, u.Phone, u.PhoneVerified, u.Disabled, millis(u.UpdatedAt), u.ID)
}

// SetPasswordHash replaces the user's password hash; ErrNotFound if the
// user does not exist.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error {
	return s.execOne(ctx, s.db, "sqlstore: set password hash",
		`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, millis(now), userID)
}

// DeleteUser removes the user; the schema's ON DELETE CASCADE removes their
// refresh tokens, consents and second factors (security keys and WebAuthn
// handle included) in the same statement. ErrNotFound if the user does not
// exist.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	return s.execOne(ctx, s.db, "sqlstore: delete user", `DELETE FROM users WHERE id = ?`, userID)
}
