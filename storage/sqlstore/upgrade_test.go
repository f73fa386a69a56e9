package sqlstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

// TestUpgradeFromVersion1 migrates a database to version 1 (the schema the
// first release shipped), stores data in it, and checks that Migrate brings
// it to LatestMigration with the data intact and the second-factor tables
// working. It then rolls back to 1 and forward again, so that the Down
// section of 00002 is exercised too.
func TestUpgradeFromVersion1(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			s := open(t, d.url(t))
			mustVersion := func(want int64) {
				t.Helper()
				v, err := s.MigrationVersion(ctx)
				if err != nil {
					t.Fatalf("MigrationVersion: %v", err)
				}
				if v != want {
					t.Fatalf("at version %d, want %d", v, want)
				}
			}

			if err := s.MigrateUpTo(ctx, 1); err != nil {
				t.Fatalf("MigrateUpTo 1: %v", err)
			}
			mustVersion(1)

			base := time.UnixMilli(1_700_000_000_123).UTC()
			user := &storage.User{ID: "u1", Username: "alice", Email: "alice@example.com", Name: "Alice",
				PasswordHash: "$argon2id$hash", CreatedAt: base, UpdatedAt: base}
			client := &storage.Client{ID: "portal", Name: "Portal", RedirectURIs: []string{"https://p.example/cb"},
				Source: storage.ClientSourceCLI, CreatedAt: base, UpdatedAt: base}
			token := &storage.RefreshToken{TokenHash: "rt1", FamilyID: "f1", UserID: "u1", ClientID: "portal",
				Scopes: []string{"openid"}, AuthTime: base, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
			if err := s.CreateUser(ctx, user); err != nil {
				t.Fatalf("CreateUser at version 1: %v", err)
			}
			if err := s.CreateClient(ctx, client); err != nil {
				t.Fatalf("CreateClient at version 1: %v", err)
			}
			if err := s.CreateRefreshToken(ctx, token); err != nil {
				t.Fatalf("CreateRefreshToken at version 1: %v", err)
			}
			if err := s.GrantConsent(ctx, "u1", "portal", []string{"openid", "email"}, base); err != nil {
				t.Fatalf("GrantConsent at version 1: %v", err)
			}
			// Version 1 has no second-factor tables.
			err := s.SetTOTP(ctx, &storage.TOTP{UserID: "u1", Secret: []byte("s"), CreatedAt: base})
			if err == nil || errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("SetTOTP at version 1: got %v, want a missing-table error", err)
			}

			checkData := func(step string) {
				t.Helper()
				u, err := s.UserByID(ctx, "u1")
				if err != nil {
					t.Fatalf("%s: UserByID: %v", step, err)
				}
				if u.Username != "alice" || u.Email != user.Email || u.PasswordHash != user.PasswordHash ||
					!u.CreatedAt.Equal(base) {
					t.Errorf("%s: user = %+v", step, u)
				}
				if _, err := s.ClientByID(ctx, "portal"); err != nil {
					t.Errorf("%s: ClientByID: %v", step, err)
				}
				rt, err := s.RefreshTokenByHash(ctx, "rt1")
				if err != nil {
					t.Fatalf("%s: RefreshTokenByHash: %v", step, err)
				}
				if rt.UserID != "u1" || !rt.ExpiresAt.Equal(token.ExpiresAt) {
					t.Errorf("%s: refresh token = %+v", step, rt)
				}
				scopes, err := s.ConsentedScopes(ctx, "u1", "portal")
				if err != nil || len(scopes) != 2 {
					t.Errorf("%s: ConsentedScopes = %q, %v; want [openid email]", step, scopes, err)
				}
			}

			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate from version 1: %v", err)
			}
			mustVersion(sqlstore.LatestMigration)
			checkData("after upgrade")
			useSecondFactors := func(step string) {
				t.Helper()
				if err := s.SetTOTP(ctx, &storage.TOTP{UserID: "u1", Secret: []byte("s"), CreatedAt: base}); err != nil {
					t.Fatalf("%s: SetTOTP: %v", step, err)
				}
				if err := s.ReplaceRecoveryCodes(ctx, "u1", []string{"a", "b"}, base); err != nil {
					t.Fatalf("%s: ReplaceRecoveryCodes: %v", step, err)
				}
				if err := s.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "d1", UserID: "u1",
					TokenHash: "dh1", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
					t.Fatalf("%s: CreateRememberedDevice: %v", step, err)
				}
			}
			useSecondFactors("after upgrade")

			// Down to 1 drops the new tables and keeps the rest; up again
			// recreates them empty.
			if err := s.MigrateDownTo(ctx, 1); err != nil {
				t.Fatalf("MigrateDownTo 1: %v", err)
			}
			mustVersion(1)
			checkData("after rollback")
			if _, err := s.TOTPByUser(ctx, "u1"); err == nil || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("TOTPByUser after rollback: got %v, want a missing-table error", err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate after rollback: %v", err)
			}
			mustVersion(sqlstore.LatestMigration)
			checkData("after upgrading again")
			if n, err := s.CountRecoveryCodes(ctx, "u1"); err != nil || n != 0 {
				t.Errorf("CountRecoveryCodes after upgrading again = %d, %v; want 0", n, err)
			}
			useSecondFactors("after upgrading again")
		})
	}
}
