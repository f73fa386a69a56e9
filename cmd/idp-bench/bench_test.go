package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage/sqlstore"
)

const testSeed = "test-seed"

// newProvider starts a provider (SQLite, in-process pending logins, cheap
// argon2id) seeded with users bench users by the seed code, and returns
// the run configuration for it. The provider's clock runs 120 times as
// fast as the wall clock, a 30 s time step every 250 ms, so that a few
// users per virtual user last a whole test (and the waits are exercised).
func newProvider(t *testing.T, users int) (*idptest.Env, runConfig) {
	t.Helper()
	env := idptest.New(t, idptest.Backends[0], idptest.Options{})
	plan := seedPlan{Users: users, Seed: testSeed, ClientID: defaultClientID, ClientSecret: defaultClientSecret(testSeed)}
	res, err := seed(context.Background(), env.Manage, env.Keys, plan)
	if err != nil {
		t.Fatal(err)
	}
	if res.UsersCreated != users || res.TOTPEnrolled != users || !res.ClientCreated {
		t.Fatalf("seed: %+v", res)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				env.Clock.Advance(30 * time.Second)
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	a := env.Config.Password.Argon2
	return env, runConfig{
		Issuer: env.Issuer, Mode: modeLogin, Concurrency: 4, Duration: 1500 * time.Millisecond, Max: defaultMax,
		Users: users, Seed: testSeed, ClientID: defaultClientID, Secret: defaultClientSecret(testSeed),
		Argon2:            password.Params{MemoryKiB: a.MemoryKiB, Iterations: a.Iterations, Parallelism: a.Parallelism},
		ReferenceDuration: 200 * time.Millisecond, Now: env.Clock.Now,
		ServerPID: os.Getpid(), // the provider runs in this process
	}
}

func TestRunModes(t *testing.T) {
	_, base := newProvider(t, 40)
	for _, tc := range []struct {
		mode              string
		refresh, userinfo bool
		ops               []string // operation kinds that must have succeeded
		reference         string
	}{
		{mode: modeLogin, refresh: true, userinfo: true, ops: []string{"login", "refresh", "userinfo"}, reference: "argon2id m=1024 t=1 p=1"},
		{mode: modeRefresh, ops: []string{"refresh"}, reference: "RS256 (2048-bit key)"},
		{mode: modeClientCredentials, ops: []string{"client_credentials"}},
		{mode: modeDiscovery, ops: []string{"discovery", "jwks"}, reference: "http.FileServer"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			rc := base
			rc.Mode, rc.Refresh, rc.Userinfo = tc.mode, tc.refresh, tc.userinfo
			rep, err := run(context.Background(), rc)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.print(&out)
			t.Logf("\n%s", out.String())
			if rep.Failed() != 0 || rep.OK() == 0 {
				t.Fatalf("%d ok, %d failed", rep.OK(), rep.Failed())
			}
			for _, op := range tc.ops {
				if rep.Stats.okOf(op) == 0 {
					t.Errorf("no successful %s", op)
				}
			}
			if !strings.HasPrefix(rep.Stopped, "duration") || rep.Elapsed < rc.Duration {
				t.Errorf("stopped by %s after %s", rep.Stopped, rep.Elapsed)
			}
			want := []string{"throughput: ", "p50", "p95", "p99", "errors: none", "server CPU: ", "client CPU: ", "target: "}
			if tc.reference != "" {
				want = append(want, "reference before the load: "+tc.reference, "reference after the load: "+tc.reference)
			}
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the report lacks %q", w)
				}
			}
			if tc.reference != "" && (rep.Reference == nil || rep.Reference.count == 0 || len(rep.Verdicts()) == 0 && !tc.refresh) {
				t.Errorf("no reference or verdict: %+v", rep.Reference)
			}
		})
	}
}

func TestStopsAtMax(t *testing.T) {
	_, base := newProvider(t, 8)
	for _, tc := range []struct {
		mode     string
		verdicts int // the targets judged
	}{
		{modeLogin, 2}, // the rate and the server's CPU per login
		{modeClientCredentials, 1},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			rc := base
			rc.Mode, rc.Max, rc.Duration = tc.mode, 7, time.Minute
			rep, err := run(context.Background(), rc)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != 7 || rep.Failed() != 0 || !strings.HasPrefix(rep.Stopped, "max") || rep.Elapsed > 10*time.Second {
				t.Fatalf("%d ok, %d failed, stopped by %s after %s", rep.OK(), rep.Failed(), rep.Stopped, rep.Elapsed)
			}
			if n := len(rep.Verdicts()); n != tc.verdicts {
				t.Errorf("%d targets judged, want %d", n, tc.verdicts)
			}
		})
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, issuer := range []string{"http://192.0.2.1:8080", "https://example.com", "http://[2001:db8::1]:8080", "http://10.0.0.1", "http://127.0.0.1.example.com"} {
		var stdout, stderr bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
		root := newRootCommand(c)
		root.SetArgs([]string{"run", "--issuer", issuer, "--argon2", "m=1024,t=1,p=1", "--duration", "1s"})
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), "only talks to loopback addresses") {
			t.Errorf("issuer %s: %v", issuer, err)
		}
	}

	// A provider on loopback whose discovery document points elsewhere.
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"` + srv.URL + `","authorization_endpoint":"` + srv.URL + `/authorize",` +
			`"token_endpoint":"http://192.0.2.1/oauth/token","userinfo_endpoint":"` + srv.URL + `/userinfo","jwks_uri":"` + srv.URL + `/keys"}`))
	}))
	defer srv.Close()
	rc := runConfig{Issuer: srv.URL, Mode: modeClientCredentials, Concurrency: 1, Duration: time.Second, Max: 1,
		ClientID: "bench", Secret: "s", ReferenceDuration: time.Second}
	if _, err := run(context.Background(), rc); err == nil || !strings.Contains(err.Error(), "token_endpoint") {
		t.Errorf("a token endpoint off the machine: %v", err)
	}
	if _, err := loopbackURL(context.Background(), "x", "http://localhost:1"); err != nil {
		t.Errorf("localhost refused: %v", err)
	}
}

// TestSeedCommand seeds through the command line, as an operator would,
// into a database and with a secret key found as `idp serve` finds them.
func TestSeedCommand(t *testing.T) {
	dir := t.TempDir()
	environ := []string{
		"IDP_DATABASE_URL=sqlite://" + filepath.Join(dir, "idp.db"),
		"IDP_DATA_DIR=" + dir,
		"IDP_PASSWORD_ARGON2_MEMORY_KIB=1024",
		"IDP_PASSWORD_ARGON2_ITERATIONS=1",
	}
	seedCLI := func(stdin string, args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		root := newRootCommand(&cli{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, environ: environ})
		root.SetArgs(append([]string{"seed"}, args...))
		err := root.ExecuteContext(context.Background())
		return stdout.String(), err
	}
	out, err := seedCLI("", "--users", "3")
	if err != nil || !strings.Contains(out, "users: 3 (3 created, 0 already there)") || !strings.Contains(out, "client bench: created") {
		t.Fatalf("first seed: %v\n%s", err, out)
	}
	out, err = seedCLI("", "--users", "3")
	if err != nil || !strings.Contains(out, "(0 created, 3 already there)") || !strings.Contains(out, "0 enrolled, 3 already there") ||
		!strings.Contains(out, "client bench: already there") {
		t.Fatalf("second seed: %v\n%s", err, out)
	}
	if _, err := seedCLI("another-secret-another-secret-another\n", "--users", "3", "--secret-stdin"); err == nil ||
		!strings.Contains(err.Error(), "already exists with another secret") {
		t.Fatalf("an existing client with another secret: %v", err)
	}

	// The enrolment is sealed with the key in data_dir/secret.key, under the user's id.
	cfg := config.Defaults()
	cfg.DataDir = dir
	if err := loadOrCreateSecretKey(&cfg); err != nil {
		t.Fatal(err)
	}
	keys, err := secret.NewKeys(cfg.SecretKeyBytes())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "idp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.UserByUsername(ctx, "bench-0002")
	if err != nil {
		t.Fatal(err)
	}
	tt, err := st.TOTPByUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := keys.Open(tt.Secret, []byte("totp:"+u.ID))
	if err != nil || !bytes.Equal(got, totpSecret(defaultSeed, "bench-0002")) {
		t.Fatalf("the sealed TOTP secret: %x, %v", got, err)
	}
}
