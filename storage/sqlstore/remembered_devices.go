package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hostportal/idp/storage"
)

const rememberedDeviceColumns = `id, user_id, token_hash, description, created_at, last_used_at, expires_at`

func scanRememberedDevice(sc scanner) (*storage.RememberedDevice, error) {
	var (
		d                      storage.RememberedDevice
		created, used, expires int64
	)
	if err := sc.Scan(&d.ID, &d.UserID, &d.TokenHash, &d.Description, &created, &used, &expires); err != nil {
		return nil, err
	}
	d.CreatedAt, d.LastUsedAt, d.ExpiresAt = fromMillis(created), fromMillis(used), fromMillis(expires)
	return &d, nil
}

// CreateRememberedDevice stores d. ErrConflict if its id or token hash
// exists; ErrNotFound if its user does not.
func (s *Store) CreateRememberedDevice(ctx context.Context, d *storage.RememberedDevice) error {
	const op = "sqlstore: create remembered device"
	if d.ID == "" || d.UserID == "" || d.TokenHash == "" {
		return fmt.Errorf("%s: id, user id and token hash are required", op)
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO remembered_devices (`+rememberedDeviceColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.UserID, d.TokenHash, d.Description, millis(d.CreatedAt), millis(d.LastUsedAt), millis(d.ExpiresAt))
	if err != nil {
		return dbError(op, err)
	}
	return nil
}

// RememberedDeviceByHash returns the device with tokenHash, expired or not;
// ErrNotFound if there is none.
func (s *Store) RememberedDeviceByHash(ctx context.Context, tokenHash string) (*storage.RememberedDevice, error) {
	d, err := scanRememberedDevice(s.queryRow(ctx, s.db,
		`SELECT `+rememberedDeviceColumns+` FROM remembered_devices WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return nil, dbError("sqlstore: remembered device by hash", err)
	}
	return d, nil
}

// TouchRememberedDevice sets the device's LastUsedAt to now; ErrNotFound if
// the device does not exist (any more).
func (s *Store) TouchRememberedDevice(ctx context.Context, id string, now time.Time) error {
	return s.execOne(ctx, s.db, "sqlstore: touch remembered device",
		`UPDATE remembered_devices SET last_used_at = ? WHERE id = ?`, millis(now), id)
}

// ListRememberedDevices returns the user's devices, expired or not, newest
// (by CreatedAt) first.
func (s *Store) ListRememberedDevices(ctx context.Context, userID string) ([]*storage.RememberedDevice, error) {
	const op = "sqlstore: list remembered devices"
	rows, err := s.query(ctx, s.db, `SELECT `+rememberedDeviceColumns+` FROM remembered_devices
		WHERE user_id = ? ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var devices []*storage.RememberedDevice
	for rows.Next() {
		d, err := scanRememberedDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		devices = append(devices, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return devices, nil
}

// DeleteRememberedDevices forgets every device of the user and returns how
// many there were.
func (s *Store) DeleteRememberedDevices(ctx context.Context, userID string) (int64, error) {
	return s.execCount(ctx, s.db, "sqlstore: delete remembered devices",
		`DELETE FROM remembered_devices WHERE user_id = ?`, userID)
}

// DeleteExpiredRememberedDevices removes devices that expired before now.
func (s *Store) DeleteExpiredRememberedDevices(ctx context.Context, now time.Time) (int64, error) {
	return s.execCount(ctx, s.db, "sqlstore: delete expired remembered devices",
		`DELETE FROM remembered_devices WHERE expires_at < ?`, millis(now))
}
