package config_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hostportal/idp/config"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from config.go")

// referenceFile is docs/configuration.md, from the package directory.
var referenceFile = filepath.Join("..", "docs", "configuration.md")

// TestReferenceFile fails when docs/configuration.md is not what the Config
// struct generates; `go test ./config -run Reference -update` rewrites it.
func TestReferenceFile(t *testing.T) {
	got, err := config.ReferenceMarkdown()
	var missing *config.MissingDescriptionsError
	if err != nil && !errors.As(err, &missing) {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(referenceFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(referenceFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatalf("%v (run go test ./config -run Reference -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the configuration keys in config.go (run go test ./config -run Reference -update)\n--- generated ---\n%s", referenceFile, got)
	}
}

// TestReferenceDescriptions fails for every key whose field in config.go has
// no comment: every key stays documented.
func TestReferenceDescriptions(t *testing.T) {
	docs, err := config.Reference()
	var missing *config.MissingDescriptionsError
	switch {
	case errors.As(err, &missing):
		for _, k := range missing.Keys {
			t.Errorf("%s: no description: add a comment to its field in config/config.go", k)
		}
	case err != nil:
		t.Fatal(err)
	}
	for _, d := range docs {
		if (d.Description == "") != slices.Contains(keysOf(missing), d.Key) {
			t.Errorf("%s: description %q, but the error says otherwise", d.Key, d.Description)
		}
	}
}

func keysOf(e *config.MissingDescriptionsError) []string {
	if e == nil {
		return nil
	}
	return e.Keys
}

// TestReferenceKeys checks that the reference lists the keys Load reads,
// each with its variable and the default Load starts from.
func TestReferenceKeys(t *testing.T) {
	docs, err := config.Reference()
	var missing *config.MissingDescriptionsError
	if err != nil && !errors.As(err, &missing) {
		t.Fatal(err)
	}
	var keys []string
	byKey := map[string]config.KeyDoc{}
	for _, d := range docs {
		if _, dup := byKey[d.Key]; dup {
			t.Errorf("%s is listed twice", d.Key)
		}
		byKey[d.Key] = d
		if d.Env != "" {
			keys = append(keys, d.Key)
		}
	}
	slices.Sort(keys)
	if want := config.Keys(); !slices.Equal(keys, want) {
		t.Errorf("keys with a variable:\n got %v\nwant %v", keys, want)
	}
	for _, k := range config.Keys() {
		if got, want := byKey[k].Env, config.EnvName(k); got != want {
			t.Errorf("%s: variable %q, want %q", k, got, want)
		}
	}
	if d := byKey["clients"]; d.Env != "" || d.Type != "list of clients" {
		t.Errorf("clients: %+v, want a file-only list of clients", d)
	}
	if d := byKey["clients[].redirect_uris"]; d.Env != "" || d.Type != "list of strings" {
		t.Errorf("clients[].redirect_uris: %+v, want a file-only list of strings", d)
	}

	// A few defaults as an operator writes them.
	for key, want := range map[string]string{
		"issuer":                       "http://localhost:8080",
		"mfa.remember_device":          "720h",
		"session.login_timeout":        "10m",
		"sms.limits.resend_interval":   "30s",
		"tokens.access_token_lifetime": "1h",
		"email.notifications":          "true",
		"password.argon2.memory_kib":   "19456",
		"sms.allowed_countries":        "",
		"secret_key":                   "",
	} {
		if got := byKey[key].Default; got != want {
			t.Errorf("%s: default %q, want %q", key, got, want)
		}
	}
	for key, want := range map[string]string{
		"mfa.remember_device":         "duration",
		"mfa.required":                "boolean",
		"sms.limits.total_day":        "integer",
		"trusted_proxies":             "list of strings",
		"webauthn.rp_id":              "string",
		"password.argon2.parallelism": "integer",
	} {
		if got := byKey[key].Type; got != want {
			t.Errorf("%s: type %q, want %q", key, got, want)
		}
	}
}

// TestReferenceDescriptionNames checks that a comment's leading Go name
// becomes the key, so the reference speaks of keys only.
func TestReferenceDescriptionNames(t *testing.T) {
	docs, _ := config.Reference()
	for _, d := range docs {
		switch d.Key {
		case "trusted_proxies":
			if !strings.HasPrefix(d.Description, "`trusted_proxies` are the CIDRs") {
				t.Errorf("trusted_proxies: %q", d.Description)
			}
		case "sms.limits.total_hour":
			if !strings.HasPrefix(d.Description, "`sms.limits.total_hour` and `sms.limits.total_day` are") {
				t.Errorf("sms.limits.total_hour: %q", d.Description)
			}
		case "database.url":
			if d.Description != "sqlite://PATH or postgres://..." {
				t.Errorf("database.url: %q", d.Description)
			}
		}
	}
}
