package reliability

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/mfa"
)

// roundRobin is a reverse proxy that sends each request to the next
// backend in turn, and remembers which one served what.
type roundRobin struct {
	backends []*url.URL
	proxies  []*httputil.ReverseProxy

	mu     sync.Mutex
	next   int
	served []served
}

type served struct {
	method, path string
	backend      int
}

func newRoundRobin(backends ...string) *roundRobin {
	rr := &roundRobin{}
	for _, b := range backends {
		u, _ := url.Parse(b)
		rr.backends = append(rr.backends, u)
		rr.proxies = append(rr.proxies, &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the issuer's host, as a real proxy keeps it
			r.SetXForwarded()
		}})
	}
	return rr
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rr.mu.Lock()
	i := rr.next
	rr.next = (rr.next + 1) % len(rr.proxies)
	rr.served = append(rr.served, served{r.Method, r.URL.Path, i})
	rr.mu.Unlock()
	rr.proxies[i].ServeHTTP(w, r)
}

// last is the backend that served the last method request to path, -1
// for none.
func (rr *roundRobin) last(method, path string) int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for i := len(rr.served) - 1; i >= 0; i-- {
		if s := rr.served[i]; s.method == method && s.path == path {
			return s.backend
		}
	}
	return -1
}

// upNext is the backend the next request goes to.
func (rr *roundRobin) upNext() int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.next
}

// backendsOf is the set of backends that served requests from index
// from on whose path starts with prefix.
func (rr *roundRobin) backendsOf(from int, method, prefix string) []int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	var out []int
	for _, s := range rr.served[from:] {
		if s.method == method && strings.HasPrefix(s.path, prefix) && !slices.Contains(out, s.backend) {
			out = append(out, s.backend)
		}
	}
	slices.Sort(out)
	return out
}

func (rr *roundRobin) mark() int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return len(rr.served)
}

var newKeyRE = regexp.MustCompile(`New signing key (\S+) `)

// Two `idp serve` processes on one PostgreSQL and one Redis, behind a
// proxy that alternates between them at every request, with the proxy's
// URL as their issuer: a login's steps land on both and it yields tokens a
// relying party verifies; `idp keys rotate` is taken up by both within
// keys.reload_interval; the per-login failure limit counts the
// failures on both.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	f := newFixture(t, dbURL)
	alice, bob := f.mustAddUser("alice"), f.mustAddUser("bob")

	front := httptest.NewUnstartedServer(nil)
	issuer := "http://" + front.Listener.Addr().String()
	const reload = time.Second
	cfg := providerConfig{issuer: issuer, database: dbURL, redis: redisURL, prefix: prefix, secretKey: f.secretKey,
		extra: []string{"IDP_KEYS_RELOAD_INTERVAL=" + reload.String(), "IDP_TRUSTED_PROXIES=127.0.0.1"}}
	instances := []*provider{newProvider(t, cfg), newProvider(t, cfg)}
	for _, p := range instances {
		p.start() // one after the other: the first makes the first signing key
	}
	rr := newRoundRobin(instances[0].base, instances[1].base)
	front.Config.Handler = rr
	front.Start()
	t.Cleanup(front.Close)
	rp := newRelyingParty(t, issuer, f, nil)

	// One login across both instances.
	mark := rr.mark()
	l, err := rp.start(ctx, newBrowser(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.password(ctx, alice); err != nil {
		t.Fatal(err)
	}
	started := rr.last(http.MethodGet, "/authorize")
	if rr.upNext() == started {
		// Another request in between, so that the code goes to the
		// instance that did not start the login.
		resp, err := http.Get(issuer + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if err := l.totp(ctx, alice.code(time.Now()), false); err != nil {
		t.Fatal(err)
	}
	tok, err := l.finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.idToken.Subject != alice.id || !slices.Contains(tok.amr, "otp") {
		t.Errorf("ID token: sub %s amr %v, want %s with otp", tok.idToken.Subject, tok.amr, alice.id)
	}
	finished := rr.last(http.MethodPost, "/login/mfa")
	if started < 0 || finished < 0 || finished == started {
		t.Errorf("the login started on instance %d and its code went to %d; want the other one", started, finished)
	}
	if got := rr.backendsOf(mark, http.MethodGet, "/login"); len(got) != 2 {
		t.Errorf("the login pages were served by instances %v, want both", got)
	}

	// A rotation by the operator, seen by both instances.
	out := instances[0].command(ctx, "", "keys", "rotate")
	m := newKeyRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("idp keys rotate printed %q", out)
	}
	newKey := m[1]
	start := time.Now()
	for i, p := range instances {
		deadline := time.Now().Add(reload + 5*time.Second)
		for !publishes(ctx, p.base+"/keys", newKey) {
			if time.Now().After(deadline) {
				t.Fatalf("instance %d does not publish the new key %s %v after the rotation", i, newKey, time.Since(start))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("both instances publish the new key %v after idp keys rotate", time.Since(start).Round(10*time.Millisecond))
	refresh := tok.oauth.RefreshToken
	tokenPath := strings.TrimPrefix(rp.oauth.Endpoint.TokenURL, issuer)
	for i, p := range instances {
		// Reloading publishes and signs in one step: a token from this
		// instance is signed with the new key now.
		t2, err := rp.refresh(ctx, p.base+tokenPath, refresh)
		if err != nil {
			t.Fatalf("refresh at instance %d after the rotation: %v", i, err)
		}
		if t2.kid != newKey {
			t.Errorf("instance %d signs with %s after the rotation, want %s", i, t2.kid, newKey)
		}
		refresh = t2.oauth.RefreshToken
	}

	// The per-login failure limit, counted across both instances: with
	// each instance counting its own, the fifth failure would be refused
	// like the others.
	l, err = rp.start(ctx, newBrowser(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.password(ctx, bob); err != nil {
		t.Fatal(err)
	}
	wrong := wrongCode(bob)
	mark = rr.mark()
	for i := 1; i <= 5; i++ {
		p, err := l.submit(ctx, "code", url.Values{"code": {wrong}})
		if err != nil {
			t.Fatal(err)
		}
		want := http.StatusUnauthorized
		if i == 5 {
			want = http.StatusTooManyRequests
		}
		if p.status != want {
			t.Fatalf("wrong code %d: %s, want %d", i, p, want)
		}
	}
	if got := rr.backendsOf(mark, http.MethodPost, "/login/mfa"); len(got) != 2 {
		t.Errorf("the wrong codes went to instances %v, want both", got)
	}
}

// publishes reports whether the JWKS at u lists kid.
func publishes(ctx context.Context, u, kid string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"kid":"`+kid+`"`)
}

// wrongCode is six digits that are not u's code now, a step before or after.
func wrongCode(u *user) string {
	now := time.Now()
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if c != u.code(now) && c != u.code(now.Add(-mfa.TOTPPeriod)) && c != u.code(now.Add(mfa.TOTPPeriod)) &&
			c != u.code(now.Add(2*mfa.TOTPPeriod)) {
			return c
		}
	}
	panic("unreachable")
}
