package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/secret"
)

// slack is what a loaded CI machine may add to a timeout.
const slack = time.Second

// loginAtCode logs u in up to the authentication code page and returns
// the pending login's id.
func loginAtCode(t *testing.T, ctx context.Context, rp *relyingParty, b *browser, u *user) (*login, string) {
	t.Helper()
	l, err := rp.start(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.password(ctx, u); err != nil {
		t.Fatal(err)
	}
	f, ok := l.page.formWith("code")
	if !ok {
		t.Fatalf("after the password: %s, want the authentication code page", l.page)
	}
	return l, f.values.Get("id")
}

// reopen goes back to the page of the step the login is at.
func reopen(t *testing.T, ctx context.Context, l *login, issuer, id string) {
	t.Helper()
	p, err := l.b.get(ctx, issuer+"/login?id="+url.QueryEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	l.page = p
}

// finishLogin goes back to the login's page and finishes it with code.
func finishLogin(t *testing.T, ctx context.Context, l *login, issuer, id, code string) *tokens {
	t.Helper()
	reopen(t, ctx, l, issuer, id)
	if err := l.totp(ctx, code, false); err != nil {
		t.Fatal(err)
	}
	tok, err := l.finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fullLogin logs u in with a code of now and returns the tokens.
func fullLogin(t *testing.T, ctx context.Context, rp *relyingParty, u *user) *tokens {
	t.Helper()
	l, id := loginAtCode(t, ctx, rp, newBrowser(nil), u)
	return finishLogin(t, ctx, l, rp.issuer.String(), id, u.code(time.Now()))
}

// tokenUnavailable checks that a token request made during an outage is
// refused with 503 and temporarily_unavailable, which a portal retries,
// rather than invalid_grant, for which it would give up (and drop a
// refresh token).
func tokenUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != "temporarily_unavailable" ||
		re.Response.Header.Get("Retry-After") == "" {
		t.Errorf("%s during the outage: %v, want 503 temporarily_unavailable with Retry-After", what, err)
	}
}

// timed fetches path from the provider and checks its status and that it
// answered within limit.
func timed(t *testing.T, p *provider, path string, want int, limit time.Duration) {
	t.Helper()
	start := time.Now()
	got, err := p.status(path)
	took := time.Since(start)
	if err != nil || got != want {
		t.Errorf("%s = %d, %v; want %d", path, got, err, want)
	}
	if took > limit {
		t.Errorf("%s took %v, want at most %v", path, took, limit)
	}
}

// untouched checks that nothing of a second factor was recorded for u
// since since: the code not spent, no factor passed or failed, no login.
func untouched(t *testing.T, f *fixture, u *user, since time.Time) {
	t.Helper()
	ctx := context.Background()
	totp, err := f.store.TOTPByUser(ctx, u.id)
	if err != nil {
		t.Fatal(err)
	}
	if totp.LastStep != 0 {
		t.Errorf("%s's code was spent during the outage (last step %d)", u.name, totp.LastStep)
	}
	events, err := f.audit(ctx, u.id, since)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"mfa.passed", "mfa.failed", "login.failed", "login.succeeded"} {
		if n := len(events[typ]); n > 0 {
			t.Errorf("%d %s events for %s during the outage", n, typ, u.name)
		}
	}
}

// Redis killed in the middle of a login: /readyz fails and /healthz does
// not, pages answer 503 within redis.timeout, a new login goes back to the
// portal with temporarily_unavailable and a code exchange gets 503 (not
// invalid_grant), nothing is written; when Redis is
// back (empty: it keeps no data) the provider recovers by itself and the
// code typed during the outage still works.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rs := startRedisServer(t)
	f := newFixture(t, "sqlite://"+filepath.Join(t.TempDir(), "idp.db"))
	alice, carol := f.mustAddUser("alice"), f.mustAddUser("carol")
	const timeout = 500 * time.Millisecond
	p := newProvider(t, providerConfig{database: f.dbURL, redis: rs.url(), prefix: "idp:", secretKey: f.secretKey,
		extra: []string{"IDP_REDIS_TIMEOUT=" + timeout.String()}})
	p.start()
	timed(t, p, "/readyz", http.StatusOK, slack)
	rp := newRelyingParty(t, p.base, f, nil)
	b := newBrowser(nil)
	lc, idC := loginAtCode(t, ctx, rp, newBrowser(nil), carol)
	reopen(t, ctx, lc, p.base, idC)
	if err := lc.totp(ctx, carol.code(time.Now()), false); err != nil {
		t.Fatal(err)
	}
	carolCode, err := lc.code()
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	l, id := loginAtCode(t, ctx, rp, b, alice)

	rs.kill()
	timed(t, p, "/healthz", http.StatusOK, slack)
	timed(t, p, "/readyz", http.StatusServiceUnavailable, timeout+slack)
	code := alice.code(time.Now())
	pg, err := l.submit(ctx, "code", url.Values{"code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	checkUnavailable(t, "the code posted while Redis is down", pg)
	if pg.took > timeout+slack {
		t.Errorf("the code page took %v with redis.timeout %v", pg.took, timeout)
	}
	pg, err = b.get(ctx, p.base+"/login?id="+url.QueryEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	checkUnavailable(t, "the login page while Redis is down", pg)
	l2, err := rp.start(ctx, newBrowser(nil))
	if err != nil {
		t.Fatal(err)
	}
	if loc := l2.page.location; loc == nil || !strings.HasPrefix(loc.String(), redirectURI) ||
		loc.Query().Get("error") != "temporarily_unavailable" || loc.Query().Get("state") != l2.state {
		t.Errorf("a new login while Redis is down: %s, want the portal told temporarily_unavailable", l2.page)
	} else if d := loc.Query().Get("error_description"); strings.Contains(strings.ToLower(d), "redis") || strings.Contains(d, "dial") {
		t.Errorf("the portal is told our error: %q", d)
	}
	_, err = lc.exchange(ctx, carolCode)
	tokenUnavailable(t, "the code exchange", err)
	untouched(t, f, alice, since)

	rs.start()
	p.waitStatus("/readyz", http.StatusOK, 10*time.Second)
	pg, err = b.get(ctx, p.base+"/login?id="+url.QueryEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	if pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "took too long") {
		t.Errorf("the login lost with Redis's data: %s, want the 400 page that says to start again", pg)
	}
	l, id = loginAtCode(t, ctx, rp, b, alice)
	tok := finishLogin(t, ctx, l, p.base, id, code)
	if !slices.Contains(tok.amr, "otp") {
		t.Errorf("amr = %v, want otp", tok.amr)
	}
}

// Redis slower than redis.timeout (every byte through a proxy waits 3 s):
// pages answer 503 within the timeout, not after the default 2 s or the
// delay; /readyz fails, /healthz does not; when Redis is fast again the
// login goes on where it was, with the same code.
func TestRedisSlow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rs := startRedisServer(t)
	px := startTCPProxy(t, rs.addr)
	f := newFixture(t, "sqlite://"+filepath.Join(t.TempDir(), "idp.db"))
	alice := f.mustAddUser("alice")
	const timeout = 300 * time.Millisecond
	p := newProvider(t, providerConfig{database: f.dbURL, redis: "redis://" + px.addr + "/0", prefix: "idp:", secretKey: f.secretKey,
		extra: []string{"IDP_REDIS_TIMEOUT=" + timeout.String()}})
	p.start()
	rp := newRelyingParty(t, p.base, f, nil)
	b := newBrowser(nil)
	since := time.Now()
	l, id := loginAtCode(t, ctx, rp, b, alice)

	px.setDelay(3 * time.Second)
	// Under the default 2 s (or with the delay) these would take 2 s or more.
	limit := timeout + slack
	timed(t, p, "/healthz", http.StatusOK, slack)
	timed(t, p, "/readyz", http.StatusServiceUnavailable, limit)
	code := alice.code(time.Now())
	pg, err := l.submit(ctx, "code", url.Values{"code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	checkUnavailable(t, "the code posted while Redis is slow", pg)
	if pg.took > limit {
		t.Errorf("the code page took %v with redis.timeout %v", pg.took, timeout)
	}
	untouched(t, f, alice, since)

	px.setDelay(0)
	p.waitStatus("/readyz", http.StatusOK, 10*time.Second)
	tok := finishLogin(t, ctx, l, p.base, id, code)
	if !slices.Contains(tok.amr, "otp") {
		t.Errorf("amr = %v, want otp", tok.amr)
	}
}

// PostgreSQL cut off (a proxy in between stops taking and closes
// connections): /readyz fails, /healthz does not, the login pages, the
// admin API and a refresh (not invalid_grant, which would make the portal
// drop the token) answer 503, nothing is written; when the proxy takes
// connections again the provider recovers by itself and the logins go on
// where they were (their state is in Redis).
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	px := startTCPProxy(t, u.Host)
	u.Host = px.addr
	f := newFixture(t, dbURL)
	alice, bob, carol := f.mustAddUser("alice"), f.mustAddUser("bob"), f.mustAddUser("carol")
	opsSecret := "ops-" + secret.RandomToken(32)
	if _, _, err := f.svc.CreateClient(ctx, manage.Operator, manage.NewClient{ID: "ops", Secret: opsSecret,
		Grants: []string{"client_credentials"}, Scopes: []string{"idp:admin"}}); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, providerConfig{database: u.String(), redis: redisURL, prefix: prefix, secretKey: f.secretKey})
	p.start()
	rp := newRelyingParty(t, p.base, f, nil)
	adminToken, err := (&clientcredentials.Config{ClientID: "ops", ClientSecret: opsSecret, TokenURL: rp.oauth.Endpoint.TokenURL,
		Scopes: []string{"idp:admin"}}).Token(rp.ctxWith(ctx))
	if err != nil {
		t.Fatal(err)
	}
	carolTokens := fullLogin(t, ctx, rp, carol)
	since := time.Now()
	la, idA := loginAtCode(t, ctx, rp, newBrowser(nil), alice)
	lb, err := rp.start(ctx, newBrowser(nil))
	if err != nil {
		t.Fatal(err)
	}
	fb, ok := lb.page.formWith("password")
	if !ok {
		t.Fatalf("login page: %s", lb.page)
	}
	idB := fb.values.Get("id")

	px.cut()
	timed(t, p, "/healthz", http.StatusOK, slack)
	timed(t, p, "/readyz", http.StatusServiceUnavailable, 2*time.Second+slack)
	code := alice.code(time.Now())
	pg, err := la.submit(ctx, "code", url.Values{"code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	checkUnavailable(t, "the code posted while the database is down", pg)
	pg, err = lb.submit(ctx, "password", url.Values{"username": {bob.name}, "password": {bob.password}})
	if err != nil {
		t.Fatal(err)
	}
	checkUnavailable(t, "the password posted while the database is down", pg)

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/admin/v1/users", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var problem struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	err = json.NewDecoder(resp.Body).Decode(&problem)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || problem.Status != http.StatusServiceUnavailable ||
		resp.Header.Get("Retry-After") == "" || !strings.Contains(problem.Detail, "temporarily unavailable") {
		t.Errorf("admin API while the database is down: %d %+v (%v), want a 503 problem with Retry-After", resp.StatusCode, problem, err)
	}

	_, err = rp.refresh(ctx, rp.oauth.Endpoint.TokenURL, carolTokens.oauth.RefreshToken)
	tokenUnavailable(t, "a refresh", err)

	px.resume()
	p.waitStatus("/readyz", http.StatusOK, 10*time.Second)
	if _, err := rp.refresh(ctx, rp.oauth.Endpoint.TokenURL, carolTokens.oauth.RefreshToken); err != nil {
		t.Errorf("refresh after the outage with the refresh token tried during it: %v", err)
	}
	untouched(t, f, alice, since)
	untouched(t, f, bob, since)
	if tok := finishLogin(t, ctx, la, p.base, idA, code); !slices.Contains(tok.amr, "otp") {
		t.Errorf("amr = %v, want otp", tok.amr)
	}
	// Bob's login is still at the password step.
	reopen(t, ctx, lb, p.base, idB)
	if err := lb.password(ctx, bob); err != nil {
		t.Fatal(err)
	}
	// The login moved to a new id with the password.
	f2, ok := lb.page.formWith("code")
	if !ok || f2.values.Get("id") == idB {
		t.Fatalf("after the password: %s, want the code page under a new login id", lb.page)
	}
	if tok := finishLogin(t, ctx, lb, p.base, f2.values.Get("id"), bob.code(time.Now())); !slices.Contains(tok.amr, "otp") {
		t.Errorf("amr = %v, want otp", tok.amr)
	}
}
