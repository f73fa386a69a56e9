package idp_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
)

// passwordTry starts a fresh login (so the per-login limit never ends it)
// and posts one username and password.
func passwordTry(t *testing.T, env *idptest.Env, r *rp, b *idptest.Browser, username, pw string, extra ...oauth2.AuthCodeOption) *idptest.Page {
	t.Helper()
	f := r.start(extra...)
	p := b.Follow(env.Issuer, b.Get(f.authURL))
	if !p.Contains(`name="password"`) {
		t.Fatalf("no password form: %s\n%s", p, p.Body)
	}
	form := p.Form()
	form.Set("username", username)
	form.Set("password", pw)
	return b.Post(env.Issuer+"/login/password", form)
}

// throttledPage checks a refusal by a delay: 429, Retry-After, and the
// sentence saying when to try again.
func throttledPage(t *testing.T, p *idptest.Page, retryAfter string) {
	t.Helper()
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") != retryAfter || !p.Contains("Too many failed attempts. Try again in") {
		t.Fatalf("want a 429 with Retry-After %s and when to try again; got %s (Retry-After %q)\n%s", retryAfter, p, p.Header.Get("Retry-After"), p.Body)
	}
}

// failures records n failed checks of alice's factor f from the tests'
// network (127.0.0.1) directly in env's pending store, as n wrong answers
// would, and returns the regulator.
func failures(t *testing.T, env *idptest.Env, f regulation.Factor, n int) *regulation.Regulator {
	t.Helper()
	ctx := context.Background()
	reg, err := regulation.New(env.Pending, regulation.Defaults(), env.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := reg.Record(ctx, regulation.Attempt{Account: "alice", Factor: f, Network: "127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func auditOf(t *testing.T, env *idptest.Env, typ string) []*storage.AuditEvent {
	t.Helper()
	evs, err := env.Store.ListAudit(context.Background(), storage.AuditQuery{Type: typ, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestBruteForcePassword: after 5 wrong passwords the next attempt, even
// with the right password, waits 1 s before it is checked; the delay then
// doubles; an unknown username behaves exactly alike; the right password
// after the delay clears the count; each delay is audited.
func TestBruteForcePassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		attacker := env.NewBrowser()
		for _, name := range []string{"alice", "nobody"} {
			for i := 1; i <= 5; i++ {
				if p := passwordTry(t, env, r, attacker, name, "wrong password"); p.Status != http.StatusUnauthorized || !p.Contains("The username or password is incorrect.") {
					t.Fatalf("%s: wrong password %d: %s", name, i, p)
				}
			}
		}
		// Known and unknown names are refused alike, even with the right password.
		throttledPage(t, passwordTry(t, env, r, attacker, "alice", alicePassword), "1")
		throttledPage(t, passwordTry(t, env, r, attacker, "nobody", alicePassword), "1")
		throttledPage(t, passwordTry(t, env, r, env.NewBrowser(), "Alice", alicePassword), "1") // any browser, any spelling

		env.Clock.Advance(time.Second)
		if p := passwordTry(t, env, r, attacker, "alice", "wrong again"); p.Status != http.StatusUnauthorized {
			t.Fatalf("6th wrong password: %s", p)
		}
		throttledPage(t, passwordTry(t, env, r, attacker, "alice", alicePassword), "2")
		env.Clock.Advance(2 * time.Second)
		p := passwordTry(t, env, r, env.NewBrowser(), "alice", alicePassword)
		if p.Status != http.StatusSeeOther {
			t.Fatalf("the right password after the delay: %s\n%s", p, p.Body)
		}
		// The right password cleared alice's count: 4 more wrong ones are free.
		for i := 1; i <= 4; i++ {
			if p := passwordTry(t, env, r, attacker, "alice", "wrong"); p.Status != http.StatusUnauthorized {
				t.Fatalf("wrong password %d after a success: %s", i, p)
			}
		}
		bans := auditOf(t, env, "regulation.ban")
		var alice, unknown int
		for _, e := range bans {
			switch {
			case e.Username == "alice" && e.Details["factor"] == "password" && e.Details["subject"] == "account":
				alice++
			case e.UserID == "" && e.Username == "":
				unknown++
			}
			if strings.Contains(e.Username, "nobody") || e.Details["username"] != "" {
				t.Errorf("a typed name that is no account was recorded: %+v", e)
			}
		}
		if alice != 2 || unknown != 1 {
			t.Errorf("regulation.ban events: %d for alice (want 2: 1 s and 2 s), %d without a user (want 1)", alice, unknown)
		}
	})
}

// TestBruteForceCodesNotResetByPassword: someone who knows the password
// cannot reset the count of wrong codes by entering it again.
func TestBruteForceCodesNotResetByPassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		br := env.NewBrowser()
		app, _ := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
		attacker := env.NewBrowser()
		wrong := 0
		for wrong < 5 {
			f := r.start()
			p := login(t, env, attacker, f, "alice", alicePassword)
			form := p.Form()
			form.Set("code", wrongCode(app.code(t, 0)))
			for range 2 {
				if p := attacker.Post(env.Issuer+"/login/mfa", form); p.Status != http.StatusUnauthorized {
					t.Fatalf("wrong code %d: %s", wrong+1, p)
				}
				if wrong++; wrong == 5 {
					break
				}
			}
		}
		// The password is still accepted (its own count), the right code waits.
		f := r.start()
		p := login(t, env, attacker, f, "alice", alicePassword)
		if !p.Contains("Authentication Code") {
			t.Fatalf("the password after 5 wrong codes: %s\n%s", p, p.Body)
		}
		form := p.Form()
		form.Set("code", app.code(t, 0))
		throttledPage(t, attacker.Post(env.Issuer+"/login/mfa", form), "1")
		env.Clock.Advance(time.Second)
		form.Set("code", app.code(t, 0))
		p = attacker.Follow(env.Issuer, attacker.Post(env.Issuer+"/login/mfa", form))
		r.codeFrom(f, consentIfAsked(t, env, attacker, p))
	})
}

// TestBruteForceEveryFactor: each check (password, authenticator code,
// recovery code, SMS code, in a login and in the account pages) asks the
// regulator first: while the account's delay for that factor runs, even
// the right answer is refused unchecked.
func TestBruteForceEveryFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, tw := smsSetup(t, b)
		ctx := context.Background()
		if _, err := env.Manage.SetPhone(ctx, manage.Operator, "alice", alicePhone); err != nil {
			t.Fatal(err)
		}
		br := env.NewBrowser()
		app, codes := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
		reg := failures(t, env, regulation.Password, 0)
		// ban gives alice's factor the 4 s delay of 7 failures.
		ban := func(f regulation.Factor) { t.Helper(); failures(t, env, f, 7) }
		forgive := func() {
			t.Helper()
			if err := regulation.Unlock(ctx, env.Pending, "alice"); err != nil {
				t.Fatal(err)
			}
		}

		// Login: the authenticator code.
		lb, _, sf := toSecondFactor(t, env, r)
		ban(regulation.TOTP)
		form := sf.Form()
		form.Set("code", app.code(t, 0))
		throttledPage(t, lb.Post(env.Issuer+"/login/mfa", form), "4")
		forgive()

		// Login: the recovery code.
		methods := lb.Get(env.Issuer + mustHref(t, sf, "Try another method"))
		rec := lb.Get(env.Issuer + mustHref(t, methods, "Recovery code"))
		ban(regulation.Recovery)
		form = rec.Form()
		form.Set("recovery_code", codes[0])
		throttledPage(t, lb.Post(env.Issuer+"/login/recovery", form), "4")
		forgive()

		// Login: the SMS code.
		sent := sendSMS(t, env, lb, sf)
		code := codeOf(t, env, tw.Last(t))
		ban(regulation.SMS)
		throttledPage(t, enterSMS(t, env, lb, sent, code), "4")
		forgive()
		if n := tw.Count(); n != 1 {
			t.Fatalf("%d messages", n)
		}

		// Login: the password.
		ban(regulation.Password)
		throttledPage(t, passwordTry(t, env, r, env.NewBrowser(), "alice", alicePassword), "4")
		forgive()

		// Account pages: the current password, and the code that confirms
		// turning 2-Factor Auth off.
		ban(regulation.Password)
		pw := br.Get(env.Issuer + "/account/password")
		form = pw.Form()
		form.Set("current_password", alicePassword)
		form.Set("password", "a brand new passphrase 42")
		form.Set("password_again", "a brand new passphrase 42")
		form.Set("new_password", "a brand new passphrase 42")
		throttledPage(t, br.Post(env.Issuer+"/account/password", form), "4")
		forgive()
		ban(regulation.TOTP)
		off := br.Get(env.Issuer + "/account/2fa/disable")
		form = off.Form()
		form.Set("code", app.code(t, 30*time.Second))
		throttledPage(t, br.Post(env.Issuer+"/account/2fa/disable", form), "4")
		forgive()

		// Each kind of failure is counted for its factor only.
		form = sf.Form()
		form.Set("code", wrongCode(app.code(t, 0)))
		if p := lb.Post(env.Issuer+"/login/mfa", form); p.Status != http.StatusUnauthorized {
			t.Fatalf("a wrong code: %s", p)
		}
		for _, f := range regulation.Factors {
			n, _, err := reg.Failures(ctx, "alice", f)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[regulation.Factor]int{regulation.TOTP: 1}[f]; n != want {
				t.Errorf("%s count after one wrong code: %d, want %d", f, n, want)
			}
		}
	})
}

// forwardedFor makes a browser's requests come through a proxy that
// forwards for client.
type forwardedFor struct {
	client string
	next   http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.client)
	return f.next.RoundTrip(r)
}

func behindProxy(b *idptest.Browser, client string) *idptest.Browser {
	b.Client.Transport = forwardedFor{client: client, next: http.DefaultTransport}
	return b
}

// TestBruteForceNetwork: failures from one network over many accounts
// (password spraying) delay every attempt from it, and only from it: behind
// a trusted proxy the network is the forwarded client's.
func TestBruteForceNetwork(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env := idptest.New(t, b, idptest.Options{Configure: func(c *config.Config) {
			c.Regulation.NetworkFailures = 6
			c.TrustedProxies = []string{"127.0.0.1/32"}
		}})
		env.AddUser("alice", alicePassword)
		secret := env.AddClient(manage.NewClient{ID: "portal", Name: "Client Portal", RedirectURIs: []string{portalRedirect}})
		r := newRP(t, env, "portal", secret)
		sprayer := behindProxy(env.NewBrowser(), "203.0.113.7")
		for i := range 6 {
			if p := passwordTry(t, env, r, sprayer, "user"+string(rune('a'+i)), "Winter2026!"); p.Status != http.StatusUnauthorized {
				t.Fatalf("spray %d: %s", i+1, p)
			}
		}
		throttledPage(t, passwordTry(t, env, r, behindProxy(env.NewBrowser(), "203.0.113.7"), "alice", alicePassword), "1")
		if p := passwordTry(t, env, r, behindProxy(env.NewBrowser(), "198.51.100.9"), "alice", alicePassword); p.Status != http.StatusSeeOther {
			t.Fatalf("a client on another network was delayed: %s", p)
		}
		bans := auditOf(t, env, "regulation.ban")
		if len(bans) != 1 || bans[0].Details["subject"] != "network" || bans[0].Details["network"] != "203.0.113.7" {
			t.Fatalf("bans %+v, want one for the forwarded client's network", bans)
		}
	})
}

// TestBruteForceOwnerNotKeptOut: failures from elsewhere cannot keep the
// owner out. An attacker's failures from one network delay that network
// only; a distributed attack (many networks) delays the account from all
// networks, but not a browser that completed a login to it before (with
// or without a remembered device), whose failures still count.
func TestBruteForceOwnerNotKeptOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env := idptest.New(t, b, idptest.Options{Configure: func(c *config.Config) {
			c.TrustedProxies = []string{"127.0.0.1/32"}
		}})
		env.AddUser("alice", alicePassword)
		secret := env.AddClient(manage.NewClient{ID: "portal", Name: "Client Portal", RedirectURIs: []string{portalRedirect}, FirstParty: true})
		r := newRP(t, env, "portal", secret)
		owner := behindProxy(env.NewBrowser(), "198.51.100.9")
		f := r.start()
		r.codeFrom(f, login(t, env, owner, f, "alice", alicePassword)) // a login: this browser is known now

		// One attacker, one network: only that network waits.
		attacker := behindProxy(env.NewBrowser(), "203.0.113.7")
		for range 5 {
			passwordTry(t, env, r, attacker, "alice", "guess")
		}
		throttledPage(t, passwordTry(t, env, r, attacker, "alice", alicePassword), "1")
		if p := passwordTry(t, env, r, behindProxy(env.NewBrowser(), "192.0.2.200"), "alice", alicePassword); p.Status != http.StatusSeeOther {
			t.Fatalf("a new browser on another network was delayed by one network's failures: %s", p)
		}

		// Many networks, 4 failures each: the account waits everywhere...
		for n := range 5 {
			bot := behindProxy(env.NewBrowser(), "203.0.113."+strconv.Itoa(20+n))
			for range 4 {
				passwordTry(t, env, r, bot, "alice", "guess")
			}
		}
		throttledPage(t, passwordTry(t, env, r, behindProxy(env.NewBrowser(), "192.0.2.201"), "alice", alicePassword), "1")
		// ...except for the owner's browser, whose failures are still counted.
		again := oauth2.SetAuthURLParam("prompt", "login") // the owner's session would skip the password
		if p := passwordTry(t, env, r, owner, "alice", "a typo", again); p.Status != http.StatusUnauthorized {
			t.Fatalf("the owner's wrong password during the delay: %s, want it checked (401)", p)
		}
		f = r.start(again)
		r.codeFrom(f, login(t, env, owner, f, "alice", alicePassword))
		bans := auditOf(t, env, "regulation.ban")
		subjects := map[string]int{}
		for _, e := range bans {
			subjects[e.Details["subject"]]++
		}
		if subjects["account"] == 0 || subjects["account_everywhere"] == 0 {
			t.Errorf("ban subjects %v, want account and account_everywhere", subjects)
		}
	})
}

// TestBruteForceUnlockFromTheLog: the CLI's unlock (an audit event in the
// database, all it can reach when the pending store is in-process) ends
// the delay at the next attempt.
func TestBruteForceUnlockFromTheLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		ctx := context.Background()
		reg := failures(t, env, regulation.Password, 40)
		if _, until, _ := reg.Failures(ctx, "alice", regulation.Password); until.Sub(env.Clock.Now()) != 15*time.Minute {
			t.Fatalf("delay until %v, want the 15 minute cap", until)
		}
		if _, err := env.Manage.Unlock(ctx, manage.Operator, "alice"); err != nil {
			t.Fatal(err)
		}
		if p := passwordTry(t, env, r, env.NewBrowser(), "alice", alicePassword); p.Status != http.StatusSeeOther {
			t.Fatalf("after the unlock: %s\n%s", p, p.Body)
		}
		if n, _, _ := reg.Failures(ctx, "alice", regulation.Password); n != 0 {
			t.Errorf("count after the unlock and a login: %d", n)
		}
	})
}

// TestBruteForcePasswordAloneIsNotKnown: a browser becomes known (let
// through the account's all-networks delay) by a whole login, not by the
// password alone: someone who has the password cannot use it to lift the
// delay on codes.
func TestBruteForcePasswordAloneIsNotKnown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		br := env.NewBrowser()
		app, _ := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
		attacker := env.NewBrowser()
		f := r.start()
		p := login(t, env, attacker, f, "alice", alicePassword)
		// A distributed guess at the codes: 21 failures from 7 networks.
		reg := failures(t, env, regulation.TOTP, 0)
		for n := range 7 {
			for range 3 {
				if _, err := reg.Record(context.Background(), regulation.Attempt{Account: "alice", Factor: regulation.TOTP, Network: "203.0.113." + strconv.Itoa(n)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		form := p.Form()
		form.Set("code", app.code(t, 0))
		throttledPage(t, attacker.Post(env.Issuer+"/login/mfa", form), "2")
		// The owner's browser, known from its logins, is let through.
		f = r.start(oauth2.SetAuthURLParam("prompt", "login"))
		p = login(t, env, br, f, "alice", alicePassword)
		r.codeFrom(f, consentIfAsked(t, env, br, submitCode(t, env, br, p, app.code(t, 0), false)))
	})
}
