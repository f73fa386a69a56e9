package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveBuffer is a bytes.Buffer the server's goroutines write to while the
// test reads it.
type serveBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *serveBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *serveBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serveFreePort returns a port nothing listens on (right now).
func serveFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// serveSetup is one provider's directory and environment.
type serveSetup struct {
	dir     string
	environ []string
}

func newServeSetup(t *testing.T) *serveSetup {
	t.Helper()
	dir := t.TempDir()
	return &serveSetup{dir: dir, environ: []string{
		"IDP_DATA_DIR=" + filepath.Join(dir, "data"),
		"IDP_DATABASE_URL=sqlite://" + filepath.Join(dir, "idp.db"),
		"IDP_PASSWORD_ARGON2_MEMORY_KIB=1024",
		"IDP_PASSWORD_ARGON2_ITERATIONS=1",
		"IDP_LOG_FORMAT=json",
		"HOME=" + dir,
	}}
}

// serving is an `idp serve` running in this process.
type serving struct {
	base           string // http://127.0.0.1:PORT, also the issuer
	stdout, stderr *serveBuffer
	cancel         context.CancelFunc
	done           chan error
}

// start runs `idp [args...]` (args include "serve") on a fresh port and
// waits until /healthz answers.
func (s *serveSetup) start(t *testing.T, args ...string) *serving {
	t.Helper()
	// serve makes its logger the default one (the OpenID library logs
	// through it); afterwards let that go to the test's standard error.
	t.Cleanup(func() { slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil))) })

	port := serveFreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	environ := append(append([]string(nil), s.environ...), "IDP_LISTEN="+strings.TrimPrefix(base, "http://"), "IDP_ISSUER="+base)
	srv := &serving{base: base, stdout: &serveBuffer{}, stderr: &serveBuffer{}, done: make(chan error, 1)}
	c := &cli{stdin: strings.NewReader(""), stdout: srv.stdout, stderr: srv.stderr, environ: environ}
	cmd := newRootCommand(c)
	cmd.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	srv.cancel = cancel
	go func() { srv.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-srv.done:
		case <-time.After(10 * time.Second):
			t.Error("idp serve did not stop")
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-srv.done:
			srv.done <- err // for the cleanup
			t.Fatalf("idp serve stopped before answering: %v\nstderr:\n%s", err, srv.stderr)
		default:
		}
		resp, err := serveClient.Get(base + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if strings.TrimSpace(string(body)) != "ok" {
					t.Errorf("/healthz = %q", body)
				}
				return srv
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("idp serve did not answer /healthz within 10 s (last error %v)\nstderr:\n%s", err, srv.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop cancels the command's context and returns what it returned.
func (srv *serving) stop(t *testing.T) error {
	t.Helper()
	srv.cancel()
	select {
	case err := <-srv.done:
		srv.done <- err // for the cleanup
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("idp serve did not return within 5 s of its context being cancelled\nstderr:\n%s", srv.stderr)
		return nil
	}
}

// serveClient does not keep connections, so that nothing delays shutdown.
var serveClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// getJSON fetches url and decodes its JSON body, which must come with want.
func serveGetJSON(t *testing.T, url string, want int, v any) {
	t.Helper()
	resp, err := serveClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d, want %d: %s", url, resp.StatusCode, want, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: not JSON: %v\n%s", url, err, body)
	}
}

// command runs another idp command against the same database (after the
// server stopped) and returns its standard output.
func (s *serveSetup) command(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, environ: s.environ}
	cmd := newRootCommand(c)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("idp %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

func TestServe(t *testing.T) {
	s := newServeSetup(t)
	srv := s.start(t, "serve")

	var ready map[string]string
	serveGetJSON(t, srv.base+"/readyz", http.StatusOK, &ready)
	if ready["status"] != "ok" {
		t.Errorf("/readyz = %v", ready)
	}

	var discovery struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	serveGetJSON(t, srv.base+"/.well-known/openid-configuration", http.StatusOK, &discovery)
	if discovery.Issuer != srv.base {
		t.Errorf("discovery issuer = %q, want %q", discovery.Issuer, srv.base)
	}
	if !strings.HasPrefix(discovery.JWKSURI, srv.base+"/") {
		t.Fatalf("jwks_uri = %q, not on the issuer", discovery.JWKSURI)
	}
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	serveGetJSON(t, discovery.JWKSURI, http.StatusOK, &jwks)
	if len(jwks.Keys) != 1 {
		t.Fatalf("%s has %d keys, want the 1 generated at the first start", discovery.JWKSURI, len(jwks.Keys))
	}
	if k := jwks.Keys[0]; k.Kid == "" || k.Alg != "RS256" || k.D != "" {
		t.Errorf("published key %+v: want a kid, RS256 and no private part", k)
	}

	if err := srv.stop(t); err != nil {
		t.Errorf("idp serve after cancellation = %v, want nil (graceful shutdown)", err)
	}
	if _, err := serveClient.Get(srv.base + "/healthz"); err == nil {
		t.Error("the server still answers after serve returned")
	}

	// The log is JSON (log.format) and says where it listened.
	var started bool
	for _, line := range strings.Split(srv.stderr.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // the warning about the generated secret key is plain text
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if rec["msg"] == "identity provider started" {
			started = true
			if rec["issuer"] != srv.base || rec["listen"] != strings.TrimPrefix(srv.base, "http://") {
				t.Errorf("start log %v", rec)
			}
		}
	}
	if !started {
		t.Errorf("no JSON \"identity provider started\" log line:\n%s", srv.stderr)
	}
	// The secret key was generated into the data directory.
	if _, err := os.Stat(filepath.Join(s.dir, "data", secretKeyFile)); err != nil {
		t.Errorf("no generated secret key: %v", err)
	}

	// A second start reuses the key (no second signing key).
	srv = s.start(t, "serve")
	serveGetJSON(t, srv.base+"/keys", http.StatusOK, &jwks)
	if len(jwks.Keys) != 1 {
		t.Errorf("second start: %d published keys, want 1", len(jwks.Keys))
	}
	if err := srv.stop(t); err != nil {
		t.Errorf("second start: %v", err)
	}
}

func TestServeDemo(t *testing.T) {
	s := newServeSetup(t)
	for run := 1; run <= 2; run++ {
		srv := s.start(t, "serve", "--demo")
		// The hint is printed just after the server starts listening.
		hint := `Log in as "demo" with the password "demo-password"`
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(srv.stdout.String(), hint) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if out := srv.stdout.String(); !strings.Contains(out, hint) || !strings.Contains(out, srv.base) {
			t.Errorf("run %d: standard output %q lacks the login hint and the issuer", run, out)
		}
		if err := srv.stop(t); err != nil {
			t.Fatalf("run %d: idp serve --demo = %v\nstderr:\n%s", run, err, srv.stderr)
		}
	}

	var users []struct {
		Username string `json:"username"`
	}
	if err := json.Unmarshal([]byte(s.command(t, "user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Username != "demo" {
		t.Errorf("users after two demo runs = %+v, want the one demo user", users)
	}
	var clients []struct {
		ClientID     string   `json:"client_id"`
		RedirectURIs []string `json:"redirect_uris"`
	}
	if err := json.Unmarshal([]byte(s.command(t, "client", "list", "--json")), &clients); err != nil {
		t.Fatal(err)
	}
	if len(clients) != 1 || clients[0].ClientID != "portal-demo" {
		t.Errorf("clients after two demo runs = %+v, want portal-demo", clients)
	}
}

// Without --demo nothing is seeded.
func TestServeWithoutDemo(t *testing.T) {
	s := newServeSetup(t)
	srv := s.start(t, "serve")
	if out := srv.stdout.String(); out != "" {
		t.Errorf("serve without --demo printed %q", out)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	if out := s.command(t, "user", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("users = %s, want none", out)
	}
}

func TestServeInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"listen and issuer", []string{"IDP_LISTEN=nope", "IDP_ISSUER=ftp://x"}, []string{"listen:", "issuer:"}},
		{"unknown variable", []string{"IDP_LISTEN_ADDR=127.0.0.1:1"}, []string{"IDP_LISTEN_ADDR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServeSetup(t)
			var out, errOut bytes.Buffer
			c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, environ: append(s.environ, tc.env...)}
			cmd := newRootCommand(c)
			cmd.SetArgs([]string{"serve"})
			done := make(chan error, 1)
			go func() { done <- cmd.ExecuteContext(context.Background()) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("idp serve with an invalid configuration did not return: it started")
			}
			if err == nil {
				t.Fatal("idp serve accepted an invalid configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
			if out.Len() != 0 {
				t.Errorf("standard output %q", out.String())
			}
			// Nothing was created: no database, no secret key.
			for _, p := range []string{filepath.Join(s.dir, "idp.db"), filepath.Join(s.dir, "data")} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s was created before the configuration was checked", p)
				}
			}
		})
	}
}

// Clients declared in the configuration file are stored at start.
func TestServeSyncsConfigClients(t *testing.T) {
	s := newServeSetup(t)
	file := filepath.Join(s.dir, "idp.yaml")
	yaml := `clients:
  - id: portal
    name: Client Portal
    secret: 0123456789abcdef0123456789abcdef-portal
    redirect_uris: [https://portal.example.com/callback]
    post_logout_redirect_uris: [https://portal.example.com/]
    first_party: true
  - id: team-sync
    secret: 0123456789abcdef0123456789abcdef-sync
    grants: [client_credentials]
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := s.start(t, "--config", file, "serve")
	if err := srv.stop(t); err != nil {
		t.Fatalf("idp serve: %v\nstderr:\n%s", err, srv.stderr)
	}

	var clients []struct {
		ClientID     string   `json:"client_id"`
		Name         string   `json:"name"`
		RedirectURIs []string `json:"redirect_uris"`
		Grants       []string `json:"grants"`
		FirstParty   bool     `json:"first_party"`
		Source       string   `json:"source"`
	}
	if err := json.Unmarshal([]byte(s.command(t, "--config", file, "client", "list", "--json")), &clients); err != nil {
		t.Fatal(err)
	}
	byID := map[string]int{}
	for i, cl := range clients {
		byID[cl.ClientID] = i
	}
	if len(clients) != 2 {
		t.Fatalf("clients = %+v, want portal and team-sync", clients)
	}
	for _, id := range []string{"portal", "team-sync"} {
		i, ok := byID[id]
		if !ok {
			t.Errorf("client %s was not synced: %+v", id, clients)
			continue
		}
		if clients[i].Source != "config" {
			t.Errorf("client %s has source %q, want config", id, clients[i].Source)
		}
	}
	if p := clients[byID["portal"]]; p.Name != "Client Portal" || !p.FirstParty ||
		len(p.RedirectURIs) != 1 || p.RedirectURIs[0] != "https://portal.example.com/callback" {
		t.Errorf("portal = %+v", p)
	}
	if ts := clients[byID["team-sync"]]; len(ts.Grants) != 1 || ts.Grants[0] != "client_credentials" {
		t.Errorf("team-sync grants = %v", ts.Grants)
	}
}
