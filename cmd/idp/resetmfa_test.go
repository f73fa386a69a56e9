package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/mail/mailtest"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

// TestResetMFA: the support reset removes every second factor of the user,
// says so, is audited, and refuses an unknown user.
func TestResetMFA(t *testing.T) {
	e := newTestEnv(t)
	e.ok("a long passphrase\n", "user", "add", "alice", "--email", "alice@example.com", "--phone", "+14155550123")
	e.ok("a long passphrase\n", "user", "add", "bob", "--email", "bob@example.com", "--phone", "+16502530000")

	// Give alice and bob second factors directly in the store.
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+e.dir+"/idp.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	for _, name := range []string{"alice", "bob"} {
		u, err := st.UserByUsername(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetTOTP(ctx, &storage.TOTP{UserID: u.ID, Secret: []byte("sealed"), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := st.ReplaceRecoveryCodes(ctx, u.ID, []string{"h1", "h2"}, now); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "d-" + name, UserID: u.ID, TokenHash: "t-" + name,
			CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"yubikey", "laptop"} {
			if err := st.CreateSecurityKey(ctx, &storage.SecurityKey{ID: k + "-" + name, UserID: u.ID,
				CredentialID: []byte("cred-" + k + "-" + name), Name: k, Credential: []byte("encoded"), CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mfa := func() map[string]any {
		t.Helper()
		m, _ := decodeJSON[map[string]any](t, e.ok("", "user", "show", "alice", "--json"))["mfa"].(map[string]any)
		return m
	}
	if m := mfa(); m["totp"] != true || m["security_keys"] != 2.0 || m["recovery_codes_left"] != 2.0 {
		t.Fatalf("user show before the reset: mfa = %v", m)
	}

	out := e.ok("", "user", "reset-mfa", "Alice")
	if !strings.Contains(out, "alice") || !strings.Contains(out, "removed") {
		t.Errorf("reset-mfa said %q", out)
	}
	alice, _ := st.UserByUsername(ctx, "alice")
	if _, err := st.TOTPByUser(ctx, alice.ID); err == nil {
		t.Error("alice still has an authenticator app")
	}
	if n, _ := st.CountRecoveryCodes(ctx, alice.ID); n != 0 {
		t.Errorf("alice has %d recovery codes left", n)
	}
	if d, _ := st.ListRememberedDevices(ctx, alice.ID); len(d) != 0 {
		t.Errorf("alice has %d remembered devices", len(d))
	}
	if n, err := st.CountSecurityKeys(ctx, alice.ID); err != nil || n != 0 {
		t.Errorf("alice has %d security keys (%v)", n, err)
	}
	if m := mfa(); m["totp"] != false || m["security_keys"] != 0.0 || m["recovery_codes_left"] != 0.0 {
		t.Errorf("user show after the reset: mfa = %v", m)
	}
	// The number stays for the portal's Team page, but gets no codes
	// until it is confirmed again.
	if alice.Phone != "+14155550123" || alice.PhoneVerified {
		t.Errorf("alice's phone after the reset: %q verified %v, want kept and unverified", alice.Phone, alice.PhoneVerified)
	}
	bob, _ := st.UserByUsername(ctx, "bob")
	if _, err := st.TOTPByUser(ctx, bob.ID); err != nil || !bob.PhoneVerified {
		t.Error("resetting alice touched bob")
	}
	if n, err := st.CountSecurityKeys(ctx, bob.ID); err != nil || n != 2 {
		t.Errorf("bob has %d security keys after alice's reset (%v), want 2", n, err)
	}
	if out := e.ok("", "audit", "list", "--user", "alice", "--json"); !strings.Contains(out, "mfa.reset") ||
		!strings.Contains(out, "security_keys") {
		t.Errorf("no mfa.reset audit event with security_keys: %s", out)
	}
	e.fails("", "no user named nobody", "user", "reset-mfa", "nobody")
	e.fails("", "missing USERNAME", "user", "reset-mfa")
}

// TestResetMFANotifies: the user is told by e-mail that support reset
// their second factors.
func TestResetMFANotifies(t *testing.T) {
	smtp := mailtest.NewServer(t)
	e := newTestEnv(t)
	e.environ = append(e.environ, "IDP_EMAIL_PROVIDER=smtp", "IDP_EMAIL_FROM=no-reply@example.com",
		"IDP_EMAIL_SMTP_HOST="+smtp.Host, "IDP_EMAIL_SMTP_PORT="+strconv.Itoa(smtp.Port), "IDP_EMAIL_SMTP_TLS=none")
	e.ok("a long passphrase\n", "user", "add", "alice", "--email", "alice@example.com")
	e.ok("", "user", "reset-mfa", "alice")
	m := smtp.WaitFor(t, 1)[0]
	if m.To[0] != "alice@example.com" || !strings.Contains(m.Subject, "reset by support") {
		t.Fatalf("mail %+v", m)
	}
	// The mail server down: the reset still happens, with a warning.
	smtp.Down()
	if _, stderr, err := e.run("", "user", "reset-mfa", "alice"); err != nil || !strings.Contains(stderr, "could not be sent") {
		t.Fatalf("reset-mfa with the mail server down: %v, stderr %q", err, stderr)
	}
}
