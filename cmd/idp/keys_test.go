package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// `idp keys rotate` makes a key of keys.algorithm; `idp keys list` shows
// each key's algorithm and says when the active one is not keys.algorithm.
func TestKeysAlgorithm(t *testing.T) {
	e := newTestEnv(t)
	base := e.environ
	e.environ = append(slices.Clone(base), "IDP_KEYS_ALGORITHM=EdDSA")
	if out := e.ok("", "keys", "rotate"); !strings.Contains(out, "(EdDSA) is active") {
		t.Errorf("keys rotate with keys.algorithm EdDSA = %q", out)
	}
	lines := strings.Split(strings.TrimSpace(e.ok("", "keys", "list")), "\n")
	if len(lines) != 2 || strings.Fields(lines[1])[1] != "active" || strings.Fields(lines[1])[2] != "EdDSA" {
		t.Errorf("keys list =\n%s", strings.Join(lines, "\n"))
	}

	// The configuration says ES256 now: list says what serve will do.
	e.environ = append(slices.Clone(base), "IDP_KEYS_ALGORITHM=ES256")
	if out := e.ok("", "keys", "list"); !strings.Contains(out, "keys.algorithm is ES256 but the active key is EdDSA") {
		t.Errorf("keys list after keys.algorithm changed =\n%s", out)
	}
	if out := e.ok("", "keys", "rotate"); !strings.Contains(out, "(ES256) is active") || !strings.Contains(out, "previous key") {
		t.Errorf("keys rotate with keys.algorithm ES256 = %q", out)
	}
	out := e.ok("", "keys", "list")
	if strings.Contains(out, "keys.algorithm is") {
		t.Errorf("keys list warns although the active key has keys.algorithm:\n%s", out)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "active") || strings.Fields(lines[1])[2] != "ES256" || strings.Fields(lines[2])[2] != "EdDSA" {
		t.Errorf("keys list =\n%s", out)
	}

	e.environ = append(slices.Clone(base), "IDP_KEYS_ALGORITHM=HS256")
	e.fails("", "keys.algorithm", "keys", "rotate")
}

// `idp serve` started with another keys.algorithm than the active key's
// rotates once, says so once, and publishes both keys.
func TestServeKeysAlgorithm(t *testing.T) {
	s := newServeSetup(t)
	srv := s.start(t, "serve")
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	firstKey := s.command(t, "keys", "list")

	type published struct {
		algs []string
		keys []string // alg of each JWKS key
	}
	fetch := func(srv *serving) published {
		t.Helper()
		var d struct {
			Algs    []string `json:"id_token_signing_alg_values_supported"`
			JWKSURI string   `json:"jwks_uri"`
		}
		serveGetJSON(t, srv.base+"/.well-known/openid-configuration", http.StatusOK, &d)
		var jwks struct {
			Keys []struct {
				Alg string `json:"alg"`
			} `json:"keys"`
		}
		serveGetJSON(t, d.JWKSURI, http.StatusOK, &jwks)
		p := published{algs: d.Algs}
		for _, k := range jwks.Keys {
			p.keys = append(p.keys, k.Alg)
		}
		slices.Sort(p.algs)
		slices.Sort(p.keys)
		return p
	}
	rotations := func(srv *serving) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, line := range strings.Split(srv.stderr.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "keys.algorithm is not") {
				out = append(out, rec)
			}
		}
		return out
	}

	s.environ = append(s.environ, "IDP_KEYS_ALGORITHM=ES256")
	srv = s.start(t, "serve")
	if p := fetch(srv); !slices.Equal(p.algs, []string{"ES256", "RS256"}) || !slices.Equal(p.keys, []string{"ES256", "RS256"}) {
		t.Errorf("after the change: discovery algorithms %v, JWKS keys %v; want ES256 and RS256 in both", p.algs, p.keys)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	rot := rotations(srv)
	if len(rot) != 1 {
		t.Fatalf("%d rotation log lines, want 1:\n%s", len(rot), srv.stderr)
	}
	if r := rot[0]; r["level"] != "WARN" || r["keys.algorithm"] != "ES256" || r["previous_algorithm"] != "RS256" ||
		r["key_id"] == "" || r["previous_key_id"] == "" || !strings.Contains(firstKey, fmt.Sprint(r["previous_key_id"])) || r["previous_published_until"] == "" {
		t.Errorf("rotation log %v", r)
	}

	// The next start keeps the ES256 key and says nothing.
	srv = s.start(t, "serve")
	if p := fetch(srv); !slices.Equal(p.keys, []string{"ES256", "RS256"}) {
		t.Errorf("second start with ES256: JWKS keys %v, want the same two", p.keys)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	if rot := rotations(srv); len(rot) != 0 {
		t.Errorf("the second start with ES256 logged a rotation again: %v", rot)
	}
	lines := strings.Split(strings.TrimSpace(s.command(t, "keys", "list")), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "active") || strings.Fields(lines[1])[2] != "ES256" {
		t.Errorf("keys list =\n%s", strings.Join(lines, "\n"))
	}
}
