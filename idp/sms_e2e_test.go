package idp_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa/sms/smstest"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
)

// The phone numbers of these tests: valid US numbers that can receive
// texts (FIXED_LINE_OR_MOBILE), and ones that cannot.
const (
	alicePhone     = "+16502530000" // typed as "(650) 253-0000" with Country Code US
	alicePhoneMask = "+1 ••• ••• 0000"
	otherPhone     = "+14155550123"
)

// withTwilio configures the provider to send through a fake Twilio.
func withTwilio(tw *smstest.Twilio, more ...func(*config.Config)) idptest.Options {
	return idptest.Options{Configure: func(c *config.Config) {
		c.SMS.Provider = "twilio"
		c.SMS.Twilio = config.TwilioConfig{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken, From: tw.From, APIURL: tw.URL}
		for _, f := range more {
			f(c)
		}
	}}
}

// smsSetup starts a provider that texts through a fake Twilio, with alice
// and a portal.
func smsSetup(t *testing.T, b idptest.Backend, more ...func(*config.Config)) (*idptest.Env, *rp, *smstest.Twilio) {
	t.Helper()
	tw := smstest.NewTwilio(t)
	env := idptest.New(t, b, withTwilio(tw, more...))
	env.AddUser("alice", alicePassword)
	secret := env.AddClient(manage.NewClient{ID: "portal", Name: "Client Portal", RedirectURIs: []string{portalRedirect},
		PostLogoutRedirectURIs: []string{portalLogout}, FirstParty: true})
	return env, newRP(t, env, "portal", secret), tw
}

var smsCodeRE = regexp.MustCompile(`^(\d{6}) is your `)

// codeOf reads the code out of a text message and checks the message's form.
func codeOf(t *testing.T, env *idptest.Env, m smstest.Message) string {
	t.Helper()
	c := smsCodeRE.FindStringSubmatch(m.Body)
	if c == nil {
		t.Fatalf("message %q does not start with the code", m.Body)
	}
	u, _ := url.Parse(env.Issuer)
	if want := "\n\n@" + u.Hostname() + " #" + c[1]; !strings.HasSuffix(m.Body, want) {
		t.Fatalf("message %q does not end with the WebOTP line %q", m.Body, want)
	}
	return c[1]
}

// savePhone posts the Cell Phone form of the account page.
func savePhone(t *testing.T, env *idptest.Env, b *idptest.Browser, region, number string) *idptest.Page {
	t.Helper()
	acct := b.Get(env.Issuer + "/account")
	for _, want := range []string{`<label for="country">Country Code</label>`, `<label for="phone-input">Cell Phone</label>`, ">Save<"} {
		if !acct.Contains(want) {
			t.Fatalf("account page lacks %q:\n%s", want, acct.Body)
		}
	}
	form := acct.Form()
	form.Set("country", region)
	form.Set("phone", number)
	return b.Post(env.Issuer+"/account/phone", form)
}

// verifyPhone posts the code to the account page's verification form.
func verifyPhone(t *testing.T, env *idptest.Env, b *idptest.Browser, code string) *idptest.Page {
	t.Helper()
	acct := b.Get(env.Issuer + "/account")
	if !acct.Contains(`<label for="phone-code">Authentication Code</label>`) || !acct.Contains(">Update<") {
		t.Fatalf("account page has no verification form:\n%s", acct.Body)
	}
	form := acct.Form()
	form.Set("code", code)
	return b.Post(env.Issuer+"/account/phone/verify", form)
}

// toSecondFactor starts a login in a new browser and enters the password.
func toSecondFactor(t *testing.T, env *idptest.Env, r *rp) (*idptest.Browser, *flow, *idptest.Page) {
	t.Helper()
	b := env.NewBrowser()
	f := r.start()
	return b, f, login(t, env, b, f, "alice", alicePassword)
}

// sendSMS clicks "Send SMS Code" on p.
func sendSMS(t *testing.T, env *idptest.Env, b *idptest.Browser, p *idptest.Page) *idptest.Page {
	t.Helper()
	if !p.Contains(">Send SMS Code<") && !p.Contains(">Send a new code<") {
		t.Fatalf("no Send SMS Code button: %s\n%s", p, p.Body)
	}
	return b.Follow(env.Issuer, b.Post(env.Issuer+"/login/sms/send", p.Form()))
}

func enterSMS(t *testing.T, env *idptest.Env, b *idptest.Browser, p *idptest.Page, code string) *idptest.Page {
	t.Helper()
	form := p.Form()
	form.Set("code", code)
	return b.Follow(env.Issuer, b.Post(env.Issuer+"/login/sms", form))
}

func TestSMSPhoneVerifyAndLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, tw := smsSetup(t, b)
		ctx := context.Background()
		br := env.NewBrowser()
		app, _ := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
		_ = app

		// Set the cell phone: Country Code US, the national number, Save.
		p := savePhone(t, env, br, "US", "(650) 253-0000")
		if p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "notice=phone-code-sent") {
			t.Fatalf("saving the phone: %s\n%s", p, p.Body)
		}
		u, _ := env.Store.UserByUsername(ctx, "alice")
		if u.Phone != alicePhone || u.PhoneVerified {
			t.Fatalf("after Save: phone %q verified %v, want %s unverified", u.Phone, u.PhoneVerified, alicePhone)
		}
		m := tw.Last(t)
		if m.To != alicePhone || m.From != tw.From {
			t.Fatalf("message to %q from %q", m.To, m.From)
		}
		code := codeOf(t, env, m)

		// An unverified phone is not offered at login.
		_, _, sf := toSecondFactor(t, env, r)
		if sf.Contains("Send SMS Code") {
			t.Fatalf("Send SMS Code offered for an unverified phone:\n%s", sf.Body)
		}

		// A wrong code, then the right one, in Authentication Code, Update.
		if p := verifyPhone(t, env, br, "000000"); p.Status != http.StatusUnauthorized || !p.Contains("not right") {
			t.Fatalf("wrong verification code: %s\n%s", p, p.Body)
		}
		if p := verifyPhone(t, env, br, code); p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "phone-verified") {
			t.Fatalf("verification: %s\n%s", p, p.Body)
		}
		if u, _ := env.Store.UserByUsername(ctx, "alice"); !u.PhoneVerified {
			t.Fatal("the phone is not verified after the right code")
		}
		if acct := br.Get(env.Issuer + "/account"); !acct.Contains(html("+1 650-253-0000")) || !acct.Contains("(verified)") {
			t.Fatalf("account page after verification:\n%s", acct.Body)
		}

		// Log in with SMS: Send SMS Code, "We sent a code to ...", the code.
		lb, f, sf := toSecondFactor(t, env, r)
		for _, want := range []string{"Authentication Code", ">Send SMS Code<", "Try another method"} {
			if !sf.Contains(want) {
				t.Fatalf("second-factor page lacks %q:\n%s", want, sf.Body)
			}
		}
		methods := lb.Get(env.Issuer + mustHref(t, sf, "Try another method"))
		for _, want := range []string{">Authenticator app<", ">SMS code<", ">Recovery code<"} {
			if !methods.Contains(want) {
				t.Fatalf("methods page lacks %q:\n%s", want, methods.Body)
			}
		}
		sent := sendSMS(t, env, lb, sf)
		if !sent.Contains("We sent a code to <strong>"+html(strings.ReplaceAll(alicePhoneMask, " ", "\u00a0"))+"</strong>") || !sent.Contains("Authentication Code") {
			t.Fatalf("after Send SMS Code:\n%s", sent.Body)
		}
		if tw.Count() != 2 {
			t.Fatalf("%d messages sent, want 2", tw.Count())
		}
		login := codeOf(t, env, tw.Last(t))
		if wrong := enterSMS(t, env, lb, sent, "111111"); wrong.Status != http.StatusUnauthorized || !wrong.Contains("not right") {
			t.Fatalf("wrong SMS code: %s", wrong)
		}
		done := enterSMS(t, env, lb, sent, login)
		_, _, c := r.exchange(f, r.codeFrom(f, done))
		if !slices.Equal(c.AMR, []string{"pwd", "sms", "mfa"}) || c.ACR != "mfa" {
			t.Fatalf("amr %v acr %q, want [pwd sms mfa] mfa", c.AMR, c.ACR)
		}

		// The code is spent: the same code in another login fails, and a
		// code of one login never passes another.
		lb2, _, sf2 := toSecondFactor(t, env, r)
		sent2 := sendSMS(t, env, lb2, sf2)
		if p := enterSMS(t, env, lb2, sent2, login); p.Status != http.StatusUnauthorized {
			t.Fatalf("a spent code of another login was accepted: %s", p)
		}
		events, _ := env.Store.ListAudit(ctx, storage.AuditQuery{UserID: u.ID, Limit: 100})
		var types []string
		for _, e := range events {
			types = append(types, e.Type)
			for k, v := range e.Details {
				if strings.Contains(v, login) || strings.Contains(v, code) || strings.Contains(v, "2530000") {
					t.Errorf("audit event %s detail %s holds a code or the whole number: %q", e.Type, k, v)
				}
			}
		}
		for _, want := range []string{"sms.sent", "user.phone_changed", "user.phone_verified", "mfa.passed"} {
			if !slices.Contains(types, want) {
				t.Errorf("audit log lacks %s: %v", want, types)
			}
		}
	})
}

// A new number is unverified until its code comes back; the old number
// gets nothing more; the code sent to the old number does not verify the new.
func TestSMSChangeAndRemovePhone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, tw := smsSetup(t, b)
		ctx := context.Background()
		if _, err := env.Manage.SetPhone(ctx, manage.Operator, "alice", alicePhone); err != nil {
			t.Fatal(err)
		}
		br := env.NewBrowser()
		loginToAccount(t, env, br, "alice", alicePassword, nil)
		if p := savePhone(t, env, br, "US", "650.253.0000"); !strings.Contains(p.Location, "phone-unchanged") || tw.Count() != 0 {
			t.Fatalf("saving the same verified number: %s, %d messages", p, tw.Count())
		}
		first := savePhone(t, env, br, "", "+1 415 555 0123")
		if first.Status != http.StatusSeeOther {
			t.Fatalf("changing the number: %s\n%s", first, first.Body)
		}
		toNew := codeOf(t, env, tw.Last(t))
		if u, _ := env.Store.UserByUsername(ctx, "alice"); u.Phone != otherPhone || u.PhoneVerified {
			t.Fatalf("after the change: %q verified %v", u.Phone, u.PhoneVerified)
		}
		// The account page keeps the country of the number.
		if acct := br.Get(env.Issuer + "/account"); !acct.Contains(html(`<option value="US" selected>United States (+1)</option>`)) {
			t.Fatalf("Country Code does not show the number's country:\n%s", acct.Body)
		}
		// Neither the old nor the new number is offered at login now.
		_, _, sf := toSecondFactor(t, env, r)
		if sf.Contains("SMS") {
			t.Fatalf("SMS offered while the new number is unverified:\n%s", sf.Body)
		}
		if verifyPhone(t, env, br, toNew).Status != http.StatusSeeOther {
			t.Fatal("verifying the new number failed")
		}
		for _, m := range tw.Messages() {
			if m.To == alicePhone {
				t.Fatalf("a message went to the old number: %+v", m)
			}
		}
		// Remove cell phone: no more codes.
		acct := br.Get(env.Issuer + "/account")
		if p := br.Post(env.Issuer+"/account/phone/remove", acct.Form()); !strings.Contains(p.Location, "phone-removed") {
			t.Fatalf("removing the phone: %s", p)
		}
		if u, _ := env.Store.UserByUsername(ctx, "alice"); u.Phone != "" || u.PhoneVerified {
			t.Fatalf("after removal: %q %v", u.Phone, u.PhoneVerified)
		}
	})
}

// With mfa.sms_as_only_factor a verified phone alone is a second factor;
// without it, SMS is only a fallback next to the app.
func TestSMSAsOnlyFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		ctx := context.Background()
		t.Run("off", func(t *testing.T) {
			env, r, _ := smsSetup(t, b)
			if _, err := env.Manage.SetPhone(ctx, manage.Operator, "alice", alicePhone); err != nil {
				t.Fatal(err)
			}
			f := r.start()
			_, _, c := r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
			if !slices.Equal(c.AMR, []string{"pwd"}) {
				t.Fatalf("amr %v: a phone alone asked for a code without sms_as_only_factor", c.AMR)
			}
		})
		t.Run("on", func(t *testing.T) {
			env, r, tw := smsSetup(t, b, func(c *config.Config) { c.MFA.SMSAsOnlyFactor = true })
			br := env.NewBrowser()
			loginToAccount(t, env, br, "alice", alicePassword, nil)
			savePhone(t, env, br, "US", "6502530000")
			// Verifying the only second factor shows recovery codes once.
			p := verifyPhone(t, env, br, codeOf(t, env, tw.Last(t)))
			if n := len(codeInListRE.FindAllString(recoveryListRE.FindString(p.Body), -1)); n != 10 {
				t.Fatalf("%d recovery codes shown after verifying the only factor:\n%s", n, p.Body)
			}
			// The login asks for the SMS code; nothing is sent before the click.
			lb, f, sf := toSecondFactor(t, env, r)
			if !sf.Contains(">Send SMS Code<") || sf.Contains(`name="code"`) || tw.Count() != 1 {
				t.Fatalf("SMS-only second factor page (%d messages):\n%s", tw.Count(), sf.Body)
			}
			sent := sendSMS(t, env, lb, sf)
			_, _, c := r.exchange(f, r.codeFrom(f, enterSMS(t, env, lb, sent, codeOf(t, env, tw.Last(t)))))
			if !slices.Equal(c.AMR, []string{"pwd", "sms", "mfa"}) || c.ACR != "mfa" {
				t.Fatalf("amr %v acr %q", c.AMR, c.ACR)
			}
			// It satisfies step-up: acr_values=mfa from a password-only session is not
			// sent to enrol an app.
		})
	})
}

func TestSMSCodeRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, tw := smsSetup(t, b)
		if _, err := env.Manage.SetPhone(context.Background(), manage.Operator, "alice", alicePhone); err != nil {
			t.Fatal(err)
		}
		br := env.NewBrowser()
		enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))

		// A new code voids the old one.
		lb, f, sf := toSecondFactor(t, env, r)
		sent := sendSMS(t, env, lb, sf)
		old := codeOf(t, env, tw.Last(t))
		if again := sendSMS(t, env, lb, sent); again.Status != http.StatusTooManyRequests || !again.Contains("seconds") {
			t.Fatalf("a resend within 30 s was not refused with the wait: %s\n%s", again, again.Body)
		}
		if tw.Count() != 1 {
			t.Fatalf("a refused resend sent a message")
		}
		env.Clock.Advance(31 * time.Second)
		sent = sendSMS(t, env, lb, sent)
		newer := codeOf(t, env, tw.Last(t))
		if old != newer {
			if p := enterSMS(t, env, lb, sent, old); p.Status != http.StatusUnauthorized || !p.Contains("not right") {
				t.Fatalf("the voided code: %s\n%s", p, p.Body)
			}
		}
		// A code expires after 5 minutes.
		env.Clock.Advance(5*time.Minute + time.Second)
		if p := enterSMS(t, env, lb, sent, newer); !p.Contains("expired") {
			t.Fatalf("an expired code: %s\n%s", p, p.Body)
		}

		// Four wrong tries leave the right code usable. (The brute-force
		// delays, which the two failures above count toward, are tested on
		// their own: forget them here.)
		if err := regulation.Unlock(context.Background(), env.Pending, "alice"); err != nil {
			t.Fatal(err)
		}
		lb, f, sf = toSecondFactor(t, env, r)
		sent = sendSMS(t, env, lb, sf)
		right := codeOf(t, env, tw.Last(t))
		for range 4 {
			if p := enterSMS(t, env, lb, sent, wrongCode(right)); p.Status != http.StatusUnauthorized {
				t.Fatalf("wrong code: %s", p)
			}
		}
		r.codeFrom(f, enterSMS(t, env, lb, sent, right))

		// Five wrong tries void a code, whatever counts the caller keeps.
		acct := br.Get(env.Issuer + "/account")
		form := acct.Form()
		if p := br.Post(env.Issuer+"/account/phone/remove", form); p.Status != http.StatusSeeOther {
			t.Fatalf("removing the phone: %s", p)
		}
		savePhone(t, env, br, "US", "(415) 555-0123")
		verify := codeOf(t, env, tw.Last(t))
		scope := "verify:" + mustID(t, env, "alice") + ":" + otherPhone
		for i, want := range []string{"wrong", "wrong", "wrong", "wrong", "spent", "missing"} {
			got, err := idp.CheckSMSCode(env.Server, context.Background(), scope, otherPhone, wrongCode(verify))
			if err != nil || got != want {
				t.Fatalf("wrong try %d: %s, %v; want %s", i+1, got, err, want)
			}
		}
		if got, _ := idp.CheckSMSCode(env.Server, context.Background(), scope, otherPhone, verify); got != "missing" {
			t.Fatalf("the right code after five wrong tries: %s, want missing", got)
		}
	})
}

// html is s as html/template writes it in text ("+" becomes "&#43;").
func html(s string) string { return strings.ReplaceAll(s, "+", "&#43;") }

// wrongCode is a six-digit code other than c.
func wrongCode(c string) string {
	if c == "123456" {
		return "654321"
	}
	return "123456"
}

// Every limit, with the injected clock: one message per login per 30 s,
// per user 5 an hour and 10 a day, per number the same, per IP a cap.
// A refused click sends nothing and uses up no cap.
func TestSMSLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, tw := smsSetup(t, b, func(c *config.Config) { c.SMS.Limits.PerIPHour, c.SMS.Limits.PerIPDay = 8, 100 })
		ctx := context.Background()
		// Start at the top of an hour so the hour window is whole.
		now := env.Clock.Now()
		env.Clock.Advance(now.Truncate(time.Hour).Add(time.Hour).Sub(now))
		if _, err := env.Manage.SetPhone(ctx, manage.Operator, "alice", alicePhone); err != nil {
			t.Fatal(err)
		}
		br := env.NewBrowser()
		enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))

		send := func() *idptest.Page {
			lb, _, sf := toSecondFactor(t, env, r)
			return lb.Follow(env.Issuer, lb.Post(env.Issuer+"/login/sms/send", sf.Form()))
		}
		for i := range 5 {
			if p := send(); p.Status != http.StatusOK || !p.Contains("We sent a code") {
				t.Fatalf("message %d: %s\n%s", i+1, p, p.Body)
			}
		}
		refused := send()
		if refused.Status != http.StatusTooManyRequests || !refused.Contains("Too many codes") || refused.Header.Get("Retry-After") == "" {
			t.Fatalf("sixth message in an hour: %s (Retry-After %q)\n%s", refused, refused.Header.Get("Retry-After"), refused.Body)
		}
		if tw.Count() != 5 {
			t.Fatalf("%d messages sent, want 5", tw.Count())
		}
		env.Clock.Advance(time.Hour)
		for i := range 5 {
			if p := send(); p.Status != http.StatusOK {
				t.Fatalf("message %d of the second hour: %s\n%s", i+1, p, p.Body)
			}
		}
		// Past both the hour's and the day's cap, the page names the later end.
		if p := send(); p.Status != http.StatusTooManyRequests || !p.Contains("after 00:00 UTC") {
			t.Fatalf("eleventh message, in the second hour: %s\n%s", p, p.Body)
		}
		env.Clock.Advance(time.Hour)
		if p := send(); p.Status != http.StatusTooManyRequests || !p.Contains("after") {
			t.Fatalf("eleventh message in a day: %s\n%s", p, p.Body)
		}
		if tw.Count() != 10 {
			t.Fatalf("%d messages sent, want 10", tw.Count())
		}

		// Per number: bob with the same number is refused too, for the day.
		env.AddUser("bob", alicePassword)
		if _, err := env.Manage.SetPhone(ctx, manage.Operator, "bob", alicePhone); err != nil {
			t.Fatal(err)
		}
		bb := env.NewBrowser()
		enrol(t, env, bb, loginToAccount(t, env, bb, "bob", alicePassword, nil))
		bf := r.start()
		bp := bb.Follow(env.Issuer, bb.Get(bf.authURL))
		form := bp.Form()
		form.Set("username", "bob")
		form.Set("password", alicePassword)
		bp = bb.Follow(env.Issuer, bb.Post(env.Issuer+"/login/password", form))
		if p := bb.Follow(env.Issuer, bb.Post(env.Issuer+"/login/sms/send", bp.Form())); p.Status != http.StatusTooManyRequests {
			t.Fatalf("a number over its daily cap got another message: %s", p)
		}

	})
}

// giveApp enrols an authenticator app for username directly in the store.
func giveApp(t *testing.T, env *idptest.Env, username string) {
	t.Helper()
	id := mustID(t, env, username)
	if err := env.Store.SetTOTP(context.Background(), &storage.TOTP{UserID: id,
		Secret: env.Keys.Seal([]byte("0123456789abcdefghij"), []byte("totp:"+id)), CreatedAt: env.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
}

// loginAs starts a login in a new browser and enters username's password.
func loginAs(t *testing.T, env *idptest.Env, r *rp, username string) (*idptest.Browser, *idptest.Page) {
	t.Helper()
	b := env.NewBrowser()
	return b, login(t, env, b, r.start(), username, alicePassword)
}

// The per-IP cap holds whoever asks: several users from one address.
func TestSMSPerIPLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, tw := smsSetup(t, b, func(c *config.Config) { c.SMS.Limits.PerIPHour = 3 })
		now := env.Clock.Now()
		env.Clock.Advance(now.Truncate(time.Hour).Add(time.Hour).Sub(now))
		phones := []string{"+14155550101", "+14155550102", "+14155550103", "+14155550104"}
		for i, phone := range phones {
			user := "user" + string(rune('a'+i))
			env.AddUser(user, alicePassword)
			giveApp(t, env, user)
			if _, err := env.Manage.SetPhone(context.Background(), manage.Operator, user, phone); err != nil {
				t.Fatal(err)
			}
			lb, sf := loginAs(t, env, r, user)
			p := lb.Follow(env.Issuer, lb.Post(env.Issuer+"/login/sms/send", sf.Form()))
			if wantOK := i < 3; wantOK != (p.Status == http.StatusOK) {
				t.Fatalf("message %d from one IP: %s\n%s", i+1, p, p.Body)
			}
		}
		if tw.Count() != 3 {
			t.Fatalf("%d messages, want 3", tw.Count())
		}
	})
}
