// Package idptest starts a whole provider for tests: the real server behind
// httptest, on a real durable store (SQLite, or PostgreSQL) and a real
// pending-login store (in-process, or Redis), with an injectable clock, and
// a browser-like HTTP client that keeps cookies and stops at redirects.
package idptest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp"
	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/mail"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa/sms"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/signing"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/storage/pending/redisstore"
	"github.com/hostportal/idp/storage/sqlstore"
	"github.com/hostportal/idp/templates"
)

// Backend names a durable store and a pending-login store.
type Backend struct {
	Name     string
	Postgres bool
	Redis    bool
}

// Backends are the two set-ups every end-to-end test runs on.
var Backends = []Backend{
	{Name: "sqlite+memory"},
	{Name: "postgres+redis", Postgres: true, Redis: true},
}

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Env is a running provider.
type Env struct {
	T         testing.TB
	Issuer    string
	Config    *config.Config
	Store     storage.Store
	Pending   pending.Store
	SecretKey []byte
	Keys      *secret.Keys
	Signing   *signing.Set
	Hasher    *password.Hasher
	Manage    *manage.Service
	Clock     *Clock
	Server    *idp.Server
	HTTP      *httptest.Server
}

// Options adjust the configuration before the server starts.
type Options struct {
	Configure func(*config.Config)
	// Store and Pending reuse existing stores (a restart); SecretKey too.
	Store     storage.Store
	Pending   pending.Store
	SecretKey []byte
	// Addr makes the server listen on this address (a restart keeps the issuer).
	Addr string
	// Localhost makes the issuer http://localhost:PORT instead of
	// http://127.0.0.1:PORT: WebAuthn needs a domain name as relying party
	// id, and browsers refuse IP addresses.
	Localhost bool
}

// New starts a provider on backend b.
func New(t testing.TB, b Backend, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	e := &Env{T: t, Clock: &Clock{t: time.Now().UTC().Truncate(time.Second)}}

	e.HTTP = httptest.NewUnstartedServer(nil)
	if o.Addr != "" {
		ln, err := net.Listen("tcp", o.Addr)
		if err != nil {
			t.Fatalf("listening on %s again: %v", o.Addr, err)
		}
		e.HTTP.Listener.Close()
		e.HTTP.Listener = ln
	}
	e.Issuer = "http://" + e.HTTP.Listener.Addr().String()
	if o.Localhost {
		_, port, _ := net.SplitHostPort(e.HTTP.Listener.Addr().String())
		e.Issuer = "http://localhost:" + port
	}
	cfg := config.Defaults()
	cfg.Issuer = e.Issuer
	cfg.DataDir = t.TempDir()
	// Cheap hashes keep the tests fast; the production parameters are the defaults.
	cfg.Password.Argon2 = config.Argon2Config{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	e.SecretKey = o.SecretKey
	if e.SecretKey == nil {
		e.SecretKey = make([]byte, 32)
		rand.Read(e.SecretKey)
	}
	if err := cfg.SetSecretKey(e.SecretKey); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	e.Config = &cfg

	e.Store = o.Store
	if e.Store == nil {
		url := "sqlite://" + filepath.Join(t.TempDir(), "idp.db")
		if b.Postgres {
			url = testenv.PostgresURL(t)
		}
		st, err := sqlstore.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		e.Store = st
	}
	e.Pending = o.Pending
	if e.Pending == nil {
		if b.Redis {
			url, prefix := testenv.RedisURL(t)
			rs, err := redisstore.Open(url, prefix)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rs.Close() })
			e.Pending = rs
		} else {
			m := pending.NewMemory()
			m.Now = e.Clock.Now
			t.Cleanup(func() { m.Close() })
			e.Pending = m
		}
	}

	var err error
	if e.Keys, err = secret.NewKeys(e.SecretKey); err != nil {
		t.Fatal(err)
	}
	a := cfg.Password.Argon2
	if e.Hasher, err = password.NewHasher(password.Params{MemoryKiB: a.MemoryKiB, Iterations: a.Iterations, Parallelism: a.Parallelism}, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := signing.EnsureActive(ctx, e.Store, e.Keys, cfg.Keys.Algorithm, e.Clock.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	e.Signing = &signing.Set{Store: e.Store, Keys: e.Keys, Now: e.Clock.Now}
	if err := e.Signing.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e.Manage = &manage.Service{Store: e.Store, Hasher: e.Hasher, Now: e.Clock.Now}
	pages, err := templates.Load()
	if err != nil {
		t.Fatal(err)
	}
	opts := idp.Options{Config: e.Config, Store: e.Store, Pending: e.Pending, Keys: e.Keys,
		Signing: e.Signing, Hasher: e.Hasher, Pages: pages, Now: e.Clock.Now}
	sender, err := sms.FromConfig(cfg.SMS, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sender != nil {
		opts.SMS = sender
	}
	mailer, err := mail.FromConfig(cfg.Email, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mailer != nil {
		opts.Mail = mailer
	}
	e.Server, err = idp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.HTTP.Config.Handler = e.Server
	e.HTTP.Start()
	t.Cleanup(e.HTTP.Close)
	t.Cleanup(e.Server.Wait) // background e-mails end before the stores close
	return e
}

// Restart stops the server and starts a new one on the same address, stores
// and secret key (with a new in-process pending store unless Redis is used,
// as after a real restart).
func (e *Env) Restart(t testing.TB, b Backend) *Env {
	addr := e.HTTP.Listener.Addr().String()
	e.HTTP.Close()
	o := Options{Store: e.Store, SecretKey: e.SecretKey, Addr: addr, Localhost: strings.HasPrefix(e.Issuer, "http://localhost:")}
	if b.Redis {
		o.Pending = e.Pending
	}
	return New(t, b, o)
}

// AddUser creates a user with a password and returns it.
func (e *Env) AddUser(username, pw string) *storage.User {
	e.T.Helper()
	u, err := e.Manage.CreateUser(context.Background(), manage.Operator, manage.NewUser{
		Username: username, Email: username + "@example.com", Name: "User " + username, Password: pw})
	if err != nil {
		e.T.Fatal(err)
	}
	return u
}

// AddClient registers a relying party and returns its secret (empty for public clients).
func (e *Env) AddClient(nc manage.NewClient) string {
	e.T.Helper()
	_, generated, err := e.Manage.CreateClient(context.Background(), manage.Operator, nc)
	if err != nil {
		e.T.Fatal(err)
	}
	if generated != "" {
		return generated
	}
	return nc.Secret
}

// Browser is an HTTP client with cookies that does not follow redirects.
type Browser struct {
	T      testing.TB
	Client *http.Client
}

// NewBrowser returns a browser with an empty cookie jar.
func (e *Env) NewBrowser() *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.T.Fatal(err)
	}
	return &Browser{T: e.T, Client: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// Page is a response with its body read.
type Page struct {
	Status   int
	Header   http.Header
	Body     string
	Location string
	URL      string
}

func (b *Browser) do(req *http.Request) *Page {
	b.T.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		b.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.T.Fatal(err)
	}
	p := &Page{Status: resp.StatusCode, Header: resp.Header, Body: string(body), URL: req.URL.String()}
	if loc, err := resp.Location(); err == nil {
		p.Location = loc.String()
	}
	return p
}

// Get fetches u.
func (b *Browser) Get(u string) *Page {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.T.Fatal(err)
	}
	return b.do(req)
}

// Post submits a form to u.
func (b *Browser) Post(u string, form url.Values) *Page {
	b.T.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// Follow follows redirects from p while they stay on the issuer, and
// returns the first page that is not a redirect on the issuer, or the
// redirect that leaves it.
func (b *Browser) Follow(issuer string, p *Page) *Page {
	b.T.Helper()
	for range 20 {
		if p.Location == "" || !strings.HasPrefix(p.Location, issuer+"/") {
			return p
		}
		p = b.Get(p.Location)
	}
	b.T.Fatalf("too many redirects, last at %s", p.URL)
	return nil
}

var inputRE = regexp.MustCompile(`<input[^>]*>`)
var attrRE = regexp.MustCompile(`(name|value)="([^"]*)"`)

// Form returns the hidden inputs of the page (csrf_token, id, ...).
func (p *Page) Form() url.Values {
	v := url.Values{}
	for _, in := range inputRE.FindAllString(p.Body, -1) {
		if !strings.Contains(in, `type="hidden"`) {
			continue
		}
		var name, value string
		for _, m := range attrRE.FindAllStringSubmatch(in, -1) {
			if m[1] == "name" {
				name = m[2]
			} else {
				value = unescape(m[2])
			}
		}
		if name != "" {
			v.Set(name, value)
		}
	}
	return v
}

func unescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`)
	return r.Replace(s)
}

// Contains reports whether the body contains s.
func (p *Page) Contains(s string) bool { return strings.Contains(p.Body, s) }

func (p *Page) String() string {
	return fmt.Sprintf("%d %s (Location %q)", p.Status, p.URL, p.Location)
}
