package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/hostportal/idp/config"
)

// testEnv runs the root command in-process against its own SQLite database.
type testEnv struct {
	t       *testing.T
	dir     string
	environ []string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	dir := t.TempDir()
	return &testEnv{t: t, dir: dir, environ: []string{
		"IDP_DATABASE_URL=sqlite://" + filepath.Join(dir, "idp.db"),
		"IDP_DATA_DIR=" + filepath.Join(dir, "data"),
		"IDP_PASSWORD_ARGON2_MEMORY_KIB=1024",
		"IDP_PASSWORD_ARGON2_ITERATIONS=1",
		"HOME=" + dir, // not an IDP_ variable: ignored
	}}
}

// run executes `idp args...` with stdin and returns what it wrote.
func (e *testEnv) run(stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	c := &cli{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, environ: e.environ}
	cmd := newRootCommand(c)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// ok runs a command that must succeed and returns its standard output.
func (e *testEnv) ok(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, err := e.run(stdin, args...)
	if err != nil {
		e.t.Fatalf("idp %s: %v (stderr %q)", strings.Join(args, " "), err, errOut)
	}
	return out
}

// fails runs a command that must fail with a message containing want, and
// write nothing on standard output.
func (e *testEnv) fails(stdin, want string, args ...string) error {
	e.t.Helper()
	out, _, err := e.run(stdin, args...)
	if err == nil {
		e.t.Fatalf("idp %s succeeded (stdout %q), want an error containing %q", strings.Join(args, " "), out, want)
	}
	if !strings.Contains(err.Error(), want) {
		e.t.Errorf("idp %s: error %q, want it to contain %q", strings.Join(args, " "), err, want)
	}
	if out != "" {
		e.t.Errorf("idp %s failed but wrote %q on standard output", strings.Join(args, " "), out)
	}
	return err
}

// jsonKeys decodes one JSON object and returns its keys, sorted.
func jsonKeys(t *testing.T, obj map[string]any) []string {
	t.Helper()
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
	return v
}

const pw = "correct horse battery staple"

var userKeys = []string{"created_at", "disabled", "email", "id", "mfa", "name", "phone", "phone_verified", "username"}

func TestPrintError(t *testing.T) {
	var b bytes.Buffer
	printError(&b, errors.Join(errors.New("first problem"), errors.New("second problem")))
	if got, want := b.String(), "idp: first problem\nidp: second problem\n"; got != want {
		t.Errorf("printError = %q, want %q", got, want)
	}
}

func TestVersionAndMigrate(t *testing.T) {
	e := newTestEnv(t)
	out := e.ok("", "version")
	if !strings.HasPrefix(out, "idp dev") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version = %q", out)
	}
	if out := e.ok("", "migrate"); !strings.Contains(out, "up to date") {
		t.Errorf("migrate = %q", out)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "idp.db")); err != nil {
		t.Errorf("migrate made no database: %v", err)
	}
	// Twice is fine.
	e.ok("", "migrate")
}

func TestUserLifecycle(t *testing.T) {
	e := newTestEnv(t)
	out := e.ok(pw+"\n", "user", "add", "Alice", "--email", "alice@example.com", "--name", "Alice Liddell", "--phone", "+1 415 555 2671")
	if !strings.Contains(out, "Created user alice") || strings.Contains(out, "without a password") {
		t.Errorf("user add = %q", out)
	}
	out = e.ok("", "user", "add", "bob", "--email", "bob@example.com")
	if !strings.Contains(out, "without a password") || !strings.Contains(out, "idp user set-password bob") {
		t.Errorf("user add without a password = %q", out)
	}

	alice := decodeJSON[map[string]any](t, e.ok("", "user", "show", "alice", "--json"))
	if got := jsonKeys(t, alice); !slices.Equal(got, userKeys) {
		t.Errorf("user show --json keys = %v, want %v", got, userKeys)
	}
	if alice["username"] != "alice" || alice["phone"] != "+14155552671" || alice["phone_verified"] != true ||
		alice["name"] != "Alice Liddell" || alice["disabled"] != false || alice["id"] == "" {
		t.Errorf("alice = %v", alice)
	}
	if out := e.ok("", "user", "show", "bob"); !strings.Contains(out, "password:") || !strings.Contains(out, "not set") {
		t.Errorf("user show bob = %q", out)
	}

	// The password set on stdin (trailing CRLF trimmed).
	if out := e.ok("another long passphrase\r\n", "user", "set-password", "bob"); !strings.Contains(out, "Changed the password of bob") {
		t.Errorf("set-password = %q", out)
	}
	if out := e.ok("", "user", "show", "bob"); strings.Contains(out, "not set") {
		t.Errorf("after set-password: %q", out)
	}

	if out := e.ok("", "user", "set-phone", "bob", "+44 7911 123456"); !strings.Contains(out, "+447911123456 (verified)") {
		t.Errorf("set-phone = %q", out)
	}
	if out := e.ok("", "user", "set-phone", "alice", "--clear"); !strings.Contains(out, "Removed the phone of alice") {
		t.Errorf("set-phone --clear = %q", out)
	}
	if out := e.ok("", "user", "disable", "bob"); !strings.Contains(out, "bob is disabled") {
		t.Errorf("disable = %q", out)
	}

	list := decodeJSON[[]map[string]any](t, e.ok("", "user", "list", "--json"))
	if len(list) != 2 || list[0]["username"] != "alice" || list[1]["username"] != "bob" {
		t.Fatalf("user list --json = %v", list)
	}
	if list[0]["phone"] != "" || list[0]["phone_verified"] != false || list[1]["disabled"] != true || list[1]["phone"] != "+447911123456" {
		t.Errorf("user list --json = %v", list)
	}
	for _, u := range list {
		if got := jsonKeys(t, u); !slices.Equal(got, userKeys) {
			t.Errorf("user list --json keys = %v", got)
		}
	}
	table := e.ok("", "user", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "USERNAME") || !strings.Contains(lines[2], "disabled") {
		t.Errorf("user list =\n%s", table)
	}
	// Columns line up: EMAIL starts at the same offset on every line.
	if i := strings.Index(lines[0], "EMAIL"); strings.Index(lines[1], "alice@") != i || strings.Index(lines[2], "bob@") != i {
		t.Errorf("columns are not aligned:\n%s", table)
	}

	e.ok("", "user", "enable", "bob")
	if bob := decodeJSON[map[string]any](t, e.ok("", "user", "show", "BOB", "--json")); bob["disabled"] != false {
		t.Errorf("after enable: %v", bob)
	}

	out = e.ok("", "audit", "list")
	for _, typ := range []string{"user.created", "user.password_changed", "user.phone_changed", "user.disabled", "user.enabled"} {
		if !strings.Contains(out, typ) {
			t.Errorf("audit list lacks %s:\n%s", typ, out)
		}
	}
	if strings.Contains(out, pw) || strings.Contains(out, "another long passphrase") {
		t.Errorf("audit list shows a password:\n%s", out)
	}
}

func TestUserBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.ok(pw+"\n", "user", "add", "alice", "--email", "alice@example.com")
	before := e.ok("", "user", "list", "--json")

	e.fails(pw+"\n", `invalid e-mail address "x"`, "user", "add", "carol", "--email", "x")
	err := e.fails(pw+"\n", "a user named alice already exists", "user", "add", "ALICE", "--email", "a2@example.com")
	if err.Error() != "a user named alice already exists" {
		t.Errorf("duplicate: %q", err)
	}
	e.fails("", "--email is required", "user", "add", "carol")
	e.fails("", "missing USERNAME", "user", "add", "--email", "carol@example.com")
	e.fails("", `unexpected argument "extra"`, "user", "add", "carol", "extra", "--email", "carol@example.com")
	e.fails("short\n", "too short", "user", "add", "carol", "--email", "carol@example.com")
	e.fails("", `invalid phone number "4155552671": start it with +`, "user", "add", "carol", "--email", "carol@example.com", "--phone", "4155552671")
	e.fails("", "invalid username", "user", "add", "carol smith", "--email", "carol@example.com")
	// A password is never taken from the arguments.
	e.fails("", "unknown flag: --password", "user", "add", "carol", "--email", "carol@example.com", "--password", pw)

	if after := e.ok("", "user", "list", "--json"); after != before {
		t.Errorf("refused commands changed the users:\nbefore %s\nafter %s", before, after)
	}

	e.fails("", "no user named bob", "user", "show", "bob")
	e.fails(pw+"\n", "no user named bob", "user", "set-password", "bob")
	e.fails("", "no password on standard input", "user", "set-password", "alice")
	e.fails("short\n", "too short", "user", "set-password", "alice")
	e.fails("", "no user named bob", "user", "disable", "bob")
	e.fails("", "no user named bob", "user", "set-phone", "bob", "+14155552671")
	e.fails("", "not a valid number", "user", "set-phone", "alice", "+1 415 555")
	e.fails("", "or --clear", "user", "set-phone", "alice")
	e.fails("", "not both", "user", "set-phone", "alice", "+14155552671", "--clear")
	e.fails("", `unknown command "frob" for "idp user"`, "user", "frob")
	e.fails("", "unknown flag: --jsn", "user", "list", "--jsn")
	e.fails("", "no user named bob", "audit", "list", "--user", "bob")

	// Only alice's creation was audited.
	events := decodeJSON[[]map[string]any](t, e.ok("", "audit", "list", "--json"))
	if len(events) != 1 || events[0]["type"] != "user.created" {
		t.Errorf("events = %v", events)
	}
}

func TestClientCommands(t *testing.T) {
	e := newTestEnv(t)
	out := e.ok("", "client", "add", "portal", "--name", "Client Portal", "--redirect-uri", "https://portal.example.com/cb",
		"--redirect-uri", "https://portal.example.com/cb2", "--post-logout-redirect-uri", "https://portal.example.com/",
		"--first-party", "--require-mfa", "--scope", "profile")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	generated := lines[len(lines)-1]
	if !strings.Contains(out, "Store it now") || len(generated) < config.MinClientSecretLength || strings.Contains(generated, " ") {
		t.Errorf("client add did not print a generated secret on its last line:\n%s", out)
	}

	secret := strings.Repeat("s", 40)
	out = e.ok(secret+"\n", "client", "add", "backend", "--secret-stdin", "--grant", "client_credentials", "--scope", "idp:admin")
	if strings.Contains(out, secret) || strings.Contains(out, "Store it now") {
		t.Errorf("client add --secret-stdin printed a secret: %q", out)
	}
	e.ok("", "client", "add", "spa", "--public", "--redirect-uri", "http://localhost:3000/cb")

	portal := decodeJSON[map[string]any](t, e.ok("", "client", "show", "portal", "--json"))
	wantKeys := []string{"client_id", "created_at", "first_party", "grants", "name", "post_logout_redirect_uris", "public",
		"redirect_uris", "require_mfa", "scopes", "source"}
	if got := jsonKeys(t, portal); !slices.Equal(got, wantKeys) {
		t.Errorf("client show --json keys = %v, want %v", got, wantKeys)
	}
	if portal["first_party"] != true || portal["require_mfa"] != true || portal["source"] != "cli" || portal["public"] != false ||
		len(portal["redirect_uris"].([]any)) != 2 || len(portal["grants"].([]any)) != 2 {
		t.Errorf("portal = %v", portal)
	}

	listOut := e.ok("", "client", "list", "--json")
	if strings.Contains(listOut, generated) || strings.Contains(listOut, secret) || strings.Contains(listOut, "hmac-sha256") {
		t.Errorf("client list --json shows a secret or hash:\n%s", listOut)
	}
	list := decodeJSON[[]map[string]any](t, listOut)
	if len(list) != 3 || list[0]["client_id"] != "backend" || list[2]["client_id"] != "spa" || list[2]["public"] != true {
		t.Errorf("client list --json = %v", list)
	}
	if g := list[0]["grants"].([]any); len(g) != 1 || g[0] != "client_credentials" || len(list[0]["redirect_uris"].([]any)) != 0 {
		t.Errorf("backend = %v", list[0])
	}
	if out := e.ok("", "client", "list"); !strings.HasPrefix(out, "CLIENT ID") || !strings.Contains(out, "public") {
		t.Errorf("client list =\n%s", out)
	}
	if out := e.ok("", "client", "show", "portal"); !strings.Contains(out, "https://portal.example.com/cb2") {
		t.Errorf("client show =\n%s", out)
	}

	e.fails("", `invalid redirect URI: "http://portal.example.com/cb" must use https`, "client", "add", "web", "--redirect-uri", "http://portal.example.com/cb")
	e.fails(secret+"\n", "--public and --secret-stdin cannot be used together", "client", "add", "web", "--public", "--secret-stdin", "--redirect-uri", "https://web.example.com/cb")
	e.fails("short\n", "invalid client secret: must be at least 32 characters", "client", "add", "web", "--secret-stdin", "--redirect-uri", "https://web.example.com/cb")
	e.fails("", "standard input is empty", "client", "add", "web", "--secret-stdin", "--redirect-uri", "https://web.example.com/cb")
	e.fails("", "a public client cannot use client_credentials", "client", "add", "web", "--public", "--grant", "client_credentials")
	e.fails("", "at least one is required", "client", "add", "web")
	e.fails("", "a client with id portal already exists", "client", "add", "portal", "--redirect-uri", "https://portal.example.com/cb")
	e.fails("", "no client with id web", "client", "show", "web")
	e.fails("", "missing CLIENT_ID", "client", "remove")

	if out := e.ok("", "client", "remove", "spa"); !strings.Contains(out, "Removed client spa") {
		t.Errorf("client remove = %q", out)
	}
	e.fails("", "no client with id spa", "client", "remove", "spa")

	if n := len(decodeJSON[[]any](t, e.ok("", "client", "list", "--json"))); n != 2 {
		t.Errorf("%d clients after the refusals and one removal, want 2", n)
	}
	audit := e.ok("", "audit", "list")
	if strings.Count(audit, "client.created") != 3 || strings.Count(audit, "client.removed") != 1 || strings.Contains(audit, secret) || strings.Contains(audit, generated) {
		t.Errorf("audit list =\n%s", audit)
	}
}

func TestKeys(t *testing.T) {
	e := newTestEnv(t)
	if out := e.ok("", "keys", "list"); !strings.Contains(out, "No signing keys yet") {
		t.Errorf("keys list on a new database = %q", out)
	}
	out, errOut, err := e.run("", "keys", "rotate")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "running servers pick it up within a minute") || strings.Contains(out, "previous key") {
		t.Errorf("first keys rotate = %q", out)
	}
	keyFile := filepath.Join(e.dir, "data", "secret.key")
	if !strings.Contains(errOut, "warning") || !strings.Contains(errOut, keyFile) {
		t.Errorf("first keys rotate did not warn about the generated secret key: %q", errOut)
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file: %v, %v", fi, err)
	}

	out, errOut, err = e.run("", "keys", "rotate")
	if err != nil {
		t.Fatal(err)
	}
	if errOut != "" || !strings.Contains(out, "previous key") {
		t.Errorf("second keys rotate: stdout %q stderr %q", out, errOut)
	}

	lines := strings.Split(strings.TrimSpace(e.ok("", "keys", "list")), "\n")
	if len(lines) != 3 {
		t.Fatalf("keys list =\n%s", strings.Join(lines, "\n"))
	}
	var active, retired int
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		switch f[1] {
		case "active":
			active++
		case "retired":
			retired++
			if !strings.Contains(l, "UTC  ") && !strings.HasSuffix(l, "UTC") {
				t.Errorf("retired key without its publication end: %q", l)
			}
		}
		if f[2] != "RS256" {
			t.Errorf("algorithm column of %q", l)
		}
	}
	if active != 1 || retired != 1 {
		t.Errorf("keys list: %d active, %d retired, want 1 and 1:\n%s", active, retired, strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[1], "active") {
		t.Errorf("the newest key is not first and active:\n%s", strings.Join(lines, "\n"))
	}
}

func TestAuditList(t *testing.T) {
	e := newTestEnv(t)
	e.ok(pw+"\n", "user", "add", "alice", "--email", "alice@example.com")
	e.ok("", "user", "add", "bob", "--email", "bob@example.com")

	out := e.ok("", "audit", "list", "--user", "alice", "--since", "1h")
	if !strings.Contains(out, "user.created") || !strings.Contains(out, "alice") || strings.Contains(out, "bob") {
		t.Errorf("audit list --user alice =\n%s", out)
	}
	events := decodeJSON[[]map[string]any](t, e.ok("", "audit", "list", "--json", "--since", "7d"))
	if len(events) != 2 || events[0]["username"] != "bob" || events[1]["type"] != "user.created" || events[1]["actor"] != "operator" {
		t.Errorf("audit list --json = %v", events)
	}
	if n := len(decodeJSON[[]any](t, e.ok("", "audit", "list", "--json", "--limit", "1"))); n != 1 {
		t.Errorf("--limit 1 gave %d events", n)
	}
	e.fails("", `invalid --since "yesterday"`, "audit", "list", "--since", "yesterday")
}

func TestConfigFile(t *testing.T) {
	e := newTestEnv(t)
	dbPath := filepath.Join(e.dir, "from-file", "idp.db")
	file := filepath.Join(e.dir, "idp.yaml")
	yaml := "database:\n  url: sqlite://" + dbPath + "\npassword:\n  argon2:\n    memory_kib: 1024\n    iterations: 1\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e.environ = []string{"IDP_DATA_DIR=" + filepath.Join(e.dir, "data")}
	e.ok("", "--config", file, "user", "add", "alice", "--email", "alice@example.com")
	if _, err := os.Stat(dbPath); err != nil {
		t.Fatalf("--config did not choose the database: %v", err)
	}
	// IDP_CONFIG names the file when --config is not given.
	e.environ = append(e.environ, "IDP_CONFIG="+file)
	if out := e.ok("", "user", "list"); !strings.Contains(out, "alice") {
		t.Errorf("IDP_CONFIG was not read: %q", out)
	}
	e.fails("", "does not exist", "--config", filepath.Join(e.dir, "missing.yaml"), "user", "list")
	e.environ = append(e.environ, "IDP_ISSUER=http://example.com")
	e.fails("", "issuer: must use https", "user", "list")
}

func TestLoadOrCreateSecretKey(t *testing.T) {
	dir := t.TempDir()
	newCfg := func() *config.Config {
		cfg := config.Defaults()
		cfg.DataDir = filepath.Join(dir, "data")
		return &cfg
	}
	var warn bytes.Buffer
	cfg := newCfg()
	if err := loadOrCreateSecretKey(cfg, &warn); err != nil {
		t.Fatal(err)
	}
	if len(cfg.SecretKeyBytes()) != 32 || !strings.Contains(warn.String(), "warning") {
		t.Fatalf("key %d bytes, warning %q", len(cfg.SecretKeyBytes()), warn.String())
	}
	first := cfg.SecretKeyBytes()

	// The next start reads the same key, silently.
	warn.Reset()
	cfg = newCfg()
	if err := loadOrCreateSecretKey(cfg, &warn); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg.SecretKeyBytes(), first) || warn.Len() != 0 {
		t.Errorf("second load: other key or a warning %q", warn.String())
	}

	// secret_key in the configuration wins and no file is read.
	other := bytes.Repeat([]byte{7}, 32)
	cfg = newCfg()
	if err := cfg.SetSecretKey(other); err != nil {
		t.Fatal(err)
	}
	if err := loadOrCreateSecretKey(cfg, &warn); err != nil || !bytes.Equal(cfg.SecretKeyBytes(), other) {
		t.Errorf("configured key replaced: %v", err)
	}

	// A damaged file stops the start with what to do.
	if err := os.WriteFile(filepath.Join(dir, "data", "secret.key"), []byte(base64.StdEncoding.EncodeToString([]byte("short"))), 0o600); err != nil {
		t.Fatal(err)
	}
	err := loadOrCreateSecretKey(newCfg(), &warn)
	if err == nil || !strings.Contains(err.Error(), "does not hold 32 bytes") {
		t.Errorf("damaged key file: %v", err)
	}
}
