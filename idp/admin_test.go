package idp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
)

const adminUserAgent = "admin-test/1.0"

// adminEnv is a provider with alice, a third-party portal and "admin", a
// client_credentials client holding idp:admin, with a token of it.
type adminEnv struct {
	*idptest.Env
	t      *testing.T
	rp     *rp
	secret string // admin's
	token  string // admin's, with scope idp:admin
}

func newAdminEnv(t *testing.T, b idptest.Backend) *adminEnv {
	t.Helper()
	env, r := setup(t, b)
	secret := env.AddClient(manage.NewClient{ID: "admin", Grants: []string{"client_credentials"}, Scopes: []string{"idp:admin"}})
	a := &adminEnv{Env: env, t: t, rp: r, secret: secret}
	a.token = a.clientToken("admin", secret, "idp:admin")
	return a
}

func (a *adminEnv) clientToken(id, secret string, scopes ...string) string {
	a.t.Helper()
	tok, err := clientCredentials(a.Env, id, secret, scopes...).Token()
	if err != nil {
		a.t.Fatalf("client credentials of %s: %v", id, err)
	}
	return tok.AccessToken
}

// apiResponse is an answer of the admin API, its body read.
type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *apiResponse) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// object decodes the body as one JSON object.
func (r *apiResponse) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object (%v): %s", err, r)
	}
	return m
}

// adminProblem is what the tests read of a problem.
type adminProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (p adminProblem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// problem checks that r is a problem with status and returns it.
func (r *apiResponse) problem(t *testing.T, status int) adminProblem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, r)
	}
	var p adminProblem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, r)
	}
	if p.Status != status || p.Title == "" || p.Type == "" || p.Detail == "" {
		t.Fatalf("problem %+v", p)
	}
	if p.Type == "about:blank" && p.Title != http.StatusText(status) {
		t.Errorf("about:blank with title %q, want %q", p.Title, http.StatusText(status))
	}
	return p
}

// send makes a call with token ("" for none), body (nil for none, a string
// as it is, anything else as JSON) of contentType.
func (a *adminEnv) send(method, path, token string, body any, contentType string) *apiResponse {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.Issuer+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", adminUserAgent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		a.t.Errorf("%s %s: Cache-Control %q, want no-store", method, path, cc)
	}
	return &apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// call is send with admin's token and a JSON body.
func (a *adminEnv) call(method, path string, body any) *apiResponse {
	a.t.Helper()
	return a.send(method, path, a.token, body, "application/json")
}

// ok checks the status of r and decodes its JSON object.
func (a *adminEnv) ok(r *apiResponse, status int) map[string]any {
	a.t.Helper()
	if r.Status != status {
		a.t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		a.t.Fatalf("Content-Type %q, want application/json", ct)
	}
	return r.object(a.t)
}

func (a *adminEnv) user(name string) *storage.User {
	a.t.Helper()
	u, err := a.Store.UserByUsername(context.Background(), name)
	if err != nil {
		a.t.Fatalf("user %s: %v", name, err)
	}
	return u
}

// adminEvents returns the store's admin.request events, newest first.
func adminEvents(t *testing.T, env *idptest.Env) []*storage.AuditEvent {
	t.Helper()
	all, err := env.Store.ListAudit(context.Background(), storageQuery())
	if err != nil {
		t.Fatal(err)
	}
	var out []*storage.AuditEvent
	for _, e := range all {
		if e.Type == "admin.request" {
			out = append(out, e)
		}
	}
	return out
}

func TestAdminAuthorization(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		a := newAdminEnv(t, b)
		ctx := context.Background()
		const path = "/admin/v1/users"
		if r := a.call("GET", path, nil); r.Status != http.StatusOK {
			t.Fatalf("admin token: %s", r)
		}

		// No token, or one in another scheme: 401 without an error code.
		for _, auth := range []string{"", "Basic " + "YWRtaW46c2VjcmV0"} {
			req, _ := http.NewRequest("GET", a.Issuer+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="idp-admin"` ||
				resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Authorization %q: %d, WWW-Authenticate %q", auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
		a.send("GET", path, "", nil, "").problem(t, http.StatusUnauthorized)

		// A token that is not one of ours, or tampered with: invalid_token.
		tampered := []byte(a.token)
		tampered[len(tampered)/2] ^= 1
		for _, bad := range []string{"not-a-token", string(tampered), a.token + "x"} {
			r := a.send("GET", path, bad, nil, "")
			r.problem(t, http.StatusUnauthorized)
			if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, `Bearer realm="idp-admin", error="invalid_token"`) {
				t.Errorf("bad token %q: WWW-Authenticate %q", bad, h)
			}
		}

		// A valid token without the scope: 403 insufficient_scope.
		readerSecret := a.AddClient(manage.NewClient{ID: "reader", Grants: []string{"client_credentials"}, Scopes: []string{"reports:read"}})
		r := a.send("GET", path, a.clientToken("reader", readerSecret, "reports:read"), nil, "")
		r.problem(t, http.StatusForbidden)
		if h := r.Header.Get("WWW-Authenticate"); h != `Bearer realm="idp-admin", error="insufficient_scope", scope="idp:admin"` {
			t.Errorf("403 WWW-Authenticate %q", h)
		}
		// The admin client's token asked for without the scope: 403 too.
		a.send("GET", path, a.clientToken("admin", a.secret), nil, "").problem(t, http.StatusForbidden)

		// A user's access token, even of a client that holds the scope: 403.
		f := a.rp.start()
		ut, _, _ := a.rp.exchange(f, a.rp.codeFrom(f, login(t, a.Env, a.NewBrowser(), f, "alice", alicePassword)))
		a.send("GET", path, ut.AccessToken, nil, "").problem(t, http.StatusForbidden)
		portal, err := a.Store.ClientByID(ctx, "portal")
		if err != nil {
			t.Fatal(err)
		}
		portal.Scopes = []string{"idp:admin"}
		if err := a.Store.UpdateClient(ctx, portal); err != nil {
			t.Fatal(err)
		}
		a.send("GET", path, ut.AccessToken, nil, "").problem(t, http.StatusForbidden)

		// A revoked token: 401.
		tok := a.clientToken("admin", a.secret, "idp:admin")
		revoke(t, a.Env, "admin", a.secret, tok)
		a.send("GET", path, tok, nil, "").problem(t, http.StatusUnauthorized)

		// The client lost the scope since: 403; got it back: 200.
		admin, err := a.Store.ClientByID(ctx, "admin")
		if err != nil {
			t.Fatal(err)
		}
		admin.Scopes = nil
		if err := a.Store.UpdateClient(ctx, admin); err != nil {
			t.Fatal(err)
		}
		a.call("GET", path, nil).problem(t, http.StatusForbidden)
		admin.Scopes = []string{"idp:admin"}
		if err := a.Store.UpdateClient(ctx, admin); err != nil {
			t.Fatal(err)
		}
		if r := a.call("GET", path, nil); r.Status != http.StatusOK {
			t.Fatalf("scope given back: %s", r)
		}

		// The client is gone: 401.
		tempSecret := a.AddClient(manage.NewClient{ID: "temp-admin", Grants: []string{"client_credentials"}, Scopes: []string{"idp:admin"}})
		temp := a.clientToken("temp-admin", tempSecret, "idp:admin")
		if err := a.Manage.RemoveClient(ctx, manage.Operator, "temp-admin"); err != nil {
			t.Fatal(err)
		}
		a.send("GET", path, temp, nil, "").problem(t, http.StatusUnauthorized)

		// Calls refused with 403 are audited with the caller; 401s are not.
		var forbidden []string
		for _, e := range adminEvents(t, a.Env) {
			if e.Details["status"] == "401" {
				t.Errorf("a 401 was audited: %+v", e)
			}
			if e.Details["status"] == "403" {
				forbidden = append(forbidden, e.Actor)
				if e.Result != "failure" || e.Details["reason"] == "" || e.UserAgent != adminUserAgent {
					t.Errorf("403 event %+v", e)
				}
			}
		}
		slices.Sort(forbidden)
		if strings.Join(forbidden, " ") != "client:admin client:admin client:portal client:portal client:reader" {
			t.Errorf("actors of the 403 events: %v", forbidden)
		}

		// An expired token: 401.
		a.Clock.Advance(a.Config.Tokens.AccessTokenLifetime + time.Second)
		r = a.call("GET", path, nil)
		r.problem(t, http.StatusUnauthorized)
		if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) || !strings.Contains(h, "expired") {
			t.Errorf("expired token: WWW-Authenticate %q", h)
		}
	})
}

// userKeys are the keys of a user's JSON (SPEC.md), and created_at.
var userKeys = []string{"created_at", "disabled", "email", "id", "mfa", "name", "phone", "phone_verified", "username"}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestAdminUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		a := newAdminEnv(t, b)
		ctx := context.Background()

		r := a.call("POST", "/admin/v1/users", map[string]string{"username": "Bob", "email": "bob@example.com", "name": "Bob",
			"password": "a long enough passphrase", "phone": "+1 415 555 0123"})
		bob := a.ok(r, http.StatusCreated)
		if loc := r.Header.Get("Location"); loc != "/admin/v1/users/bob" {
			t.Errorf("Location %q", loc)
		}
		if got := keys(bob); !slices.Equal(got, userKeys) {
			t.Errorf("user keys %v, want %v", got, userKeys)
		}
		stored := a.user("bob")
		if bob["id"] != stored.ID || bob["username"] != "bob" || bob["phone"] != "+14155550123" || bob["phone_verified"] != true ||
			bob["disabled"] != false || stored.PasswordHash == "" || !stored.EmailVerified {
			t.Errorf("created %v (stored %+v)", bob, stored)
		}
		if mfa, _ := bob["mfa"].(map[string]any); mfa["totp"] != false || mfa["security_keys"] != 0.0 || mfa["recovery_codes_left"] != 0.0 {
			t.Errorf("mfa %v", bob["mfa"])
		}
		// The password works.
		f := a.rp.start()
		a.rp.codeFrom(f, login(t, a.Env, a.NewBrowser(), f, "bob", "a long enough passphrase"))

		if p := a.call("POST", "/admin/v1/users", map[string]string{"username": "bob", "email": "b@example.com"}).problem(t, http.StatusConflict); !strings.Contains(p.Detail, "bob") {
			t.Errorf("conflict %+v", p)
		}
		p := a.call("POST", "/admin/v1/users", map[string]string{"username": "Bad Name!", "email": "nope", "password": "short", "phone": "12"}).
			problem(t, http.StatusBadRequest)
		if got := p.fields(); p.Type != "urn:hostportal:idp:problem:invalid-input" || !slices.Equal(got, []string{"username", "email", "phone", "password"}) {
			t.Errorf("invalid user: %+v", p)
		}
		for _, e := range p.Errors {
			if e.Message == "" {
				t.Errorf("no message for %s", e.Field)
			}
		}

		// Lists: paging in username order, search in username, e-mail and name.
		for _, n := range []string{"erin", "carol", "dave"} {
			a.AddUser(n, alicePassword)
		}
		var names []string
		token, pages := "", 0
		for {
			q := url.Values{"page_size": {"2"}}
			if token != "" {
				q.Set("page_token", token)
			}
			page := a.ok(a.call("GET", "/admin/v1/users?"+q.Encode(), nil), http.StatusOK)
			pages++
			for _, u := range page["users"].([]any) {
				u := u.(map[string]any)
				if got := keys(u); !slices.Equal(got, userKeys) {
					t.Errorf("listed user keys %v", got)
				}
				names = append(names, u["username"].(string))
			}
			token = page["next_page_token"].(string)
			if token == "" || pages > 5 {
				break
			}
		}
		if want := []string{"alice", "bob", "carol", "dave", "erin"}; !slices.Equal(names, want) || pages != 3 {
			t.Errorf("paged %v in %d pages, want %v in 3", names, pages, want)
		}
		search := func(q string) []string {
			page := a.ok(a.call("GET", "/admin/v1/users?q="+url.QueryEscape(q), nil), http.StatusOK)
			var out []string
			for _, u := range page["users"].([]any) {
				out = append(out, u.(map[string]any)["username"].(string))
			}
			if page["next_page_token"] != "" {
				t.Errorf("search %q: next_page_token %v", q, page["next_page_token"])
			}
			return out
		}
		for q, want := range map[string]string{"CAR": "carol", "erin@example": "erin", "User dave": "dave", "%": "", "nobody": ""} {
			if got := strings.Join(search(q), " "); got != want {
				t.Errorf("q=%q: %q, want %q", q, got, want)
			}
		}
		if got := a.ok(a.call("GET", "/admin/v1/users", nil), http.StatusOK); len(got["users"].([]any)) != 5 {
			t.Errorf("default page: %v", got)
		}
		for query, field := range map[string]string{"page_size=0": "page_size", "page_size=101": "page_size", "page_size=x": "page_size",
			"page_token=garbage": "page_token", "q=" + strings.Repeat("a", 300): "q"} {
			if p := a.call("GET", "/admin/v1/users?"+query, nil).problem(t, http.StatusBadRequest); !slices.Equal(p.fields(), []string{field}) {
				t.Errorf("%s: %+v", query, p)
			}
		}

		// Read, change, delete.
		if got := a.ok(a.call("GET", "/admin/v1/users/BOB", nil), http.StatusOK); got["id"] != stored.ID {
			t.Errorf("GET BOB: %v", got)
		}
		if p := a.call("GET", "/admin/v1/users/nobody", nil).problem(t, http.StatusNotFound); p.Detail != "no user named nobody" {
			t.Errorf("unknown user: %+v", p)
		}
		// A change of address bob asked for on the account pages and has
		// not confirmed is cancelled: the operator's address wins.
		if err := idp.IssueEmailLink(a.Server, ctx, stored.ID, "mallory@example.com"); err != nil {
			t.Fatal(err)
		}
		if ok, err := idp.EmailChangePending(a.Server, ctx, stored.ID); !ok || err != nil {
			t.Fatalf("the planted change is not pending: %v, %v", ok, err)
		}
		got := a.ok(a.call("PATCH", "/admin/v1/users/bob", map[string]string{"name": "Robert", "email": "robert@example.com"}), http.StatusOK)
		if ok, err := idp.EmailChangePending(a.Server, ctx, stored.ID); ok || err != nil {
			t.Errorf("the change bob asked for survived the operator's PATCH: %v, %v", ok, err)
		}
		if got["name"] != "Robert" || got["email"] != "robert@example.com" || got["phone"] != "+14155550123" {
			t.Errorf("after PATCH: %v", got)
		}
		if u := a.user("bob"); u.Name != "Robert" || u.Email != "robert@example.com" || !u.EmailVerified {
			t.Errorf("stored after PATCH: %+v", u)
		}
		got = a.ok(a.call("PATCH", "/admin/v1/users/bob", map[string]string{"name": "Rob"}), http.StatusOK)
		if got["name"] != "Rob" || got["email"] != "robert@example.com" {
			t.Errorf("after PATCH name: %v", got)
		}
		if p := a.call("PATCH", "/admin/v1/users/bob", map[string]string{"email": "bad"}).problem(t, http.StatusBadRequest); !slices.Equal(p.fields(), []string{"email"}) {
			t.Errorf("bad e-mail: %+v", p)
		}
		if p := a.call("PATCH", "/admin/v1/users/bob", map[string]string{"phone": "+14155550124"}).problem(t, http.StatusBadRequest); !slices.Equal(p.fields(), []string{"phone"}) {
			t.Errorf("phone in PATCH: %+v", p)
		}
		a.call("PATCH", "/admin/v1/users/nobody", map[string]string{"name": "x"}).problem(t, http.StatusNotFound)

		if r := a.call("DELETE", "/admin/v1/users/bob", nil); r.Status != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("DELETE: %s", r)
		}
		a.call("GET", "/admin/v1/users/bob", nil).problem(t, http.StatusNotFound)
		a.call("DELETE", "/admin/v1/users/bob", nil).problem(t, http.StatusNotFound)
		if _, err := a.Store.UserByID(ctx, stored.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("deleted user still stored: %v", err)
		}
		f = a.rp.start()
		if p := login(t, a.Env, a.NewBrowser(), f, "bob", "a long enough passphrase"); p.Status != http.StatusUnauthorized {
			t.Errorf("a deleted user logged in: %s", p)
		}
	})
}

func TestAdminPasswordLink(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		a := newAdminEnv(t, b)
		r := a.call("POST", "/admin/v1/users", map[string]string{"username": "grace", "email": "grace@example.com", "name": "Grace Hopper"})
		got := a.ok(r, http.StatusCreated)
		link, _ := got["password_link"].(string)
		if !strings.HasPrefix(link, a.Issuer+"/password/reset?token=") {
			t.Fatalf("password_link %q in %v", link, got)
		}
		exp, err := time.Parse(time.RFC3339, got["password_link_expires_at"].(string))
		if err != nil || !exp.Equal(a.Clock.Now().Add(72*time.Hour)) {
			t.Errorf("password_link_expires_at %v (%v), want 72 hours from now", got["password_link_expires_at"], err)
		}
		if u := a.user("grace"); u.PasswordHash != "" {
			t.Error("a user created without a password has one")
		}
		// No secret in the audit log.
		all, err := a.Store.ListAudit(context.Background(), storageQuery())
		if err != nil {
			t.Fatal(err)
		}
		token := mustQuery(t, link, "token")
		for _, e := range all {
			if strings.Contains(fmt.Sprint(e), token) {
				t.Errorf("the link's token is in audit event %+v", e)
			}
		}

		// Two days later (past a reset mail's 30 minutes) the link still
		// works, and leads to the new-password page.
		a.Clock.Advance(48 * time.Hour)
		br := a.NewBrowser()
		p := br.Follow(a.Issuer, br.Get(link))
		done := setNewPassword(t, a.Env, br, p, newPassword, newPassword)
		if done.Status != http.StatusOK || !done.Contains("Your password was changed") {
			t.Fatalf("setting the password: %s\n%s", done, done.Body)
		}
		f := a.rp.start()
		a.rp.codeFrom(f, login(t, a.Env, a.NewBrowser(), f, "grace", newPassword))
		if p := br.Get(link); p.Status != http.StatusBadRequest || !p.Contains("This link no longer works") {
			t.Errorf("the link a second time: %s", p)
		}
	})
}

func TestAdminPhoneAndSecondFactors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		a := newAdminEnv(t, b)
		ctx := context.Background()
		alice := a.user("alice")

		got := a.ok(a.call("PUT", "/admin/v1/users/alice/phone", map[string]string{"phone": "+1 (415) 555-0123"}), http.StatusOK)
		if got["phone"] != "+14155550123" || got["phone_verified"] != true {
			t.Errorf("after PUT phone: %v", got)
		}
		if u := a.user("alice"); u.Phone != "+14155550123" || !u.PhoneVerified {
			t.Errorf("stored: %+v", u)
		}
		for _, body := range []any{map[string]string{"phone": "12345"}, map[string]string{"phone": "+1 800 555 0199"}, map[string]any{}, map[string]any{"phone": nil}} {
			p := a.call("PUT", "/admin/v1/users/alice/phone", body).problem(t, http.StatusBadRequest)
			if len(p.Errors) != 1 || p.Errors[0].Field != "phone" || p.Errors[0].Message == "" || p.Type != "urn:hostportal:idp:problem:invalid-input" {
				t.Errorf("phone %v: %+v", body, p)
			}
		}
		a.call("PUT", "/admin/v1/users/nobody/phone", map[string]string{"phone": "+14155550123"}).problem(t, http.StatusNotFound)
		got = a.ok(a.call("DELETE", "/admin/v1/users/alice/phone", nil), http.StatusOK)
		if got["phone"] != "" || got["phone_verified"] != false {
			t.Errorf("after DELETE phone: %v", got)
		}

		// reset-mfa removes what alice has.
		if err := a.Store.SetTOTP(ctx, &storage.TOTP{UserID: alice.ID, Secret: []byte("sealed"), CreatedAt: a.Clock.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := a.Store.ReplaceRecoveryCodes(ctx, alice.ID, []string{"h1", "h2"}, a.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		mfa := a.ok(a.call("GET", "/admin/v1/users/alice", nil), http.StatusOK)["mfa"].(map[string]any)
		if mfa["totp"] != true || mfa["recovery_codes_left"] != 2.0 {
			t.Errorf("mfa before reset: %v", mfa)
		}
		mfa = a.ok(a.call("POST", "/admin/v1/users/alice/reset-mfa", nil), http.StatusOK)["mfa"].(map[string]any)
		if mfa["totp"] != false || mfa["recovery_codes_left"] != 0.0 || mfa["security_keys"] != 0.0 {
			t.Errorf("mfa after reset: %v", mfa)
		}
		if _, err := a.Store.TOTPByUser(ctx, alice.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("TOTP after reset: %v", err)
		}

		// disable: no login, and the session alice had is over; enable: back.
		br := a.NewBrowser()
		f := a.rp.start()
		a.rp.codeFrom(f, login(t, a.Env, br, f, "alice", alicePassword))
		if got := a.ok(a.call("POST", "/admin/v1/users/alice/disable", nil), http.StatusOK); got["disabled"] != true {
			t.Errorf("after disable: %v", got)
		}
		f = a.rp.start()
		if p := login(t, a.Env, a.NewBrowser(), f, "alice", alicePassword); p.Status != http.StatusUnauthorized || !p.Contains("The username or password is incorrect.") {
			t.Errorf("a disabled user's login: %s", p)
		}
		if got := a.ok(a.call("POST", "/admin/v1/users/alice/enable", nil), http.StatusOK); got["disabled"] != false {
			t.Errorf("after enable: %v", got)
		}
		f = a.rp.start()
		if p := br.Follow(a.Issuer, br.Get(f.authURL)); !p.Contains(`name="password"`) {
			t.Errorf("the session from before disable still logs in: %s", p)
		}
		f = a.rp.start()
		a.rp.codeFrom(f, login(t, a.Env, a.NewBrowser(), f, "alice", alicePassword))

		// unlock clears the failure counts of every factor.
		var reg *regulation.Regulator
		for _, f := range regulation.Factors {
			reg = failures(t, a.Env, f, 7)
		}
		a.ok(a.call("POST", "/admin/v1/users/alice/unlock", nil), http.StatusOK)
		for _, f := range regulation.Factors {
			if n, until, err := reg.Failures(ctx, "alice", f); n != 0 || !until.IsZero() || err != nil {
				t.Errorf("%s after unlock: %d failures, delay until %v, %v", f, n, until, err)
			}
		}
		for _, action := range []string{"reset-mfa", "disable", "enable", "unlock"} {
			a.call("POST", "/admin/v1/users/nobody/"+action, nil).problem(t, http.StatusNotFound)
		}

		// Each change is its own event, by the calling client.
		events, err := a.Manage.ListAudit(ctx, manage.AuditQuery{Username: "alice", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, e := range events {
			seen[e.Type] = e.Actor
		}
		for _, typ := range []string{"user.phone_changed", "mfa.reset", "user.disabled", "user.enabled", "user.unlocked", "admin.request"} {
			if seen[typ] != "client:admin" {
				t.Errorf("event %s: actor %q, want client:admin", typ, seen[typ])
			}
		}
	})
}

func TestAdminEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		a := newAdminEnv(t, b)
		a.ok(a.call("PUT", "/admin/v1/users/alice/phone", map[string]string{"phone": "+14155550123"}), http.StatusOK)
		a.Clock.Advance(time.Second)
		a.ok(a.call("GET", "/admin/v1/users/alice", nil), http.StatusOK)

		list := func(query string) []map[string]any {
			got := a.ok(a.call("GET", "/admin/v1/users/alice/events"+query, nil), http.StatusOK)
			var out []map[string]any
			for _, e := range got["events"].([]any) {
				out = append(out, e.(map[string]any))
			}
			return out
		}
		events := list("")
		var types []string
		for _, e := range events {
			types = append(types, e["type"].(string))
		}
		// Newest first: the read, the PUT's admin.request, the change, and alice's creation.
		if want := []string{"admin.request", "admin.request", "user.phone_changed", "user.created"}; !slices.Equal(types, want) {
			t.Fatalf("events %v, want %v", types, want)
		}
		read, change := events[0], events[2]
		if read["actor"] != "client:admin" || read["ip"] != "127.0.0.1" || read["user_agent"] != adminUserAgent || read["result"] != "success" ||
			read["username"] != "alice" {
			t.Errorf("read event %v", read)
		}
		if d := read["details"].(map[string]any); d["operation"] != "getUser" || d["method"] != "GET" || d["path"] != "/admin/v1/users/alice" || d["status"] != "200" {
			t.Errorf("read event details %v", d)
		}
		if change["actor"] != "client:admin" || change["ip"] != "127.0.0.1" || change["user_agent"] != adminUserAgent {
			t.Errorf("change event %v", change)
		}
		if d := events[1]["details"].(map[string]any); d["operation"] != "setUserPhone" {
			t.Errorf("PUT event details %v", d)
		}
		// The list above is a call too: the newest event now.
		if got := list("?limit=1"); len(got) != 1 || got[0]["details"].(map[string]any)["operation"] != "listUserEvents" {
			t.Errorf("limit=1: %v", got)
		}
		// Since the read, a second after the change: the read and the lists.
		since := a.Clock.Now().Format(time.RFC3339)
		got := list("?since=" + url.QueryEscape(since))
		if len(got) != 3 || got[len(got)-1]["id"] != events[0]["id"] {
			t.Errorf("since %s: %v", since, got)
		}
		if got := list("?since=" + url.QueryEscape(a.Clock.Now().Add(time.Hour).Format(time.RFC3339))); len(got) != 0 {
			t.Errorf("since an hour later: %v", got)
		}
		for query, field := range map[string]string{"since=yesterday": "since", "limit=0": "limit", "limit=1001": "limit"} {
			if p := a.call("GET", "/admin/v1/users/alice/events?"+query, nil).problem(t, http.StatusBadRequest); !slices.Equal(p.fields(), []string{field}) {
				t.Errorf("%s: %+v", query, p)
			}
		}
		a.call("GET", "/admin/v1/users/nobody/events", nil).problem(t, http.StatusNotFound)
	})
}

func TestAdminClients(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		a := newAdminEnv(t, b)
		ctx := context.Background()

		r := a.call("POST", "/admin/v1/clients", map[string]any{"client_id": "svc", "name": "Reports", "grants": []string{"client_credentials"},
			"scopes": []string{"reports:read"}})
		svc := a.ok(r, http.StatusCreated)
		oldSecret, _ := svc["client_secret"].(string)
		if r.Header.Get("Location") != "/admin/v1/clients/svc" || len(oldSecret) < config.MinClientSecretLength || svc["source"] != "api" ||
			svc["public"] != false || fmt.Sprint(svc["grants"]) != "[client_credentials]" || fmt.Sprint(svc["redirect_uris"]) != "[]" {
			t.Errorf("created %v (Location %q)", svc, r.Header.Get("Location"))
		}
		a.clientToken("svc", oldSecret, "reports:read")
		a.call("POST", "/admin/v1/clients", map[string]any{"client_id": "svc", "grants": []string{"client_credentials"}}).problem(t, http.StatusConflict)

		spa := a.ok(a.call("POST", "/admin/v1/clients", map[string]any{"client_id": "spa", "public": true, "redirect_uris": []string{"http://localhost:3000/cb"}}), http.StatusCreated)
		if _, ok := spa["client_secret"]; ok || spa["public"] != true {
			t.Errorf("public client %v", spa)
		}
		p := a.call("POST", "/admin/v1/clients", map[string]any{"client_id": "bad id", "redirect_uris": []string{"http://evil.example/cb"}}).problem(t, http.StatusBadRequest)
		if f := p.fields(); !slices.Contains(f, "client_id") || !slices.Contains(f, "redirect_uris") {
			t.Errorf("bad client: %+v", p)
		}
		a.call("POST", "/admin/v1/clients", map[string]any{"client_id": "x", "secret": strings.Repeat("s", 40)}).problem(t, http.StatusBadRequest)

		var ids []string
		for _, c := range a.ok(a.call("GET", "/admin/v1/clients", nil), http.StatusOK)["clients"].([]any) {
			c := c.(map[string]any)
			if _, ok := c["client_secret"]; ok {
				t.Errorf("a listed client has a secret: %v", c)
			}
			ids = append(ids, c["client_id"].(string))
		}
		if want := []string{"admin", "portal", "spa", "svc"}; !slices.Equal(ids, want) {
			t.Errorf("clients %v, want %v", ids, want)
		}
		if got := a.ok(a.call("GET", "/admin/v1/clients/svc", nil), http.StatusOK); got["name"] != "Reports" || got["client_secret"] != nil {
			t.Errorf("GET svc: %v", got)
		}
		a.call("GET", "/admin/v1/clients/nope", nil).problem(t, http.StatusNotFound)

		// What only the CLI or the configuration may do: mint admin clients,
		// skip consent, drop require_mfa, touch admin clients.
		for _, bad := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/admin/v1/clients", map[string]any{"client_id": "evil", "grants": []string{"client_credentials"}, "scopes": []string{"idp:admin"}}},
			{"POST", "/admin/v1/clients", map[string]any{"client_id": "evil2", "redirect_uris": []string{"https://evil.example.com/cb"}, "first_party": true}},
			{"PATCH", "/admin/v1/clients/portal", map[string]any{"first_party": true}},
			{"POST", "/admin/v1/clients/admin/rotate-secret", nil},
			{"DELETE", "/admin/v1/clients/admin", nil},
			{"PATCH", "/admin/v1/clients/admin", map[string]any{"name": "x"}},
		} {
			if p := a.call(bad.method, bad.path, bad.body).problem(t, http.StatusForbidden); p.Type != "urn:hostportal:idp:problem:cli-only" {
				t.Errorf("%s %s: %v", bad.method, bad.path, p)
			}
		}
		got := a.ok(a.call("PATCH", "/admin/v1/clients/portal", map[string]any{"name": "Team Portal", "redirect_uris": []string{"https://portal.example.com/cb"},
			"post_logout_redirect_uris": []string{"https://portal.example.com/"}, "require_mfa": true}), http.StatusOK)
		if got["name"] != "Team Portal" || fmt.Sprint(got["redirect_uris"]) != "[https://portal.example.com/cb]" || got["require_mfa"] != true {
			t.Errorf("after PATCH: %v", got)
		}
		if c, _ := a.Store.ClientByID(ctx, "portal"); !c.RequireMFA || c.Name != "Team Portal" || len(c.PostLogoutRedirectURIs) != 1 {
			t.Errorf("stored after PATCH: %+v", c)
		}
		if p := a.call("PATCH", "/admin/v1/clients/portal", map[string]any{"redirect_uris": []string{}}).problem(t, http.StatusBadRequest); !slices.Equal(p.fields(), []string{"redirect_uris"}) {
			t.Errorf("no redirect URI left: %+v", p)
		}
		if p := a.call("PATCH", "/admin/v1/clients/portal", map[string]any{"scopes": []string{"idp:admin"}}).problem(t, http.StatusBadRequest); !slices.Equal(p.fields(), []string{"scopes"}) {
			t.Errorf("scopes in PATCH: %+v", p)
		}

		// rotate-secret: the old secret stops working, the new one works, and
		// tokens got with the old one end with it.
		oldToken := a.clientToken("svc", oldSecret, "reports:read")
		if got := introspect(t, a.Env, "svc", oldSecret, oldToken); got["active"] != true {
			t.Fatalf("introspection before the rotation: %v", got)
		}
		a.Clock.Advance(time.Second)
		rot := a.ok(a.call("POST", "/admin/v1/clients/svc/rotate-secret", nil), http.StatusOK)
		newSecret, _ := rot["client_secret"].(string)
		if newSecret == "" || newSecret == oldSecret || rot["client_id"] != "svc" {
			t.Fatalf("rotated: %v", rot)
		}
		if _, err := clientCredentials(a.Env, "svc", oldSecret, "reports:read").Token(); err == nil {
			t.Error("the old secret still works")
		}
		a.clientToken("svc", newSecret, "reports:read")
		if got := introspect(t, a.Env, "svc", newSecret, oldToken); got["active"] == true {
			t.Error("a token got with the old secret is still active after the rotation")
		}
		if p := a.call("POST", "/admin/v1/clients/spa/rotate-secret", nil).problem(t, http.StatusConflict); !strings.Contains(p.Detail, "public") {
			t.Errorf("rotating a public client: %+v", p)
		}
		a.call("POST", "/admin/v1/clients/nope/rotate-secret", nil).problem(t, http.StatusNotFound)

		if r := a.call("DELETE", "/admin/v1/clients/svc", nil); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE: %s", r)
		}
		a.call("GET", "/admin/v1/clients/svc", nil).problem(t, http.StatusNotFound)
		a.call("DELETE", "/admin/v1/clients/svc", nil).problem(t, http.StatusNotFound)
		if _, err := clientCredentials(a.Env, "svc", newSecret, "reports:read").Token(); err == nil {
			t.Error("a deleted client still gets tokens")
		}

		// A client of the configuration file reads, but does not change here.
		declaredSecret := strings.Repeat("d", 40)
		if err := a.Manage.SyncConfigClients(ctx, []config.ClientConfig{{ID: "declared", Secret: declaredSecret,
			RedirectURIs: []string{"https://declared.example.com/cb"}}}); err != nil {
			t.Fatal(err)
		}
		if got := a.ok(a.call("GET", "/admin/v1/clients/declared", nil), http.StatusOK); got["source"] != "config" {
			t.Errorf("declared client: %v", got)
		}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"PATCH", "/admin/v1/clients/declared", map[string]any{"name": "x"}},
			{"DELETE", "/admin/v1/clients/declared", nil},
			{"POST", "/admin/v1/clients/declared/rotate-secret", nil},
		} {
			p := a.call(c.method, c.path, c.body).problem(t, http.StatusConflict)
			if p.Type != "urn:hostportal:idp:problem:declared-in-config" || !strings.Contains(p.Detail, "configuration file") {
				t.Errorf("%s %s: %+v", c.method, c.path, p)
			}
		}
		if c, err := a.Store.ClientByID(ctx, "declared"); err != nil || c.Name != "" {
			t.Errorf("declared client after the refusals: %+v, %v", c, err)
		}
	})
}

func TestAdminBadRequests(t *testing.T) {
	a := newAdminEnv(t, idptest.Backends[0])
	const users = "/admin/v1/users"
	for _, c := range []struct {
		name, body, contentType string
		status                  int
		typ                     string
		fields                  []string
	}{
		{"truncated JSON", `{"username":`, "application/json", 400, "urn:hostportal:idp:problem:malformed-json", nil},
		{"not an object", `["alice"]`, "application/json", 400, "urn:hostportal:idp:problem:malformed-json", nil},
		{"null", `null`, "application/json", 400, "urn:hostportal:idp:problem:malformed-json", nil},
		{"empty", ``, "application/json", 400, "urn:hostportal:idp:problem:malformed-json", nil},
		{"two objects", `{"username":"x"} {"username":"y"}`, "application/json", 400, "urn:hostportal:idp:problem:malformed-json", nil},
		{"unknown field", `{"username":"zed","email":"zed@example.com","admin":true}`, "application/json", 400, "urn:hostportal:idp:problem:invalid-input", []string{"admin"}},
		{"wrong type", `{"username":5,"email":"zed@example.com"}`, "application/json", 400, "urn:hostportal:idp:problem:invalid-input", []string{"username"}},
		{"form", `username=zed`, "application/x-www-form-urlencoded", 415, "about:blank", nil},
		{"text", `{"username":"zed"}`, "text/plain", 415, "about:blank", nil},
		{"no content type", `{"username":"zed"}`, "", 415, "about:blank", nil},
		{"latin-1", `{"username":"zed"}`, "application/json; charset=iso-8859-1", 415, "about:blank", nil},
		{"merge patch on POST", `{"username":"zed"}`, "application/merge-patch+json", 415, "about:blank", nil},
		{"over 64 KiB", `{"username":"zed","name":"` + strings.Repeat("n", 65<<10) + `"}`, "application/json", 413, "about:blank", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := a.send("POST", users, a.token, c.body, c.contentType)
			p := r.problem(t, c.status)
			if p.Type != c.typ || !slices.Equal(p.fields(), c.fields) {
				t.Errorf("%+v", p)
			}
			if c.status == 415 && r.Header.Get("Accept-Post") != "application/json" {
				t.Errorf("Accept-Post %q", r.Header.Get("Accept-Post"))
			}
		})
	}
	if _, err := a.Store.UserByUsername(context.Background(), "zed"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused request created a user: %v", err)
	}
	// A body just under the limit is read (and refused for its name).
	name := strings.Repeat("n", 60<<10)
	if p := a.call("POST", users, map[string]string{"username": "zed", "email": "zed@example.com", "name": name}).problem(t, 400); !slices.Equal(p.fields(), []string{"name"}) {
		t.Errorf("a long name: %+v", p)
	}
	// PATCH takes JSON merge patches too, and says what it accepts.
	if r := a.send("PATCH", users+"/alice", a.token, `{"name":"Alice"}`, "application/merge-patch+json"); r.Status != http.StatusOK {
		t.Errorf("merge patch: %s", r)
	}
	if r := a.send("PATCH", users+"/alice", a.token, `name=Alice`, "text/plain"); r.Status != 415 || r.Header.Get("Accept-Patch") != "application/json, application/merge-patch+json" {
		t.Errorf("PATCH as text: %s (Accept-Patch %q)", r, r.Header.Get("Accept-Patch"))
	}

	// Wrong methods: 405 with Allow; unknown paths: 404; both as problems.
	for path, allow := range map[string]string{
		users: "GET, POST", users + "/alice": "GET, PATCH, DELETE", users + "/alice/phone": "PUT, DELETE",
		users + "/alice/disable": "POST", users + "/alice/events": "GET", "/admin/v1/clients/portal/rotate-secret": "POST",
	} {
		for _, method := range []string{"PUT", "OPTIONS", "HEAD", "GET"} {
			if strings.Contains(allow, method) {
				continue
			}
			r := a.send(method, path, a.token, nil, "")
			if r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != allow {
				t.Errorf("%s %s: %d, Allow %q, want 405 with %q", method, path, r.Status, r.Header.Get("Allow"), allow)
			}
			if method != "HEAD" {
				r.problem(t, http.StatusMethodNotAllowed)
			}
		}
	}
	for _, path := range []string{"/admin/v1/nothing", "/admin/v1/users/alice/", "/admin/v1/users/alice/password", "/admin/v2/users", "/admin/"} {
		a.call("GET", path, nil).problem(t, http.StatusNotFound)
		a.send("GET", path, "", nil, "").problem(t, http.StatusUnauthorized)
	}
}

// openAPI is api/openapi.yaml, as plain maps, lists and values.
type openAPI struct {
	root map[string]any
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	// Through JSON, so that values look as a decoded response does
	// (numbers as float64).
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	var root map[string]any
	if err := json.Unmarshal(js, &root); err != nil {
		t.Fatal(err)
	}
	return &openAPI{root: root}
}

// pointer follows a local JSON pointer ("#/components/schemas/User").
func (d *openAPI) pointer(ref string) map[string]any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	var cur any = d.root
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(part)]
	}
	m, _ := cur.(map[string]any)
	return m
}

// resolve follows $ref until it reaches an object without one.
func (d *openAPI) resolve(node any) map[string]any {
	m, _ := node.(map[string]any)
	for range 10 {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		m = d.pointer(ref)
	}
	return nil
}

// refs returns every $ref of the document that leads nowhere.
func (d *openAPI) badRefs() []string {
	var bad []string
	var walk func(any)
	walk = func(n any) {
		switch v := n.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && d.pointer(ref) == nil {
				bad = append(bad, ref)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(d.root)
	return bad
}

// validate checks v against schema, with the parts of JSON Schema the
// document uses: $ref, allOf, type, enum, format date-time, properties,
// required, additionalProperties, items, maxLength. Unlike JSON Schema, an
// object with properties has only documented keys (what the document
// promises callers), unless additionalProperties says otherwise.
func (d *openAPI) validate(at string, schema any, v any) []string {
	s := d.resolve(schema)
	if s == nil {
		return []string{at + ": schema not found"}
	}
	if all, ok := s["allOf"].([]any); ok {
		merged := map[string]any{"type": "object"}
		props, required := map[string]any{}, []any{}
		for _, part := range all {
			p := d.resolve(part)
			if pp, ok := p["properties"].(map[string]any); ok {
				for k, ps := range pp {
					props[k] = ps
				}
			}
			if r, ok := p["required"].([]any); ok {
				required = append(required, r...)
			}
		}
		merged["properties"], merged["required"] = props, required
		return d.validate(at, merged, v)
	}
	if typ, ok := s["type"]; ok && !jsonTypeIs(typ, v) {
		return []string{fmt.Sprintf("%s: %v is not of type %v", at, v, typ)}
	}
	var errs []string
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
	}
	if str, ok := v.(string); ok {
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339, str); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not a date-time", at, str))
			}
		}
		if max, ok := s["maxLength"].(float64); ok && len([]rune(str)) > int(max) {
			errs = append(errs, fmt.Sprintf("%s: longer than %v", at, max))
		}
	}
	switch val := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, k := range req {
				if _, ok := val[k.(string)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: required %s is missing", at, k))
				}
			}
		}
		for _, k := range keys(val) {
			if ps, ok := props[k]; ok {
				errs = append(errs, d.validate(at+"."+k, ps, val[k])...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case map[string]any:
				errs = append(errs, d.validate(at+"."+k, ap, val[k])...)
			case bool:
				if !ap {
					errs = append(errs, fmt.Sprintf("%s: %s is not documented", at, k))
				}
			default:
				if props != nil {
					errs = append(errs, fmt.Sprintf("%s: %s is not documented", at, k))
				}
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, it := range val {
				errs = append(errs, d.validate(fmt.Sprintf("%s[%d]", at, i), items, it)...)
			}
		}
	}
	return errs
}

func jsonTypeIs(typ, v any) bool {
	types, ok := typ.([]any)
	if !ok {
		types = []any{typ}
	}
	for _, t := range types {
		switch t {
		case "object":
			if _, ok := v.(map[string]any); ok {
				return true
			}
		case "array":
			if _, ok := v.([]any); ok {
				return true
			}
		case "string":
			if _, ok := v.(string); ok {
				return true
			}
		case "boolean":
			if _, ok := v.(bool); ok {
				return true
			}
		case "number":
			if _, ok := v.(float64); ok {
				return true
			}
		case "integer":
			if f, ok := v.(float64); ok && f == math.Trunc(f) {
				return true
			}
		case "null":
			if v == nil {
				return true
			}
		}
	}
	return false
}

// docOperation is one documented path and method.
type docOperation struct {
	path, method string
	op           map[string]any
}

var docMethods = []string{"get", "put", "post", "patch", "delete", "head", "options", "trace"}

func (d *openAPI) operations() []docOperation {
	paths, _ := d.root["paths"].(map[string]any)
	var out []docOperation
	for _, path := range keys(paths) {
		item := d.resolve(paths[path])
		for _, m := range docMethods {
			if op, ok := item[m].(map[string]any); ok {
				out = append(out, docOperation{path: path, method: strings.ToUpper(m), op: op})
			}
		}
	}
	return out
}

// parameters are the operation's and its path's, resolved.
func (d *openAPI) parameters(o docOperation) []map[string]any {
	item := d.resolve(d.root["paths"].(map[string]any)[o.path])
	var out []map[string]any
	for _, l := range []any{item["parameters"], o.op["parameters"]} {
		ps, _ := l.([]any)
		for _, p := range ps {
			out = append(out, d.resolve(p))
		}
	}
	return out
}

// checkResponse checks that r is a documented answer of o: its status
// listed (or default, for 405 and 5xx), its media type and body those of
// that response.
func (d *openAPI) checkResponse(o docOperation, r *apiResponse) []string {
	where := o.method + " " + o.path
	responses, _ := o.op["responses"].(map[string]any)
	resp, ok := responses[fmt.Sprint(r.Status)]
	if !ok && (r.Status == http.StatusMethodNotAllowed || r.Status >= 500) {
		resp, ok = responses["default"]
	}
	if !ok {
		return []string{fmt.Sprintf("%s: status %d is not documented: %s", where, r.Status, r)}
	}
	content, _ := d.resolve(resp)["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.Body) != 0 {
			return []string{fmt.Sprintf("%s: %d is documented without a body, but has %s", where, r.Status, r.Body)}
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	media, ok := content[mt].(map[string]any)
	if err != nil || !ok {
		return []string{fmt.Sprintf("%s: %d answered %q, documented %v", where, r.Status, r.Header.Get("Content-Type"), keys(content))}
	}
	var body any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return []string{fmt.Sprintf("%s: %d body is not JSON: %s", where, r.Status, r.Body)}
	}
	return d.validate(fmt.Sprintf("%s %d", where, r.Status), media["schema"], body)
}

func TestAdminOpenAPI(t *testing.T) {
	doc := loadOpenAPI(t)
	a := newAdminEnv(t, idptest.Backends[0])

	if v, _ := doc.root["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi %q, want 3.x", v)
	}
	if bad := doc.badRefs(); len(bad) > 0 {
		t.Errorf("$refs that lead nowhere: %v", bad)
	}
	scheme := doc.pointer("#/components/securitySchemes/bearerAuth")
	if scheme["type"] != "http" || scheme["scheme"] != "bearer" {
		t.Errorf("bearerAuth security scheme %v", scheme)
	}
	if sec := fmt.Sprint(doc.root["security"]); sec != "[map[bearerAuth:[idp:admin]]]" {
		t.Errorf("security %s", sec)
	}

	// The documented operations are exactly those the server mounts, with
	// the same operation ids (which the audit events name).
	var documented, mounted []string
	ids := map[string]bool{}
	for _, o := range doc.operations() {
		id, _ := o.op["operationId"].(string)
		if ids[id] {
			t.Errorf("operationId %q twice", id)
		}
		ids[id] = true
		documented = append(documented, o.method+" "+o.path+" "+id)
	}
	for _, o := range idp.AdminOperations(a.Server) {
		mounted = append(mounted, o.Method+" "+o.Pattern+" "+o.OperationID)
	}
	slices.Sort(documented)
	slices.Sort(mounted)
	if !slices.Equal(documented, mounted) {
		t.Errorf("documented operations:\n  %s\nmounted:\n  %s", strings.Join(documented, "\n  "), strings.Join(mounted, "\n  "))
	}

	// The schemas of the views have exactly the views' keys.
	for name, v := range map[string]any{"User": manage.UserView{}, "MFA": manage.MFAView{}, "Client": manage.ClientView{}, "AuditEvent": manage.AuditEventView{}} {
		var fields []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			fields = append(fields, tag)
		}
		slices.Sort(fields)
		props, _ := doc.pointer("#/components/schemas/" + name)["properties"].(map[string]any)
		if got := keys(props); !slices.Equal(got, fields) {
			t.Errorf("schema %s has %v, the view %v", name, got, fields)
		}
	}

	// Every documented operation, through the real router: with the
	// admin token and the documented example body it answers neither 404
	// nor 405 and as documented; without a token, a documented 401.
	a.AddUser("probe", alicePassword)
	a.AddClient(manage.NewClient{ID: "probe-client", RedirectURIs: []string{"https://probe.example.com/cb"}})
	ops := doc.operations()
	// Deletions last, the longest path first (the phone before the user).
	slices.SortStableFunc(ops, func(x, y docOperation) int {
		dx, dy := x.method == "DELETE", y.method == "DELETE"
		switch {
		case dx != dy && dx:
			return 1
		case dx != dy:
			return -1
		case dx:
			return len(y.path) - len(x.path)
		}
		return 0
	})
	for _, o := range ops {
		path := strings.NewReplacer("{username}", "probe", "{client_id}", "probe-client").Replace(o.path)
		for _, p := range doc.parameters(o) {
			if p["in"] == "path" && !strings.Contains(o.path, "{"+p["name"].(string)+"}") {
				t.Errorf("%s %s: path parameter %v is not in the path", o.method, o.path, p["name"])
			}
		}
		if strings.Contains(path, "{") {
			t.Errorf("%s %s: a path parameter the probe does not know", o.method, o.path)
			continue
		}
		var body any
		if rb := doc.resolve(o.op["requestBody"]); rb != nil {
			media, _ := rb["content"].(map[string]any)["application/json"].(map[string]any)
			example, ok := media["example"]
			if !ok {
				t.Errorf("%s %s: no application/json example", o.method, o.path)
				continue
			}
			for _, e := range doc.validate(o.method+" "+o.path+" example", media["schema"], example) {
				t.Error(e)
			}
			body = example
		}
		if r := a.send(o.method, path, "", body, "application/json"); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %s", o.method, path, r)
		} else {
			for _, e := range doc.checkResponse(o, r) {
				t.Error(e)
			}
		}
		r := a.call(o.method, path, body)
		if r.Status == http.StatusNotFound || r.Status == http.StatusMethodNotAllowed || r.Status >= 300 {
			t.Errorf("%s %s with the example: %s", o.method, path, r)
		}
		for _, e := range doc.checkResponse(o, r) {
			t.Error(e)
		}
	}

	// The problems the API answers match the Problem schema too.
	for _, c := range []struct {
		method, path, documented string
		body                     any
		status                   int
	}{
		{"GET", "/admin/v1/users/nobody", "/admin/v1/users/{username}", nil, 404},
		{"POST", "/admin/v1/users", "/admin/v1/users", map[string]string{"username": "x y", "email": "z"}, 400},
		{"POST", "/admin/v1/users", "/admin/v1/users", map[string]string{"username": "alice", "email": "a@example.com"}, 409},
		{"GET", "/admin/v1/users?page_size=0", "/admin/v1/users", nil, 400},
		{"POST", "/admin/v1/clients", "/admin/v1/clients", "{", 400},
		{"PUT", "/admin/v1/users/alice/phone", "/admin/v1/users/{username}/phone", map[string]string{"phone": "12"}, 400},
	} {
		r := a.call(c.method, c.path, c.body)
		if r.Status != c.status {
			t.Errorf("%s %s: %s, want %d", c.method, c.path, r, c.status)
		}
		i := slices.IndexFunc(ops, func(o docOperation) bool { return o.method == c.method && o.path == c.documented })
		if i < 0 {
			t.Fatalf("%s %s is not documented", c.method, c.documented)
		}
		for _, e := range doc.checkResponse(ops[i], r) {
			t.Error(e)
		}
	}
}
