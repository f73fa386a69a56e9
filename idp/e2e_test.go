package idp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
)

const (
	portalRedirect = "http://127.0.0.1:9/callback"
	portalLogout   = "http://127.0.0.1:9/"
	alicePassword  = "correct horse battery"
)

// rp is an independent relying party: go-oidc and x/oauth2, as a portal
// would use them.
type rp struct {
	t        *testing.T
	env      *idptest.Env
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	ctx      context.Context
}

func newRP(t *testing.T, env *idptest.Env, clientID, clientSecret string, scopes ...string) *rp {
	t.Helper()
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, env.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	}
	return &rp{
		t: t, env: env, provider: p, ctx: ctx,
		conf: oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: p.Endpoint(),
			RedirectURL: portalRedirect, Scopes: scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: clientID}),
	}
}

// flow is one authorization request in progress.
type flow struct {
	state, nonce, verifier string
	authURL                string
}

func (r *rp) start(extra ...oauth2.AuthCodeOption) *flow {
	f := &flow{state: "st-" + randomString(), nonce: "n-" + randomString(), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)}, extra...)
	f.authURL = r.conf.AuthCodeURL(f.state, opts...)
	return f
}

// codeFrom checks that p is the redirect back to the portal and returns the code.
func (r *rp) codeFrom(f *flow, p *idptest.Page) string {
	r.t.Helper()
	if !strings.HasPrefix(p.Location, portalRedirect) {
		r.t.Fatalf("expected a redirect to the portal, got %s\n%s", p, p.Body)
	}
	u, _ := url.Parse(p.Location)
	if e := u.Query().Get("error"); e != "" {
		r.t.Fatalf("portal got error %s: %s", e, u.Query().Get("error_description"))
	}
	if got := u.Query().Get("state"); got != f.state {
		r.t.Fatalf("state %q, want %q", got, f.state)
	}
	return u.Query().Get("code")
}

type claims struct {
	Sub               string   `json:"sub"`
	AuthTime          int64    `json:"auth_time"`
	AMR               []string `json:"amr"`
	ACR               string   `json:"acr"`
	Nonce             string   `json:"nonce"`
	Email             string   `json:"email"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
}

func (r *rp) exchange(f *flow, code string) (*oauth2.Token, *oidc.IDToken, claims) {
	r.t.Helper()
	tok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		r.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		r.t.Fatalf("verifying the ID token: %v", err)
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		r.t.Fatal(err)
	}
	if c.Nonce != f.nonce {
		r.t.Fatalf("nonce %q, want %q", c.Nonce, f.nonce)
	}
	return tok, idt, c
}

// login runs the hosted pages as a user: password, then consent if asked.
func login(t *testing.T, env *idptest.Env, b *idptest.Browser, f *flow, username, pw string) *idptest.Page {
	t.Helper()
	p := b.Follow(env.Issuer, b.Get(f.authURL))
	if p.Status == http.StatusOK && p.Contains(`name="password"`) {
		form := p.Form()
		form.Set("username", username)
		form.Set("password", pw)
		p = b.Follow(env.Issuer, b.Post(env.Issuer+"/login/password", form))
	}
	if p.Status == http.StatusOK && p.Contains(`value="allow"`) {
		form := p.Form()
		form.Set("decision", "allow")
		p = b.Follow(env.Issuer, b.Post(env.Issuer+"/login/consent", form))
	}
	return p
}

func randomString() string { return strings.ReplaceAll(oauth2.GenerateVerifier()[:16], "-", "x") }

// forEachBackend runs fn on SQLite + in-process and PostgreSQL + Redis.
func forEachBackend(t *testing.T, fn func(t *testing.T, b idptest.Backend)) {
	for _, b := range idptest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// setup starts a provider with alice and a confidential, third-party portal.
func setup(t *testing.T, b idptest.Backend, nc ...manage.NewClient) (*idptest.Env, *rp) {
	env := idptest.New(t, b, idptest.Options{})
	env.AddUser("alice", alicePassword)
	c := manage.NewClient{ID: "portal", Name: "Client Portal", RedirectURIs: []string{portalRedirect},
		PostLogoutRedirectURIs: []string{portalLogout}}
	if len(nc) > 0 {
		c = nc[0]
	}
	secret := env.AddClient(c)
	return env, newRP(t, env, c.ID, secret)
}

func TestCodeFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		alice, err := env.Store.UserByUsername(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		br := env.NewBrowser()
		f := r.start()

		// The login page has the stable labels.
		p := br.Follow(env.Issuer, br.Get(f.authURL))
		for _, want := range []string{">Username</label>", ">Password</label>", "Log In"} {
			if !p.Contains(want) {
				t.Fatalf("login page lacks %q:\n%s", want, p.Body)
			}
		}
		form := p.Form()
		form.Set("username", "Alice") // usernames are case-insensitive
		form.Set("password", alicePassword)
		p = br.Follow(env.Issuer, br.Post(env.Issuer+"/login/password", form))
		for _, want := range []string{"Allow", "Deny", "Client Portal"} {
			if !p.Contains(want) {
				t.Fatalf("consent page lacks %q:\n%s", want, p.Body)
			}
		}
		form = p.Form()
		form.Set("decision", "allow")
		p = br.Follow(env.Issuer, br.Post(env.Issuer+"/login/consent", form))
		tok, idt, c := r.exchange(f, r.codeFrom(f, p))

		if c.Sub != alice.ID || c.Sub == "alice" {
			t.Errorf("sub = %q, want the opaque user id %q", c.Sub, alice.ID)
		}
		if !slices.Equal(c.AMR, []string{"pwd"}) || c.ACR != "pwd" {
			t.Errorf("amr %v acr %q, want [pwd] pwd", c.AMR, c.ACR)
		}
		if c.AuthTime == 0 || c.Email != "alice@example.com" || c.PreferredUsername != "alice" {
			t.Errorf("claims %+v", c)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}

		// userinfo with the access token.
		ui, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		if ui.Subject != alice.ID || ui.Email != "alice@example.com" {
			t.Errorf("userinfo %+v", ui)
		}

		// Refresh: rotation, and acr/amr kept.
		tok2, c2 := refresh(t, r, tok.RefreshToken)
		if tok2.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh token was not rotated")
		}
		if c2.ACR != "pwd" || !slices.Equal(c2.AMR, []string{"pwd"}) || c2.Sub != alice.ID || c2.AuthTime != c.AuthTime {
			t.Errorf("after refresh: %+v (before %+v)", c2, c)
		}
		_ = idt

		// Reusing the rotated token fails and revokes the whole family.
		if _, err := refreshErr(r, tok.RefreshToken); err == nil {
			t.Fatal("a rotated refresh token was accepted again")
		}
		if _, err := refreshErr(r, tok2.RefreshToken); err == nil {
			t.Fatal("after reuse, the newest refresh token of the family still works")
		}

		// A second login in the same browser: no password, no consent.
		f2 := r.start()
		p = br.Follow(env.Issuer, br.Get(f2.authURL))
		_, _, c3 := r.exchange(f2, r.codeFrom(f2, p))
		if c3.Sub != alice.ID {
			t.Errorf("SSO login sub %q", c3.Sub)
		}
	})
}

func refreshErr(r *rp, refreshToken string) (*oauth2.Token, error) {
	ts := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)})
	return ts.Token()
}

func refresh(t *testing.T, r *rp, refreshToken string) (*oauth2.Token, claims) {
	t.Helper()
	tok, err := refreshErr(r, refreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		t.Fatalf("verifying the refreshed ID token: %v", err)
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return tok, c
}

func TestBadAuthorizeRequests(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	env.AddClient(manage.NewClient{ID: "spa", Public: true, RedirectURIs: []string{portalRedirect}})
	br := env.NewBrowser()

	t.Run("unknown client gets a page, never a redirect", func(t *testing.T) {
		u := env.Issuer + "/authorize?" + url.Values{"client_id": {"nope"}, "redirect_uri": {portalRedirect},
			"response_type": {"code"}, "scope": {"openid"}}.Encode()
		p := br.Get(u)
		if p.Status != http.StatusBadRequest || p.Location != "" || !p.Contains("Unknown application") {
			t.Fatalf("got %s\n%s", p, p.Body)
		}
	})
	t.Run("unregistered redirect URI gets a page, never a redirect", func(t *testing.T) {
		for _, ru := range []string{"http://evil.example/cb", portalRedirect + "/", portalRedirect + "?x=1", "HTTP://127.0.0.1:9/callback"} {
			u := env.Issuer + "/authorize?" + url.Values{"client_id": {"portal"}, "redirect_uri": {ru},
				"response_type": {"code"}, "scope": {"openid"}}.Encode()
			p := br.Get(u)
			if p.Status != http.StatusBadRequest || p.Location != "" {
				t.Fatalf("redirect_uri %q: got %s", ru, p)
			}
		}
	})
	t.Run("public client without PKCE", func(t *testing.T) {
		u := env.Issuer + "/authorize?" + url.Values{"client_id": {"spa"}, "redirect_uri": {portalRedirect},
			"response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}}.Encode()
		p := br.Get(u)
		if !strings.HasPrefix(p.Location, portalRedirect) || !strings.Contains(p.Location, "error=invalid_request") || !strings.Contains(p.Location, "state=s1") {
			t.Fatalf("got %s", p)
		}
	})
	t.Run("plain PKCE method", func(t *testing.T) {
		u := env.Issuer + "/authorize?" + url.Values{"client_id": {"portal"}, "redirect_uri": {portalRedirect},
			"response_type": {"code"}, "scope": {"openid"}, "code_challenge": {"abc"}, "code_challenge_method": {"plain"}}.Encode()
		p := br.Get(u)
		if !strings.Contains(p.Location, "error=invalid_request") {
			t.Fatalf("got %s", p)
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		f := r.start()
		code := r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword))
		if _, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Fatal("a wrong code_verifier was accepted")
		}
	})
	t.Run("missing PKCE verifier", func(t *testing.T) {
		f := r.start()
		code := r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword))
		if _, err := r.conf.Exchange(r.ctx, code); err == nil {
			t.Fatal("a code with a challenge was redeemed without a verifier")
		}
	})
}

func TestCodeIsOneTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		f := r.start()
		code := r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword))
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(f.verifier)); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("%d of %d concurrent redemptions of one code succeeded, want exactly 1", ok, n)
		}
		if _, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(f.verifier)); err == nil {
			t.Fatal("a used code was accepted again")
		}
	})
}

func TestCallbackCannotBeReplayed(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	f := r.start()
	p := br.Get(f.authURL)
	loginURL := p.Location
	p = login(t, env, br, f, "alice", alicePassword)
	r.codeFrom(f, p)
	id := mustQuery(t, loginURL, "id")
	again := br.Get(env.Issuer + "/authorize/callback?id=" + url.QueryEscape(id))
	if strings.Contains(again.Location, "code=") {
		t.Fatalf("the callback gave a second code: %s", again)
	}
}

func mustQuery(t *testing.T, raw, key string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get(key)
}

func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		br := env.NewBrowser()
		f := r.start()
		p := br.Follow(env.Issuer, br.Get(f.authURL))
		form := p.Form()
		form.Set("username", "alice")
		form.Set("password", "wrong password!")
		wrong := br.Post(env.Issuer+"/login/password", form)
		form.Set("username", "mallory")
		unknown := br.Post(env.Issuer+"/login/password", form)
		if wrong.Status != http.StatusUnauthorized || unknown.Status != wrong.Status {
			t.Fatalf("statuses %d and %d", wrong.Status, unknown.Status)
		}
		if !wrong.Contains("The username or password is incorrect.") || !unknown.Contains("The username or password is incorrect.") {
			t.Fatalf("messages differ:\n%s\n---\n%s", wrong.Body, unknown.Body)
		}
		// Disabled users fail the same way.
		if _, err := env.Manage.Disable(context.Background(), manage.Operator, "alice"); err != nil {
			t.Fatal(err)
		}
		form.Set("username", "alice")
		form.Set("password", alicePassword)
		disabled := br.Post(env.Issuer+"/login/password", form)
		if disabled.Status != http.StatusUnauthorized {
			t.Fatalf("disabled user: %s", disabled)
		}
		// The fifth failure ends the login.
		for range 2 {
			br.Post(env.Issuer+"/login/password", form)
		}
		p = br.Post(env.Issuer+"/login/password", form)
		if p.Status != http.StatusBadRequest && p.Status != http.StatusTooManyRequests {
			t.Fatalf("after 5 failures: %s\n%s", p, p.Body)
		}
		events, err := env.Store.ListAudit(context.Background(), storageQuery())
		if err != nil {
			t.Fatal(err)
		}
		failed := 0
		for _, e := range events {
			if e.Type == "login.failed" {
				failed++
			}
		}
		if failed < 5 {
			t.Fatalf("%d login.failed audit events, want 5", failed)
		}
	})
}

func TestCSRFAndBrowserBinding(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	f := r.start()
	p := br.Follow(env.Issuer, br.Get(f.authURL))
	form := p.Form()
	form.Set("username", "alice")
	form.Set("password", alicePassword)

	noToken := url.Values{"id": {form.Get("id")}, "username": {"alice"}, "password": {alicePassword}}
	if p := br.Post(env.Issuer+"/login/password", noToken); p.Status != http.StatusForbidden {
		t.Fatalf("form without CSRF token: %s", p)
	}
	// Another browser with the same form (id and token) is refused.
	other := env.NewBrowser()
	if p := other.Post(env.Issuer+"/login/password", form); p.Status != http.StatusForbidden {
		t.Fatalf("form posted from another browser: %s", p)
	}
	// A tampered browser cookie is worth nothing.
	u, _ := url.Parse(env.Issuer)
	for _, c := range br.Client.Jar.Cookies(u) {
		if c.Name == "idp_browser" {
			c.Value = "x" + c.Value
			br.Client.Jar.SetCookies(u, []*http.Cookie{c})
		}
	}
	if p := br.Post(env.Issuer+"/login/password", form); p.Status != http.StatusForbidden {
		t.Fatalf("tampered cookie: %s", p)
	}
	// Another browser opening the login link is told to start again.
	if p := other.Get(env.Issuer + "/login?id=" + url.QueryEscape(form.Get("id"))); p.Status != http.StatusBadRequest {
		t.Fatalf("login link in another browser: %s", p)
	}
}

func TestStepsCannotBeSkipped(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	f := r.start()
	p := br.Follow(env.Issuer, br.Get(f.authURL))
	form := p.Form()
	// Consent before the password: sent back to the password step.
	form.Set("decision", "allow")
	p = br.Post(env.Issuer+"/login/consent", form)
	if p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "/login?id=") {
		t.Fatalf("consent before password: %s", p)
	}
	// The callback before the login is done gives no code.
	p = br.Follow(env.Issuer, br.Get(env.Issuer+"/authorize/callback?id="+url.QueryEscape(form.Get("id"))))
	if strings.Contains(p.Location, "code=") {
		t.Fatalf("callback before login gave a code: %s", p)
	}
}

func TestExpiredLogin(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	f := r.start()
	p := br.Follow(env.Issuer, br.Get(f.authURL))
	form := p.Form()
	env.Clock.Advance(11 * time.Minute)
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	p = br.Post(env.Issuer+"/login/password", form)
	if p.Status != http.StatusBadRequest || !p.Contains("took too long") {
		t.Fatalf("expired login: %s\n%s", p, p.Body)
	}
	// The login link itself also says so and leads back to the portal.
	p = br.Get(env.Issuer + "/login?" + url.Values{"id": {form.Get("id")}, "client_id": {"portal"}}.Encode())
	if !p.Contains("took too long") || !p.Contains(`href="http://127.0.0.1:9/"`) {
		t.Fatalf("expired login link: %s\n%s", p, p.Body)
	}
}

func TestPrompts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		br := env.NewBrowser()

		// prompt=none without a session: login_required, back at the portal.
		f := r.start(oauth2.SetAuthURLParam("prompt", "none"))
		p := br.Follow(env.Issuer, br.Get(f.authURL))
		if !strings.HasPrefix(p.Location, portalRedirect) || !strings.Contains(p.Location, "error=login_required") {
			t.Fatalf("prompt=none without session: %s", p)
		}

		f = r.start()
		_, _, first := r.exchange(f, r.codeFrom(f, login(t, env, br, f, "alice", alicePassword)))

		// prompt=none with a session: a code without any page.
		f = r.start(oauth2.SetAuthURLParam("prompt", "none"))
		r.exchange(f, r.codeFrom(f, br.Follow(env.Issuer, br.Get(f.authURL))))

		// prompt=login asks for the password again, and auth_time moves.
		env.Clock.Advance(5 * time.Second)
		f = r.start(oauth2.SetAuthURLParam("prompt", "login"))
		p = br.Follow(env.Issuer, br.Get(f.authURL))
		if !p.Contains(`name="password"`) {
			t.Fatalf("prompt=login did not ask for the password: %s", p)
		}
		_, _, again := r.exchange(f, r.codeFrom(f, login(t, env, br, f, "alice", alicePassword)))
		if again.AuthTime <= first.AuthTime {
			t.Errorf("auth_time %d not after %d", again.AuthTime, first.AuthTime)
		}

		// max_age: a session older than it asks for the password.
		env.Clock.Advance(2 * time.Minute)
		f = r.start(oauth2.SetAuthURLParam("max_age", "60"))
		if p := br.Follow(env.Issuer, br.Get(f.authURL)); !p.Contains(`name="password"`) {
			t.Fatalf("max_age=60 with a 2-minute-old session did not ask for the password: %s", p)
		}
		f = r.start(oauth2.SetAuthURLParam("max_age", "3600"))
		r.codeFrom(f, br.Follow(env.Issuer, br.Get(f.authURL)))
	})
}

func TestConsent(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	f := r.start()
	p := br.Follow(env.Issuer, br.Get(f.authURL))
	form := p.Form()
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	p = br.Follow(env.Issuer, br.Post(env.Issuer+"/login/password", form))
	form = p.Form()
	form.Set("decision", "deny")
	p = br.Post(env.Issuer+"/login/consent", form)
	if !strings.HasPrefix(p.Location, portalRedirect) || !strings.Contains(p.Location, "error=access_denied") || !strings.Contains(p.Location, "state="+f.state) {
		t.Fatalf("deny: %s", p)
	}

	// A first-party client never shows the consent page.
	secret := env.AddClient(manage.NewClient{ID: "first", FirstParty: true, RedirectURIs: []string{portalRedirect}})
	r1 := newRP(t, env, "first", secret)
	f = r1.start()
	p = login(t, env, env.NewBrowser(), f, "alice", alicePassword)
	r1.exchange(f, r1.codeFrom(f, p))
}

func TestLogout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		br := env.NewBrowser()
		f := r.start()
		tok, _, _ := r.exchange(f, r.codeFrom(f, login(t, env, br, f, "alice", alicePassword)))
		idToken, _ := tok.Extra("id_token").(string)
		var disc struct {
			EndSession string `json:"end_session_endpoint"`
		}
		if err := r.provider.Claims(&disc); err != nil || disc.EndSession == "" {
			t.Fatalf("no end_session_endpoint: %v", err)
		}

		// An unregistered post-logout URI is never followed, even with a hint.
		p := br.Get(disc.EndSession + "?" + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://evil.example/"}}.Encode())
		if p.Location != "" || !p.Contains("Log Out") {
			t.Fatalf("unregistered post-logout URI: %s", p)
		}
		// Without a hint the user is asked first.
		p = br.Get(disc.EndSession + "?" + url.Values{"client_id": {"portal"}, "post_logout_redirect_uri": {portalLogout}, "state": {"s9"}}.Encode())
		if p.Status != http.StatusOK || !p.Contains("Log Out") {
			t.Fatalf("logout without hint: %s", p)
		}
		confirm := br.Post(env.Issuer+"/logout", p.Form())
		if !strings.HasPrefix(confirm.Location, portalLogout) || !strings.Contains(confirm.Location, "state=s9") {
			t.Fatalf("confirmed logout: %s", confirm)
		}
		// The session is gone: the next login asks for the password.
		f = r.start()
		if p := br.Follow(env.Issuer, br.Get(f.authURL)); !p.Contains(`name="password"`) {
			t.Fatalf("still logged in after logout: %s", p)
		}

		// With a valid hint and a registered URI: at once.
		f = r.start()
		tok, _, _ = r.exchange(f, r.codeFrom(f, login(t, env, br, f, "alice", alicePassword)))
		idToken, _ = tok.Extra("id_token").(string)
		p = br.Get(disc.EndSession + "?" + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {portalLogout}, "state": {"s10"}}.Encode())
		if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, portalLogout) || !strings.Contains(p.Location, "state=s10") {
			t.Fatalf("logout with hint: %s\n%s", p, p.Body)
		}
		f = r.start()
		if p := br.Follow(env.Issuer, br.Get(f.authURL)); !p.Contains(`name="password"`) {
			t.Fatalf("still logged in after logout with hint: %s", p)
		}
		// The logout form without its CSRF token: 403.
		if p := br.Post(env.Issuer+"/logout", url.Values{}); p.Status != http.StatusForbidden {
			t.Fatalf("logout without CSRF: %s", p)
		}
	})
}

func TestClientCredentialsIntrospectionRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		svcSecret := env.AddClient(manage.NewClient{ID: "backend", Grants: []string{"client_credentials"}, Scopes: []string{"idp:admin"}})
		ctx := context.Background()

		cc := clientCredentials(env, "backend", svcSecret, "idp:admin")
		tok, err := cc.Token()
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		in := introspect(t, env, "backend", svcSecret, tok.AccessToken)
		if in["active"] != true || in["client_id"] != "backend" || in["scope"] != "idp:admin" {
			t.Fatalf("introspection %v", in)
		}
		if _, err := clientCredentials(env, "backend", "wrong-secret-wrong-secret-wrong-secret", "idp:admin").Token(); err == nil {
			t.Fatal("wrong client secret accepted")
		}
		if _, err := clientCredentials(env, "backend", svcSecret, "idp:other").Token(); err == nil {
			t.Fatal("a scope the client does not hold was granted")
		}
		if _, err := clientCredentials(env, "portal", r.conf.ClientSecret).Token(); err == nil {
			t.Fatal("client_credentials for a client without the grant")
		}

		// Revoke the access token: introspection turns inactive.
		revoke(t, env, "backend", svcSecret, tok.AccessToken)
		if in := introspect(t, env, "backend", svcSecret, tok.AccessToken); in["active"] == true {
			t.Fatalf("revoked token still active: %v", in)
		}

		// A user's tokens: revoke the refresh token, then refresh fails.
		f := r.start()
		ut, _, _ := r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
		revoke(t, env, "portal", r.conf.ClientSecret, ut.RefreshToken)
		if _, err := refreshErr(r, ut.RefreshToken); err == nil {
			t.Fatal("revoked refresh token still works")
		}
		// Revoking a token of another client is refused.
		f = r.start()
		ut, _, _ = r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
		revokeStatus := postForm(t, env, "backend", svcSecret, "/revoke", url.Values{"token": {ut.AccessToken}})
		if revokeStatus == http.StatusOK {
			t.Fatal("a client revoked another client's token")
		}
		if _, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(ut)); err != nil {
			t.Fatalf("userinfo after a refused revocation: %v", err)
		}
	})
}

func clientCredentials(env *idptest.Env, id, secret string, scopes ...string) oauth2.TokenSource {
	conf := clientCredentialsConfig(env, id, secret, scopes)
	return conf.TokenSource(context.Background())
}

func postForm(t *testing.T, env *idptest.Env, id, secret, path string, form url.Values) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, env.Issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func introspect(t *testing.T, env *idptest.Env, id, secret, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, env.Issuer+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("introspection answer: %v", err)
	}
	return out
}

func revoke(t *testing.T, env *idptest.Env, id, secret, token string) {
	t.Helper()
	if st := postForm(t, env, id, secret, "/revoke", url.Values{"token": {token}}); st != http.StatusOK {
		t.Fatalf("revocation: status %d", st)
	}
}

func TestKeyRotationAndRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		ctx := context.Background()
		f := r.start()
		tok, oldIDT, _ := r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
		oldRaw, _ := tok.Extra("id_token").(string)

		// Rotate: the new key signs, the old one stays published.
		if _, err := rotate(env); err != nil {
			t.Fatal(err)
		}
		if err := env.Signing.Load(ctx); err != nil {
			t.Fatal(err)
		}
		tok2, c2 := refresh(t, r, tok.RefreshToken)
		newRaw, _ := tok2.Extra("id_token").(string)
		if kid(t, newRaw) == kid(t, oldRaw) {
			t.Fatal("the refreshed ID token is still signed with the old key")
		}
		// A fresh relying party (empty key cache) still verifies the old token.
		r2 := newRP(t, env, "portal", r.conf.ClientSecret)
		if _, err := r2.verifier.Verify(ctx, oldRaw); err != nil {
			t.Fatalf("old ID token after rotation: %v", err)
		}
		_ = oldIDT

		// Restart: refresh tokens, access tokens and keys survive.
		env2 := env.Restart(t, b)
		r3 := newRP(t, env2, "portal", r.conf.ClientSecret)
		r3.conf.Endpoint = r3.provider.Endpoint()
		tok3, c3 := refresh(t, r3, tok2.RefreshToken)
		if c3.Sub != c2.Sub || c3.ACR != "pwd" {
			t.Fatalf("after restart: %+v", c3)
		}
		if _, err := r3.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok3)); err != nil {
			t.Fatalf("userinfo after restart: %v", err)
		}
		if _, err := r3.verifier.Verify(ctx, newRaw); err != nil {
			t.Fatalf("ID token from before the restart: %v", err)
		}
	})
}

func kid(t *testing.T, jws string) string {
	t.Helper()
	head, _, _ := strings.Cut(jws, ".")
	raw, err := base64URLDecode(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func TestDiscoveryAndHealth(t *testing.T) {
	env, _ := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	p := br.Get(env.Issuer + "/.well-known/openid-configuration")
	var d map[string]any
	if err := json.Unmarshal([]byte(p.Body), &d); err != nil {
		t.Fatal(err)
	}
	if got := d["acr_values_supported"]; !equalJSON(got, []string{"pwd", "mfa"}) {
		t.Errorf("acr_values_supported = %v", got)
	}
	if got := d["response_types_supported"]; !equalJSON(got, []string{"code"}) {
		t.Errorf("response_types_supported = %v", got)
	}
	if got := d["code_challenge_methods_supported"]; !equalJSON(got, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v", got)
	}
	if p := br.Get(env.Issuer + "/healthz"); p.Status != http.StatusOK {
		t.Errorf("healthz %s", p)
	}
	if p := br.Get(env.Issuer + "/readyz"); p.Status != http.StatusOK {
		t.Errorf("readyz %s", p)
	}
	if p := br.Get(env.Issuer + "/login?id=nope"); p.Header.Get("Content-Security-Policy") == "" || p.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers missing: %v", p.Header)
	}
	// CORS: only registered portals' origins.
	req, _ := http.NewRequest(http.MethodGet, env.Issuer+"/keys", nil)
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS allowed an unregistered origin")
	}
	req.Header.Set("Origin", "http://127.0.0.1:9")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:9" {
		t.Errorf("CORS refused a registered portal's origin")
	}
}

func equalJSON(got any, want []string) bool {
	l, ok := got.([]any)
	if !ok || len(l) != len(want) {
		return false
	}
	for i := range l {
		if l[i] != want[i] {
			return false
		}
	}
	return true
}
