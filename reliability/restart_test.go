package reliability

import (
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hostportal/idp/internal/testenv"
)

// What is kept survives a restart of `idp serve` (SIGTERM, then start
// again): users, clients, signing keys, refresh tokens and remembered
// devices on SQLite and on PostgreSQL; with Redis, also the sessions and a
// login started before the restart, which finishes after it.
func TestRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		redis bool // PostgreSQL and Redis; else an SQLite file and the in-process store
	}{
		{"sqlite", false},
		{"postgres+redis", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			cfg := providerConfig{database: "sqlite://" + filepath.Join(t.TempDir(), "idp.db")}
			if tc.redis {
				cfg.database = testenv.PostgresURL(t)
				cfg.redis, cfg.prefix = testenv.RedisURL(t)
			}
			f := newFixture(t, cfg.database)
			cfg.secretKey = f.secretKey
			alice, bob := f.mustAddUser("alice"), f.mustAddUser("bob")
			p := newProvider(t, cfg)
			p.start()
			rp := newRelyingParty(t, p.base, f, nil)

			b := newBrowser(nil)
			l, err := rp.start(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.password(ctx, alice); err != nil {
				t.Fatal(err)
			}
			if err := l.totp(ctx, alice.code(time.Now()), true); err != nil {
				t.Fatal(err)
			}
			first, err := l.finish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var pendingBob *login
			var bobID string
			if tc.redis {
				pendingBob, bobID = loginAtCode(t, ctx, rp, newBrowser(nil), bob)
			}

			p.stop()
			p.start()
			p.waitStatus("/readyz", http.StatusOK, 5*time.Second)

			// The key that signed before signs after: no new one was made.
			keys, err := f.store.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0].ID != first.kid {
				t.Errorf("after the restart there are %d keys; want the one key %s", len(keys), first.kid)
			}
			// The refresh token and the client that uses it.
			refreshed, err := rp.refresh(ctx, rp.oauth.Endpoint.TokenURL, first.oauth.RefreshToken)
			if err != nil {
				t.Fatalf("refresh after the restart: %v", err)
			}
			if refreshed.idToken.Subject != alice.id || refreshed.kid != first.kid {
				t.Errorf("refreshed ID token: sub %s kid %s, want %s %s", refreshed.idToken.Subject, refreshed.kid, alice.id, first.kid)
			}
			if tc.redis {
				// The session: the portal gets a code without a page.
				l, err := rp.start(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.finish(ctx); err != nil {
					t.Errorf("with the session kept in Redis: %v", err)
				}
			}
			// The user's password, and the remembered device that waives
			// the code (prompt=login asks for the password only).
			l, err = rp.start(ctx, b, oauth2.SetAuthURLParam("prompt", "login"))
			if err != nil {
				t.Fatal(err)
			}
			if err := l.password(ctx, alice); err != nil {
				t.Fatal(err)
			}
			again, err := l.finish(ctx)
			if err != nil {
				t.Fatalf("the remembered device after the restart: %v", err)
			}
			if !slices.Contains(again.amr, "mfa") || slices.Contains(again.amr, "otp") {
				t.Errorf("amr = %v, want mfa from the remembered device and no otp", again.amr)
			}
			if tc.redis {
				tok := finishLogin(t, ctx, pendingBob, p.base, bobID, bob.code(time.Now()))
				if tok.idToken.Subject != bob.id {
					t.Errorf("the login started before the restart: sub %s, want %s", tok.idToken.Subject, bob.id)
				}
			}
		})
	}
}
