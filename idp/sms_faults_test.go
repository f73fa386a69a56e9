package idp_test

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa/sms/smstest"
	"github.com/hostportal/idp/storage"
)

// withAppAndPhone gives alice an authenticator app and a verified phone.
func withAppAndPhone(t *testing.T, env *idptest.Env) {
	t.Helper()
	giveApp(t, env, "alice")
	if _, err := env.Manage.SetPhone(context.Background(), manage.Operator, "alice", alicePhone); err != nil {
		t.Fatal(err)
	}
}

// Twilio refusing (4xx JSON), failing (5xx) or not answering in time gives
// the user a clear page and the operator a log line and an audit event
// with Twilio's error code; nothing usable is left behind.
func TestSMSTwilioErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, tw := smsSetup(t, b, func(c *config.Config) { c.SMS.Timeout = time.Second })
		withAppAndPhone(t, env)
		ctx := context.Background()
		for _, tc := range []struct {
			name  string
			setup func()
			want  string // in the audit event's error
			page  string // on the page
		}{
			{"invalid number", func() {
				tw.FailNext(http.StatusBadRequest, smstest.TwilioError(21211, 400, "The 'To' number +16502530000 is not a valid phone number."))
			}, "21211", "We could not send the code. Try another method"},
			// After a 5xx or a timeout the text may still arrive: its code stays.
			{"server error", func() { tw.FailNext(http.StatusInternalServerError, "<html>oops</html>") }, "500",
				"We could not confirm that the code was sent. If a text arrives, enter its code"},
			{"timeout", func() { tw.SetDelay(3 * time.Second) }, "twilio",
				"We could not confirm that the code was sent. If a text arrives, enter its code"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.setup()
				defer tw.Reset()
				lb, f, sf := toSecondFactor(t, env, r)
				started := time.Now()
				p := lb.Post(env.Issuer+"/login/sms/send", sf.Form())
				if took := time.Since(started); took > 2500*time.Millisecond {
					t.Errorf("the page took %v with sms.timeout 1s", took)
				}
				if p.Status != http.StatusBadGateway || !p.Contains(tc.page) {
					t.Fatalf("page after a Twilio failure: %s\n%s", p, p.Body)
				}
				if !p.Contains("Try another method") || p.Contains("21211") || p.Contains("oops") {
					t.Fatalf("the page lacks the way out or shows Twilio's details:\n%s", p.Body)
				}
				if maybeSent := tc.want != "21211"; maybeSent != p.Contains(`name="code"`) {
					t.Fatalf("code field shown %v, want %v (the code stays only when the text may arrive):\n%s", !maybeSent, maybeSent, p.Body)
				}
				events, _ := env.Store.ListAudit(ctx, storage.AuditQuery{UserID: mustID(t, env, "alice"), Limit: 5})
				if len(events) == 0 || events[0].Type != "sms.failed" || !strings.Contains(events[0].Details["error"], tc.want) {
					t.Fatalf("newest audit event %+v, want sms.failed naming %s", events[0], tc.want)
				}
				if strings.Contains(events[0].Details["error"], alicePhone) {
					t.Fatalf("the audit event quotes the whole number: %q", events[0].Details["error"])
				}
				// The user can still log in another way.
				tw.Reset()
				r.codeFrom(f, submitCode(t, env, lb, sf, totpCodeFor(t, env, "0123456789abcdefghij"), false))
				env.Clock.Advance(31 * time.Second)
			})
		}
		if tw.Count() != 0 {
			t.Fatalf("%d messages recorded, want none", tw.Count())
		}
	})
}

// totpCodeFor is the current code of a raw (unencoded) TOTP secret.
func totpCodeFor(t *testing.T, env *idptest.Env, raw string) string {
	t.Helper()
	a := &authenticator{secret: base32NoPad(raw), clock: env.Clock}
	return a.code(t, 0)
}

func base32NoPad(raw string) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(raw))
}

// Two instances share PostgreSQL and Redis: the caps hold across them.
func TestSMSLimitsAcrossInstances(t *testing.T) {
	b := idptest.Backends[1] // postgres+redis
	tw := smstest.NewTwilio(t)
	opts := withTwilio(tw)
	one := idptest.New(t, b, opts)
	opts.Store, opts.Pending, opts.SecretKey = one.Store, one.Pending, one.SecretKey
	two := idptest.New(t, b, opts)
	next := time.Now().Truncate(time.Hour).Add(time.Hour + time.Minute)
	for _, env := range []*idptest.Env{one, two} {
		env.Clock.Advance(next.Sub(env.Clock.Now()))
	}
	one.AddUser("alice", alicePassword)
	withAppAndPhone(t, one)
	secret := one.AddClient(manage.NewClient{ID: "portal", RedirectURIs: []string{portalRedirect}, FirstParty: true})
	rps := []*rp{newRP(t, one, "portal", secret), newRP(t, two, "portal", secret)}
	envs := []*idptest.Env{one, two}

	send := func(i int) int {
		lb, _, sf := toSecondFactor(t, envs[i], rps[i])
		return lb.Post(envs[i].Issuer+"/login/sms/send", sf.Form()).Status
	}
	for n, i := range []int{0, 1, 0, 1, 1} {
		if st := send(i); st != http.StatusSeeOther {
			t.Fatalf("message %d (instance %d): status %d", n+1, i+1, st)
		}
	}
	for i := range envs {
		if st := send(i); st != http.StatusTooManyRequests {
			t.Fatalf("sixth message in the hour on instance %d: status %d, want 429", i+1, st)
		}
	}
	if tw.Count() != 5 {
		t.Fatalf("%d messages, want 5", tw.Count())
	}
}

// Bad numbers in the Cell Phone form get a clear sentence next to the
// form; nothing is saved and nothing is sent.
func TestPhoneBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, _, tw := smsSetup(t, b, func(c *config.Config) { c.SMS.AllowedCountries = []string{"US", "CA"} })
		ctx := context.Background()
		br := env.NewBrowser()
		loginToAccount(t, env, br, "alice", alicePassword, nil)
		for _, tc := range []struct{ name, region, number, want string }{
			{"letters", "US", "call me maybe", "not a phone number"},
			{"too short", "US", "12", "not a phone number"},
			{"too long", "US", strings.Repeat("9", 5000), "not a phone number"},
			{"empty", "US", "", "Enter your cell phone number"},
			{"wrong country", "US", "07400 123456", "not a valid cell phone number for United States"},
			{"no country", "", "650 253 0000", "Select your country"},
			{"unknown country", "XX", "650 253 0000", "Select your country"},
			{"premium rate", "US", "1-900-555-0123", "premium-rate"},
			{"toll free", "US", "(800) 555-0199", "toll-free"},
			{"not an allowed country", "GB", "07400 123456", "not sent to numbers in that country"},
			{"satellite", "", "+881 6 12345678", "satellite"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := savePhone(t, env, br, tc.region, tc.number)
				if p.Status != http.StatusBadRequest || !p.Contains(`id="phone-error"`) || !p.Contains(tc.want) {
					t.Fatalf("%q: %s, want 400 saying %q\n%s", tc.number, p, tc.want, p.Body)
				}
				if len(tc.number) > 40 && p.Contains(tc.number[:41]) {
					t.Fatal("the page echoes more than 40 characters of the input")
				}
				if u, _ := env.Store.UserByUsername(ctx, "alice"); u.Phone != "" {
					t.Fatalf("a refused number was saved: %q", u.Phone)
				}
			})
		}
		// Only the allowed countries are in the list.
		acct := br.Get(env.Issuer + "/account")
		if !acct.Contains(`value="US"`) || !acct.Contains(`value="CA"`) || acct.Contains(`value="GB"`) {
			t.Fatalf("the Country Code list ignores sms.allowed_countries")
		}
		// Forms without their CSRF token change nothing.
		for _, path := range []string{"/account/phone", "/account/phone/verify", "/account/phone/resend", "/account/phone/remove", "/account/confirm/sms"} {
			if p := br.Post(env.Issuer+path, map[string][]string{"country": {"US"}, "phone": {"6502530000"}, "code": {"123456"}}); p.Status != http.StatusForbidden {
				t.Errorf("POST %s without a CSRF token: %s", path, p)
			}
		}
		if tw.Count() != 0 {
			t.Fatalf("%d messages sent for refused numbers", tw.Count())
		}
	})
}

// Changing the phone of a user with a second factor needs a recent login.
func TestPhoneChangeNeedsRecentLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, _, tw := smsSetup(t, b)
		br := env.NewBrowser()
		app, _ := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
		env.Clock.Advance(20 * time.Minute)
		p := savePhone(t, env, br, "US", "650 253 0000")
		if p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "/login?id=") {
			t.Fatalf("an old session changed the phone: %s", p)
		}
		lp := br.Follow(env.Issuer, p)
		if !lp.Contains("log in again to change your cell phone") || !lp.Contains(`name="password"`) {
			t.Fatalf("login page does not say why:\n%s", lp.Body)
		}
		if u, _ := env.Store.UserByUsername(context.Background(), "alice"); u.Phone != "" || tw.Count() != 0 {
			t.Fatal("the phone changed or a code was sent before the fresh login")
		}
		form := lp.Form()
		form.Set("username", "alice")
		form.Set("password", alicePassword)
		acct := submitCode(t, env, br, br.Follow(env.Issuer, br.Post(env.Issuer+"/login/password", form)), app.code(t, 0), false)
		if !acct.Contains("Cell Phone") {
			t.Fatalf("not back on the account page: %s", acct)
		}
		if p := savePhone(t, env, br, "US", "650 253 0000"); p.Status != http.StatusSeeOther || tw.Count() != 1 {
			t.Fatalf("saving after the fresh login: %s, %d messages", p, tw.Count())
		}
	})
}

// A user whose only second factor is the phone confirms changes with an
// SMS code (or a recovery code).
func TestConfirmWithSMS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, _, tw := smsSetup(t, b, func(c *config.Config) { c.MFA.SMSAsOnlyFactor = true })
		if _, err := env.Manage.SetPhone(context.Background(), manage.Operator, "alice", alicePhone); err != nil {
			t.Fatal(err)
		}
		// Log in to the account with the SMS code.
		br := env.NewBrowser()
		p := br.Follow(env.Issuer, br.Get(env.Issuer+"/account"))
		form := p.Form()
		form.Set("username", "alice")
		form.Set("password", alicePassword)
		p = br.Follow(env.Issuer, br.Post(env.Issuer+"/login/password", form))
		p = enterSMS(t, env, br, sendSMS(t, env, br, p), codeOf(t, env, tw.Last(t)))
		if !p.Contains("Cell Phone") || !p.Contains("your second factor") {
			t.Fatalf("account page of an SMS-only user:\n%s", p.Body)
		}
		// Turning off an app she does not have is not offered.
		if p := br.Get(env.Issuer + "/account/2fa/disable"); p.Status != http.StatusSeeOther {
			t.Fatalf("disable page without an app: %s", p)
		}
		confirm := br.Get(env.Issuer + "/account/recovery-codes")
		if !confirm.Contains(">Send SMS Code<") {
			t.Fatalf("confirm page lacks Send SMS Code:\n%s", confirm.Body)
		}
		wrong := confirm.Form()
		wrong.Set("code", "123456")
		if p := br.Post(env.Issuer+"/account/recovery-codes", wrong); p.Status != http.StatusUnauthorized || !p.Contains("expired") {
			t.Fatalf("a code before any was sent: %s\n%s", p, p.Body)
		}
		env.Clock.Advance(31 * time.Second)
		sent := br.Follow(env.Issuer, br.Post(env.Issuer+"/account/confirm/sms", confirm.Form()))
		if !sent.Contains("We sent a code to") {
			t.Fatalf("after Send SMS Code:\n%s", sent.Body)
		}
		form = sent.Form()
		form.Set("code", codeOf(t, env, tw.Last(t)))
		p = br.Post(env.Issuer+"/account/recovery-codes", form)
		if n := len(codeInListRE.FindAllString(recoveryListRE.FindString(p.Body), -1)); n != 10 {
			t.Fatalf("%d new recovery codes after confirming with SMS:\n%s", n, p.Body)
		}
	})
}

// Without an SMS provider, SMS is offered nowhere, even to a user whose
// phone an operator verified.
func TestSMSNotConfigured(t *testing.T) {
	env, r := setup(t, idptest.Backends[0], manage.NewClient{ID: "portal", RedirectURIs: []string{portalRedirect}, FirstParty: true})
	withAppAndPhone(t, env)
	lb, _, sf := toSecondFactor(t, env, r)
	if sf.Contains("SMS") {
		t.Fatalf("SMS offered without a provider:\n%s", sf.Body)
	}
	if p := lb.Post(env.Issuer+"/login/sms/send", sf.Form()); p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "/login?id=") {
		t.Fatalf("Send SMS Code without a provider: %s", p)
	}
	methods := lb.Get(env.Issuer + mustHref(t, sf, "Try another method"))
	if methods.Contains("SMS code") {
		t.Fatal("methods page offers SMS without a provider")
	}
	br := env.NewBrowser()
	acct := loginToAccount(t, env, br, "alice", alicePassword, &authenticator{secret: base32NoPad("0123456789abcdefghij"), clock: env.Clock})
	if !acct.Contains("not offered by this sign-in service") || acct.Contains(`name="phone"`) {
		t.Fatalf("account page without a provider:\n%s", acct.Body)
	}
}

// Concurrent wrong guesses of one code get five comparisons in all: the
// try is counted before the code is compared.
func TestSMSConcurrentGuesses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, _, tw := smsSetup(t, b)
		br := env.NewBrowser()
		loginToAccount(t, env, br, "alice", alicePassword, nil)
		savePhone(t, env, br, "US", "650 253 0000")
		right := codeOf(t, env, tw.Last(t))
		scope := "verify:" + mustID(t, env, "alice") + ":" + alicePhone
		results := make(chan string, 20)
		for range 20 {
			go func() {
				got, err := idp.CheckSMSCode(env.Server, context.Background(), scope, alicePhone, wrongCode(right))
				if err != nil {
					got = err.Error()
				}
				results <- got
			}()
		}
		counts := map[string]int{}
		for range 20 {
			counts[<-results]++
		}
		// "wrong" answers are comparisons that left tries; past the fifth try
		// the code is void ("spent", or "missing" once it is deleted).
		if counts["wrong"]+counts["spent"]+counts["missing"] != 20 || counts["wrong"] > 4 {
			t.Fatalf("20 concurrent wrong guesses: %v; want at most 4 wrong and the rest spent or missing", counts)
		}
		if got, _ := idp.CheckSMSCode(env.Server, context.Background(), scope, alicePhone, right); got != "missing" {
			t.Fatalf("the right code after the burst: %s, want missing", got)
		}

		// Five guesses in flight have counted their tries before comparing:
		// a sixth is not compared at all, even with the right code.
		env.Clock.Advance(31 * time.Second)
		acct := br.Get(env.Issuer + "/account")
		br.Post(env.Issuer+"/account/phone/resend", acct.Form())
		right = codeOf(t, env, tw.Last(t))
		raw, err := env.Pending.Get(context.Background(), "sms:code:"+scope)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Nonce string `json:"n"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil || rec.Nonce == "" {
			t.Fatalf("reading the waiting code: %v", err)
		}
		for range 5 {
			if _, err := env.Pending.Incr(context.Background(), "sms:tries:"+rec.Nonce, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := idp.CheckSMSCode(env.Server, context.Background(), scope, alicePhone, right); got != "spent" {
			t.Fatalf("the right code as a sixth try: %s, want spent", got)
		}
	})
}

// A user whose only factor is the phone is never let in with the password
// alone when SMS stops working: they are asked for a recovery code.
func TestPhoneOnlyUserWhenSMSStops(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, _, tw := smsSetup(t, b, func(c *config.Config) { c.MFA.SMSAsOnlyFactor = true })
		br := env.NewBrowser()
		loginToAccount(t, env, br, "alice", alicePassword, nil)
		savePhone(t, env, br, "US", "650 253 0000")
		p := verifyPhone(t, env, br, codeOf(t, env, tw.Last(t)))
		codes := codeInListRE.FindAllStringSubmatch(recoveryListRE.FindString(p.Body), -1)
		if len(codes) != 10 {
			t.Fatalf("%d recovery codes", len(codes))
		}
		// The operator turns SMS off (provider none) and restarts.
		o := idptest.Options{Store: env.Store, SecretKey: env.SecretKey, Configure: func(c *config.Config) { c.MFA.SMSAsOnlyFactor = true }}
		if b.Redis {
			o.Pending = env.Pending
		}
		after := idptest.New(t, b, o)
		secret := after.AddClient(manage.NewClient{ID: "portal2", RedirectURIs: []string{portalRedirect}, FirstParty: true})
		r := newRP(t, after, "portal2", secret)
		lb, f, sf := toSecondFactor(t, after, r)
		if !sf.Contains(`<label for="recovery_code">Recovery code</label>`) || !sf.Contains("cannot be used at the moment") {
			t.Fatalf("a phone-only user without SMS was not asked for a recovery code: %s\n%s", sf, sf.Body)
		}
		form := sf.Form()
		form.Set("recovery_code", codes[0][1])
		p = lb.Follow(after.Issuer, lb.Post(after.Issuer+"/login/recovery", form))
		p = lb.Follow(after.Issuer, lb.Post(after.Issuer+"/login/continue", p.Form()))
		_, _, c := r.exchange(f, r.codeFrom(f, p))
		if !slices.Equal(c.AMR, []string{"pwd", "mfa"}) {
			t.Fatalf("amr %v, want [pwd mfa]", c.AMR)
		}
	})
}

// An account may set only a few different numbers a day; the whole
// deployment only so many messages an hour.
func TestSMSNumbersPerDayAndTotal(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, tw := smsSetup(t, b, func(c *config.Config) { c.SMS.Limits.TotalHour = 4 })
		now := env.Clock.Now()
		env.Clock.Advance(now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Minute).Sub(now))
		br := env.NewBrowser()
		loginToAccount(t, env, br, "alice", alicePassword, nil)
		for i, n := range []string{"415 555 0101", "415 555 0102", "415 555 0103"} {
			if p := savePhone(t, env, br, "US", n); p.Status != http.StatusSeeOther {
				t.Fatalf("number %d: %s\n%s", i+1, p, p.Body)
			}
		}
		p := savePhone(t, env, br, "US", "415 555 0104")
		if p.Status != http.StatusTooManyRequests || !p.Contains("too many times today") || p.Header.Get("Retry-After") == "" {
			t.Fatalf("a fourth number in a day: %s\n%s", p, p.Body)
		}
		if u := mustUserPhone(t, env, "alice"); u != "+14155550103" {
			t.Fatalf("the refused number was saved: %s", u)
		}
		// Three messages so far; the fourth is the deployment's last this hour.
		withAppAndPhoneOf(t, env, "bob", "+16502530000")
		lb, sf := loginAs(t, env, r, "bob")
		if p := lb.Post(env.Issuer+"/login/sms/send", sf.Form()); p.Status != http.StatusSeeOther {
			t.Fatalf("fourth message: %s", p)
		}
		withAppAndPhoneOf(t, env, "carol", "+12015550123")
		lb, sf = loginAs(t, env, r, "carol")
		if p := lb.Post(env.Issuer+"/login/sms/send", sf.Form()); p.Status != http.StatusTooManyRequests {
			t.Fatalf("a message past sms.limits.total_hour: %s", p)
		}
		if tw.Count() != 4 {
			t.Fatalf("%d messages, want 4", tw.Count())
		}
	})
}

func withAppAndPhoneOf(t *testing.T, env *idptest.Env, username, phone string) {
	t.Helper()
	env.AddUser(username, alicePassword)
	giveApp(t, env, username)
	if _, err := env.Manage.SetPhone(context.Background(), manage.Operator, username, phone); err != nil {
		t.Fatal(err)
	}
}

func mustUserPhone(t *testing.T, env *idptest.Env, username string) string {
	t.Helper()
	u, err := env.Store.UserByUsername(context.Background(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u.Phone
}

// Turning on the app from a session that logged in long ago needs the
// password again first.
func TestEnableTOTPNeedsRecentLogin(t *testing.T) {
	env, _ := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	acct := loginToAccount(t, env, br, "alice", alicePassword, nil)
	env.Clock.Advance(20 * time.Minute)
	p := br.Post(env.Issuer+"/account/2fa/enable", acct.Form())
	if p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "/login?id=") {
		t.Fatalf("an old session started an enrolment: %s", p)
	}
	if lp := br.Follow(env.Issuer, p); !lp.Contains("log in again to turn on 2-Factor Auth") {
		t.Fatalf("the login page does not say why:\n%s", lp.Body)
	}
}
