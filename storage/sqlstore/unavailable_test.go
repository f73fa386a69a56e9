package sqlstore_test

import (
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

// A database that cannot be reached, and a connection that breaks under
// the store, give storage.ErrUnavailable; a wrong database name is a
// configuration error, not an outage; the pool recovers by itself.
func TestUnavailable(t *testing.T) {
	ctx := t.Context()
	dbURL := testenv.PostgresURL(t)

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = closed
	if _, err := sqlstore.Open(ctx, u.String()); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Open on a closed port: %v, want storage.ErrUnavailable", err)
	}

	u, _ = url.Parse(dbURL)
	u.Path = "/idp_test_no_such_database"
	if _, err := sqlstore.Open(ctx, u.String()); err == nil || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Open of a missing database: %v, want an error that is not storage.ErrUnavailable", err)
	}

	s := openMigrated(t, dbURL)
	if _, err := s.UserByID(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("UserByID of nobody: %v, want storage.ErrNotFound only", err)
	}

	// The server ends every connection of the store (as a restart of
	// PostgreSQL does): the pooled connection's next statement fails.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the store had no connection to end")
	}
	_, err = s.UserByID(ctx, "nobody")
	if !errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UserByID after the connections ended: %v, want storage.ErrUnavailable (or a reconnected ErrNotFound)", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.UserByID(ctx, "nobody")
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not reconnect: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
