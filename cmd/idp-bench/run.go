package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/signing"
)

// The modes of `run`.
const (
	modeLogin             = "login"
	modeRefresh           = "refresh"
	modeClientCredentials = "client-credentials"
	modeDiscovery         = "discovery"
)

var modes = []string{modeLogin, modeRefresh, modeClientCredentials, modeDiscovery}

// Bounds that make every run end by itself.
const (
	maxDuration    = 10 * time.Minute
	maxConcurrency = 1024
	maxOperations  = 10_000_000
	defaultMax     = 1_000_000
	setupTimeout   = 2 * time.Minute // refresh mode's first logins
)

// runConfig is what `run` measures.
type runConfig struct {
	Issuer      string
	Mode        string
	Concurrency int           // virtual users
	Duration    time.Duration // the measured phase ends after this...
	Max         int           // ...or after this many operations are started, whichever comes first
	Users       int           // bench-0001 .. bench-<Users>, seeded with Seed
	Seed        string
	ClientID    string
	Secret      string
	// Refresh and Userinfo add a refresh and a userinfo call after each login (mode login).
	Refresh, Userinfo bool
	// ServerPID, when not 0, is the provider's process: its CPU time is
	// read from /proc before and after the measured phase.
	ServerPID int
	// Argon2 are the server's parameters, for the hash-only reference (mode login).
	Argon2 password.Params
	// ReferenceDuration is how long each reference runs.
	ReferenceDuration time.Duration
	// Now is the provider's clock, for the authentication codes: time.Now
	// against a real server, the test's clock against idptest.
	Now func() time.Time
}

// check reports every bad value at once, naming its flag.
func (rc *runConfig) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !slices.Contains(modes, rc.Mode) {
		bad("--mode %q: want one of %s", rc.Mode, strings.Join(modes, ", "))
	}
	if rc.Concurrency < 1 || rc.Concurrency > maxConcurrency {
		bad("--concurrency %d: want 1 to %d", rc.Concurrency, maxConcurrency)
	}
	if rc.Duration <= 0 || rc.Duration > maxDuration {
		bad("--duration %s: want more than 0 and at most %s", rc.Duration, maxDuration)
	}
	if rc.Max < 1 || rc.Max > maxOperations {
		bad("--max %d: want 1 to %d", rc.Max, maxOperations)
	}
	if rc.ReferenceDuration <= 0 || rc.ReferenceDuration > time.Minute {
		bad("--reference-duration %s: want more than 0 and at most 1m", rc.ReferenceDuration)
	}
	if rc.Mode == modeLogin || rc.Mode == modeRefresh {
		if rc.Users < rc.Concurrency {
			bad("--users %d: want at least --concurrency (%d): each virtual user logs in as users of its own", rc.Users, rc.Concurrency)
		}
	}
	if rc.Mode == modeLogin {
		a := rc.Argon2
		if a.Iterations < 1 || a.Parallelism < 1 || a.MemoryKiB < 8*uint32(a.Parallelism) {
			bad("argon2id parameters m=%d,t=%d,p=%d are not valid (--argon2, or password.argon2 of the configuration)", a.MemoryKiB, a.Iterations, a.Parallelism)
		}
	}
	if (rc.Refresh || rc.Userinfo) && rc.Mode != modeLogin {
		bad("--refresh and --userinfo go with --mode login")
	}
	if rc.ClientID == "" || rc.Secret == "" {
		bad("the client id and secret are required")
	}
	return errors.Join(errs...)
}

// run measures the provider at rc.Issuer, which must be on this machine:
// the discovery document first (its endpoints must be too), then, for
// refresh mode, one login per virtual user; then the measured phase, then
// the mode's reference in the same process, and returns the report.
func run(ctx context.Context, rc runConfig) (*report, error) {
	if rc.Now == nil {
		rc.Now = time.Now
	}
	if err := rc.check(); err != nil {
		return nil, err
	}
	iss, err := loopbackURL(ctx, "--issuer", rc.Issuer)
	if err != nil {
		return nil, err
	}
	tr := newTransport(rc.Concurrency)
	defer tr.CloseIdleConnections()
	api := apiClient(tr)
	ep, err := discover(ctx, api, iss)
	if err != nil {
		return nil, err
	}
	c := &client{api: api, tr: tr, ep: ep, clientID: rc.ClientID, clientSecret: rc.Secret, now: rc.Now}
	vus := newVUs(c, rc)
	if rc.Mode == modeRefresh {
		if err := firstLogins(ctx, vus); err != nil {
			return nil, err
		}
	}

	// The reference runs before and after the load (never during it), and
	// the faster of the two counts: other processes on the machine can
	// only slow one down.
	refFn, err := rc.reference(ep)
	if err != nil {
		return nil, err
	}
	var refs []*reference
	if refFn != nil {
		before, err := refFn(ctx)
		if err != nil {
			return nil, fmt.Errorf("the reference measurement before the load: %w", err)
		}
		before.when = "before the load"
		refs = append(refs, before)
	}

	rep := &report{References: refs, Mode: rc.Mode, Issuer: ep.issuer.String(), Concurrency: rc.Concurrency, Refresh: rc.Refresh, Userinfo: rc.Userinfo, ServerPID: rc.ServerPID}
	var serverBefore time.Duration
	if rc.ServerPID != 0 {
		if serverBefore, err = processCPU(rc.ServerPID); err != nil {
			return nil, fmt.Errorf("--server-pid: %w", err)
		}
	}
	selfBefore, selfErr := selfCPU()
	machineBefore, machineErr := machineBusy()
	ph := measure(ctx, vus, rc.Duration, rc.Max, rc.loop())
	rep.Elapsed, rep.Stopped = ph.elapsed, ph.stopped
	if rc.ServerPID != 0 {
		after, err := processCPU(rc.ServerPID)
		if err != nil {
			return nil, fmt.Errorf("--server-pid after the load: %w", err)
		}
		rep.ServerCPU = after - serverBefore
	}
	if after, err := selfCPU(); err == nil && selfErr == nil {
		rep.ClientCPU = after - selfBefore
	}
	if after, err := machineBusy(); err == nil && machineErr == nil {
		rep.MachineCPU = after - machineBefore
	}
	rep.Stats = newStats()
	for _, v := range vus {
		rep.Stats.merge(v.stats)
		rep.Waits += v.pool.waits
		rep.Waited += v.pool.waited
	}
	if ctx.Err() != nil {
		return rep, nil // interrupted: no reference
	}

	if refFn != nil {
		after, err := refFn(ctx)
		if err != nil {
			return nil, fmt.Errorf("the reference measurement after the load: %w", err)
		}
		after.when = "after the load"
		rep.References = append(rep.References, after)
	}
	rep.Reference = fastest(rep.References)
	return rep, nil
}

// reference returns the measurement rc's mode is set against (nil: none).
func (rc *runConfig) reference(ep *endpoints) (func(context.Context) (*reference, error), error) {
	switch rc.Mode {
	case modeLogin:
		return func(ctx context.Context) (*reference, error) {
			return hashReference(ctx, rc.Argon2, rc.ReferenceDuration)
		}, nil
	case modeRefresh:
		key, err := signing.Generate(signing.DefaultAlgorithm)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (*reference, error) { return signingReference(ctx, key, rc.ReferenceDuration) }, nil
	case modeDiscovery:
		return func(ctx context.Context) (*reference, error) { return staticReference(ctx, ep, *rc) }, nil
	}
	return nil, nil
}

// fastest is the reference with the highest rate.
func fastest(refs []*reference) *reference {
	var best *reference
	for _, r := range refs {
		if best == nil || r.rate() > best.rate() {
			best = r
		}
	}
	return best
}

// loopbackURL parses raw and refuses it unless its host is a loopback
// address or a name that resolves only to loopback addresses.
func loopbackURL(ctx context.Context, what, raw string) (*url.URL, error) {
	refuse := fmt.Errorf("%s %q is not on this machine: idp-bench only talks to loopback addresses (127.0.0.0/8, ::1, localhost)", what, raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want an http:// or https:// URL such as http://127.0.0.1:8080", what, raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return nil, refuse
		}
		return u, nil
	}
	if !strings.EqualFold(host, "localhost") && !strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return nil, refuse
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("%s %q: cannot resolve %s: %v", what, raw, host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return nil, refuse
		}
	}
	return u, nil
}

// loopbackOnly is the dialer's last word: whatever a redirect or a
// discovery document says, no connection leaves the machine.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
	}
	return nil
}

// newTransport is shared by the virtual users: each has at most one
// request in flight, so conns idle connections are kept per host.
func newTransport(conns int) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly}
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   conns + 2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

func apiClient(tr http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// discover reads the provider's discovery document and key set, and checks
// that the document names the issuer given and endpoints on this machine.
func discover(ctx context.Context, api *http.Client, iss *url.URL) (*endpoints, error) {
	base := strings.TrimSuffix(iss.String(), "/")
	ep := &endpoints{issuer: iss, discovery: base + "/.well-known/openid-configuration"}
	raw, err := getBytes(ctx, api, ep.discovery)
	if err != nil {
		return nil, fmt.Errorf("the provider's discovery document: %w", err)
	}
	var doc struct {
		Issuer    string `json:"issuer"`
		Authorize string `json:"authorization_endpoint"`
		Token     string `json:"token_endpoint"`
		Userinfo  string `json:"userinfo_endpoint"`
		JWKS      string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("the provider's discovery document at %s is not JSON: %w", ep.discovery, err)
	}
	if strings.TrimSuffix(doc.Issuer, "/") != base {
		return nil, fmt.Errorf("the provider at %s says its issuer is %q: give that as --issuer (cookies and redirects are for it)", base, doc.Issuer)
	}
	ep.discoveryDoc = raw
	for _, e := range []struct {
		key string
		url string
		to  *string
	}{
		{"authorization_endpoint", doc.Authorize, &ep.authorize},
		{"token_endpoint", doc.Token, &ep.token},
		{"userinfo_endpoint", doc.Userinfo, &ep.userinfo},
		{"jwks_uri", doc.JWKS, &ep.jwks},
	} {
		if e.url == "" {
			return nil, fmt.Errorf("the provider's discovery document has no %s", e.key)
		}
		if _, err := loopbackURL(ctx, "the discovery document's "+e.key, e.url); err != nil {
			return nil, err
		}
		*e.to = e.url
	}
	if ep.jwksDoc, err = getBytes(ctx, api, ep.jwks); err != nil {
		return nil, fmt.Errorf("the provider's key set: %w", err)
	}
	return ep, nil
}

func getBytes(ctx context.Context, api *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := api.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	return raw, nil
}

// vu is a virtual user. Its stats and users are its own: nothing is shared
// between virtual users but the transport.
type vu struct {
	c     *client
	pool  *userPool
	stats *stats
	tok   *tokens // refresh mode: the family being rotated
	n     int     // discovery mode: which document is next
}

// newVUs gives virtual user i the bench users i+1, i+1+C, i+1+2C, ...
// (C virtual users): disjoint slices, so no two virtual users ever send a
// code for the same user.
func newVUs(c *client, rc runConfig) []*vu {
	vus := make([]*vu, rc.Concurrency)
	for i := range vus {
		p := &userPool{now: rc.Now}
		for n := i + 1; n <= rc.Users; n += rc.Concurrency {
			name := benchUsername(n)
			p.users = append(p.users, &benchUser{name: name, secret: totpSecret(rc.Seed, name), last: -1})
		}
		vus[i] = &vu{c: c, pool: p, stats: newStats()}
	}
	return vus
}

// userPool is one virtual user's bench users. The provider accepts one
// code per user and 30-second time step (a code, and any older one, is
// refused once used), so take hands out the next user that has not sent a
// code in the current step, and when every one of them has, waits for the
// next step (counted in waits: seed more users, about rate × 30 s, to
// avoid it). The clock is the provider's (time.Now on the same machine).
//
// A user logged in by an earlier run in the same step is refused ("mfa:
// code already used"): leave 30 s between runs of the login and refresh
// modes, or seed more users than one run goes through.
type userPool struct {
	users  []*benchUser
	next   int
	now    func() time.Time
	waits  int
	waited time.Duration
}

func (p *userPool) take(ctx context.Context, deadline time.Time) (*benchUser, bool) {
	for {
		step := mfa.TOTPStep(p.now())
		for i := range p.users {
			u := p.users[(p.next+i)%len(p.users)]
			if u.last < step {
				p.next = (p.next + i + 1) % len(p.users)
				return u, true
			}
		}
		p.waits++
		start := time.Now()
		for mfa.TOTPStep(p.now()) <= step {
			if ctx.Err() != nil || !time.Now().Before(deadline) {
				p.waited += time.Since(start)
				return nil, false
			}
			// Polled, not slept to the step's start: the clock may be a test's.
			next := time.Unix((step+1)*int64(mfa.TOTPPeriod/time.Second), 0)
			d := min(next.Sub(p.now()), 100*time.Millisecond, time.Until(deadline))
			sleep(ctx, max(d, time.Millisecond))
		}
		p.waited += time.Since(start)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// firstLogins gives each virtual user of refresh mode its refresh token.
func firstLogins(ctx context.Context, vus []*vu) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	errs := make([]error, len(vus))
	var wg sync.WaitGroup
	for i, v := range vus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, ok := v.pool.take(ctx, deadline)
			if !ok {
				errs[i] = errors.New("no bench user was ready to log in")
				return
			}
			if v.tok, errs[i] = v.c.login(ctx, u); errs[i] != nil {
				errs[i] = fmt.Errorf("logging in %s: %w", u.name, errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("refresh mode's first logins failed:\n%w", err)
	}
	return nil
}

// gate admits operations until the deadline or the count is reached.
type gate struct {
	deadline time.Time
	max      int64
	started  atomic.Int64
	maxHit   atomic.Bool
}

func (g *gate) open(ctx context.Context) bool {
	if ctx.Err() != nil || !time.Now().Before(g.deadline) {
		return false
	}
	if g.started.Add(1) > g.max {
		g.maxHit.Store(true)
		return false
	}
	return true
}

// phase is how a measured phase went.
type phase struct {
	elapsed time.Duration // until the last virtual user finished its last operation
	stopped string        // duration, max, interrupted
}

// measure runs loop on every virtual user until the gate closes and the
// operations in flight have finished (each is bounded by the HTTP timeouts).
func measure(ctx context.Context, vus []*vu, d time.Duration, maxOps int, loop func(context.Context, *vu, *gate)) phase {
	start := time.Now()
	g := &gate{deadline: start.Add(d), max: int64(maxOps)}
	var wg sync.WaitGroup
	for _, v := range vus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx, v, g)
		}()
	}
	wg.Wait()
	ph := phase{elapsed: time.Since(start), stopped: "duration"}
	switch {
	case ctx.Err() != nil:
		ph.stopped = "interrupted"
	case g.maxHit.Load():
		ph.stopped = fmt.Sprintf("max (%d operations)", maxOps)
	}
	return ph
}

// loop is what each virtual user repeats in rc's mode.
func (rc *runConfig) loop() func(context.Context, *vu, *gate) {
	switch rc.Mode {
	case modeLogin:
		return func(ctx context.Context, v *vu, g *gate) {
			for {
				u, ok := v.pool.take(ctx, g.deadline)
				if !ok || !g.open(ctx) {
					return
				}
				start := time.Now()
				tok, err := v.c.login(ctx, u)
				v.stats.record("login", time.Since(start), err)
				if err != nil {
					continue
				}
				if rc.Refresh {
					start = time.Now()
					_, err := v.c.refresh(ctx, tok.refresh)
					v.stats.record("refresh", time.Since(start), err)
				}
				if rc.Userinfo {
					start = time.Now()
					err := v.c.userinfo(ctx, tok.access)
					v.stats.record("userinfo", time.Since(start), err)
				}
			}
		}
	case modeRefresh:
		return func(ctx context.Context, v *vu, g *gate) {
			for g.open(ctx) {
				start := time.Now()
				tok, err := v.c.refresh(ctx, v.tok.refresh)
				v.stats.record("refresh", time.Since(start), err)
				if err == nil {
					if tok.refresh != "" { // rotated
						v.tok = tok
					}
					continue
				}
				// The family may be revoked now: a new login starts another.
				u, ok := v.pool.take(ctx, g.deadline)
				if !ok {
					return
				}
				start = time.Now()
				tok, err = v.c.login(ctx, u)
				v.stats.record("login after a failed refresh", time.Since(start), err)
				if err == nil {
					v.tok = tok
				}
			}
		}
	case modeClientCredentials:
		return func(ctx context.Context, v *vu, g *gate) {
			for g.open(ctx) {
				start := time.Now()
				err := v.c.clientCredentials(ctx)
				v.stats.record("client_credentials", time.Since(start), err)
			}
		}
	default: // discovery
		return discoveryLoop
	}
}

// discoveryLoop fetches the discovery document and the key set in turn, as
// relying parties starting up do.
func discoveryLoop(ctx context.Context, v *vu, g *gate) {
	for g.open(ctx) {
		u, op := v.c.ep.discovery, "discovery"
		if v.n%2 == 1 {
			u, op = v.c.ep.jwks, "jwks"
		}
		v.n++
		start := time.Now()
		err := v.c.fetch(ctx, u, op)
		v.stats.record(op, time.Since(start), err)
	}
}
