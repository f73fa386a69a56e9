package idp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/signing"
)

// keysAlgorithm sets keys.algorithm.
func keysAlgorithm(alg string) func(*config.Config) {
	return func(c *config.Config) { c.Keys.Algorithm = alg }
}

// publishedDocs fetches discovery's id_token_signing_alg_values_supported
// and the JWKS's keys (kid, alg, kty, crv, d).
func publishedDocs(t *testing.T, env *idptest.Env) (algs []string, keys []map[string]string) {
	t.Helper()
	br := env.NewBrowser()
	var d struct {
		Algs    []string `json:"id_token_signing_alg_values_supported"`
		JWKSURI string   `json:"jwks_uri"`
	}
	p := br.Get(env.Issuer + "/.well-known/openid-configuration")
	if err := json.Unmarshal([]byte(p.Body), &d); err != nil || p.Status != http.StatusOK {
		t.Fatalf("discovery: %s %v\n%s", p, err, p.Body)
	}
	var jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	p = br.Get(d.JWKSURI)
	if err := json.Unmarshal([]byte(p.Body), &jwks); err != nil || p.Status != http.StatusOK {
		t.Fatalf("JWKS: %s %v\n%s", p, err, p.Body)
	}
	return d.Algs, jwks.Keys
}

// header returns the alg and kid of a JWS.
func header(t *testing.T, jws string) (alg, kid string) {
	t.Helper()
	head, _, _ := strings.Cut(jws, ".")
	raw, err := base64URLDecode(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Alg, h.Kid
}

// A portal with go-oidc and x/oauth2 logs in, refreshes and logs out with
// ID tokens signed with ES256 or EdDSA (keys.algorithm).
func TestKeysAlgorithmLoginRefreshLogout(t *testing.T) {
	for _, tc := range []struct{ alg, kty, crv string }{
		{"ES256", "EC", "P-256"},
		{"EdDSA", "OKP", "Ed25519"},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b idptest.Backend) {
				env := idptest.New(t, b, idptest.Options{Configure: keysAlgorithm(tc.alg)})
				env.AddUser("alice", alicePassword)
				secret := env.AddClient(manage.NewClient{ID: "portal", Name: "Client Portal", RedirectURIs: []string{portalRedirect},
					PostLogoutRedirectURIs: []string{portalLogout}})

				algs, keys := publishedDocs(t, env)
				if !slices.Equal(algs, []string{tc.alg}) {
					t.Errorf("id_token_signing_alg_values_supported = %v, want [%s]", algs, tc.alg)
				}
				if len(keys) != 1 || keys[0]["alg"] != tc.alg || keys[0]["kty"] != tc.kty || keys[0]["crv"] != tc.crv ||
					keys[0]["use"] != "sig" || keys[0]["kid"] == "" || keys[0]["d"] != "" {
					t.Fatalf("JWKS keys %v, want one public %s key (%s %s)", keys, tc.alg, tc.kty, tc.crv)
				}

				// go-oidc takes the accepted algorithms from discovery.
				r := newRP(t, env, "portal", secret)
				f := r.start()
				tok, _, c := r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
				raw, _ := tok.Extra("id_token").(string)
				if alg, kid := header(t, raw); alg != tc.alg || kid != keys[0]["kid"] {
					t.Errorf("ID token signed with %s key %s, want %s key %s", alg, kid, tc.alg, keys[0]["kid"])
				}
				// A portal that accepts only RS256 refuses it.
				rs256Only := r.provider.Verifier(&oidc.Config{ClientID: "portal", SupportedSigningAlgs: []string{oidc.RS256}})
				if _, err := rs256Only.Verify(r.ctx, raw); err == nil {
					t.Errorf("a verifier that accepts only RS256 accepted a %s ID token", tc.alg)
				}

				tok2, c2 := refresh(t, r, tok.RefreshToken) // verifies the new ID token with go-oidc
				raw2, _ := tok2.Extra("id_token").(string)
				if alg, _ := header(t, raw2); alg != tc.alg || c2.Sub != c.Sub {
					t.Errorf("refreshed ID token: %s for %s, want %s for %s", alg, c2.Sub, tc.alg, c.Sub)
				}
				if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok2)); err != nil {
					t.Errorf("userinfo with the refreshed access token: %v", err)
				}

				// The provider verifies its own ID tokens as id_token_hint:
				// authorize accepts it (single sign-on for the hint's user),
				// end_session returns to the portal at once.
				var disc struct {
					EndSession string `json:"end_session_endpoint"`
				}
				if err := r.provider.Claims(&disc); err != nil {
					t.Fatal(err)
				}
				br := env.NewBrowser()
				f = r.start()
				tok, _, _ = r.exchange(f, r.codeFrom(f, login(t, env, br, f, "alice", alicePassword)))
				raw, _ = tok.Extra("id_token").(string)
				f = r.start(oauth2.SetAuthURLParam("id_token_hint", raw))
				r.codeFrom(f, br.Follow(env.Issuer, br.Get(f.authURL)))
				p := br.Get(disc.EndSession + "?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {portalLogout}, "state": {"s1"}}.Encode())
				if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, portalLogout) || !strings.Contains(p.Location, "state=s1") {
					t.Fatalf("logout with a %s id_token_hint: %s\n%s", tc.alg, p, p.Body)
				}
			})
		})
	}
}

// A restart with another keys.algorithm rotates once: the new algorithm
// signs, the old key stays published until its tokens have expired, and
// discovery lists both meanwhile.
func TestKeysAlgorithmChangeAtRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		f := r.start()
		tok, _, _ := r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
		oldRaw, _ := tok.Extra("id_token").(string)
		oldAlg, oldKid := header(t, oldRaw)
		if oldAlg != "RS256" {
			t.Fatalf("default keys.algorithm signed with %s", oldAlg)
		}

		// Restart as env.Restart does, with keys.algorithm ES256.
		addr := env.HTTP.Listener.Addr().String()
		env.HTTP.Close()
		o := idptest.Options{Store: env.Store, SecretKey: env.SecretKey, Addr: addr, Configure: keysAlgorithm("ES256")}
		if b.Redis {
			o.Pending = env.Pending
		}
		env2 := idptest.New(t, b, o)
		// Both clocks may be in the same second, where the order of the
		// keys (newest first) is not defined: compare as sets.
		algs, keys := publishedDocs(t, env2)
		if slices.Sort(algs); !slices.Equal(algs, []string{"ES256", "RS256"}) {
			t.Errorf("id_token_signing_alg_values_supported = %v, want ES256 and RS256", algs)
		}
		kidOf := map[string]string{}
		for _, k := range keys {
			kidOf[k["alg"]] = k["kid"]
		}
		if len(keys) != 2 || kidOf["RS256"] != oldKid || kidOf["ES256"] == "" {
			t.Fatalf("JWKS keys %v, want a new ES256 key and the old RS256 one %s", keys, oldKid)
		}

		// A portal that read discovery after the change verifies both.
		r2 := newRP(t, env2, "portal", r.conf.ClientSecret)
		tok2, _ := refresh(t, r2, tok.RefreshToken)
		newRaw, _ := tok2.Extra("id_token").(string)
		if alg, kid := header(t, newRaw); alg != "ES256" || kid != kidOf["ES256"] {
			t.Errorf("refreshed ID token signed with %s key %s, want the new ES256 key", alg, kid)
		}
		if _, err := r2.verifier.Verify(r2.ctx, oldRaw); err != nil {
			t.Errorf("the RS256 ID token from before the change: %v", err)
		}
		// One that read it before (go-oidc reads the accepted algorithms
		// once) refuses the new tokens until it restarts, as documented at
		// keys.algorithm.
		if _, err := r.verifier.Verify(r.ctx, newRaw); err == nil {
			t.Error("a portal that saw only RS256 in discovery accepted an ES256 ID token: update keys.algorithm's description")
		}

		// Once the old key's tokens have expired, only the new key remains.
		env2.Clock.Advance(time.Hour + time.Minute)
		if err := env2.Signing.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		algs, keys = publishedDocs(t, env2)
		if !slices.Equal(algs, []string{"ES256"}) || len(keys) != 1 || keys[0]["alg"] != "ES256" {
			t.Errorf("after the old key expired: algorithms %v, keys %v; want only ES256", algs, keys)
		}
	})
}

// libraryKeys serves the set's published keys through the library's own
// /keys handler (op.Keys): what our marshalled JWKS must equal.
type libraryKeys struct{ set *signing.Set }

type libraryKey struct{ k *signing.Key }

func (k libraryKey) ID() string { return k.k.ID }
func (k libraryKey) Algorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.k.Algorithm)
}
func (k libraryKey) Use() string { return "sig" }
func (k libraryKey) Key() any    { return k.k.Public }

func (l libraryKeys) KeySet(context.Context) ([]op.Key, error) {
	var out []op.Key
	for _, k := range l.set.Published() {
		out = append(out, libraryKey{k})
	}
	return out, nil
}

func (l libraryKeys) serve(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	op.Keys(rec, r, l)
	return rec
}

// The JWKS is answered from memory: the same bytes until signing.Set.Load
// finds other keys, then the new keys at once; byte for byte what the
// library's handler would send, with its headers.
func TestJWKSServedFromMemory(t *testing.T) {
	env, _ := setup(t, idptest.Backends[0])
	ctx := context.Background()
	br := env.NewBrowser()
	get := func(what string) *idptest.Page {
		t.Helper()
		p := br.Get(env.Issuer + "/keys")
		if p.Status != http.StatusOK || p.Header.Get("Content-Type") != "application/json" || p.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET /keys (%s): %s, Content-Type %q, Cache-Control %q", what, p, p.Header.Get("Content-Type"), p.Header.Get("Cache-Control"))
		}
		want := libraryKeys{env.Signing}.serve(httptest.NewRequest(http.MethodGet, "/keys", nil))
		if p.Body != want.Body.String() || p.Header.Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("GET /keys (%s) =\n%s\nthe library's handler writes\n%s", what, p.Body, want.Body)
		}
		return p
	}
	kids := func(p *idptest.Page) []string {
		t.Helper()
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(p.Body), &set); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range set.Keys {
			if !k.Valid() || !k.IsPublic() {
				t.Errorf("key %s is not a valid public key", k.KeyID)
			}
			out = append(out, k.KeyID)
		}
		return out
	}

	first := get("first")
	if len(kids(first)) != 1 {
		t.Fatalf("%d keys, want 1", len(kids(first)))
	}
	if err := env.Signing.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if p := get("reloaded, same keys"); p.Body != first.Body {
		t.Errorf("a reload with the same keys changed the JWKS")
	}

	// Rotated in the database (another instance, `idp keys rotate`): not
	// served before this instance reloads its keys, served right after.
	env.Clock.Advance(time.Minute) // newest first
	rotated, err := signing.Rotate(ctx, env.Store, env.Keys, "EdDSA", env.Clock.Now(), 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p := br.Get(env.Issuer + "/keys")
	if p.Body != first.Body {
		t.Errorf("the JWKS changed before the keys were reloaded")
	}
	if err := env.Signing.Load(ctx); err != nil {
		t.Fatal(err)
	}
	second := get("after the rotation")
	if got := kids(second); len(got) != 2 || got[0] != rotated.ID || got[1] != kids(first)[0] {
		t.Errorf("key ids after the rotation %v, want [%s %s]", got, rotated.ID, kids(first)[0])
	}
	if algs, _ := publishedDocs(t, env); !slices.Equal(algs, []string{"EdDSA", "RS256"}) {
		t.Errorf("discovery after the rotation lists %v, want [EdDSA RS256]", algs)
	}

	// The old key expires.
	env.Clock.Advance(31 * time.Minute)
	if err := env.Signing.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kids(get("old key expired")); !slices.Equal(got, []string{rotated.ID}) {
		t.Errorf("key ids after the old key expired %v, want [%s]", got, rotated.ID)
	}
	if algs, _ := publishedDocs(t, env); !slices.Equal(algs, []string{"EdDSA"}) {
		t.Errorf("discovery after the old key expired lists %v, want [EdDSA]", algs)
	}

	// Methods, HEAD and the CORS policy of the library's routes.
	if p := br.Post(env.Issuer+"/keys", url.Values{}); p.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST /keys: %s", p)
	}
	req := httptest.NewRequest(http.MethodHead, env.Issuer+"/keys", nil)
	rec := httptest.NewRecorder()
	env.Server.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("HEAD /keys: %d %v", rec.Code, rec.Header())
	}
	for _, tc := range []struct {
		origin, want string
	}{
		{"http://127.0.0.1:9", "http://127.0.0.1:9"}, // the portal's redirect URI
		{"http://evil.example", ""},
	} {
		req := httptest.NewRequest(http.MethodGet, env.Issuer+"/keys", nil)
		req.Header.Set("Origin", tc.origin)
		rec := httptest.NewRecorder()
		env.Server.ServeHTTP(rec, req)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tc.want || rec.Code != http.StatusOK {
			t.Errorf("GET /keys from %s: %d, Access-Control-Allow-Origin %q, want %q", tc.origin, rec.Code, got, tc.want)
		}
		req = httptest.NewRequest(http.MethodOptions, env.Issuer+"/keys", nil)
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodGet)
		rec = httptest.NewRecorder()
		env.Server.ServeHTTP(rec, req)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tc.want || rec.Code >= 300 {
			t.Errorf("preflight of /keys from %s: %d, Access-Control-Allow-Origin %q, want %q", tc.origin, rec.Code, got, tc.want)
		}
	}
}
