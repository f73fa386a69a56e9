package manage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/storage"
)

// enrolEverything gives the user every kind of second factor: an
// authenticator app, three recovery codes, a remembered device, a WebAuthn
// handle and the given number of security keys.
func enrolEverything(t *testing.T, svc *manage.Service, u *storage.User, keys int) {
	t.Helper()
	ctx := context.Background()
	st := svc.Store
	if err := st.SetTOTP(ctx, &storage.TOTP{UserID: u.ID, Secret: []byte("sealed"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := st.ReplaceRecoveryCodes(ctx, u.ID, []string{u.ID + "-h1", u.ID + "-h2", u.ID + "-h3"}, t0); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "d-" + u.ID, UserID: u.ID,
		TokenHash: "t-" + u.ID, CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.WebAuthnHandle(ctx, u.ID, []byte("handle-"+u.ID)); err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		id := fmt.Sprintf("%s-key%d", u.ID, i)
		if err := st.CreateSecurityKey(ctx, &storage.SecurityKey{ID: id, UserID: u.ID, CredentialID: []byte("cred-" + id),
			Name: "Key " + id, Credential: []byte("encoded"), CreatedAt: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
}

// mfaJSON returns the "mfa" object of the user's view as JSON.
func mfaJSON(t *testing.T, svc *manage.Service, u *storage.User) string {
	t.Helper()
	v, err := svc.ViewUserWithMFA(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v.MFA)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMFAStatusAndView: the status counts the security keys, and the user's
// view shows them as SPEC.md has it.
func TestMFAStatusAndView(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	alice, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mfaJSON(t, svc, alice), `{"totp":false,"security_keys":0,"recovery_codes_left":0}`; got != want {
		t.Errorf("mfa of a user without second factors = %s, want %s", got, want)
	}
	enrolEverything(t, svc, alice, 2)

	st, err := svc.MFA(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (manage.MFAStatus{TOTP: true, SecurityKeys: 2, RecoveryCodesLeft: 3, RememberedDevices: 1}); st != want {
		t.Errorf("MFA = %+v, want %+v", st, want)
	}
	if got, want := mfaJSON(t, svc, alice), `{"totp":true,"security_keys":2,"recovery_codes_left":3}`; got != want {
		t.Errorf("mfa = %s, want %s", got, want)
	}
}

// TestResetMFARemovesSecurityKeys: the support reset removes the user's
// security keys with their other second factors, records how many there
// were, and leaves another user's alone.
func TestResetMFARemovesSecurityKeys(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	alice, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "bob", Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	enrolEverything(t, svc, alice, 2)
	enrolEverything(t, svc, bob, 1)

	if _, err := svc.ResetMFA(ctx, manage.Operator, "Alice"); err != nil {
		t.Fatal(err)
	}
	st, err := svc.MFA(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st != (manage.MFAStatus{}) {
		t.Errorf("MFA after the reset = %+v, want nothing left", st)
	}
	keys, err := svc.Store.ListSecurityKeys(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("alice has %d security keys after the reset", len(keys))
	}
	if _, err := svc.Store.SecurityKeyByCredentialID(ctx, []byte("cred-"+alice.ID+"-key0")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SecurityKeyByCredentialID of alice's key after the reset: got %v, want ErrNotFound", err)
	}
	if got, want := mfaJSON(t, svc, alice), `{"totp":false,"security_keys":0,"recovery_codes_left":0}`; got != want {
		t.Errorf("mfa after the reset = %s, want %s", got, want)
	}

	if st, err := svc.MFA(ctx, bob.ID); err != nil || st.SecurityKeys != 1 || !st.TOTP {
		t.Errorf("bob after alice's reset: %+v, %v; want his factors intact", st, err)
	}

	var reset *storage.AuditEvent
	for _, e := range events(t, svc) {
		if e.Type == "mfa.reset" {
			reset = e
		}
	}
	if reset == nil {
		t.Fatalf("no mfa.reset event among %v", eventTypes(t, svc))
	}
	if reset.UserID != alice.ID || reset.Actor != "operator" {
		t.Errorf("mfa.reset event = %+v", reset)
	}
	for k, want := range map[string]string{"authenticator_app": "true", "security_keys": "2", "recovery_codes": "3", "remembered_devices": "1"} {
		if got := reset.Details[k]; got != want {
			t.Errorf("mfa.reset detail %s = %q, want %q (details %v)", k, got, want, reset.Details)
		}
	}
	for _, secret := range []string{"cred-", "handle-", "encoded"} {
		for k, v := range reset.Details {
			if strings.Contains(v, secret) {
				t.Errorf("mfa.reset detail %s = %q holds key material", k, v)
			}
		}
	}
}

// TestRemoveSecondFactorsRemovesSecurityKeys: RemoveSecondFactors itself
// (the path the account page uses too) takes the keys, and keeps the
// WebAuthn handle so that keys registered later share it.
func TestRemoveSecondFactorsRemovesSecurityKeys(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	alice, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	enrolEverything(t, svc, alice, 3)
	if err := svc.RemoveSecondFactors(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.Store.CountSecurityKeys(ctx, alice.ID); err != nil || n != 0 {
		t.Errorf("CountSecurityKeys after RemoveSecondFactors = %d, %v; want 0", n, err)
	}
	if h, err := svc.Store.WebAuthnHandle(ctx, alice.ID, []byte("new")); err != nil || string(h) != "handle-"+alice.ID {
		t.Errorf("WebAuthnHandle after RemoveSecondFactors = %q, %v; want the handle from before", h, err)
	}
	// Running it again (the repair of a failure part-way) is no error.
	if err := svc.RemoveSecondFactors(ctx, alice.ID); err != nil {
		t.Errorf("RemoveSecondFactors again: %v", err)
	}
}
