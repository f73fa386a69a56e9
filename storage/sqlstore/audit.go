package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hostportal/idp/storage"
)

// AppendAudit stores e and sets e.ID.
func (s *Store) AppendAudit(ctx context.Context, e *storage.AuditEvent) error {
	const op = "sqlstore: append audit event"
	details := "{}"
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("%s: encode details: %w", op, err)
		}
		details = string(b)
	}
	// RETURNING works in both dialects (SQLite since 3.35) and avoids
	// LastInsertId, which pgx does not support.
	err := s.queryRow(ctx, s.db, `INSERT INTO audit_events
		(time, type, actor, user_id, username, client_id, ip, user_agent, result, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		millis(e.Time), e.Type, e.Actor, e.UserID, e.Username, e.ClientID, e.IP, e.UserAgent,
		e.Result, details).Scan(&e.ID)
	if err != nil {
		return dbError(op, err)
	}
	return nil
}

// ListAudit returns events newest first (by ID, which follows insertion).
func (s *Store) ListAudit(ctx context.Context, q storage.AuditQuery) ([]*storage.AuditEvent, error) {
	const op = "sqlstore: list audit events"
	var (
		where []string
		args  []any
	)
	if q.UserID != "" {
		where = append(where, "user_id = ?")
		args = append(args, q.UserID)
	}
	if q.Type != "" {
		where = append(where, "type = ?")
		args = append(args, q.Type)
	}
	if !q.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, millis(q.Since))
	}
	query := `SELECT id, time, type, actor, user_id, username, client_id, ip, user_agent, result, details
		FROM audit_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, limitOrDefault(q.Limit))

	rows, err := s.query(ctx, s.db, query, args...)
	if err != nil {
		return nil, dbError(op, err)
	}
	defer rows.Close()
	var events []*storage.AuditEvent
	for rows.Next() {
		var (
			e       storage.AuditEvent
			at      int64
			details string
		)
		if err := rows.Scan(&e.ID, &at, &e.Type, &e.Actor, &e.UserID, &e.Username, &e.ClientID,
			&e.IP, &e.UserAgent, &e.Result, &details); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		e.Time = fromMillis(at)
		if details != "" && details != "{}" {
			if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
				return nil, fmt.Errorf("%s: decode details of event %d: %w", op, e.ID, err)
			}
		}
		events = append(events, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return events, nil
}

// DeleteAuditBefore removes events older than before (audit.retention); the
// index on time keeps it cheap when run every hour.
func (s *Store) DeleteAuditBefore(ctx context.Context, before time.Time) (int64, error) {
	return s.execCount(ctx, s.db, "sqlstore: delete old audit events",
		`DELETE FROM audit_events WHERE time < ?`, millis(before))
}
