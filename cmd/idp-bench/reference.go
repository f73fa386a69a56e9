package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/hostportal/idp/password"
)

// reference is what the provider's rate is set against, measured in this
// process after the load (never during it) on the same cores.
type reference struct {
	what    string // e.g. "argon2id m=19456 t=2 p=1 on 2 goroutines"
	unit    string // hashes, signatures, requests
	count   int
	elapsed time.Duration
	cpu     time.Duration // this process's CPU time while it ran
	machine time.Duration // every process's (0: not measured)
	when    string        // before or after the load
}

func (r *reference) rate() float64 { return float64(r.count) / r.elapsed.Seconds() }

func (r *reference) cpuPer() time.Duration {
	if r.count == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.count)
}

// onAllCores runs op on GOMAXPROCS goroutines (what the server's hasher
// runs at once, too) for d and counts the operations done.
func onAllCores(ctx context.Context, d time.Duration, what, unit string, op func()) (*reference, error) {
	n := runtime.GOMAXPROCS(0)
	cpu0, err := selfCPU()
	if err != nil {
		return nil, err
	}
	m0, merr := machineBusy()
	start := time.Now()
	deadline := start.Add(d)
	var count atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				op()
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := selfCPU()
	if err != nil {
		return nil, err
	}
	ref := &reference{what: fmt.Sprintf("%s on %d goroutines", what, n), unit: unit, count: int(count.Load()), elapsed: elapsed, cpu: cpu1 - cpu0}
	if m1, err := machineBusy(); err == nil && merr == nil {
		ref.machine = m1 - m0
	}
	return ref, ctx.Err()
}

// hashReference is what the provider's logins are bounded by: argon2id
// with the server's parameters, as the server's password.Hasher computes
// it (a 16-byte salt, a 32-byte key).
func hashReference(ctx context.Context, p password.Params, d time.Duration) (*reference, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	pw := []byte(benchPassword)
	what := fmt.Sprintf("argon2id m=%d t=%d p=%d", p.MemoryKiB, p.Iterations, p.Parallelism)
	return onAllCores(ctx, d, what, "hashes", func() {
		argon2.IDKey(pw, salt, p.Iterations, p.MemoryKiB, p.Parallelism, 32)
	})
}

// signingReference is what a refresh is bounded by: signing the new ID
// token, with key (a fresh one of the provider's algorithm and size,
// signing.Generate(signing.DefaultAlgorithm)).
func signingReference(ctx context.Context, key crypto.Signer, d time.Duration) (*reference, error) {
	b64 := base64.RawURLEncoding
	// An ID token's size: the signature's cost does not depend on it, the hash's barely.
	input := []byte(b64.EncodeToString([]byte(`{"alg":"RS256","kid":"bench-key-id-0000","typ":"JWT"}`)) + "." +
		b64.EncodeToString([]byte(`{"iss":"http://127.0.0.1:8080","sub":"`+strings.Repeat("s", 22)+`","aud":["bench"],"exp":1999999999,"iat":1700000000,`+
			`"auth_time":1700000000,"nonce":"`+strings.Repeat("n", 16)+`","acr":"mfa","amr":["pwd","otp","mfa"],"azp":"bench",`+
			`"at_hash":"`+strings.Repeat("h", 22)+`","email":"bench-0001@example.com","email_verified":true,"name":"Bench User 0001",`+
			`"preferred_username":"bench-0001"}`)))
	var failures atomic.Int64
	ref, err := onAllCores(ctx, d, "RS256 ("+keySize(key)+") signatures, crypto.Signer.Sign", "signatures", func() {
		sum := sha256.Sum256(input)
		if _, err := key.Sign(rand.Reader, sum[:], crypto.SHA256); err != nil {
			failures.Add(1)
		}
	})
	if err == nil && failures.Load() > 0 {
		err = fmt.Errorf("%d signatures failed", failures.Load())
	}
	return ref, err
}

func keySize(k crypto.Signer) string {
	if s, ok := k.Public().(interface{ Size() int }); ok {
		return fmt.Sprintf("%d-bit key", s.Size()*8)
	}
	return "key"
}

// staticReference is what the discovery endpoints are set against: an
// http.FileServer on loopback in this process serving the provider's own
// bytes at the same paths, fetched the same way (the same loop, number of
// virtual users and transport settings). Its CPU is this process's: the
// file server's and the client's together.
func staticReference(ctx context.Context, ep *endpoints, rc runConfig) (*reference, error) {
	dir, err := os.MkdirTemp("", "idp-bench-static-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var paths []string
	for _, f := range []struct {
		url  string
		body []byte
	}{{ep.discovery, ep.discoveryDoc}, {ep.jwks, ep.jwksDoc}} {
		u, err := url.Parse(f.url)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(dir, filepath.FromSlash(u.Path))
		if !strings.HasPrefix(file, dir+string(filepath.Separator)) || strings.HasSuffix(u.Path, "/") {
			return nil, fmt.Errorf("cannot serve %s as a file", f.url)
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(file, f.body, 0o600); err != nil {
			return nil, err
		}
		paths = append(paths, u.EscapedPath())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	static := &endpoints{issuer: &url.URL{Scheme: "http", Host: ln.Addr().String()}, discovery: base + paths[0], jwks: base + paths[1]}
	tr := newTransport(rc.Concurrency)
	defer tr.CloseIdleConnections()
	c := &client{api: apiClient(tr), tr: tr, ep: static, now: rc.Now}
	vus := make([]*vu, rc.Concurrency)
	for i := range vus {
		vus[i] = &vu{c: c, pool: &userPool{}, stats: newStats()}
	}
	cpu0, err := selfCPU()
	if err != nil {
		return nil, err
	}
	m0, merr := machineBusy()
	ph := measure(ctx, vus, rc.ReferenceDuration, rc.Max, discoveryLoop)
	cpu1, err := selfCPU()
	if err != nil {
		return nil, err
	}
	m1, merr1 := machineBusy()
	st := newStats()
	for _, v := range vus {
		st.merge(v.stats)
	}
	if err := errors.Join(srv.Close(), ignoreClosed(<-served)); err != nil {
		return nil, err
	}
	if n := st.failedTotal(); n > 0 {
		return nil, fmt.Errorf("%d requests to the static file server failed: %s", n, st.firstError())
	}
	ref := &reference{what: fmt.Sprintf("http.FileServer on %s, the same bytes, %d virtual users", ln.Addr(), rc.Concurrency),
		unit: "requests", count: st.okOf("discovery", "jwks"), elapsed: ph.elapsed, cpu: cpu1 - cpu0}
	if merr == nil && merr1 == nil {
		ref.machine = m1 - m0
	}
	return ref, ctx.Err()
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
