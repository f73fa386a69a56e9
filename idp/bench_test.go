package idp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
)

// Benchmarks of the provider's endpoints through the real router on SQLite
// and the in-process pending store (idptest), with no network: each request
// goes to env.Server.ServeHTTP with an httptest.ResponseRecorder. Compare
// BenchmarkTokenEndpoint/refresh_token with signing's BenchmarkSignIDToken/RS256
// (the ID token's signature, which a refresh includes), and the documents'
// provider variants with their file_server ones.

const (
	benchRedirect = "http://127.0.0.1:9/bench/callback"
	benchUser     = "bench.user"
	benchPassword = "correct horse battery staple"
)

// benchEnv starts a provider with a user, a portal that gets refresh
// tokens and a backend service with the client_credentials grant.
func benchEnv(b *testing.B) (env *idptest.Env, portalSecret, backendSecret string) {
	b.Helper()
	env = idptest.New(b, idptest.Backends[0], idptest.Options{})
	env.AddUser(benchUser, benchPassword)
	portalSecret = env.AddClient(manage.NewClient{ID: "portal", Name: "Client Portal", RedirectURIs: []string{benchRedirect}})
	backendSecret = env.AddClient(manage.NewClient{ID: "backend", Grants: []string{"client_credentials"}, Scopes: []string{"reports:read"}})
	return env, portalSecret, backendSecret
}

// benchServe runs req through the provider's handler in-process.
func benchServe(env *idptest.Env, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	env.Server.ServeHTTP(rec, req)
	return rec
}

func benchTokenRequest(env *idptest.Env, clientID, secret string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, env.Issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	return req
}

type benchTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

func benchDecodeTokens(rec *httptest.ResponseRecorder) (benchTokens, bool) {
	var t benchTokens
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &t) != nil || t.AccessToken == "" {
		return t, false
	}
	return t, true
}

// benchLogin runs a code flow for the portal as a browser would (over the
// test server's network, once, outside the measured loop) and returns its
// refresh token.
func benchLogin(b *testing.B, env *idptest.Env, portalSecret string) string {
	b.Helper()
	conf := oauth2.Config{
		ClientID: "portal", ClientSecret: portalSecret, RedirectURL: benchRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: env.Issuer + "/authorize", TokenURL: env.Issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "profile", "email", "offline_access"},
	}
	verifier := oauth2.GenerateVerifier()
	br := env.NewBrowser()
	p := br.Follow(env.Issuer, br.Get(conf.AuthCodeURL("bench-state", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("nonce", "bench-nonce"))))
	if !p.Contains(`name="password"`) {
		b.Fatalf("no login page: %s\n%s", p, p.Body)
	}
	form := p.Form()
	form.Set("username", benchUser)
	form.Set("password", benchPassword)
	p = br.Follow(env.Issuer, br.Post(env.Issuer+"/login/password", form))
	if p.Status == http.StatusOK && p.Contains(`value="allow"`) {
		form := p.Form()
		form.Set("decision", "allow")
		p = br.Follow(env.Issuer, br.Post(env.Issuer+"/login/consent", form))
	}
	if !strings.HasPrefix(p.Location, benchRedirect) {
		b.Fatalf("login did not return to the portal: %s\n%s", p, p.Body)
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := conf.Exchange(context.Background(), u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		b.Fatalf("code exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		b.Fatal("the code exchange gave no refresh token")
	}
	return tok.RefreshToken
}

// BenchmarkTokenEndpoint is POST /oauth/token through the real handler:
// client_credentials (client authentication, an opaque access token sealed
// with secret_key; no database write), the same from several goroutines
// (the throughput of the machine's cores, in ops/s), and refresh_token
// rotation (the refresh token read, the user loaded, the old token marked
// used and the new one stored in one transaction, an access token and an
// RS256 ID token signed), each op redeeming the token the one before got.
func BenchmarkTokenEndpoint(b *testing.B) {
	env, portalSecret, backendSecret := benchEnv(b)
	ccForm := url.Values{"grant_type": {"client_credentials"}, "scope": {"reports:read"}}
	// The refresh token the next refresh_token op redeems, across the runs
	// the benchmark framework makes with growing b.N. The login logs; it
	// runs before the first benchmark's name is printed.
	refresh := benchLogin(b, env, portalSecret)

	b.Run("client_credentials", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := benchServe(env, benchTokenRequest(env, "backend", backendSecret, ccForm))
			if _, ok := benchDecodeTokens(rec); !ok {
				b.Fatalf("client_credentials: %d %s", rec.Code, rec.Body)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})

	b.Run("client_credentials_parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := benchServe(env, benchTokenRequest(env, "backend", backendSecret, ccForm))
				if _, ok := benchDecodeTokens(rec); !ok {
					b.Errorf("client_credentials: %d %s", rec.Code, rec.Body)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})

	b.Run("refresh_token", func(b *testing.B) {
		idTokenBytes := 0
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			rec := benchServe(env, benchTokenRequest(env, "portal", portalSecret,
				url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}))
			t, ok := benchDecodeTokens(rec)
			if !ok || t.RefreshToken == "" || t.IDToken == "" {
				b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
			}
			refresh, idTokenBytes = t.RefreshToken, len(t.IDToken)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		b.ReportMetric(float64(idTokenBytes), "id-token-B")
	})
}

// BenchmarkPublicDocuments is GET of the discovery document and of the
// JWKS, as every relying party fetches them: through the provider's router
// (both are kept marshalled in memory, see BenchmarkJWKS), against
// http.FileServer serving the same bytes from files, and a handler writing
// the bytes with nothing else (the floor).
func BenchmarkPublicDocuments(b *testing.B) {
	env, _, _ := benchEnv(b)
	discovery := benchServe(env, httptest.NewRequest(http.MethodGet, env.Issuer+"/.well-known/openid-configuration", nil))
	if discovery.Code != http.StatusOK {
		b.Fatalf("discovery: %d %s", discovery.Code, discovery.Body)
	}
	var d struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(discovery.Body.Bytes(), &d); err != nil || !strings.HasPrefix(d.JWKSURI, env.Issuer+"/") {
		b.Fatalf("jwks_uri %q: %v", d.JWKSURI, err)
	}
	jwks := benchServe(env, httptest.NewRequest(http.MethodGet, d.JWKSURI, nil))
	if jwks.Code != http.StatusOK {
		b.Fatalf("JWKS: %d %s", jwks.Code, jwks.Body)
	}

	dir := b.TempDir()
	files := http.FileServer(http.Dir(dir))
	for _, doc := range []struct {
		name, url, file string
		body            []byte
	}{
		{"discovery", env.Issuer + "/.well-known/openid-configuration", "openid-configuration.json", discovery.Body.Bytes()},
		{"jwks", d.JWKSURI, "jwks.json", jwks.Body.Bytes()},
	} {
		if err := os.WriteFile(filepath.Join(dir, doc.file), doc.body, 0o600); err != nil {
			b.Fatal(err)
		}
		bytesOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(doc.body)
		})
		for _, h := range []struct {
			name    string
			serve   func(*http.Request) *httptest.ResponseRecorder
			request string
		}{
			{"provider", func(r *http.Request) *httptest.ResponseRecorder { return benchServe(env, r) }, doc.url},
			{"file_server", func(r *http.Request) *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				files.ServeHTTP(rec, r)
				return rec
			}, "http://files.example/" + doc.file},
			{"bytes", func(r *http.Request) *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				bytesOnly.ServeHTTP(rec, r)
				return rec
			}, "http://files.example/" + doc.file},
		} {
			b.Run(doc.name+"/"+h.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					rec := h.serve(httptest.NewRequest(http.MethodGet, h.request, nil))
					if rec.Code != http.StatusOK || rec.Body.Len() != len(doc.body) {
						b.Fatalf("GET %s: %d, %d bytes; want 200, %d", h.request, rec.Code, rec.Body.Len(), len(doc.body))
					}
				}
				b.ReportMetric(float64(len(doc.body)), "doc-B")
			})
		}
	}
}

// BenchmarkJWKS is GET of jwks_uri for each keys.algorithm through the
// provider's router, which answers from the marshalled JWKS, against the
// library's own handler (op.Keys, without the router), which builds and
// marshals the JWKS from the key set for each request.
func BenchmarkJWKS(b *testing.B) {
	for _, alg := range config.SigningAlgorithms {
		env := idptest.New(b, idptest.Backends[0], idptest.Options{Configure: keysAlgorithm(alg)})
		for _, h := range []struct {
			name  string
			serve func(*http.Request) *httptest.ResponseRecorder
		}{
			{"provider", func(r *http.Request) *httptest.ResponseRecorder { return benchServe(env, r) }},
			{"library_handler", libraryKeys{env.Signing}.serve},
		} {
			b.Run(alg+"/"+h.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if rec := h.serve(httptest.NewRequest(http.MethodGet, env.Issuer+"/keys", nil)); rec.Code != http.StatusOK || rec.Body.Len() < 50 {
						b.Fatalf("GET /keys: %d %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
