package reliability

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

// redirectURI is the relying party's; it is never followed: the code is
// read from the Location header.
const redirectURI = "http://127.0.0.1:9/callback"

// fixture is what a test writes to the database before a provider runs:
// the secret key the provider is given, a first-party confidential client
// and users with a password and an authenticator app.
type fixture struct {
	t            *testing.T
	dbURL        string
	secretKey    string // base64, for IDP_SECRET_KEY
	keys         *secret.Keys
	store        *sqlstore.Store
	svc          *manage.Service
	clientID     string
	clientSecret string
}

func newFixture(t *testing.T, dbURL string) *fixture {
	t.Helper()
	ctx := t.Context()
	raw := make([]byte, 32)
	rand.Read(raw)
	keys, err := secret.NewKeys(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// The provider's cheap test parameters (see newProvider).
	hasher, err := password.NewHasher(password.Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dbURL: dbURL, secretKey: base64.StdEncoding.EncodeToString(raw), keys: keys, store: st,
		svc:      &manage.Service{Store: st, Hasher: hasher, MinPasswordLength: 12},
		clientID: "portal", clientSecret: "portal-" + secret.RandomToken(32)}
	_, _, err = f.svc.CreateClient(ctx, manage.Operator, manage.NewClient{
		ID: f.clientID, Name: "Client Portal", RedirectURIs: []string{redirectURI}, Secret: f.clientSecret,
		FirstParty: true, Grants: []string{"authorization_code", "refresh_token"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// user is an account with its password and authenticator-app secret.
type user struct {
	id, name, password string
	secret             []byte
}

func (u *user) code(at time.Time) string { return mfa.TOTPCode(u.secret, at) }

// addUser creates a user with a password and an enrolled authenticator
// app, stored as the provider stores one (sealed under the user's id).
func (f *fixture) addUser(ctx context.Context, name string) (*user, error) {
	u := &user{name: name, password: "reliability " + secret.RandomToken(12), secret: mfa.NewTOTPSecret()}
	su, err := f.svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: name, Email: name + "@example.com", Name: "User " + name, Password: u.password})
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", name, err)
	}
	u.id = su.ID
	err = f.store.SetTOTP(ctx, &storage.TOTP{UserID: su.ID, Secret: f.keys.Seal(u.secret, []byte("totp:"+su.ID)), CreatedAt: time.Now()})
	if err != nil {
		return nil, fmt.Errorf("enrolling %s: %w", name, err)
	}
	return u, nil
}

func (f *fixture) mustAddUser(name string) *user {
	f.t.Helper()
	u, err := f.addUser(f.t.Context(), name)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

// audit returns the user's audit events since since, by type.
func (f *fixture) audit(ctx context.Context, userID string, since time.Time) (map[string][]*storage.AuditEvent, error) {
	events, err := f.store.ListAudit(ctx, storage.AuditQuery{UserID: userID, Since: since, Limit: 100000})
	if err != nil {
		return nil, err
	}
	byType := map[string][]*storage.AuditEvent{}
	for _, e := range events {
		byType[e.Type] = append(byType[e.Type], e)
	}
	return byType, nil
}

// browser is one browser: its own cookies, redirects not followed.
type browser struct {
	http *http.Client
}

func newBrowser(tr http.RoundTripper) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{http: &http.Client{
		Transport:     tr,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is a response with its body read.
type page struct {
	status   int
	header   http.Header
	body     string
	url      *url.URL
	location *url.URL // resolved; nil when not a redirect
	took     time.Duration
}

func (p *page) String() string {
	s := fmt.Sprintf("%s %s: %d", p.url.Path, p.url.RawQuery, p.status)
	if m := headingRE.FindStringSubmatch(p.body); m != nil {
		s += " " + strings.TrimSpace(html.UnescapeString(m[1]))
	}
	if p.location != nil {
		s += " -> " + p.location.Redacted()
	}
	return s
}

var headingRE = regexp.MustCompile(`(?s)<h1>(.*?)</h1>`)

func (b *browser) do(ctx context.Context, method, rawURL string, form url.Values) (*page, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	start := time.Now()
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	p := &page{status: resp.StatusCode, header: resp.Header, body: string(raw), url: req.URL, took: time.Since(start)}
	if loc, err := resp.Location(); err == nil {
		p.location = loc
	}
	return p, nil
}

func (b *browser) get(ctx context.Context, rawURL string) (*page, error) {
	return b.do(ctx, http.MethodGet, rawURL, nil)
}

// form is a form of a page: where it goes and its hidden inputs.
type form struct {
	action string
	values url.Values
	fields map[string]bool
}

var (
	formRE   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRE  = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRE   = regexp.MustCompile(`(?i)\b([a-z_-]+)="([^"]*)"`)
	actionRE = regexp.MustCompile(`(?i)\baction="([^"]*)"`)
)

// formWith returns the page's form that has a field named field.
func (p *page) formWith(field string) (form, bool) {
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		f := form{action: p.url.String(), values: url.Values{}, fields: map[string]bool{}}
		if a := actionRE.FindStringSubmatch(m[1]); a != nil {
			if u, err := p.url.Parse(html.UnescapeString(a[1])); err == nil {
				f.action = u.String()
			}
		}
		for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
			at := map[string]string{}
			for _, a := range attrRE.FindAllStringSubmatch(in[1], -1) {
				at[strings.ToLower(a[1])] = html.UnescapeString(a[2])
			}
			if at["type"] == "hidden" {
				f.values.Set(at["name"], at["value"])
			} else if at["name"] != "" {
				f.fields[at["name"]] = true
			}
		}
		if f.fields[field] {
			return f, true
		}
	}
	return form{}, false
}

// relyingParty is a portal's back end: go-oidc and x/oauth2, as a real
// portal would use them.
type relyingParty struct {
	ctx      context.Context // carries the HTTP client for discovery, keys and tokens
	issuer   *url.URL
	tr       http.RoundTripper
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRelyingParty(t *testing.T, issuer string, f *fixture, tr http.RoundTripper) *relyingParty {
	t.Helper()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx := oidc.ClientContext(context.WithValue(context.Background(), oauth2.HTTPClient, client), client)
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery at %s: %v", issuer, err)
	}
	iss, _ := url.Parse(issuer)
	return &relyingParty{
		ctx: ctx, issuer: iss, tr: tr,
		oauth: oauth2.Config{ClientID: f.clientID, ClientSecret: f.clientSecret, Endpoint: p.Endpoint(),
			RedirectURL: redirectURI, Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess}},
		verifier: p.Verifier(&oidc.Config{ClientID: f.clientID}),
	}
}

// login is one authorization code flow in one browser, step by step.
type login struct {
	rp                     *relyingParty
	b                      *browser
	state, nonce, verifier string
	page                   *page // the page the browser is at
}

// start sends b to the authorization endpoint, as the portal does, and
// follows it to the provider's first page.
func (rp *relyingParty) start(ctx context.Context, b *browser, opts ...oauth2.AuthCodeOption) (*login, error) {
	l := &login{rp: rp, b: b, state: secret.RandomToken(12), nonce: secret.RandomToken(12), verifier: oauth2.GenerateVerifier()}
	opts = append(opts, oidc.Nonce(l.nonce), oauth2.S256ChallengeOption(l.verifier))
	p, err := b.get(ctx, rp.oauth.AuthCodeURL(l.state, opts...))
	if err != nil {
		return nil, err
	}
	l.page = p
	return l, l.follow(ctx)
}

// follow follows redirects while they stay on the provider.
func (l *login) follow(ctx context.Context) error {
	for range 10 {
		loc := l.page.location
		if loc == nil || loc.Host != l.rp.issuer.Host {
			return nil
		}
		p, err := l.b.get(ctx, loc.String())
		if err != nil {
			return err
		}
		l.page = p
	}
	return fmt.Errorf("redirect loop at %s", l.page)
}

// submit posts the current page's form that has field, with values added,
// and does not follow the answer.
func (l *login) submit(ctx context.Context, field string, values url.Values) (*page, error) {
	f, ok := l.page.formWith(field)
	if !ok {
		return nil, fmt.Errorf("no form with %q on %s", field, l.page)
	}
	for k, v := range values {
		f.values[k] = v
	}
	p, err := l.b.do(ctx, http.MethodPost, f.action, f.values)
	if err != nil {
		return nil, err
	}
	l.page = p
	return p, nil
}

// step submits a form that must answer with a redirect, and follows it.
func (l *login) step(ctx context.Context, field string, values url.Values) error {
	p, err := l.submit(ctx, field, values)
	if err != nil {
		return err
	}
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		return fmt.Errorf("%s answered %s", field, p)
	}
	return l.follow(ctx)
}

func (l *login) password(ctx context.Context, u *user) error {
	return l.step(ctx, "password", url.Values{"username": {u.name}, "password": {u.password}})
}

// totp enters an authentication code, with "Remember this device" when asked.
func (l *login) totp(ctx context.Context, code string, remember bool) error {
	v := url.Values{"code": {code}}
	if remember {
		v.Set("remember", "on")
	}
	return l.step(ctx, "code", v)
}

// code reads the authorization code off the redirect to the portal.
func (l *login) code() (string, error) {
	loc := l.page.location
	if loc == nil || !strings.HasPrefix(loc.String(), redirectURI) {
		return "", fmt.Errorf("not sent back to the portal: %s", l.page)
	}
	q := loc.Query()
	switch {
	case q.Get("error") != "":
		return "", fmt.Errorf("sent back with error %s (%s)", q.Get("error"), q.Get("error_description"))
	case q.Get("state") != l.state:
		return "", errors.New("sent back with the wrong state")
	case q.Get("code") == "":
		return "", errors.New("sent back without a code")
	}
	return q.Get("code"), nil
}

// tokens are a verified token response.
type tokens struct {
	oauth   *oauth2.Token
	idToken *oidc.IDToken
	amr     []string
	kid     string
}

// exchange redeems the login's code as the portal does and verifies the
// ID token (signature, issuer, audience, expiry, nonce).
func (l *login) exchange(ctx context.Context, code string) (*tokens, error) {
	tok, err := l.rp.oauth.Exchange(l.rp.ctxWith(ctx), code, oauth2.VerifierOption(l.verifier))
	if err != nil {
		return nil, err
	}
	t, err := l.rp.verify(ctx, tok)
	if err != nil {
		return nil, err
	}
	if t.idToken.Nonce != l.nonce {
		return nil, errors.New("ID token with the wrong nonce")
	}
	return t, nil
}

// finish reads the code and exchanges it.
func (l *login) finish(ctx context.Context) (*tokens, error) {
	code, err := l.code()
	if err != nil {
		return nil, err
	}
	return l.exchange(ctx, code)
}

// ctxWith is ctx with the relying party's HTTP client.
func (rp *relyingParty) ctxWith(ctx context.Context) context.Context {
	client, _ := rp.ctx.Value(oauth2.HTTPClient).(*http.Client)
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, client), client)
}

func (rp *relyingParty) verify(ctx context.Context, tok *oauth2.Token) (*tokens, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("no ID token")
	}
	id, err := rp.verifier.Verify(rp.ctxWith(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("verifying the ID token: %w", err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := id.Claims(&claims); err != nil {
		return nil, err
	}
	t := &tokens{oauth: tok, idToken: id, amr: claims.AMR, kid: jwtKeyID(raw)}
	return t, nil
}

// refresh uses a refresh token at tokenURL (the discovered one, or one
// instance's own) and verifies the new ID token.
func (rp *relyingParty) refresh(ctx context.Context, tokenURL, refreshToken string) (*tokens, error) {
	cfg := rp.oauth
	cfg.Endpoint.TokenURL = tokenURL
	tok, err := cfg.TokenSource(rp.ctxWith(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, err
	}
	return rp.verify(ctx, tok)
}

// jwtKeyID is the kid in a JWT's header.
func jwtKeyID(raw string) string {
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	m := regexp.MustCompile(`"kid":"([^"]*)"`).FindSubmatch(b)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// checkUnavailable checks the answer a page gives while a store is down:
// 503, Retry-After, the sentence for people, and nothing of ours.
func checkUnavailable(t *testing.T, what string, p *page) {
	t.Helper()
	if p.status != http.StatusServiceUnavailable {
		t.Errorf("%s: %s, want 503", what, p)
		return
	}
	if p.header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", what)
	}
	if !strings.Contains(p.body, "The service is temporarily unavailable. Try again in a minute.") {
		t.Errorf("%s: the 503 page does not say the service is temporarily unavailable:\n%s", what, p.body)
	}
	for _, leak := range []string{"redis", "sqlstore", "dial tcp", "connection refused", "goroutine", "panic", "timeout", "SQLSTATE"} {
		if strings.Contains(strings.ToLower(p.body), strings.ToLower(leak)) {
			t.Errorf("%s: the 503 page shows %q", what, leak)
		}
	}
}
