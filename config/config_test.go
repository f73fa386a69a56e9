package config_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/signing"
)

// field returns the value of the configuration key (e.g. "sms.twilio.from")
// in cfg, found by the mapstructure tags, so that the tests do not depend on
// the package's own flattening.
func field(t *testing.T, cfg *config.Config, key string) any {
	t.Helper()
	v := reflect.ValueOf(cfg).Elem()
outer:
	for _, part := range strings.Split(key, ".") {
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("mapstructure") == part {
				v = v.Field(i)
				continue outer
			}
		}
		t.Fatalf("no field for key %q (at %q)", key, part)
	}
	return v.Interface()
}

// writeFile writes a configuration file into a fresh directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "idp.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadEnv loads with no file and the given environment.
func loadEnv(env ...string) (*config.Config, error) {
	return config.Load(config.Source{Environ: env})
}

// errLines splits a (joined) error into its lines.
func errLines(err error) []string {
	return strings.Split(strings.TrimRight(err.Error(), "\n"), "\n")
}

// wantErr checks that err is not nil and that some line of it names key and
// contains every part of want.
func wantErr(t *testing.T, err error, key string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %q", key)
	}
	for _, line := range errLines(err) {
		if !strings.Contains(line, key) {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return
		}
	}
	t.Errorf("error does not name %q with %q:\n%v", key, want, err)
}

var secretKey32 = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

const clientSecret = "0123456789abcdef0123456789abcdef-long-enough"

func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"nil environment", nil},
		{"empty environment", []string{}},
		{"only other variables", []string{"HOME=/root", "PATH=/bin", "IDP=1", "IDPX_LISTEN=x", "NOT_IDP_LISTEN=x", "garbage"}},
		{"IDP_CONFIG is not a key", []string{"IDP_CONFIG=/nowhere.yaml"}},
		{"Kubernetes service variables are not keys", []string{"IDP_SERVICE_HOST=10.0.0.1", "IDP_SERVICE_PORT=80",
			"IDP_PORT=tcp://10.0.0.1:80", "IDP_PORT_80_TCP_ADDR=10.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadEnv(tc.env...)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			def := config.Defaults()
			if err := def.Validate(); err != nil {
				t.Fatalf("Defaults().Validate: %v", err)
			}
			for _, key := range config.Keys() {
				if got, want := field(t, cfg, key), field(t, &def, key); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %v, want the default %v", key, got, want)
				}
			}
			if len(cfg.Clients) != 0 {
				t.Errorf("clients = %v, want none", cfg.Clients)
			}
			if cfg.IssuerHost() != "localhost" || cfg.TOTPIssuer() != "localhost" || cfg.RPID() != "localhost" {
				t.Errorf("IssuerHost %q TOTPIssuer %q RPID %q, want localhost", cfg.IssuerHost(), cfg.TOTPIssuer(), cfg.RPID())
			}
			if cfg.SecretKeyBytes() != nil {
				t.Errorf("no secret_key configured but SecretKeyBytes = %x", cfg.SecretKeyBytes())
			}
		})
	}
}

// The documented defaults (SPEC.md) and the ones this project added.
func TestDefaultValues(t *testing.T) {
	def := config.Defaults()
	for key, want := range map[string]any{
		"issuer":                            "http://localhost:8080",
		"listen":                            "127.0.0.1:8080",
		"data_dir":                          "data",
		"secret_key":                        "",
		"database.url":                      "sqlite://data/idp.db",
		"database.max_connections":          20,
		"redis.url":                         "",
		"redis.timeout":                     2 * time.Second,
		"sms.provider":                      "none",
		"sms.twilio.api_url":                "https://api.twilio.com",
		"email.provider":                    "none",
		"email.from":                        "",
		"email.notifications":               true,
		"email.smtp.port":                   587,
		"email.smtp.tls":                    "starttls",
		"email.smtp.timeout":                10 * time.Second,
		"mfa.remember_device":               720 * time.Hour,
		"mfa.required":                      false,
		"webauthn.rp_id":                    "",
		"password.min_length":               12,
		"password.argon2.memory_kib":        uint32(19456),
		"password.argon2.iterations":        uint32(2),
		"password.argon2.parallelism":       uint8(1),
		"tokens.access_token_lifetime":      time.Hour,
		"tokens.id_token_lifetime":          time.Hour,
		"tokens.refresh_token_lifetime":     30 * 24 * time.Hour,
		"keys.reload_interval":              signing.ReloadInterval,
		"audit.retention":                   8760 * time.Hour,
		"keys.algorithm":                    "RS256",
		"regulation.account_failures":       5,
		"regulation.account_total_failures": 20,
		"regulation.network_failures":       100,
		"regulation.base_delay":             time.Second,
		"regulation.max_delay":              15 * time.Minute,
		"regulation.forget_after":           24 * time.Hour,
		"log.level":                         "info",
		"log.format":                        "json",
	} {
		if got := field(t, &def, key); got != want {
			t.Errorf("default %s = %v, want %v", key, got, want)
		}
	}
}

func TestKeysAndEnvNames(t *testing.T) {
	keys := config.Keys()
	if !slices.IsSorted(keys) {
		t.Errorf("Keys() is not sorted: %v", keys)
	}
	for _, want := range []string{"issuer", "listen", "database.url", "redis.url", "secret_key", "sms.provider",
		"sms.twilio.account_sid", "sms.twilio.auth_token", "sms.twilio.from", "sms.twilio.api_url",
		"mfa.remember_device", "mfa.required", "webauthn.rp_id",
		"email.provider", "email.from", "email.notifications", "email.smtp.host", "email.smtp.port",
		"email.smtp.username", "email.smtp.password", "email.smtp.tls", "email.smtp.timeout", "password.min_length",
		"audit.retention", "keys.algorithm"} {
		if !slices.Contains(keys, want) {
			t.Errorf("Keys() lacks the documented key %q", want)
		}
	}
	if slices.Contains(keys, "clients") {
		t.Error("Keys() lists clients, which is file-only")
	}
	seen := map[string]string{}
	for _, k := range keys {
		name := config.EnvName(k)
		if other, dup := seen[name]; dup {
			t.Errorf("keys %q and %q share the variable %s", other, k, name)
		}
		seen[name] = k
	}
	for key, want := range map[string]string{
		"redis.url":              "IDP_REDIS_URL",
		"issuer":                 "IDP_ISSUER",
		"sms.twilio.account_sid": "IDP_SMS_TWILIO_ACCOUNT_SID",
		"mfa.totp.issuer":        "IDP_MFA_TOTP_ISSUER",
		"email.smtp.password":    "IDP_EMAIL_SMTP_PASSWORD",
	} {
		if got := config.EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
}

// A file with every documented key (none at its default) loads as written.
func TestFileRoundTrip(t *testing.T) {
	file := writeFile(t, `
issuer: https://login.example.com/
listen: 0.0.0.0:9443
trusted_proxies: [10.0.0.0/8, "::1"]
data_dir: /var/lib/idp
secret_key: `+secretKey32+`
database:
  url: postgres://idp@db.internal/idp?sslmode=require
  max_connections: 15
redis:
  url: rediss://cache.internal:6380/2
  key_prefix: "prod:"
  timeout: 750ms
sms:
  provider: twilio
  twilio:
    account_sid: AC0123456789abcdef
    auth_token: token0123
    from: "+15551234567"
    api_url: https://sms-gateway.example.com
  message: "Your code is {code}"
  timeout: 5s
  allowed_countries: [US, "+44"]
  limits:
    resend_interval: 1m
    per_user_hour: 3
    per_user_day: 6
    per_number_hour: 4
    per_number_day: 8
    per_ip_hour: 50
    per_ip_day: 200
    numbers_per_user_day: 2
    total_hour: 300
    total_day: 3000
email:
  provider: smtp
  from: "Secure Sign-In <no-reply@login.example.com>"
  notifications: false
  smtp:
    host: smtp.example.com
    port: 465
    username: mailer
    password: file-password
    tls: implicit
    timeout: 30s
mfa:
  remember_device: 168h
  required: true
  sms_as_only_factor: true
  totp:
    issuer: Example Corp
webauthn:
  rp_id: example.com
  passkeys: true
password:
  min_length: 15
  argon2:
    memory_kib: 65536
    iterations: 3
    parallelism: 4
tokens:
  access_token_lifetime: 15m
  id_token_lifetime: 5m
  refresh_token_lifetime: 240h
keys:
  algorithm: EdDSA
  reload_interval: 10s
session:
  lifetime: 8h
  login_timeout: 3m
regulation:
  account_failures: 10
  account_total_failures: 40
  network_failures: 500
  base_delay: 2s
  max_delay: 30m
  forget_after: 48h
audit:
  retention: 2160h
log:
  level: debug
  format: text
clients:
  - id: portal
    name: Client Portal
    secret: `+clientSecret+`
    redirect_uris: [https://portal.example.com/callback]
    post_logout_redirect_uris: [https://portal.example.com/]
    first_party: true
    require_mfa: true
    grants: [authorization_code, refresh_token]
    scopes: [idp:admin]
  - id: spa
    public: true
    redirect_uris: [http://localhost:3000/callback, com.example.app:/cb]
  - id: team-sync
    secret: `+clientSecret+`
    grants: [client_credentials]
`)
	cfg, err := config.Load(config.Source{File: file})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := map[string]any{
		"issuer":                            "https://login.example.com", // trailing slash trimmed
		"listen":                            "0.0.0.0:9443",
		"trusted_proxies":                   []string{"10.0.0.0/8", "::1"},
		"data_dir":                          "/var/lib/idp",
		"secret_key":                        secretKey32,
		"database.url":                      "postgres://idp@db.internal/idp?sslmode=require",
		"database.max_connections":          15,
		"redis.url":                         "rediss://cache.internal:6380/2",
		"redis.key_prefix":                  "prod:",
		"redis.timeout":                     750 * time.Millisecond,
		"sms.provider":                      "twilio",
		"sms.twilio.account_sid":            "AC0123456789abcdef",
		"sms.twilio.auth_token":             "token0123",
		"sms.twilio.from":                   "+15551234567",
		"sms.twilio.api_url":                "https://sms-gateway.example.com",
		"sms.message":                       "Your code is {code}",
		"sms.timeout":                       5 * time.Second,
		"sms.allowed_countries":             []string{"US", "+44"},
		"sms.limits.resend_interval":        time.Minute,
		"sms.limits.per_user_hour":          3,
		"sms.limits.per_user_day":           6,
		"sms.limits.per_number_hour":        4,
		"sms.limits.per_number_day":         8,
		"sms.limits.per_ip_hour":            50,
		"sms.limits.per_ip_day":             200,
		"sms.limits.numbers_per_user_day":   2,
		"sms.limits.total_hour":             300,
		"sms.limits.total_day":              3000,
		"email.provider":                    "smtp",
		"email.from":                        "Secure Sign-In <no-reply@login.example.com>",
		"email.notifications":               false,
		"email.smtp.host":                   "smtp.example.com",
		"email.smtp.port":                   465,
		"email.smtp.username":               "mailer",
		"email.smtp.password":               "file-password",
		"email.smtp.tls":                    "implicit",
		"email.smtp.timeout":                30 * time.Second,
		"mfa.sms_as_only_factor":            true,
		"mfa.remember_device":               168 * time.Hour,
		"mfa.required":                      true,
		"mfa.totp.issuer":                   "Example Corp",
		"webauthn.rp_id":                    "example.com",
		"webauthn.passkeys":                 true,
		"password.min_length":               15,
		"password.argon2.memory_kib":        uint32(65536),
		"password.argon2.iterations":        uint32(3),
		"password.argon2.parallelism":       uint8(4),
		"tokens.access_token_lifetime":      15 * time.Minute,
		"tokens.id_token_lifetime":          5 * time.Minute,
		"tokens.refresh_token_lifetime":     240 * time.Hour,
		"keys.algorithm":                    "EdDSA",
		"keys.reload_interval":              10 * time.Second,
		"session.lifetime":                  8 * time.Hour,
		"session.login_timeout":             3 * time.Minute,
		"regulation.account_failures":       10,
		"regulation.account_total_failures": 40,
		"regulation.network_failures":       500,
		"regulation.base_delay":             2 * time.Second,
		"regulation.max_delay":              30 * time.Minute,
		"regulation.forget_after":           48 * time.Hour,
		"audit.retention":                   90 * 24 * time.Hour,
		"log.level":                         "debug",
		"log.format":                        "text",
	}
	for _, key := range config.Keys() {
		w, ok := want[key]
		if !ok {
			t.Errorf("key %s is not in this test's file: add it", key)
			continue
		}
		if got := field(t, cfg, key); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", key, got, w)
		}
	}
	wantClients := []config.ClientConfig{
		{
			ID: "portal", Name: "Client Portal", Secret: clientSecret,
			RedirectURIs:           []string{"https://portal.example.com/callback"},
			PostLogoutRedirectURIs: []string{"https://portal.example.com/"},
			FirstParty:             true, RequireMFA: true,
			Grants: []string{"authorization_code", "refresh_token"}, Scopes: []string{"idp:admin"},
		},
		{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost:3000/callback", "com.example.app:/cb"}},
		{ID: "team-sync", Secret: clientSecret, Grants: []string{"client_credentials"}},
	}
	if !reflect.DeepEqual(cfg.Clients, wantClients) {
		t.Errorf("clients =\n%#v\nwant\n%#v", cfg.Clients, wantClients)
	}
	if got := base64.StdEncoding.EncodeToString(cfg.SecretKeyBytes()); got != secretKey32 {
		t.Errorf("SecretKeyBytes = %s, want %s", got, secretKey32)
	}
	if cfg.IssuerHost() != "login.example.com" || cfg.TOTPIssuer() != "Example Corp" || cfg.RPID() != "example.com" {
		t.Errorf("IssuerHost %q TOTPIssuer %q RPID %q", cfg.IssuerHost(), cfg.TOTPIssuer(), cfg.RPID())
	}
}

// envValues is a valid value for each string key, with what it decodes to.
// Keys of other types get a generic value from their type.
var envValues = map[string]struct {
	env  string
	want any
}{
	"issuer":                 {"https://login.example.com", "https://login.example.com"},
	"listen":                 {"0.0.0.0:9000", "0.0.0.0:9000"},
	"data_dir":               {"/var/lib/idp", "/var/lib/idp"},
	"secret_key":             {secretKey32, secretKey32},
	"database.url":           {"postgres://idp@db/idp", "postgres://idp@db/idp"},
	"redis.url":              {"redis://localhost:6379/0", "redis://localhost:6379/0"},
	"redis.key_prefix":       {"staging:", "staging:"},
	"sms.provider":           {"console", "console"},
	"sms.twilio.account_sid": {"AC123", "AC123"},
	"sms.twilio.auth_token":  {"tok123", "tok123"},
	"sms.twilio.from":        {"+15551234567", "+15551234567"},
	"sms.twilio.api_url":     {"http://127.0.0.1:9999", "http://127.0.0.1:9999"},
	"sms.message":            {"Code {code}", "Code {code}"},
	"email.provider":         {"console", "console"}, // with envCompanions' email.from
	"email.from":             {"Secure Sign-In <no-reply@login.example.com>", "Secure Sign-In <no-reply@login.example.com>"},
	"email.smtp.host":        {"smtp.example.com", "smtp.example.com"},
	"email.smtp.username":    {"mailer", "mailer"},
	"email.smtp.password":    {"s3cret password", "s3cret password"},
	"email.smtp.tls":         {"implicit", "implicit"},
	"mfa.totp.issuer":        {"Example Corp", "Example Corp"},
	"keys.algorithm":         {"ES256", "ES256"},
	"webauthn.rp_id":         {"localhost", "localhost"}, // the default issuer's host
	"log.level":              {"debug", "debug"},
	"log.format":             {"text", "text"},
}

// envCompanions are the other variables a key's test value needs to be valid.
var envCompanions = map[string][]string{
	"email.provider":              {"IDP_EMAIL_FROM=no-reply@login.example.com"},
	"regulation.base_delay":       {"IDP_REGULATION_MAX_DELAY=2h"},
	"regulation.account_failures": {"IDP_REGULATION_ACCOUNT_TOTAL_FAILURES=5000"},
	"regulation.max_delay":        {"IDP_REGULATION_FORGET_AFTER=2h"},
}

func TestEnvironmentOverridesEveryKey(t *testing.T) {
	def := config.Defaults()
	kinds := map[reflect.Kind]bool{}
	for _, key := range config.Keys() {
		t.Run(key, func(t *testing.T) {
			var env string
			var want any
			switch d := field(t, &def, key).(type) {
			case string:
				v, ok := envValues[key]
				if !ok {
					t.Fatalf("no test value for the string key %s: add one to envValues", key)
				}
				env, want = v.env, v.want
			case time.Duration:
				env, want = "90m", 90*time.Minute
			case bool:
				env, want = fmt.Sprint(!d), !d
			case uint32:
				env, want = fmt.Sprint(d+1024), d+1024
			case uint8:
				env, want = fmt.Sprint(d+1), d+1
			case int:
				env, want = fmt.Sprint(d+1000), d+1000
			case []string:
				env, want = "US, +44", []string{"US", " +44"}
				if key == "trusted_proxies" {
					env, want = "10.0.0.0/8, ::1", []string{"10.0.0.0/8", " ::1"}
				}
			default:
				t.Fatalf("key %s has type %T, which this test does not know", key, d)
			}
			kinds[reflect.TypeOf(want).Kind()] = true
			if reflect.DeepEqual(want, field(t, &def, key)) {
				t.Fatalf("test value %v for %s is the default", want, key)
			}
			cfg, err := loadEnv(append([]string{config.EnvName(key) + "=" + env}, envCompanions[key]...)...)
			if err != nil {
				t.Fatalf("%s=%s: %v", config.EnvName(key), env, err)
			}
			if got := field(t, cfg, key); !reflect.DeepEqual(got, want) {
				t.Errorf("%s=%s gave %s = %#v, want %#v", config.EnvName(key), env, key, got, want)
			}
		})
	}
	for _, k := range []reflect.Kind{reflect.String, reflect.Int64, reflect.Bool, reflect.Uint32, reflect.Int, reflect.Slice} {
		if !kinds[k] {
			t.Errorf("no key of kind %v was tried", k)
		}
	}
}

// The environment wins over the file, which wins over the defaults.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "listen: 127.0.0.1:7000\nlog:\n  level: warn\n")
	cfg, err := config.Load(config.Source{File: file, Environ: []string{"IDP_LISTEN=127.0.0.1:7001"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7001" || cfg.Log.Level != "warn" || cfg.Log.Format != "json" {
		t.Errorf("listen %q (want the environment's), log.level %q (want the file's), log.format %q (want the default)",
			cfg.Listen, cfg.Log.Level, cfg.Log.Format)
	}
}

func TestIgnoredVariables(t *testing.T) {
	cfg, err := loadEnv(
		"IDP_TEST_POSTGRES_URL=postgres://x", // test harness variables
		"IDP_TEST_ANYTHING=1",
		"IDP_CONFIG=/some/file.yaml", // names the file, read by the caller
		"HOME=/root",
		"idp_listen=nope", // the prefix is upper case
	)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Listen != config.Defaults().Listen {
		t.Errorf("listen = %q", cfg.Listen)
	}
}

func TestMissingAndBrokenFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	cfg, err := config.Load(config.Source{File: missing})
	if err == nil || cfg != nil {
		t.Fatalf("missing file: cfg %v, err %v", cfg, err)
	}
	if !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v, want the path and \"does not exist\"", err)
	}
	broken := writeFile(t, "issuer: [\n")
	_, err = config.Load(config.Source{File: broken})
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("broken YAML: %v, want an error naming the file", err)
	}
}

func TestIssuerNormalisation(t *testing.T) {
	for _, tc := range []struct {
		issuer, want, host string
	}{
		{"https://login.example.com/", "https://login.example.com", "login.example.com"},
		{"https://login.example.com//", "https://login.example.com", "login.example.com"},
		{"https://example.com/idp/", "https://example.com/idp", "example.com"},
		{"https://login.example.com:8443", "https://login.example.com:8443", "login.example.com"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080", "127.0.0.1"},
		{"http://[::1]:8080", "http://[::1]:8080", "::1"},
	} {
		t.Run(tc.issuer, func(t *testing.T) {
			cfg, err := loadEnv("IDP_ISSUER=" + tc.issuer)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Issuer != tc.want || cfg.IssuerHost() != tc.host {
				t.Errorf("issuer %q host %q, want %q and %q", cfg.Issuer, cfg.IssuerHost(), tc.want, tc.host)
			}
			// TOTP issuer and WebAuthn RP id default to the issuer's host.
			if cfg.TOTPIssuer() != tc.host || cfg.RPID() != tc.host {
				t.Errorf("TOTPIssuer %q RPID %q, want %q", cfg.TOTPIssuer(), cfg.RPID(), tc.host)
			}
		})
	}
}

func TestWebAuthnRPID(t *testing.T) {
	for _, tc := range []struct {
		rpID string
		ok   bool
	}{
		{"login.example.com", true},
		{"example.com", true},
		{"", true}, // default: the issuer's host
		{"other.com", false},
		{"ample.com", false}, // a suffix, but not a parent domain
		{"xlogin.example.com", false},
		{"sub.login.example.com", false},
	} {
		t.Run(tc.rpID, func(t *testing.T) {
			cfg, err := loadEnv("IDP_ISSUER=https://login.example.com", "IDP_WEBAUTHN_RP_ID="+tc.rpID)
			if !tc.ok {
				wantErr(t, err, "webauthn.rp_id")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.rpID
			if want == "" {
				want = "login.example.com"
			}
			if cfg.RPID() != want {
				t.Errorf("RPID = %q, want %q", cfg.RPID(), want)
			}
		})
	}
}

// Each bad value is refused with an error naming its key.
func TestInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string // YAML, optional
		env  []string
		key  string   // the key the error must name
		want []string // more text the same line must hold
		bug  string   // non-empty: the case fails because of this bug
	}{
		{name: "unknown file key", file: "colour: blue\n", key: "colour", want: []string{"unknown configuration key"}},
		{name: "unknown nested key", file: "redis:\n  uri: redis://x\n", key: "redis.uri", want: []string{"unknown"}},
		{name: "unknown deep key", file: "sms:\n  twilio:\n    sid: x\n", key: "sms.twilio.sid", want: []string{"unknown"}},
		{name: "unknown client key", file: "clients:\n  - id: spa\n    public: true\n    redirect_uris: [https://a.example/cb]\n    colour: red\n",
			key: "clients[0].colour", want: []string{"unknown"}},
		{name: "unknown variable", env: []string{"IDP_REDIS_URI=redis://x"}, key: "IDP_REDIS_URI", want: []string{"not a configuration key"}},
		{name: "IDP_CLIENTS", env: []string{"IDP_CLIENTS=[]"}, key: "IDP_CLIENTS", want: []string{"configuration file"}},
		{name: "bad duration", env: []string{"IDP_TOKENS_ACCESS_TOKEN_LIFETIME=forever"}, key: "tokens.access_token_lifetime"},
		{name: "bad duration in file", file: "session:\n  lifetime: soon\n", key: "session.lifetime"},
		{name: "duration without unit", env: []string{"IDP_TOKENS_ACCESS_TOKEN_LIFETIME=3600"}, key: "tokens.access_token_lifetime"},
		{name: "duration as a YAML number", file: "tokens:\n  access_token_lifetime: 3600\n", key: "tokens.access_token_lifetime",
			bug: "load.go Load decodes a bare YAML number for a duration key as nanoseconds (3600 -> 3.6µs) and Validate accepts it; IDP_ variables refuse the same value"},
		{name: "remember_device as a YAML number", file: "mfa:\n  remember_device: 720\n", key: "mfa.remember_device",
			bug: "load.go Load decodes a bare YAML number for a duration key as nanoseconds (720 -> 720ns)"},
		{name: "section given a scalar", file: "redis: redis://cache:6379\n", key: "redis"},
		{name: "bad bool", env: []string{"IDP_MFA_REQUIRED=maybe"}, key: "mfa.required"},
		{name: "bad int", env: []string{"IDP_PASSWORD_ARGON2_MEMORY_KIB=lots"}, key: "password.argon2.memory_kib"},
		{name: "int out of range", env: []string{"IDP_PASSWORD_ARGON2_PARALLELISM=300"}, key: "password.argon2.parallelism"},
		{name: "YAML int out of range", file: "password:\n  argon2:\n    parallelism: 300\n", key: "password.argon2.parallelism", want: []string{"0 to 255", "300"}},
		{name: "YAML negative unsigned", file: "password:\n  argon2:\n    memory_kib: -1\n", key: "password.argon2.memory_kib", want: []string{"0 to 4294967295"}},
		{name: "YAML int wrapping to a valid one", file: "password:\n  argon2:\n    memory_kib: 4294968320\n", key: "password.argon2.memory_kib"},
		{name: "YAML int beyond int64", file: "sms:\n  limits:\n    per_user_hour: 9223372036854775808\n", key: "sms.limits.per_user_hour", want: []string{"9223372036854775808"}},
		{name: "YAML fraction for an int", file: "password:\n  min_length: 12.7\n", key: "password.min_length", want: []string{"whole number", "12.7"}},
		{name: "issuer not a URL", env: []string{"IDP_ISSUER=login.example.com"}, key: "issuer", want: []string{"absolute"}},
		{name: "issuer empty", env: []string{"IDP_ISSUER="}, key: "issuer"},
		{name: "issuer ftp", env: []string{"IDP_ISSUER=ftp://login.example.com"}, key: "issuer"},
		{name: "issuer http public host", env: []string{"IDP_ISSUER=http://login.example.com"}, key: "issuer", want: []string{"https"}},
		{name: "issuer http lookalike", env: []string{"IDP_ISSUER=http://localhost.example.com"}, key: "issuer", want: []string{"https"}},
		{name: "issuer query", env: []string{"IDP_ISSUER=https://login.example.com/?tenant=a"}, key: "issuer", want: []string{"query"}},
		{name: "issuer fragment", env: []string{"IDP_ISSUER=https://login.example.com/#x"}, key: "issuer", want: []string{"fragment"}},
		{name: "issuer empty query", env: []string{"IDP_ISSUER=https://login.example.com?"}, key: "issuer",
			bug: "config.go Validate accepts an issuer ending in an empty query \"?\" (url.URL.ForceQuery) and keeps it in the issuer"},
		{name: "issuer empty fragment", env: []string{"IDP_ISSUER=https://login.example.com#"}, key: "issuer",
			bug: "config.go Validate accepts an issuer ending in an empty fragment \"#\" and keeps it in the issuer"},
		{name: "listen no port", env: []string{"IDP_LISTEN=nope"}, key: "listen", want: []string{"HOST:PORT"}},
		{name: "listen port only", env: []string{"IDP_LISTEN=8080"}, key: "listen"},
		{name: "listen empty", env: []string{"IDP_LISTEN="}, key: "listen"},
		{name: "listen empty port", env: []string{"IDP_LISTEN=127.0.0.1:"}, key: "listen",
			bug: "config.go Validate accepts listen \"127.0.0.1:\" (net.SplitHostPort allows an empty port), so the server listens on a random port"},
		{name: "data_dir empty", env: []string{"IDP_DATA_DIR="}, key: "data_dir"},
		{name: "database pool of none", env: []string{"IDP_DATABASE_MAX_CONNECTIONS=0"}, key: "database.max_connections", want: []string{"at least 1"}},
		{name: "database mysql", env: []string{"IDP_DATABASE_URL=mysql://x/y"}, key: "database.url"},
		{name: "database sqlite without path", env: []string{"IDP_DATABASE_URL=sqlite://"}, key: "database.url"},
		{name: "database plain path", env: []string{"IDP_DATABASE_URL=data/idp.db"}, key: "database.url"},
		{name: "redis http", env: []string{"IDP_REDIS_URL=http://cache:6379"}, key: "redis.url"},
		{name: "redis host only", env: []string{"IDP_REDIS_URL=cache:6379"}, key: "redis.url"},
		{name: "redis timeout 0", env: []string{"IDP_REDIS_TIMEOUT=0s"}, key: "redis.timeout", want: []string{"positive"}},
		{name: "secret_key not base64", env: []string{"IDP_SECRET_KEY=not base64!"}, key: "secret_key", want: []string{"base64"}},
		{name: "secret_key 16 bytes", env: []string{"IDP_SECRET_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 16))},
			key: "secret_key", want: []string{"32 bytes", "16"}},
		{name: "secret_key 64 bytes", env: []string{"IDP_SECRET_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 64))},
			key: "secret_key", want: []string{"32 bytes"}},
		{name: "sms provider unknown", env: []string{"IDP_SMS_PROVIDER=carrier-pigeon"}, key: "sms.provider"},
		{name: "twilio without account_sid", env: []string{"IDP_SMS_PROVIDER=twilio", "IDP_SMS_TWILIO_AUTH_TOKEN=tok", "IDP_SMS_TWILIO_FROM=+15551234567"},
			key: "sms.twilio.account_sid"},
		{name: "twilio without auth_token", env: []string{"IDP_SMS_PROVIDER=twilio", "IDP_SMS_TWILIO_ACCOUNT_SID=AC1", "IDP_SMS_TWILIO_FROM=+15551234567"},
			key: "sms.twilio.auth_token"},
		{name: "twilio without from", env: []string{"IDP_SMS_PROVIDER=twilio", "IDP_SMS_TWILIO_ACCOUNT_SID=AC1", "IDP_SMS_TWILIO_AUTH_TOKEN=tok"},
			key: "sms.twilio.from"},
		{name: "twilio SID not alphanumeric", env: []string{"IDP_SMS_PROVIDER=twilio", "IDP_SMS_TWILIO_ACCOUNT_SID=AC1/../x",
			"IDP_SMS_TWILIO_AUTH_TOKEN=tok", "IDP_SMS_TWILIO_FROM=+15551234567"}, key: "sms.twilio.account_sid"},
		{name: "twilio api_url relative", env: []string{"IDP_SMS_TWILIO_API_URL=/twilio"}, key: "sms.twilio.api_url"},
		{name: "trusted proxy junk", env: []string{"IDP_TRUSTED_PROXIES=10.0.0.0/8,proxy.internal"}, key: "trusted_proxies", want: []string{"proxy.internal"}},
		{name: "sms message without code", env: []string{"IDP_SMS_MESSAGE=Your login code"}, key: "sms.message", want: []string{"{code}"}},
		{name: "sms timeout too short", env: []string{"IDP_SMS_TIMEOUT=10ms"}, key: "sms.timeout"},
		{name: "sms allowed country junk", env: []string{"IDP_SMS_ALLOWED_COUNTRIES=US,Narnia"}, key: "sms.allowed_countries", want: []string{"Narnia"}},
		{name: "sms allowed country long code", env: []string{"IDP_SMS_ALLOWED_COUNTRIES=+12345"}, key: "sms.allowed_countries"},
		{name: "sms per user hour 0", env: []string{"IDP_SMS_LIMITS_PER_USER_HOUR=0"}, key: "sms.limits.per_user_hour"},
		{name: "sms per ip day negative", env: []string{"IDP_SMS_LIMITS_PER_IP_DAY=-1"}, key: "sms.limits.per_ip_day"},
		{name: "sms resend interval 0", env: []string{"IDP_SMS_LIMITS_RESEND_INTERVAL=0s"}, key: "sms.limits.resend_interval"},
		{name: "sms per number hour not a number", env: []string{"IDP_SMS_LIMITS_PER_NUMBER_HOUR=five"}, key: "sms.limits.per_number_hour"},
		{name: "email provider unknown", env: []string{"IDP_EMAIL_PROVIDER=sendmail"}, key: "email.provider", want: []string{"sendmail"}},
		{name: "smtp without from", env: []string{"IDP_EMAIL_PROVIDER=smtp", "IDP_EMAIL_SMTP_HOST=smtp.example.com"}, key: "email.from"},
		{name: "console without from", env: []string{"IDP_EMAIL_PROVIDER=console"}, key: "email.from"},
		{name: "smtp without host", env: []string{"IDP_EMAIL_PROVIDER=smtp", "IDP_EMAIL_FROM=no-reply@login.example.com"}, key: "email.smtp.host"},
		{name: "email from not an address", env: []string{"IDP_EMAIL_FROM=Secure Sign-In"}, key: "email.from", want: []string{"Secure Sign-In"}},
		{name: "email from two addresses", env: []string{"IDP_EMAIL_FROM=a@example.com, b@example.com"}, key: "email.from"},
		{name: "email from with a header", env: []string{"IDP_EMAIL_FROM=a@example.com\r\nBcc: b@example.com"}, key: "email.from"},
		{name: "smtp tls none on a public host", env: []string{"IDP_EMAIL_SMTP_HOST=smtp.example.com", "IDP_EMAIL_SMTP_TLS=none"},
			key: "email.smtp.tls", want: []string{"loopback", "smtp.example.com"}},
		{name: "smtp tls none on a lookalike host", env: []string{"IDP_EMAIL_SMTP_HOST=localhost.example.com", "IDP_EMAIL_SMTP_TLS=none"}, key: "email.smtp.tls"},
		{name: "smtp tls unknown", env: []string{"IDP_EMAIL_SMTP_TLS=ssl"}, key: "email.smtp.tls", want: []string{"starttls"}},
		{name: "smtp host with port", env: []string{"IDP_EMAIL_SMTP_HOST=smtp.example.com:587"}, key: "email.smtp.host", want: []string{"email.smtp.port"}},
		{name: "smtp port 0", env: []string{"IDP_EMAIL_SMTP_PORT=0"}, key: "email.smtp.port"},
		{name: "smtp port too high", env: []string{"IDP_EMAIL_SMTP_PORT=70000"}, key: "email.smtp.port"},
		{name: "smtp port not a number", env: []string{"IDP_EMAIL_SMTP_PORT=submission"}, key: "email.smtp.port"},
		{name: "smtp timeout too short", env: []string{"IDP_EMAIL_SMTP_TIMEOUT=10ms"}, key: "email.smtp.timeout"},
		{name: "email notifications not a bool", env: []string{"IDP_EMAIL_NOTIFICATIONS=sometimes"}, key: "email.notifications"},
		{name: "password min_length 4", env: []string{"IDP_PASSWORD_MIN_LENGTH=4"}, key: "password.min_length", want: []string{"8"}},
		{name: "password min_length above the maximum", env: []string{"IDP_PASSWORD_MIN_LENGTH=2000"}, key: "password.min_length", want: []string{"1024"}},
		{name: "remember_device negative", env: []string{"IDP_MFA_REMEMBER_DEVICE=-1h"}, key: "mfa.remember_device"},
		{name: "argon2 memory too low", env: []string{"IDP_PASSWORD_ARGON2_MEMORY_KIB=512"}, key: "password.argon2.memory_kib", want: []string{"1024"}},
		{name: "argon2 iterations 0", env: []string{"IDP_PASSWORD_ARGON2_ITERATIONS=0"}, key: "password.argon2.iterations"},
		{name: "argon2 parallelism 0", env: []string{"IDP_PASSWORD_ARGON2_PARALLELISM=0"}, key: "password.argon2.parallelism"},
		{name: "access token lifetime 0", env: []string{"IDP_TOKENS_ACCESS_TOKEN_LIFETIME=0s"}, key: "tokens.access_token_lifetime", want: []string{"positive"}},
		{name: "id token lifetime negative", env: []string{"IDP_TOKENS_ID_TOKEN_LIFETIME=-5m"}, key: "tokens.id_token_lifetime"},
		{name: "refresh token lifetime 0", env: []string{"IDP_TOKENS_REFRESH_TOKEN_LIFETIME=0"}, key: "tokens.refresh_token_lifetime"},
		{name: "session lifetime 0", env: []string{"IDP_SESSION_LIFETIME=0s"}, key: "session.lifetime"},
		{name: "login timeout negative", env: []string{"IDP_SESSION_LOGIN_TIMEOUT=-1s"}, key: "session.login_timeout"},
		{name: "regulation account failures zero", env: []string{"IDP_REGULATION_ACCOUNT_FAILURES=0"}, key: "regulation.account_failures", want: []string{"at least 1"}},
		{name: "regulation total below per network", env: []string{"IDP_REGULATION_ACCOUNT_TOTAL_FAILURES=3"}, key: "regulation.account_total_failures", want: []string{"account_failures"}},
		{name: "regulation network failures not a number", env: []string{"IDP_REGULATION_NETWORK_FAILURES=many"}, key: "regulation.network_failures"},
		{name: "regulation base delay zero", file: "regulation:\n  base_delay: 0s\n", key: "regulation.base_delay"},
		{name: "regulation max delay below base", env: []string{"IDP_REGULATION_MAX_DELAY=500ms"}, key: "regulation.max_delay", want: []string{"base_delay"}},
		{name: "regulation forget before max", env: []string{"IDP_REGULATION_FORGET_AFTER=1m"}, key: "regulation.forget_after", want: []string{"max_delay"}},
		{name: "keys reload interval too short", env: []string{"IDP_KEYS_RELOAD_INTERVAL=100ms"}, key: "keys.reload_interval", want: []string{"at least 1s"}},
		{name: "audit retention negative", env: []string{"IDP_AUDIT_RETENTION=-24h"}, key: "audit.retention", want: []string{"negative", "0 keeps"}},
		{name: "audit retention in file negative", file: "audit:\n  retention: -1h\n", key: "audit.retention"},
		{name: "audit retention not a duration", env: []string{"IDP_AUDIT_RETENTION=1y"}, key: "audit.retention"},
		{name: "audit retention without unit", env: []string{"IDP_AUDIT_RETENTION=365"}, key: "audit.retention"},
		{name: "keys algorithm unknown", env: []string{"IDP_KEYS_ALGORITHM=HS256"}, key: "keys.algorithm", want: []string{"RS256, ES256 or EdDSA", "HS256"}},
		{name: "keys algorithm lower case", env: []string{"IDP_KEYS_ALGORITHM=es256"}, key: "keys.algorithm", want: []string{"es256"}},
		{name: "keys algorithm empty", env: []string{"IDP_KEYS_ALGORITHM="}, key: "keys.algorithm"},
		{name: "keys algorithm in file", file: "keys:\n  algorithm: Ed25519\n", key: "keys.algorithm", want: []string{"Ed25519"}},
		{name: "log level", env: []string{"IDP_LOG_LEVEL=loud"}, key: "log.level", want: []string{"loud"}},
		{name: "log level upper case", env: []string{"IDP_LOG_LEVEL=INFO"}, key: "log.level"},
		{name: "log format", env: []string{"IDP_LOG_FORMAT=xml"}, key: "log.format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := config.Source{Environ: tc.env}
			if tc.file != "" {
				src.File = writeFile(t, tc.file)
			}
			cfg, err := config.Load(src)
			if cfg != nil {
				t.Errorf("Load returned a configuration with the error %v", err)
			}
			wantErr(t, err, tc.key, tc.want...)
			if err != nil && len(errLines(err)) != 1 {
				t.Errorf("one problem gave %d lines:\n%v", len(errLines(err)), err)
			}
		})
	}
}

// Each line of the error starts with the key it is about, as the file or
// the environment wrote it (FuzzLoad found these).
func TestErrorLinesStartWithTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string // the lines' beginnings, in order
	}{
		{"unknown top-level key", "colour: blue\n", []string{"colour: unknown configuration key"}},
		{"unknown top-level keys", "b: 1\na: 2\n", []string{"a: unknown", "b: unknown"}},
		{"unknown nested key", "redis:\n  uri: x\n", []string{"redis.uri: unknown configuration key"}},
		{"unknown key with a line break", "\"a\\nb\": 1\n", []string{`"a\nb": unknown configuration key`}},
		{"unknown nested key with a line break", "sms:\n  \"a\\nb\": 1\n", []string{`"sms.a\nb": unknown configuration key`}},
		{"client id with a line break", "clients:\n  - id: \"a\\nb\"\n    public: true\n    redirect_uris: [https://a.example/cb]\n",
			[]string{`clients[0] ("a\nb").id: "a\nb" has a character`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(config.Source{File: writeFile(t, tc.file)})
			if err == nil {
				t.Fatal("no error")
			}
			lines := errLines(err)
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d is %q, want it to start with %q", i+1, lines[i], w)
				}
			}
		})
	}
}

// Valid values that look unusual are accepted.
func TestValidValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"postgresql scheme", []string{"IDP_DATABASE_URL=postgresql://idp@db/idp"}},
		{"sqlite memory", []string{"IDP_DATABASE_URL=sqlite://:memory:"}},
		{"redis sentinel", []string{"IDP_REDIS_URL=redis+sentinel://s1:26379/mymaster"}},
		{"redis cluster", []string{"IDP_REDIS_URL=redis+cluster://c1:7000"}},
		{"rediss", []string{"IDP_REDIS_URL=rediss://cache:6380"}},
		{"listen all interfaces", []string{"IDP_LISTEN=:8080"}},
		{"listen IPv6", []string{"IDP_LISTEN=[::1]:8080"}},
		{"secret_key with newline", []string{"IDP_SECRET_KEY=" + secretKey32 + "\n"}},
		{"http on localhost subdomain", []string{"IDP_ISSUER=http://idp.localhost:8080"}},
		{"remember_device off", []string{"IDP_MFA_REMEMBER_DEVICE=0s"}},
		{"audit retention forever", []string{"IDP_AUDIT_RETENTION=0s"}},
		{"audit retention forever as 0", []string{"IDP_AUDIT_RETENTION=0"}},
		{"audit retention in days of hours", []string{"IDP_AUDIT_RETENTION=720h"}},
		{"console sms", []string{"IDP_SMS_PROVIDER=console"}},
		{"twilio complete", []string{"IDP_SMS_PROVIDER=twilio", "IDP_SMS_TWILIO_ACCOUNT_SID=AC0123abc",
			"IDP_SMS_TWILIO_AUTH_TOKEN=abc123", "IDP_SMS_TWILIO_FROM=MG0123"}},
		{"argon2 minimum", []string{"IDP_PASSWORD_ARGON2_MEMORY_KIB=1024", "IDP_PASSWORD_ARGON2_ITERATIONS=1"}},
		{"password min_length 8", []string{"IDP_PASSWORD_MIN_LENGTH=8"}},
		{"console email", []string{"IDP_EMAIL_PROVIDER=console", "IDP_EMAIL_FROM=Secure Sign-In <no-reply@localhost>"}},
		{"smtp complete", []string{"IDP_EMAIL_PROVIDER=smtp", "IDP_EMAIL_FROM=no-reply@login.example.com",
			"IDP_EMAIL_SMTP_HOST=smtp.example.com", "IDP_EMAIL_SMTP_USERNAME=mailer", "IDP_EMAIL_SMTP_PASSWORD=p@ss word"}},
		{"smtp implicit tls", []string{"IDP_EMAIL_PROVIDER=smtp", "IDP_EMAIL_FROM=no-reply@login.example.com",
			"IDP_EMAIL_SMTP_HOST=smtp.example.com", "IDP_EMAIL_SMTP_PORT=465", "IDP_EMAIL_SMTP_TLS=implicit"}},
		{"smtp tls none on localhost", []string{"IDP_EMAIL_PROVIDER=smtp", "IDP_EMAIL_FROM=no-reply@login.example.com",
			"IDP_EMAIL_SMTP_HOST=localhost", "IDP_EMAIL_SMTP_PORT=25", "IDP_EMAIL_SMTP_TLS=none"}},
		{"smtp tls none on 127.0.0.1", []string{"IDP_EMAIL_SMTP_HOST=127.0.0.1", "IDP_EMAIL_SMTP_TLS=none"}},
		{"smtp tls none on ::1", []string{"IDP_EMAIL_SMTP_HOST=::1", "IDP_EMAIL_SMTP_TLS=none"}},
		{"smtp none without host", []string{"IDP_EMAIL_SMTP_TLS=none"}},
		{"every log level", []string{"IDP_LOG_LEVEL=error"}},
		{"keys algorithm ES256", []string{"IDP_KEYS_ALGORITHM=ES256"}},
		{"keys algorithm EdDSA", []string{"IDP_KEYS_ALGORITHM=EdDSA"}},
		{"keys algorithm RS256", []string{"IDP_KEYS_ALGORITHM=RS256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := loadEnv(tc.env...); err != nil {
				t.Errorf("Load: %v", err)
			}
		})
	}
}

// Several problems are all reported in one error, one per line, each naming
// its key.
func TestEveryProblemAtOnce(t *testing.T) {
	file := writeFile(t, `
colour: blue
flavour: vanilla
redis:
  uri: redis://x
log:
  level: loud
clients:
  - id: spa
    public: true
    secret: `+clientSecret+`
    redirect_uris: [http://portal.example.com/cb]
`)
	cfg, err := config.Load(config.Source{File: file, Environ: []string{
		"IDP_LISTEN=nope",
		"IDP_ISSUER=ftp://x",
		"IDP_NOPE=1",
		"IDP_TOKENS_ACCESS_TOKEN_LIFETIME=forever",
		"IDP_PASSWORD_ARGON2_MEMORY_KIB=10",
		"IDP_SECRET_KEY=c2hvcnQ=",
		"IDP_DATABASE_URL=mysql://db",
	}})
	if cfg != nil || err == nil {
		t.Fatalf("Load: cfg %v, err %v", cfg, err)
	}
	keys := []string{
		"colour", "flavour", "redis.uri", "log.level", "clients[0] (spa).secret", "clients[0] (spa).redirect_uris",
		"listen", "issuer", "IDP_NOPE", "tokens.access_token_lifetime", "password.argon2.memory_kib",
		"secret_key", "database.url",
	}
	lines := errLines(err)
	if len(lines) != len(keys) {
		t.Errorf("%d problems gave %d lines:\n%v", len(keys), len(lines), err)
	}
	for _, key := range keys {
		wantErr(t, err, key)
	}
}

func TestClients(t *testing.T) {
	type cl = config.ClientConfig
	secret := clientSecret
	for _, tc := range []struct {
		name    string
		clients []config.ClientConfig
		keys    []string // the keys the errors must name; none: valid
	}{
		{"confidential web client", []cl{{ID: "portal", Secret: secret, RedirectURIs: []string{"https://portal.example.com/cb"}}}, nil},
		{"public spa", []cl{{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost:3000/cb"}}}, nil},
		{"client_credentials only, no redirect URI", []cl{{ID: "sync", Secret: secret, Grants: []string{"client_credentials"}}}, nil},
		{"two distinct clients", []cl{
			{ID: "a", Public: true, RedirectURIs: []string{"https://a.example.com/cb"}},
			{ID: "b", Public: true, RedirectURIs: []string{"https://b.example.com/cb"}},
		}, nil},
		{"duplicate ids", []cl{
			{ID: "a", Public: true, RedirectURIs: []string{"https://a.example.com/cb"}},
			{ID: "a", Public: true, RedirectURIs: []string{"https://a.example.com/cb2"}},
		}, []string{"clients[1] (a).id", "declared twice"}},
		{"public with secret", []cl{{ID: "spa", Public: true, Secret: secret, RedirectURIs: []string{"https://a.example.com/cb"}}},
			[]string{"clients[0] (spa).secret"}},
		{"public with client_credentials", []cl{{ID: "spa", Public: true, Grants: []string{"client_credentials"}}},
			[]string{"clients[0] (spa).grants"}},
		{"confidential without secret", []cl{{ID: "portal", RedirectURIs: []string{"https://a.example.com/cb"}}},
			[]string{"clients[0] (portal).secret"}},
		{"short secret", []cl{{ID: "portal", Secret: "hunter2", RedirectURIs: []string{"https://a.example.com/cb"}}},
			[]string{"clients[0] (portal).secret", "32"}},
		{"authorization_code without redirect URI", []cl{{ID: "portal", Secret: secret}},
			[]string{"clients[0] (portal).redirect_uris"}},
		{"unknown grant", []cl{{ID: "portal", Secret: secret, Grants: []string{"implicit"}, RedirectURIs: []string{"https://a.example.com/cb"}}},
			[]string{"clients[0] (portal).grants", "implicit"}},
		{"bad redirect URI", []cl{{ID: "portal", Secret: secret, RedirectURIs: []string{"http://portal.example.com/cb"}}},
			[]string{"clients[0] (portal).redirect_uris"}},
		{"redirect URI with an upper-case scheme", []cl{{ID: "portal", Secret: secret, RedirectURIs: []string{"HTTPS://portal.example.com/cb"}}},
			[]string{"clients[0] (portal).redirect_uris", `"https://portal.example.com/cb"`}},
		{"redirect URI with a space", []cl{{ID: "portal", Secret: secret, RedirectURIs: []string{"https://portal.example.com/a b"}}},
			[]string{"clients[0] (portal).redirect_uris", `"https://portal.example.com/a%20b"`}},
		{"app scheme of a confidential client", []cl{{ID: "portal", Secret: secret, RedirectURIs: []string{"com.example.app:/cb"}}},
			[]string{"clients[0] (portal).redirect_uris", "public clients"}},
		{"app scheme with a path", []cl{{ID: "app", Public: true, RedirectURIs: []string{"com.example.app:/oauth2redirect", "com.example.app:cb"}}}, nil},
		{"bad post-logout URI", []cl{{ID: "portal", Secret: secret, RedirectURIs: []string{"https://a.example.com/cb"},
			PostLogoutRedirectURIs: []string{"/logged-out"}}}, []string{"clients[0] (portal).post_logout_redirect_uris"}},
		{"missing id", []cl{{Public: true, RedirectURIs: []string{"https://a.example.com/cb"}}}, []string{"clients[0].id"}},
		{"bad id", []cl{{ID: "my app", Public: true, RedirectURIs: []string{"https://a.example.com/cb"}}}, []string{"clients[0] (my app).id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.Clients = tc.clients
			err := cfg.Validate()
			if len(tc.keys) == 0 {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			wantErr(t, err, tc.keys[0], tc.keys[1:]...)
		})
	}
}

// Problems in clients[] from a file are reported with the rest.
func TestClientsFromFile(t *testing.T) {
	file := writeFile(t, `
clients:
  - id: a
    public: true
    redirect_uris: [https://a.example.com/cb]
  - id: a
    secret: short
    grants: [client_credentials]
`)
	_, err := config.Load(config.Source{File: file})
	wantErr(t, err, "clients[1] (a).id", "declared twice")
	wantErr(t, err, "clients[1] (a).secret", "32")
	if n := len(errLines(err)); n != 2 {
		t.Errorf("%d lines, want 2:\n%v", n, err)
	}
}

func TestValidateRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://portal.example.com/callback", true},
		{"https://portal.example.com:8443/cb?x=1", true},
		{"http://localhost:3000/callback", true},
		{"http://localhost/cb", true},
		{"http://127.0.0.1:8081/cb", true},
		{"http://[::1]:8081/cb", true},
		{"http://app.localhost/cb", true},
		{"com.example.app:/cb", true},
		{"com.example.app:/oauth2redirect?x=1", true},
		{"http://portal.example.com/callback", false},
		{"http://localhost.example.com/cb", false},
		{"https://portal.example.com/cb#frag", false},
		{"https://portal.example.com/cb#", false},
		{"/callback", false},
		{"callback", false},
		{"//portal.example.com/cb", false},
		{"https:///cb", false},
		{"javascript:alert(1)", false},
		{"data:text/html,hi", false},
		{"", false},
		{"https://exa mple.com/cb", false},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			err := config.ValidateRedirectURI(tc.uri)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestValidateClientIDAndSecret(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"portal", true},
		{"portal-demo_1.v2", true},
		{"portal:prod", false}, // ':' separates fields in access tokens
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"my app", false},
		{"app/1", false},
		{"café", false},
	} {
		t.Run("id "+tc.id, func(t *testing.T) {
			if err := config.ValidateClientID(tc.id); (err == nil) != tc.ok {
				t.Errorf("ValidateClientID(%q) = %v, want ok %v", tc.id, err, tc.ok)
			}
		})
	}
	for _, tc := range []struct {
		secret string
		ok     bool
	}{
		{strings.Repeat("s", config.MinClientSecretLength), true},
		{strings.Repeat("s", config.MinClientSecretLength-1), false},
		{"", false},
	} {
		t.Run(fmt.Sprintf("secret of %d", len(tc.secret)), func(t *testing.T) {
			if err := config.ValidateClientSecret(tc.secret); (err == nil) != tc.ok {
				t.Errorf("ValidateClientSecret = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestSetSecretKey(t *testing.T) {
	cfg := config.Defaults()
	if err := cfg.SetSecretKey(make([]byte, 31)); err == nil || !strings.Contains(err.Error(), "secret_key") {
		t.Errorf("31 bytes: %v", err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := cfg.SetSecretKey(key); err != nil {
		t.Fatal(err)
	}
	key[0] = 'X' // the config keeps its own copy
	if string(cfg.SecretKeyBytes()) != "0123456789abcdef0123456789abcdef" || cfg.SecretKey != secretKey32 {
		t.Errorf("SecretKeyBytes %q SecretKey %q", cfg.SecretKeyBytes(), cfg.SecretKey)
	}
	if err := cfg.Validate(); err != nil || string(cfg.SecretKeyBytes()) != "0123456789abcdef0123456789abcdef" {
		t.Errorf("Validate after SetSecretKey: %v", err)
	}
}
