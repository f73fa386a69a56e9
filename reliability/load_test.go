package reliability

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/mfa"
)

// loadUsers is how many users log in at once.
const loadUsers = 300

// passwordsAtOnce bounds the passwords the browsers post at once. The
// provider checks at most one password per CPU at a time and lets at most
// 64 per CPU wait; past that it answers 503 Too busy at once, by design
// (password.Hasher: the memory of argon2id is the limit). 300 posted
// together on 2 CPUs overflow that queue, so the browsers take turns at the
// password, within the queue of one CPU, and everything else at once.
const passwordsAtOnce = 64

// loadResult is what one user's part of the load test got.
type loadResult struct {
	refresh string // the refresh token of the one login that went through
	sub     string
	step    int64 // the TOTP time step of the code used
}

// 300 users log in at once (password, then the authenticator code) on one
// provider with PostgreSQL and Redis. Each user's code is sent from two
// browsers at the same moment, and each authorization code redeemed twice
// at the same moment: none of the logins fails, each code is accepted
// exactly once (the other use is refused as a reuse), each authorization
// code gives tokens exactly once, the refresh tokens are all different and
// all stored for their user, and the audit log has exactly the events of
// these logins.
func TestLoad(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	f := newFixture(t, dbURL)
	users := make([]*user, loadUsers)
	var seedErr atomic.Value
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 4 { // each holds a database connection: the server's are few (max_connections)
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < loadUsers; i = int(next.Add(1)) - 1 {
				u, err := f.addUser(ctx, fmt.Sprintf("load-%03d", i))
				if err != nil {
					seedErr.Store(err)
					return
				}
				users[i] = u
			}
		})
	}
	wg.Wait()
	if err, ok := seedErr.Load().(error); ok {
		t.Fatal(err)
	}
	// Every user's second browser replays a code, a failed check: 300 from
	// one loopback address would trip the per-network brute-force limit,
	// which is tested on its own, so it is raised here.
	p := newProvider(t, providerConfig{database: dbURL, redis: redisURL, prefix: prefix, secretKey: f.secretKey,
		extra: []string{"IDP_REGULATION_NETWORK_FAILURES=100000"}})
	p.start()
	tr := &http.Transport{MaxIdleConns: 4 * loadUsers, MaxIdleConnsPerHost: 4 * loadUsers, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	rp := newRelyingParty(t, p.base, f, tr)

	start := time.Now()
	results := make([]loadResult, loadUsers)
	errs := make([]error, loadUsers)
	passwords := make(chan struct{}, passwordsAtOnce)
	for i, u := range users {
		wg.Go(func() { results[i], errs[i] = loadLogin(ctx, rp, tr, passwords, u) })
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d users logged in at once, each code sent twice and each authorization code redeemed twice, in %v",
		loadUsers, took.Round(time.Millisecond))
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed++; failed <= 10 {
				t.Errorf("%s: %v", users[i].name, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d logins failed; the provider's errors:\n%s", failed, loadUsers, p.out.lines("level=ERROR", 20))
	}

	// What the database holds: one refresh token per login, the code's
	// time step, and the audit events of exactly these logins.
	seen := map[string]bool{}
	for i, r := range results {
		u := users[i]
		if seen[r.refresh] {
			t.Errorf("%s got a refresh token another login got", u.name)
		}
		seen[r.refresh] = true
		if r.sub != u.id {
			t.Errorf("%s: ID token for %s", u.name, r.sub)
		}
		sum := sha256.Sum256([]byte(r.refresh))
		rec, err := f.store.RefreshTokenByHash(ctx, hex.EncodeToString(sum[:]))
		if err != nil {
			t.Errorf("%s: refresh token not stored: %v", u.name, err)
		} else if rec.UserID != u.id || rec.ClientID != f.clientID || !rec.UsedAt.IsZero() || !rec.RevokedAt.IsZero() {
			t.Errorf("%s: refresh token stored for user %s client %s used %v revoked %v", u.name, rec.UserID, rec.ClientID, rec.UsedAt, rec.RevokedAt)
		}
		totp, err := f.store.TOTPByUser(ctx, u.id)
		if err != nil {
			t.Fatal(err)
		}
		if totp.LastStep != r.step {
			t.Errorf("%s: last accepted step %d, want %d", u.name, totp.LastStep, r.step)
		}
		events, err := f.audit(ctx, u.id, start)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"login.succeeded": 1, "mfa.passed": 1, "mfa.failed": 1}
		for typ, evs := range events {
			if len(evs) != want[typ] {
				t.Errorf("%s: %d %s events, want %d", u.name, len(evs), typ, want[typ])
			}
		}
		for typ, n := range want {
			if len(events[typ]) != n {
				t.Errorf("%s: %d %s events, want %d", u.name, len(events[typ]), typ, n)
			}
		}
		if evs := events["mfa.failed"]; len(evs) == 1 && evs[0].Details["reason"] != "code already used" {
			t.Errorf("%s: the second use of the code failed for %q, want code already used", u.name, evs[0].Details["reason"])
		}
	}
}

// loadLogin is one user's part: two browsers at the code page, the same
// code from both at once (exactly one goes through), then the
// authorization code redeemed twice at once (exactly once).
func loadLogin(ctx context.Context, rp *relyingParty, tr http.RoundTripper, passwords chan struct{}, u *user) (loadResult, error) {
	var logins [2]*login
	for i := range logins {
		l, err := rp.start(ctx, newBrowser(tr))
		if err == nil {
			passwords <- struct{}{}
			err = l.password(ctx, u)
			<-passwords
		}
		if err != nil {
			return loadResult{}, fmt.Errorf("browser %d: %w", i+1, err)
		}
		if _, ok := l.page.formWith("code"); !ok {
			return loadResult{}, fmt.Errorf("browser %d after the password: %s", i+1, l.page)
		}
		logins[i] = l
	}
	now := time.Now()
	code, step := u.code(now), mfa.TOTPStep(now)
	var pages [2]*page
	var errs [2]error
	var wg sync.WaitGroup
	for i, l := range logins {
		wg.Go(func() { pages[i], errs[i] = l.submit(ctx, "code", url.Values{"code": {code}}) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return loadResult{}, err
	}
	var winner *login
	for i, p := range pages {
		switch {
		case p.status == http.StatusSeeOther && winner == nil:
			winner = logins[i]
		case p.status == http.StatusUnauthorized && strings.Contains(p.body, "already used"):
		default:
			return loadResult{}, fmt.Errorf("the code from browser %d: %s", i+1, p)
		}
	}
	if winner == nil {
		return loadResult{}, errors.New("the code was refused in both browsers")
	}
	if err := winner.follow(ctx); err != nil {
		return loadResult{}, err
	}
	authCode, err := winner.code()
	if err != nil {
		return loadResult{}, err
	}
	var toks [2]*tokens
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = winner.exchange(ctx, authCode) })
	}
	wg.Wait()
	var got *tokens
	for i := range toks {
		var re *oauth2.RetrieveError
		switch {
		case errs[i] == nil && got == nil:
			got = toks[i]
		case errs[i] == nil:
			return loadResult{}, errors.New("the authorization code gave tokens twice")
		case errors.As(errs[i], &re) && re.ErrorCode == "invalid_grant":
		default:
			return loadResult{}, fmt.Errorf("redeeming the authorization code: %w", errs[i])
		}
	}
	if got == nil {
		return loadResult{}, fmt.Errorf("the authorization code gave no tokens: %v", errs[0])
	}
	if got.oauth.RefreshToken == "" {
		return loadResult{}, errors.New("no refresh token")
	}
	return loadResult{refresh: got.oauth.RefreshToken, sub: got.idToken.Subject, step: step}, nil
}
