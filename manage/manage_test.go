package manage_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newService returns a Service on a fresh, migrated SQLite store, with a
// cheap hasher and a fixed clock.
func newService(t *testing.T) *manage.Service {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "idp.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := password.NewHasher(password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &manage.Service{Store: st, Hasher: h, Now: func() time.Time { return t0 }}
}

// events returns every audit event, oldest first.
func events(t *testing.T, svc *manage.Service) []*storage.AuditEvent {
	t.Helper()
	evs, err := svc.Store.ListAudit(context.Background(), storage.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

func eventTypes(t *testing.T, svc *manage.Service) []string {
	t.Helper()
	var types []string
	for _, e := range events(t, svc) {
		types = append(types, e.Type)
	}
	return types
}

// noSecretIn fails when any audit event mentions one of the secrets.
func noSecretIn(t *testing.T, svc *manage.Service, secrets ...string) {
	t.Helper()
	for _, e := range events(t, svc) {
		all := strings.Join([]string{e.Type, e.Actor, e.UserID, e.Username, e.ClientID, e.IP, e.UserAgent, e.Result}, " ")
		for k, v := range e.Details {
			all += " " + k + "=" + v
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(all, s) {
				t.Errorf("audit event %s holds a secret: %s", e.Type, all)
			}
		}
	}
}

// wantInvalid checks that err is an *InvalidError on field whose message contains msg.
func wantInvalid(t *testing.T, err error, field, msg string) {
	t.Helper()
	var inv *manage.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error = %v, want an *InvalidError on %s", err, field)
	}
	if inv.Field != field {
		t.Errorf("InvalidError.Field = %q, want %q (message %q)", inv.Field, field, inv.Message)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error = %q, want it to contain %q", err, msg)
	}
	if !errors.Is(err, manage.ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
}

const goodPassword = "correct horse battery"

func TestCreateUserValidation(t *testing.T) {
	ok := manage.NewUser{Username: "alice", Email: "alice@example.com", Name: "Alice", Password: goodPassword}
	tests := []struct {
		name         string
		edit         func(u *manage.NewUser)
		field, msg   string // empty field: valid
		wantUsername string
		wantPhone    string
	}{
		{name: "valid", edit: func(u *manage.NewUser) {}, wantUsername: "alice"},
		{name: "username lower-cased", edit: func(u *manage.NewUser) { u.Username = "Alice.Smith" }, wantUsername: "alice.smith"},
		{name: "username with every allowed sign", edit: func(u *manage.NewUser) { u.Username = "a.b_c-d@e+f9" }, wantUsername: "a.b_c-d@e+f9"},
		{name: "username of 64", edit: func(u *manage.NewUser) { u.Username = strings.Repeat("a", 64) }, wantUsername: strings.Repeat("a", 64)},
		{name: "empty username", edit: func(u *manage.NewUser) { u.Username = "" }, field: "username", msg: `invalid username ""`},
		{name: "username of 65", edit: func(u *manage.NewUser) { u.Username = strings.Repeat("a", 65) }, field: "username", msg: "1 to 64"},
		{name: "username with a space", edit: func(u *manage.NewUser) { u.Username = "alice smith" }, field: "username", msg: "letters, digits and . _ - @ +"},
		{name: "username with a slash", edit: func(u *manage.NewUser) { u.Username = "a/b" }, field: "username", msg: "invalid username"},
		{name: "username not ASCII", edit: func(u *manage.NewUser) { u.Username = "zoë" }, field: "username", msg: "invalid username"},
		{name: "username with the Kelvin sign", edit: func(u *manage.NewUser) { u.Username = "\u212aate" }, field: "username", msg: "invalid username"},
		{name: "username with a dotted capital I", edit: func(u *manage.NewUser) { u.Username = "\u0130stanbul" }, field: "username", msg: "invalid username"},
		{name: "empty e-mail", edit: func(u *manage.NewUser) { u.Email = "" }, field: "email", msg: "e-mail address is required"},
		{name: "e-mail without @", edit: func(u *manage.NewUser) { u.Email = "x" }, field: "email", msg: `invalid e-mail address "x"`},
		{name: "e-mail with a display name", edit: func(u *manage.NewUser) { u.Email = "Alice <alice@example.com>" }, field: "email", msg: "bare address"},
		{name: "e-mail without a dot in the domain", edit: func(u *manage.NewUser) { u.Email = "alice@localhost" }, field: "email", msg: "domain"},
		{name: "e-mail with two addresses", edit: func(u *manage.NewUser) { u.Email = "a@example.com, b@example.com" }, field: "email", msg: "invalid e-mail address"},
		{name: "name of 200", edit: func(u *manage.NewUser) { u.Name = strings.Repeat("é", 200) }, wantUsername: "alice"},
		{name: "name of 201", edit: func(u *manage.NewUser) { u.Name = strings.Repeat("é", 201) }, field: "name", msg: "at most 200"},
		{name: "name with a line break", edit: func(u *manage.NewUser) { u.Name = "Alice\nSmith" }, field: "name", msg: "control characters"},
		{name: "no password", edit: func(u *manage.NewUser) { u.Password = "" }, wantUsername: "alice"},
		{name: "password of 11", edit: func(u *manage.NewUser) { u.Password = strings.Repeat("p", 11) }, field: "password", msg: "at least 12"},
		{name: "password of 12", edit: func(u *manage.NewUser) { u.Password = "plum orbit 7" }, wantUsername: "alice"},
		{name: "password of 12 multi-byte characters", edit: func(u *manage.NewUser) { u.Password = "äöüßéèêëïîôû" }, wantUsername: "alice"},
		{name: "password of 1024", edit: func(u *manage.NewUser) { u.Password = strings.Repeat("plum orbit canyon ", 57)[:1024] }, wantUsername: "alice"},
		{name: "password of 1025", edit: func(u *manage.NewUser) { u.Password = strings.Repeat("p", 1025) }, field: "password", msg: "at most 1024"},
		{name: "password without composition rules", edit: func(u *manage.NewUser) { u.Password = "tangerine submarine" }, wantUsername: "alice"},
		{name: "common password", edit: func(u *manage.NewUser) { u.Password = "Password1234" }, field: "password", msg: "too common"},
		{name: "password of one character repeated", edit: func(u *manage.NewUser) { u.Password = "aaaaaaaaaaaaaaaa" }, field: "password", msg: "too easy to guess"},
		{name: "password that is the username", edit: func(u *manage.NewUser) { u.Username, u.Password = "alice.liddell", "Alice.Liddell" }, field: "password", msg: "your username"},
		{name: "password made from the username", edit: func(u *manage.NewUser) { u.Username, u.Password = "alice.liddell", "alice.liddell2024" }, field: "password", msg: "your username"},
		{name: "password that is the e-mail", edit: func(u *manage.NewUser) { u.Password = "alice@example.com" }, field: "password", msg: "e-mail address"},
		{name: "phone", edit: func(u *manage.NewUser) { u.Phone = "+1 (415) 555-2671" }, wantUsername: "alice", wantPhone: "+14155552671"},
		{name: "phone UK mobile", edit: func(u *manage.NewUser) { u.Phone = "+44 7911 123456" }, wantUsername: "alice", wantPhone: "+447911123456"},
		{name: "phone without +", edit: func(u *manage.NewUser) { u.Phone = "4155552671" }, field: "phone", msg: "start it with +"},
		{name: "phone too short", edit: func(u *manage.NewUser) { u.Phone = "+1 415 555" }, field: "phone", msg: "not a valid number"},
		{name: "phone of letters", edit: func(u *manage.NewUser) { u.Phone = "+call me" }, field: "phone", msg: "invalid phone number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := newService(t)
			nu := ok
			tt.edit(&nu)
			u, err := svc.CreateUser(context.Background(), manage.Operator, nu)
			if tt.field != "" {
				wantInvalid(t, err, tt.field, tt.msg)
				if got := eventTypes(t, svc); len(got) != 0 {
					t.Errorf("events after a refused create = %v, want none", got)
				}
				users, err := svc.ListUsers(context.Background(), storage.UserQuery{})
				if err != nil {
					t.Fatal(err)
				}
				if len(users) != 0 {
					t.Errorf("a refused create stored %d users", len(users))
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			if u.Username != tt.wantUsername {
				t.Errorf("Username = %q, want %q", u.Username, tt.wantUsername)
			}
			if u.Phone != tt.wantPhone || u.PhoneVerified != (tt.wantPhone != "") {
				t.Errorf("Phone = %q (verified %v), want %q", u.Phone, u.PhoneVerified, tt.wantPhone)
			}
			got, err := svc.GetUser(context.Background(), strings.ToUpper(tt.wantUsername))
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			if got.ID != u.ID || got.Email != nu.Email || got.Phone != tt.wantPhone {
				t.Errorf("stored user = %+v, want %+v", got, u)
			}
			if (got.PasswordHash != "") != (nu.Password != "") {
				t.Errorf("PasswordHash set = %v, want %v", got.PasswordHash != "", nu.Password != "")
			}
			if nu.Password != "" {
				match, _, err := svc.Hasher.Verify(context.Background(), got.PasswordHash, nu.Password)
				if err != nil || !match {
					t.Errorf("the stored hash does not verify the password (err %v)", err)
				}
			}
			noSecretIn(t, svc, nu.Password, got.PasswordHash)
		})
	}
}

func TestCreateUserReportsEveryProblem(t *testing.T) {
	svc := newService(t)
	_, err := svc.CreateUser(context.Background(), manage.Operator, manage.NewUser{Username: "a b", Email: "x", Password: "short"})
	for _, want := range []string{"invalid username", "invalid e-mail address", "too short"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to mention %q", err, want)
		}
	}
}

func TestCreateUserRecordsAndIDs(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	actor := manage.ClientActor("portal", "203.0.113.7", "curl/8")
	a, err := svc.CreateUser(ctx, actor, manage.NewUser{Username: "alice", Email: "alice@example.com", Password: goodPassword, Phone: "+14155552671"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "bob", Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID || a.ID == "" || strings.Contains(a.ID, "alice") || len(a.ID) < 20 {
		t.Errorf("user ids %q and %q: want distinct, opaque and random", a.ID, b.ID)
	}
	if !a.CreatedAt.Equal(t0) {
		t.Errorf("CreatedAt = %v, want the injected clock %v", a.CreatedAt, t0)
	}
	evs := events(t, svc)
	if len(evs) != 2 {
		t.Fatalf("events = %d, want 2", len(evs))
	}
	e := evs[0]
	if e.Type != "user.created" || e.Actor != "client:portal" || e.UserID != a.ID || e.Username != "alice" ||
		e.IP != "203.0.113.7" || e.UserAgent != "curl/8" || e.Result != "success" || !e.Time.Equal(t0) {
		t.Errorf("event = %+v", e)
	}
	if e.Details["password_set"] != "true" || evs[1].Details["password_set"] != "false" || evs[1].Actor != "operator" {
		t.Errorf("details = %v / %v", e.Details, evs[1].Details)
	}
	if strings.Contains(e.Details["phone"], "5552671") {
		t.Errorf("the audit event holds the whole phone number: %v", e.Details)
	}
	noSecretIn(t, svc, goodPassword)
}

func TestCreateUserDuplicate(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "ALICE"} {
		_, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: name, Email: "other@example.com", Password: goodPassword})
		if !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("duplicate %s: error = %v, want ErrConflict", name, err)
		}
		if err.Error() != "a user named alice already exists" {
			t.Errorf("message = %q", err)
		}
	}
	if got := eventTypes(t, svc); len(got) != 1 {
		t.Errorf("events = %v, want only the first user.created", got)
	}
}

func TestUnknownUser(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["GetUser"] = svc.GetUser(ctx, "bob")
	checks["SetPassword"] = svc.SetPassword(ctx, manage.Operator, "bob", goodPassword)
	_, checks["SetPhone"] = svc.SetPhone(ctx, manage.Operator, "bob", "+14155552671")
	_, checks["ClearPhone"] = svc.ClearPhone(ctx, manage.Operator, "bob")
	_, checks["Disable"] = svc.Disable(ctx, manage.Operator, "bob")
	_, checks["Enable"] = svc.Enable(ctx, manage.Operator, "bob")
	_, checks["ListAudit"] = svc.ListAudit(ctx, manage.AuditQuery{Username: "bob"})
	for op, err := range checks {
		if !errors.Is(err, storage.ErrNotFound) || err.Error() != "no user named bob" {
			t.Errorf("%s: error = %v, want ErrNotFound saying %q", op, err, "no user named bob")
		}
	}
	if got := eventTypes(t, svc); len(got) != 0 {
		t.Errorf("events = %v, want none", got)
	}
}

func TestSetPassword(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, svc.SetPassword(ctx, manage.Operator, "alice", "short"), "password", "too short")
	wantInvalid(t, svc.SetPassword(ctx, manage.Operator, "alice", strings.Repeat("x", 1025)), "password", "too long")
	const pw = "a new passphrase for alice"
	if err := svc.SetPassword(ctx, manage.Operator, "Alice", pw); err != nil {
		t.Fatal(err)
	}
	u, err := svc.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := svc.Hasher.Verify(ctx, u.PasswordHash, pw); err != nil || !ok {
		t.Errorf("the new password does not verify (err %v)", err)
	}
	if got := eventTypes(t, svc); strings.Join(got, ",") != "user.created,user.password_changed" {
		t.Errorf("events = %v", got)
	}
	noSecretIn(t, svc, pw, u.PasswordHash)

	noHasher := &manage.Service{Store: svc.Store}
	if err := noHasher.SetPassword(ctx, manage.Operator, "alice", pw); err == nil || !strings.Contains(err.Error(), "Hasher") {
		t.Errorf("without a Hasher: error = %v", err)
	}
}

func TestPhone(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.SetPhone(ctx, manage.Operator, "alice", "415 555 2671")
	wantInvalid(t, err, "phone", "start it with +")
	_, err = svc.SetPhone(ctx, manage.Operator, "alice", "+1 555")
	wantInvalid(t, err, "phone", "not a valid number")

	u, err := svc.SetPhone(ctx, manage.Operator, "alice", "+33 6 12 34 56 78")
	if err != nil {
		t.Fatal(err)
	}
	if u.Phone != "+33612345678" || !u.PhoneVerified {
		t.Errorf("after SetPhone: %q verified %v", u.Phone, u.PhoneVerified)
	}
	// The same number again changes nothing and writes no event.
	if _, err := svc.SetPhone(ctx, manage.Operator, "alice", "+33612345678"); err != nil {
		t.Fatal(err)
	}
	u, err = svc.ClearPhone(ctx, manage.Operator, "alice")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := svc.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Phone != "" || u.PhoneVerified || stored.Phone != "" || stored.PhoneVerified {
		t.Errorf("after ClearPhone: %+v", stored)
	}
	evs := events(t, svc)
	if got := eventTypes(t, svc); strings.Join(got, ",") != "user.created,user.phone_changed,user.phone_changed" {
		t.Fatalf("events = %v", got)
	}
	if evs[1].Details["verified"] != "true" || evs[2].Details["removed"] != "true" {
		t.Errorf("details = %v / %v", evs[1].Details, evs[2].Details)
	}
	noSecretIn(t, svc, "612345678")
}

func TestDisableEnable(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateClient(ctx, manage.Operator, manage.NewClient{ID: "portal", RedirectURIs: []string{"https://portal.example.com/cb"}}); err != nil {
		t.Fatal(err)
	}
	rt := &storage.RefreshToken{TokenHash: "h1", FamilyID: "f1", UserID: u.ID, ClientID: "portal", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := svc.Store.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}

	d, err := svc.Disable(ctx, manage.Operator, "alice")
	if err != nil || !d.Disabled {
		t.Fatalf("Disable: %+v, %v", d, err)
	}
	if _, err := svc.Disable(ctx, manage.Operator, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, _ := svc.GetUser(ctx, "alice"); !got.Disabled {
		t.Error("the store does not hold the user as disabled")
	}
	if got, err := svc.Store.RefreshTokenByHash(ctx, "h1"); err != nil || got.RevokedAt.IsZero() {
		t.Errorf("the refresh token of a disabled user is not revoked: %+v, %v", got, err)
	}
	e, err := svc.Enable(ctx, manage.Operator, "alice")
	if err != nil || e.Disabled {
		t.Fatalf("Enable: %+v, %v", e, err)
	}
	if got := eventTypes(t, svc); strings.Join(got, ",") != "user.created,client.created,user.disabled,user.enabled" {
		t.Errorf("events = %v (disabling twice writes one event)", got)
	}
}

func TestListAuditByUser(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	for _, name := range []string{"alice", "bob"} {
		if _, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: name, Email: name + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := svc.ListAudit(ctx, manage.AuditQuery{Username: "BOB"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Username != "bob" || evs[0].Type != "user.created" {
		t.Errorf("bob's events = %+v", evs)
	}
	evs, err = svc.ListAudit(ctx, manage.AuditQuery{Since: t0.Add(time.Minute)})
	if err != nil || len(evs) != 0 {
		t.Errorf("events since a minute later = %d, %v; want none", len(evs), err)
	}
}

func TestCreateClientValidation(t *testing.T) {
	const longSecret = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name       string
		nc         manage.NewClient
		field, msg string // empty field: valid
		wantGrants string
		generated  bool
	}{
		{name: "confidential gets a secret and the default grants",
			nc:         manage.NewClient{ID: "portal", Name: "Portal", RedirectURIs: []string{"https://portal.example.com/cb"}},
			wantGrants: "authorization_code,refresh_token", generated: true},
		{name: "given secret",
			nc:         manage.NewClient{ID: "portal", RedirectURIs: []string{"https://portal.example.com/cb"}, Secret: longSecret},
			wantGrants: "authorization_code,refresh_token"},
		{name: "public",
			nc:         manage.NewClient{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost:3000/cb", "http://127.0.0.1:3000/cb", "com.example.app:/cb"}},
			wantGrants: "authorization_code,refresh_token"},
		{name: "client_credentials only needs no redirect URI",
			nc:         manage.NewClient{ID: "sync", Grants: []string{"client_credentials"}, Scopes: []string{"idp:admin"}},
			wantGrants: "client_credentials", generated: true},
		{name: "repeated values are kept once",
			nc:         manage.NewClient{ID: "p", RedirectURIs: []string{"https://a.example.com/cb", "https://a.example.com/cb"}, Grants: []string{"authorization_code", "authorization_code"}},
			wantGrants: "authorization_code", generated: true},
		{name: "http redirect to another host",
			nc:    manage.NewClient{ID: "portal", RedirectURIs: []string{"http://portal.example.com/cb"}},
			field: "redirect_uris", msg: `invalid redirect URI: "http://portal.example.com/cb" must use https`},
		{name: "redirect with a fragment",
			nc:    manage.NewClient{ID: "portal", RedirectURIs: []string{"https://portal.example.com/cb#x"}},
			field: "redirect_uris", msg: "fragment"},
		{name: "relative redirect",
			nc:    manage.NewClient{ID: "portal", RedirectURIs: []string{"/cb"}},
			field: "redirect_uris", msg: "not an absolute URI"},
		{name: "no redirect URI for the code grant",
			nc:    manage.NewClient{ID: "portal"},
			field: "redirect_uris", msg: "at least one is required"},
		{name: "bad post-logout redirect",
			nc:    manage.NewClient{ID: "portal", RedirectURIs: []string{"https://portal.example.com/cb"}, PostLogoutRedirectURIs: []string{"http://portal.example.com/"}},
			field: "post_logout_redirect_uris", msg: "invalid post-logout redirect URI"},
		{name: "short secret",
			nc:    manage.NewClient{ID: "portal", RedirectURIs: []string{"https://portal.example.com/cb"}, Secret: "hunter2"},
			field: "secret", msg: "invalid client secret: must be at least 32 characters"},
		{name: "public with a secret",
			nc:    manage.NewClient{ID: "spa", Public: true, RedirectURIs: []string{"https://spa.example.com/cb"}, Secret: longSecret},
			field: "secret", msg: "a public client has no secret"},
		{name: "public with client_credentials",
			nc:    manage.NewClient{ID: "spa", Public: true, Grants: []string{"client_credentials"}},
			field: "grants", msg: "a public client cannot use client_credentials"},
		{name: "unknown grant",
			nc:    manage.NewClient{ID: "portal", RedirectURIs: []string{"https://portal.example.com/cb"}, Grants: []string{"password"}},
			field: "grants", msg: `unknown grant "password"`},
		{name: "empty id",
			nc:    manage.NewClient{RedirectURIs: []string{"https://portal.example.com/cb"}},
			field: "id", msg: "invalid client id"},
		{name: "id with a space",
			nc:    manage.NewClient{ID: "my portal", RedirectURIs: []string{"https://portal.example.com/cb"}},
			field: "id", msg: "invalid client id"},
		{name: "scope with a space",
			nc:    manage.NewClient{ID: "portal", RedirectURIs: []string{"https://portal.example.com/cb"}, Scopes: []string{`a"b`}},
			field: "scopes", msg: "invalid scope"},
		{name: "name too long",
			nc:    manage.NewClient{ID: "portal", Name: strings.Repeat("n", 201), RedirectURIs: []string{"https://portal.example.com/cb"}},
			field: "name", msg: "at most 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := newService(t)
			ctx := context.Background()
			c, generated, err := svc.CreateClient(ctx, manage.Operator, tt.nc)
			if tt.field != "" {
				wantInvalid(t, err, tt.field, tt.msg)
				if cs, _ := svc.ListClients(ctx); len(cs) != 0 || len(eventTypes(t, svc)) != 0 {
					t.Errorf("a refused client wrote %d clients and events %v", len(cs), eventTypes(t, svc))
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateClient: %v", err)
			}
			if (generated != "") != tt.generated {
				t.Errorf("generated secret %q, want one: %v", generated, tt.generated)
			}
			got, err := svc.GetClient(ctx, tt.nc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got.GrantTypes, ","); g != tt.wantGrants {
				t.Errorf("grants = %s, want %s", g, tt.wantGrants)
			}
			if got.Source != storage.ClientSourceCLI || got.Public != tt.nc.Public || !got.CreatedAt.Equal(t0) {
				t.Errorf("stored client = %+v", got)
			}
			switch {
			case tt.nc.Public:
				if got.SecretHash != "" {
					t.Errorf("a public client has a secret hash")
				}
			case generated != "":
				if len(generated) < config.MinClientSecretLength || !secret.CheckClientSecret(got.SecretHash, generated) {
					t.Errorf("generated secret %q (len %d) does not match the stored hash", generated, len(generated))
				}
			default:
				if !secret.CheckClientSecret(got.SecretHash, tt.nc.Secret) || got.SecretHash == tt.nc.Secret {
					t.Errorf("the given secret is not stored hashed")
				}
			}
			if c.ID != got.ID {
				t.Errorf("returned %q, stored %q", c.ID, got.ID)
			}
			evs := events(t, svc)
			if len(evs) != 1 || evs[0].Type != "client.created" || evs[0].ClientID != tt.nc.ID || evs[0].Actor != "operator" {
				t.Errorf("events = %+v", evs)
			}
			noSecretIn(t, svc, generated, tt.nc.Secret, got.SecretHash)
		})
	}
}

func TestClientDuplicateAndRemove(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	nc := manage.NewClient{ID: "portal", RedirectURIs: []string{"https://portal.example.com/cb"}}
	if _, _, err := svc.CreateClient(ctx, manage.Operator, nc); err != nil {
		t.Fatal(err)
	}
	_, _, err := svc.CreateClient(ctx, manage.Operator, nc)
	if !errors.Is(err, storage.ErrConflict) || err.Error() != "a client with id portal already exists" {
		t.Errorf("duplicate: %v", err)
	}
	if err := svc.RemoveClient(ctx, manage.Operator, "nope"); !errors.Is(err, storage.ErrNotFound) || err.Error() != "no client with id nope" {
		t.Errorf("remove unknown: %v", err)
	}
	if _, err := svc.GetClient(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	if err := svc.RemoveClient(ctx, manage.Operator, "portal"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetClient(ctx, "portal"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after remove: %v", err)
	}
	if got := eventTypes(t, svc); strings.Join(got, ",") != "client.created,client.removed" {
		t.Errorf("events = %v", got)
	}
}

func TestSyncConfigClients(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	secretA := strings.Repeat("a", 40)
	declared := []config.ClientConfig{
		{ID: "portal", Name: "Portal", Secret: secretA, RedirectURIs: []string{"https://portal.example.com/cb"}, FirstParty: true},
		{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost:3000/cb"}},
	}
	if err := svc.SyncConfigClients(ctx, declared); err != nil {
		t.Fatal(err)
	}
	portal, err := svc.GetClient(ctx, "portal")
	if err != nil {
		t.Fatal(err)
	}
	if portal.Source != storage.ClientSourceConfig || !portal.FirstParty || !secret.CheckClientSecret(portal.SecretHash, secretA) ||
		strings.Join(portal.GrantTypes, ",") != "authorization_code,refresh_token" {
		t.Errorf("portal = %+v", portal)
	}

	// The same file again changes nothing (the secret is not rehashed).
	if err := svc.SyncConfigClients(ctx, declared); err != nil {
		t.Fatal(err)
	}
	again, _ := svc.GetClient(ctx, "portal")
	if again.SecretHash != portal.SecretHash {
		t.Error("an unchanged secret was rehashed")
	}
	if got := eventTypes(t, svc); strings.Join(got, ",") != "client.created,client.created" {
		t.Errorf("events after an unchanged sync = %v", got)
	}

	// A config client cannot be removed by an operator.
	if err := svc.RemoveClient(ctx, manage.Operator, "portal"); !errors.Is(err, manage.ErrDeclaredInConfig) ||
		!strings.Contains(err.Error(), "configuration file") {
		t.Errorf("removing a config client: %v", err)
	}

	// Change portal, drop spa.
	secretB := strings.Repeat("b", 40)
	if err := svc.SyncConfigClients(ctx, []config.ClientConfig{
		{ID: "portal", Name: "Portal 2", Secret: secretB, RedirectURIs: []string{"https://portal.example.com/cb"}},
	}); err != nil {
		t.Fatal(err)
	}
	portal, _ = svc.GetClient(ctx, "portal")
	if portal.Name != "Portal 2" || portal.FirstParty || !secret.CheckClientSecret(portal.SecretHash, secretB) {
		t.Errorf("updated portal = %+v", portal)
	}
	if _, err := svc.GetClient(ctx, "spa"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("spa was not removed: %v", err)
	}
	evs := events(t, svc)
	if got := eventTypes(t, svc); strings.Join(got, ",") != "client.created,client.created,client.updated,client.removed" {
		t.Fatalf("events = %v", got)
	}
	if evs[2].Actor != "system" || evs[2].Details["secret_changed"] != "true" {
		t.Errorf("update event = %+v", evs[2])
	}
	noSecretIn(t, svc, secretA, secretB)

	// An id taken by a CLI client is refused and nothing is written.
	if _, _, err := svc.CreateClient(ctx, manage.Operator, manage.NewClient{ID: "cli-one", RedirectURIs: []string{"https://x.example.com/cb"}}); err != nil {
		t.Fatal(err)
	}
	before := len(events(t, svc))
	err = svc.SyncConfigClients(ctx, []config.ClientConfig{
		{ID: "new", Public: true, RedirectURIs: []string{"http://localhost/cb"}},
		{ID: "cli-one", Public: true, RedirectURIs: []string{"http://localhost/cb"}},
	})
	if !errors.Is(err, storage.ErrConflict) || !strings.Contains(err.Error(), "cli-one") {
		t.Errorf("config client over a CLI client: %v", err)
	}
	if _, err := svc.GetClient(ctx, "new"); !errors.Is(err, storage.ErrNotFound) {
		t.Error("a refused sync created a client")
	}
	if len(events(t, svc)) != before {
		t.Error("a refused sync wrote events")
	}

	// An invalid declaration is refused with the rule.
	err = svc.SyncConfigClients(ctx, []config.ClientConfig{{ID: "bad", Secret: "short", RedirectURIs: []string{"https://x.example.com/cb"}}})
	wantInvalid(t, err, "secret", "client bad in the configuration file: invalid client secret")
}

func TestViews(t *testing.T) {
	u := &storage.User{ID: "id1", Username: "alice", PasswordHash: "$argon2id$secret"}
	if v := manage.ViewUser(u); v.Username != "alice" || v.ID != "id1" {
		t.Errorf("ViewUser = %+v", v)
	}
	c := manage.ViewClient(&storage.Client{ID: "p", SecretHash: "hmac"})
	if c.RedirectURIs == nil || c.Grants == nil || c.Scopes == nil || c.PostLogoutRedirectURIs == nil {
		t.Errorf("ViewClient has null lists: %+v", c)
	}
}

func TestProblems(t *testing.T) {
	svc := newService(t)
	_, err := svc.CreateUser(context.Background(), manage.Operator, manage.NewUser{Username: "a b", Email: "x", Password: "short"})
	var fields []string
	for _, p := range manage.Problems(err) {
		fields = append(fields, p.Field)
	}
	if strings.Join(fields, ",") != "username,email,password" {
		t.Errorf("Problems fields = %v", fields)
	}
	if manage.Problems(errors.New("other")) != nil || manage.Problems(nil) != nil {
		t.Error("Problems of a non-validation error is not empty")
	}
}
