package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresURL is the administrative connection PostgresURL uses when
// IDP_TEST_POSTGRES_URL is not set: a local server with trust auth.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL creates a fresh, empty database for t on the server named by
// IDP_TEST_POSTGRES_URL (DefaultPostgresURL when unset), drops it when t
// ends, and returns its URL. The role in the admin URL needs CREATEDB. A
// server that cannot be reached makes t skip (fail in CI); see Unavailable.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("IDP_TEST_POSTGRES_URL")
	if admin == "" {
		admin = DefaultPostgresURL
	}
	u, err := url.Parse(admin)
	if err != nil {
		// Not reported with the URL: it may hold a password.
		t.Fatalf("testenv: IDP_TEST_POSTGRES_URL is not a URL: %v", err)
	}

	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatalf("testenv: random database name: %v", err)
	}
	name := "idp_test_" + hex.EncodeToString(raw[:])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		Unavailable(t, "PostgreSQL", err)
	}
	// The name is generated above, never taken from input, so quoting it
	// with pgx.Identifier is enough.
	quoted := pgx.Identifier{name}.Sanitize()
	_, err = conn.Exec(ctx, "CREATE DATABASE "+quoted)
	if err := errors.Join(err, conn.Close(ctx)); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}

	t.Cleanup(func() {
		if err := dropDatabase(admin, quoted); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// dropDatabase drops the test database, closing any connection a test left
// open (WITH (FORCE) needs PostgreSQL 13 or later).
func dropDatabase(admin, quotedName string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quotedName+" WITH (FORCE)")
	return errors.Join(err, conn.Close(ctx))
}
