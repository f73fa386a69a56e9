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
// sections of 00002 and later are exercised too.
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
				if _, err := s.WebAuthnHandle(ctx, "u1", []byte("handle")); err != nil {
					t.Fatalf("%s: WebAuthnHandle: %v", step, err)
				}
				if err := s.CreateSecurityKey(ctx, &storage.SecurityKey{ID: "k1", UserID: "u1",
					CredentialID: []byte("cred"), Credential: []byte("c"), CreatedAt: base}); err != nil {
					t.Fatalf("%s: CreateSecurityKey: %v", step, err)
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
			if n, err := s.CountSecurityKeys(ctx, "u1"); err != nil || n != 0 {
				t.Errorf("CountSecurityKeys after upgrading again = %d, %v; want 0", n, err)
			}
			useSecondFactors("after upgrading again")
		})
	}
}

// TestUpgradeFromVersion2 migrates a database to version 2 (the release with
// TOTP, recovery codes and remembered devices), stores second factors in
// it, and checks that Migrate adds working security-key tables and keeps the
// rest. It then rolls back to 2 and forward again, so that the Down section
// of 00003 is exercised too: the keys and handles go, the other second
// factors stay.
func TestUpgradeFromVersion2(t *testing.T) {
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
			if err := s.MigrateUpTo(ctx, 2); err != nil {
				t.Fatalf("MigrateUpTo 2: %v", err)
			}
			mustVersion(2)

			base := time.UnixMilli(1_700_000_000_123).UTC()
			if err := s.CreateUser(ctx, &storage.User{ID: "u1", Username: "alice", CreatedAt: base, UpdatedAt: base}); err != nil {
				t.Fatalf("CreateUser at version 2: %v", err)
			}
			totp := &storage.TOTP{UserID: "u1", Secret: []byte("sealed"), LastStep: 7, CreatedAt: base}
			if err := s.SetTOTP(ctx, totp); err != nil {
				t.Fatalf("SetTOTP at version 2: %v", err)
			}
			if err := s.ReplaceRecoveryCodes(ctx, "u1", []string{"a", "b"}, base); err != nil {
				t.Fatalf("ReplaceRecoveryCodes at version 2: %v", err)
			}
			key := &storage.SecurityKey{ID: "k1", UserID: "u1", CredentialID: []byte("cred\x00\xff"), Name: "YubiKey",
				Credential: []byte("encoded"), SignCount: 4, CreatedAt: base}
			// Version 2 has no security-key tables.
			if err := s.CreateSecurityKey(ctx, key); err == nil || errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("CreateSecurityKey at version 2: got %v, want a missing-table error", err)
			}

			checkSecondFactors := func(step string) {
				t.Helper()
				got, err := s.TOTPByUser(ctx, "u1")
				if err != nil {
					t.Fatalf("%s: TOTPByUser: %v", step, err)
				}
				if string(got.Secret) != "sealed" || got.LastStep != 7 || !got.CreatedAt.Equal(base) {
					t.Errorf("%s: TOTP = %+v", step, got)
				}
				if n, err := s.CountRecoveryCodes(ctx, "u1"); err != nil || n != 2 {
					t.Errorf("%s: CountRecoveryCodes = %d, %v; want 2", step, n, err)
				}
			}
			useSecurityKeys := func(step string) {
				t.Helper()
				h, err := s.WebAuthnHandle(ctx, "u1", []byte("handle-"+step))
				if err != nil || string(h) != "handle-"+step {
					t.Fatalf("%s: WebAuthnHandle = %q, %v; want a new handle", step, h, err)
				}
				if err := s.CreateSecurityKey(ctx, key); err != nil {
					t.Fatalf("%s: CreateSecurityKey: %v", step, err)
				}
				if ok, err := s.UseSecurityKey(ctx, "k1", 4, 5, []byte("encoded-5"), base.Add(time.Minute)); err != nil || !ok {
					t.Fatalf("%s: UseSecurityKey = %v, %v; want true", step, ok, err)
				}
				got, err := s.SecurityKeyByCredentialID(ctx, key.CredentialID)
				if err != nil {
					t.Fatalf("%s: SecurityKeyByCredentialID: %v", step, err)
				}
				if got.SignCount != 5 || string(got.Credential) != "encoded-5" || got.Name != "YubiKey" {
					t.Errorf("%s: security key = %+v", step, got)
				}
			}

			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate from version 2: %v", err)
			}
			mustVersion(sqlstore.LatestMigration)
			checkSecondFactors("after upgrade")
			useSecurityKeys("after upgrade")

			if err := s.MigrateDownTo(ctx, 2); err != nil {
				t.Fatalf("MigrateDownTo 2: %v", err)
			}
			mustVersion(2)
			checkSecondFactors("after rollback")
			if _, err := s.CountSecurityKeys(ctx, "u1"); err == nil {
				t.Error("CountSecurityKeys after rollback: no error, want a missing-table error")
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate after rollback: %v", err)
			}
			mustVersion(sqlstore.LatestMigration)
			checkSecondFactors("after upgrading again")
			if n, err := s.CountSecurityKeys(ctx, "u1"); err != nil || n != 0 {
				t.Errorf("CountSecurityKeys after upgrading again = %d, %v; want 0", n, err)
			}
			useSecurityKeys("after upgrading again")
		})
	}
}
