package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// The tests drive the real portal (its router, sessions and templates) with
// an http.Client and a cookie jar, against a fake provider that does what the
// real one promises in SPEC.md: discovery, JWKS, the code flow with PKCE
// S256, refresh tokens with rotation, and an end_session_endpoint.

const (
	testClientID     = "portal-demo"
	testClientSecret = "test-client-secret"
	testSubject      = "c2b7a4e0-user"
)

// fakeProvider is a minimal OpenID Connect provider.
type fakeProvider struct {
	t      *testing.T
	srv    *httptest.Server
	signer jose.Signer
	jwks   jose.JSONWebKeySet

	mu           sync.Mutex
	redirectURI  string // the one registered redirect URI
	deny         bool   // answer /authorize with error=access_denied
	weak         bool   // ignore acr_values and prompt, as a careless provider might
	wrongNonce   bool   // put another nonce in ID tokens, as a replayed token has
	sessionStart time.Time
	authorizes   []url.Values // every /authorize request, in order
	codes        map[string]fakeGrant
	refresh      map[string]fakeGrant
	issued       []string // every token issued, for the log check
	lastIDToken  string
	tokenNumber  int
}

// fakeGrant is what a code or a refresh token stands for.
type fakeGrant struct {
	redirectURI string
	challenge   string
	nonce       string
	authTime    time.Time
	acr         string
	amr         []string
}

func newFakeProvider(t *testing.T) *fakeProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "test-key"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeProvider{
		t:      t,
		signer: signer,
		jwks: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: "test-key", Algorithm: string(jose.RS256), Use: "sig"},
		}},
		// The user logged in at the provider a while ago: only prompt=login
		// makes auth_time new.
		sessionStart: time.Now().Add(-10 * time.Minute),
		codes:        make(map[string]fakeGrant),
		refresh:      make(map[string]fakeGrant),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /jwks", f.keys)
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("GET /end_session", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "logged out at the provider")
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeProvider) discovery(w http.ResponseWriter, r *http.Request) {
	u := f.srv.URL
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                u,
		"authorization_endpoint":                u + "/authorize",
		"token_endpoint":                        u + "/token",
		"jwks_uri":                              u + "/jwks",
		"end_session_endpoint":                  u + "/end_session",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"acr_values_supported":                  []string{"pwd", "mfa"},
	})
}

func (f *fakeProvider) keys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, f.jwks)
}

func (f *fakeProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authorizes = append(f.authorizes, q)

	// Like the real provider: an unknown client or redirect URI gets a 400,
	// never a redirect.
	if q.Get("client_id") != testClientID || q.Get("redirect_uri") != f.redirectURI {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	back := func(params url.Values) {
		params.Set("state", q.Get("state"))
		http.Redirect(w, r, f.redirectURI+"?"+params.Encode(), http.StatusFound)
	}
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		!strings.Contains(" "+q.Get("scope")+" ", " openid ") {
		back(url.Values{"error": {"invalid_request"}})
		return
	}
	if f.deny {
		back(url.Values{"error": {"access_denied"}, "error_description": {"the user clicked Deny"}})
		return
	}

	g := fakeGrant{
		redirectURI: q.Get("redirect_uri"),
		challenge:   q.Get("code_challenge"),
		nonce:       q.Get("nonce"),
		authTime:    f.sessionStart,
		acr:         "pwd",
		amr:         []string{"pwd"},
	}
	if q.Get("prompt") == "login" && !f.weak {
		f.sessionStart = time.Now()
		g.authTime = f.sessionStart
	}
	if q.Get("acr_values") == "mfa" && !f.weak {
		g.acr, g.amr = "mfa", []string{"pwd", "otp", "mfa"}
	}
	if f.wrongNonce {
		g.nonce = rand.Text()
	}
	code := rand.Text()
	f.codes[code] = g
	back(url.Values{"code": {code}})
}

func (f *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != testClientID || secret != testClientSecret {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	var g fakeGrant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		var found bool
		g, found = f.codes[code]
		delete(f.codes, code)
		if !found || r.PostForm.Get("redirect_uri") != g.redirectURI {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		// PKCE: the verifier must hash to the challenge sent to /authorize.
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		var found bool
		g, found = f.refresh[rt]
		delete(f.refresh, rt) // rotation: a refresh token serves once
		if !found {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		g.nonce = "" // a refreshed ID token carries no nonce here
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}

	access, refresh := rand.Text(), rand.Text()
	f.refresh[refresh] = g
	f.tokenNumber++
	idToken := f.sign(g, access)
	f.lastIDToken = idToken
	f.issued = append(f.issued, access, refresh, idToken)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  access,
		"token_type":    "Bearer",
		"expires_in":    300,
		"refresh_token": refresh,
		"id_token":      idToken,
	})
}

// sign issues an ID token for g. The caller holds f.mu.
func (f *fakeProvider) sign(g fakeGrant, accessToken string) string {
	now := time.Now()
	atHash := sha256.Sum256([]byte(accessToken))
	claims := map[string]any{
		"iss":                f.srv.URL,
		"sub":                testSubject,
		"aud":                testClientID,
		"exp":                now.Add(5 * time.Minute).Unix(),
		"iat":                now.Unix(),
		"auth_time":          g.authTime.Unix(),
		"acr":                g.acr,
		"amr":                g.amr,
		"at_hash":            base64.RawURLEncoding.EncodeToString(atHash[:16]),
		"name":               "Ada Lovelace",
		"preferred_username": "ada",
		"email":              "ada@example.com",
		"token_number":       f.tokenNumber,
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		f.t.Error(err)
		return ""
	}
	jws, err := f.signer.Sign(payload)
	if err != nil {
		f.t.Error(err)
		return ""
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		f.t.Error(err)
	}
	return compact
}

func (f *fakeProvider) set(change func(f *fakeProvider)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

func (f *fakeProvider) lastAuthorize() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.authorizes) == 0 {
		f.t.Fatal("the provider saw no /authorize request")
	}
	return f.authorizes[len(f.authorizes)-1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func tokenError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

// testPortal is the portal under test with a browser to drive it.
type testPortal struct {
	t        *testing.T
	provider *fakeProvider
	url      string
	logs     *syncBuffer
	// browser follows redirects, as a person's browser does; noFollow
	// shares its cookies and stops at the first redirect.
	browser, noFollow *http.Client
}

func newTestPortal(t *testing.T) *testPortal {
	t.Helper()
	fake := newFakeProvider(t)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	fake.redirectURI = base + "/callback"

	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), nil))
	cfg, err := parseConfig([]string{
		"--issuer", fake.srv.URL,
		"--redirect-url", base + "/callback",
		"--post-logout-url", base + "/",
	}, func(key string) string {
		if key == "PORTAL_CLIENT_SECRET" {
			return testClientSecret
		}
		return ""
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	provider, err := discover(ctx, cfg.Issuer, 5*time.Second, 10*time.Millisecond, logger)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPortal(cfg, provider, fake.srv.Client(), logger)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.routes()
	srv.Start()
	t.Cleanup(srv.Close)

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPortal{
		t:        t,
		provider: fake,
		url:      base,
		logs:     logs,
		browser:  &http.Client{Jar: jar, Timeout: 10 * time.Second},
		noFollow: &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
	}
	t.Cleanup(tp.checkLogsHoldNoSecret)
	return tp
}

// page is a response with its body read.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (tp *testPortal) do(client *http.Client, method, path string, form url.Values) page {
	tp.t.Helper()
	target := path
	if strings.HasPrefix(path, "/") {
		target = tp.url + path
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		tp.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		tp.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tp.t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(b)}
}

func (tp *testPortal) get(path string) page {
	tp.t.Helper()
	return tp.do(tp.browser, "GET", path, nil)
}

// login runs the whole flow as a browser does and returns the home page.
func (tp *testPortal) login(path string) page {
	tp.t.Helper()
	pg := tp.get(path)
	if pg.status != http.StatusOK || pg.url.Path != "/" {
		tp.t.Fatalf("login ended at %s with %d:\n%s", pg.url, pg.status, pg.body)
	}
	return pg
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (tp *testPortal) csrf() string {
	tp.t.Helper()
	m := csrfField.FindStringSubmatch(tp.get("/").body)
	if m == nil {
		tp.t.Fatal("no CSRF token on the home page")
	}
	return m[1]
}

// checkLogsHoldNoSecret fails the test if a token or the client secret
// reached the log.
func (tp *testPortal) checkLogsHoldNoSecret() {
	logs := tp.logs.String()
	tp.provider.mu.Lock()
	defer tp.provider.mu.Unlock()
	for _, secret := range append([]string{testClientSecret}, tp.provider.issued...) {
		if strings.Contains(logs, secret) {
			tp.t.Errorf("the log holds a token or the client secret")
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func mustContain(t *testing.T, pg page, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(pg.body, want) {
			t.Errorf("page %s does not contain %q:\n%s", pg.url, want, pg.body)
		}
	}
}

func mustNotContain(t *testing.T, pg page, unwanted ...string) {
	t.Helper()
	for _, s := range unwanted {
		if strings.Contains(pg.body, s) {
			t.Errorf("page %s contains %q:\n%s", pg.url, s, pg.body)
		}
	}
}

const (
	loginButton  = `<button type="submit" class="primary">Log in</button>`
	logoutButton = `<button type="submit">Log out</button>`
)

func TestHomeLoggedOut(t *testing.T) {
	tp := newTestPortal(t)
	pg := tp.get("/")
	if pg.status != http.StatusOK {
		t.Fatalf("status %d", pg.status)
	}
	mustContain(t, pg, loginButton, `<link rel="stylesheet" href="/static/style.css">`)
	mustNotContain(t, pg, logoutButton, "<script", " style=")
	if csp := pg.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	css := tp.get("/static/style.css")
	if css.status != http.StatusOK || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: status %d, Content-Type %q", css.status, css.header.Get("Content-Type"))
	}
}

func TestLoginShowsClaims(t *testing.T) {
	tp := newTestPortal(t)

	start := tp.do(tp.noFollow, "GET", "/login", nil)
	if start.status != http.StatusFound {
		t.Fatalf("/login answered %d", start.status)
	}
	var loginCookie *http.Cookie
	for _, c := range (&http.Response{Header: start.header}).Cookies() {
		if c.Name == "portal_login" {
			loginCookie = c
		}
	}
	if loginCookie == nil || !loginCookie.HttpOnly || loginCookie.SameSite != http.SameSiteLaxMode || loginCookie.MaxAge <= 0 {
		t.Errorf("login cookie = %+v, want HttpOnly, SameSite=Lax and short-lived", loginCookie)
	}

	pg := tp.login(start.header.Get("Location"))
	mustContain(t, pg,
		"Hello, Ada Lovelace",
		`/account">2-Factor Auth</a>`,
		logoutButton,
		"Ask for a second factor (acr_values=mfa)",
		"Log in again (prompt=login)",
		"Refresh tokens",
		`<th scope="row"><code>sub</code></th>`,
		`<code>`+testSubject+`</code>`,
		`<tr class="highlight">`,
		`id="acr"><code>pwd</code>`,
		`id="amr"><code>pwd</code>`,
		`&#34;sub&#34;: &#34;`+testSubject+`&#34;`,
		`&#34;email&#34;: &#34;ada@example.com&#34;`,
	)
	mustNotContain(t, pg, loginButton, "<script", " style=")

	q := tp.provider.lastAuthorize()
	if got, want := q.Get("scope"), "openid profile email phone offline_access"; got != want {
		t.Errorf("scope = %q, want %q", got, want)
	}
	for _, name := range []string{"state", "nonce", "code_challenge"} {
		if q.Get(name) == "" {
			t.Errorf("the authorization request has no %s", name)
		}
	}
	if q.Get("code_challenge_method") != "S256" {
		t.Errorf("code_challenge_method = %q, want S256", q.Get("code_challenge_method"))
	}
	if q.Get("state") == q.Get("nonce") {
		t.Error("state and nonce are the same value")
	}

	// The browser holds only the session id: no token in any cookie.
	for _, c := range tp.browser.Jar.Cookies(pg.url) {
		for _, tok := range tp.provider.issued {
			if strings.Contains(c.Value, tok) {
				t.Errorf("cookie %s holds a token", c.Name)
			}
		}
	}
}

func TestCallbackRejectsUnknownState(t *testing.T) {
	for _, tc := range []struct {
		name       string
		startLogin bool
		callback   string
	}{
		{"wrong state", true, "/callback?code=some-code&state=not-the-state"},
		{"no state", true, "/callback?code=some-code"},
		{"no login started", false, "/callback?code=some-code&state=some-state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTestPortal(t)
			if tc.startLogin {
				if pg := tp.do(tp.noFollow, "GET", "/login", nil); pg.status != http.StatusFound {
					t.Fatalf("/login answered %d", pg.status)
				}
			}
			pg := tp.get(tc.callback)
			if pg.status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", pg.status)
			}
			mustContain(t, pg, "This login has expired", `href="/login">Try again</a>`)
			mustNotContain(t, tp.get("/"), logoutButton)
		})
	}
}

func TestCallbackRejectsReplayedCode(t *testing.T) {
	tp := newTestPortal(t)
	start := tp.do(tp.noFollow, "GET", "/login", nil)
	back := tp.do(tp.noFollow, "GET", start.header.Get("Location"), nil) // the provider's redirect
	callback := back.header.Get("Location")
	if pg := tp.get(callback); pg.status != http.StatusOK {
		t.Fatalf("first callback: status %d", pg.status)
	}
	// The login in progress served once: the same response again is refused.
	if pg := tp.get(callback); pg.status != http.StatusBadRequest {
		t.Errorf("replayed callback: status %d, want 400", pg.status)
	}
}

func TestCallbackRejectsIDTokenOfAnotherLogin(t *testing.T) {
	tp := newTestPortal(t)
	tp.provider.set(func(f *fakeProvider) { f.wrongNonce = true })
	pg := tp.get("/login")
	if pg.status != http.StatusBadGateway {
		t.Errorf("status %d, want 502", pg.status)
	}
	mustContain(t, pg, "could not verify", `href="/login">Try again</a>`)
	mustContain(t, tp.get("/"), loginButton)
}

func TestProviderDenied(t *testing.T) {
	tp := newTestPortal(t)
	tp.provider.set(func(f *fakeProvider) { f.deny = true })

	pg := tp.get("/login")
	if pg.url.Path != "/callback" || pg.status != http.StatusForbidden {
		t.Fatalf("ended at %s with %d", pg.url, pg.status)
	}
	mustContain(t, pg, "You are not logged in", "The login was cancelled", `href="/login">Try again</a>`)
	mustNotContain(t, pg, "the user clicked Deny") // the provider's description goes to the log only
	mustContain(t, tp.get("/"), loginButton)
}

func TestLogout(t *testing.T) {
	tp := newTestPortal(t)
	tp.login("/login")
	csrf := tp.csrf()

	// Without the CSRF token the form is refused and the session stays.
	if pg := tp.do(tp.noFollow, "POST", "/logout", url.Values{}); pg.status != http.StatusForbidden {
		t.Errorf("logout without CSRF token: status %d, want 403", pg.status)
	}
	mustContain(t, tp.get("/"), logoutButton)

	tp.provider.mu.Lock()
	idToken := tp.provider.lastIDToken
	tp.provider.mu.Unlock()

	pg := tp.do(tp.noFollow, "POST", "/logout", url.Values{"csrf": {csrf}})
	if pg.status != http.StatusSeeOther {
		t.Fatalf("logout: status %d, want 303", pg.status)
	}
	to, err := url.Parse(pg.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := to.Scheme+"://"+to.Host+to.Path, tp.provider.srv.URL+"/end_session"; got != want {
		t.Errorf("logout redirects to %s, want %s", got, want)
	}
	q := to.Query()
	if q.Get("id_token_hint") != idToken {
		t.Errorf("id_token_hint is not the ID token of the session")
	}
	if got, want := q.Get("post_logout_redirect_uri"), tp.url+"/"; got != want {
		t.Errorf("post_logout_redirect_uri = %q, want %q", got, want)
	}
	if q.Get("state") == "" {
		t.Error("no state in the logout request")
	}

	// The provider sends the user back with the state.
	home := tp.get("/?state=" + url.QueryEscape(q.Get("state")))
	mustContain(t, home, loginButton, "You are logged out of the portal and of the provider.")
	mustNotContain(t, home, logoutButton)
}

func TestStrongerLogin(t *testing.T) {
	for _, tc := range []struct {
		name     string
		path     string
		param    string // the parameter the provider must see
		weak     bool
		status   int
		want     []string
		provided string // the parameter's value at /authorize
	}{
		{
			name: "second factor given", path: "/login?acr_values=mfa", param: "acr_values", provided: "mfa",
			status: http.StatusOK,
			want:   []string{"Second factor confirmed", `id="acr"><code>mfa</code>`, `<code>otp</code>`},
		},
		{
			name: "second factor not given", path: "/login?acr_values=mfa", param: "acr_values", provided: "mfa", weak: true,
			status: http.StatusForbidden,
			want:   []string{"Second factor not confirmed", `href="/login?acr_values=mfa">Try again</a>`},
		},
		{
			name: "fresh login given", path: "/login?prompt=login", param: "prompt", provided: "login",
			status: http.StatusOK,
			want:   []string{"You logged in again"},
		},
		{
			name: "fresh login not given", path: "/login?prompt=login", param: "prompt", provided: "login", weak: true,
			status: http.StatusForbidden,
			want:   []string{"Fresh login not confirmed"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTestPortal(t)
			tp.login("/login")
			tp.provider.set(func(f *fakeProvider) { f.weak = tc.weak })

			pg := tp.get(tc.path)
			if pg.status != tc.status {
				t.Errorf("status %d, want %d", pg.status, tc.status)
			}
			mustContain(t, pg, tc.want...)
			if got := tp.provider.lastAuthorize().Get(tc.param); got != tc.provided {
				t.Errorf("the provider saw %s=%q, want %q", tc.param, got, tc.provided)
			}
			// A refused login leaves the earlier session as it was.
			mustContain(t, tp.get("/"), logoutButton)
		})
	}
}

func TestLoginRefusesUnknownParameters(t *testing.T) {
	tp := newTestPortal(t)
	for _, path := range []string{"/login?prompt=none", "/login?acr_values=urn:other"} {
		if pg := tp.do(tp.noFollow, "GET", path, nil); pg.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", path, pg.status)
		}
	}
}

func TestRefresh(t *testing.T) {
	tp := newTestPortal(t)
	mustContain(t, tp.login("/login"), `&#34;token_number&#34;: 1`)

	pg := tp.do(tp.browser, "POST", "/refresh", url.Values{"csrf": {tp.csrf()}})
	if pg.status != http.StatusOK || pg.url.Path != "/" {
		t.Fatalf("refresh ended at %s with %d", pg.url, pg.status)
	}
	mustContain(t, pg, "Tokens refreshed. The claims below are from the new ID token.", `&#34;token_number&#34;: 2`)

	// The provider ends the session: its refresh tokens stop working.
	tp.provider.set(func(f *fakeProvider) { clear(f.refresh) })
	pg = tp.do(tp.browser, "POST", "/refresh", url.Values{"csrf": {tp.csrf()}})
	if pg.status != http.StatusUnauthorized {
		t.Errorf("refresh with a dead refresh token: status %d, want 401", pg.status)
	}
	mustContain(t, pg, "Your session has ended")
	mustContain(t, tp.get("/"), loginButton)
}

func TestRefreshNeedsCSRFToken(t *testing.T) {
	tp := newTestPortal(t)
	tp.login("/login")
	if pg := tp.do(tp.noFollow, "POST", "/refresh", url.Values{"csrf": {"forged"}}); pg.status != http.StatusForbidden {
		t.Errorf("status %d, want 403", pg.status)
	}
}

func TestDiscoverRetries(t *testing.T) {
	fake := newFakeProvider(t)
	var mu sync.Mutex
	calls := 0
	// The provider is still starting: its first answers are errors.
	starting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fake.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer starting.Close()
	fake.srv.URL = starting.URL // the discovery document names this issuer

	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	if _, err := discover(context.Background(), starting.URL, 5*time.Second, 10*time.Millisecond, logger); err != nil {
		t.Fatalf("discover: %v", err)
	}
	mu.Lock()
	if calls != 3 {
		t.Errorf("discovery took %d requests, want 3", calls)
	}
	mu.Unlock()

	// A wrong issuer (here with a trailing slash) is a configuration
	// mistake: reported at once, not retried for the whole wait.
	begin := time.Now()
	_, err := discover(context.Background(), starting.URL+"/", 5*time.Second, 10*time.Millisecond, logger)
	var mismatch *oidc.IssuerMismatchError
	if !errors.As(err, &mismatch) {
		t.Errorf("discover with a wrong issuer: %v, want an IssuerMismatchError", err)
	}
	if time.Since(begin) > 2*time.Second {
		t.Errorf("discover retried a wrong issuer for %s", time.Since(begin))
	}
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{
		"PORTAL_ISSUER":        "https://id.example.com",
		"PORTAL_CLIENT_ID":     "from-env",
		"PORTAL_CLIENT_SECRET": "env-secret",
	}
	getenv := func(k string) string { return env[k] }

	cfg, err := parseConfig([]string{"--client-id", "from-flag"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Listen:        "127.0.0.1:8081",
		Issuer:        "https://id.example.com",
		ClientID:      "from-flag",
		ClientSecret:  "env-secret",
		RedirectURL:   "http://localhost:8081/callback",
		PostLogoutURL: "http://localhost:8081/",
	}
	if cfg != want {
		t.Errorf("config = %+v, want %+v", cfg, want)
	}

	// -h never shows the secret.
	var usage bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, getenv, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if strings.Contains(usage.String(), "env-secret") {
		t.Error("the usage text shows the client secret")
	}

	if _, err := parseConfig([]string{"--redirect-url", "/callback", "--issuer", "localhost"}, getenv, io.Discard); err == nil {
		t.Error("relative URLs accepted")
	}
}
