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

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
)

// authenticator is the user's phone: it reads the setup key off the page
// and makes codes for the provider's (injected) clock.
type authenticator struct {
	secret string
	clock  *idptest.Clock
}

func (a *authenticator) code(t *testing.T, offset time.Duration) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(a.secret, a.clock.Now().Add(offset), totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	setupKeyRE     = regexp.MustCompile(`(?s)id="setup-key".*?<code[^>]*>([A-Z2-7 ]{16,})</code>`)
	otpauthRE      = regexp.MustCompile(`href="(otpauth://[^"]+)"`)
	codeInListRE   = regexp.MustCompile(`<code[^>]*>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code>`)
	recoveryListRE = regexp.MustCompile(`(?s)id="recovery-codes".*`)
)

// loginToAccount logs in to /account with the password (and a code when asked).
func loginToAccount(t *testing.T, env *idptest.Env, b *idptest.Browser, username, pw string, app *authenticator) *idptest.Page {
	t.Helper()
	p := b.Follow(env.Issuer, b.Get(env.Issuer+"/account"))
	if !p.Contains(`name="password"`) {
		t.Fatalf("/account without a session did not ask for the password: %s", p)
	}
	form := p.Form()
	form.Set("username", username)
	form.Set("password", pw)
	p = b.Follow(env.Issuer, b.Post(env.Issuer+"/login/password", form))
	if app != nil {
		p = submitCode(t, env, b, p, app.code(t, 0), false)
	}
	if !p.Contains("2-Factor Auth") {
		t.Fatalf("not on the account page: %s\n%s", p, p.Body)
	}
	return p
}

func submitCode(t *testing.T, env *idptest.Env, b *idptest.Browser, p *idptest.Page, code string, remember bool) *idptest.Page {
	t.Helper()
	if !p.Contains("Authentication Code") {
		t.Fatalf("expected the second-factor page: %s\n%s", p, p.Body)
	}
	form := p.Form()
	form.Set("code", code)
	if remember {
		form.Set("remember", "on")
	}
	return b.Follow(env.Issuer, b.Post(env.Issuer+"/login/mfa", form))
}

// enrol turns 2-Factor Auth on from the account page and returns the
// authenticator and the recovery codes shown.
func enrol(t *testing.T, env *idptest.Env, b *idptest.Browser, account *idptest.Page) (*authenticator, []string) {
	t.Helper()
	if !account.Contains(">OFF<") {
		t.Fatalf("account page has no OFF switch:\n%s", account.Body)
	}
	p := b.Follow(env.Issuer, b.Post(env.Issuer+"/account/2fa/enable", account.Form()))
	for _, want := range []string{"Trouble Scanning?", "data:image/png;base64,", "Authentication Code", "Update"} {
		if !p.Contains(want) {
			t.Fatalf("enrolment page lacks %q:\n%s", want, p.Body)
		}
	}
	m := setupKeyRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no setup key on the page:\n%s", p.Body)
	}
	app := &authenticator{secret: strings.ReplaceAll(m[1], " ", ""), clock: env.Clock}
	if u := otpauthRE.FindStringSubmatch(p.Body); u == nil || !strings.Contains(unescapeHTML(u[1]), "secret="+app.secret) {
		t.Fatalf("no otpauth link with the secret")
	}
	form := p.Form()

	// A wrong code saves nothing; a code minutes off says the clock is wrong.
	form.Set("code", "000000")
	if p := b.Post(env.Issuer+"/account/2fa/setup", form); p.Status != http.StatusUnauthorized || !p.Contains("not right") {
		t.Fatalf("wrong enrolment code: %s", p)
	}
	form.Set("code", app.code(t, 5*time.Minute))
	if p := b.Post(env.Issuer+"/account/2fa/setup", form); !p.Contains("clock") {
		t.Fatalf("a code 5 minutes ahead did not mention the clock:\n%s", p.Body)
	}
	form.Set("code", app.code(t, 0))
	p = b.Post(env.Issuer+"/account/2fa/setup", form)
	list := recoveryListRE.FindString(p.Body)
	var codes []string
	for _, m := range codeInListRE.FindAllStringSubmatch(list, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10:\n%s", len(codes), p.Body)
	}
	env.Clock.Advance(30 * time.Second) // the enrolment code's step is spent
	return app, codes
}

func unescapeHTML(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }

func TestTwoFactorEnrolAndLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		ctx := context.Background()
		alice, _ := env.Store.UserByUsername(ctx, "alice")
		br := env.NewBrowser()
		app, codes := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
		if st, _ := env.Manage.MFA(ctx, alice.ID); !st.TOTP || st.RecoveryCodesLeft != 10 {
			t.Fatalf("after enrolment: %+v", st)
		}
		acct := br.Get(env.Issuer + "/account")
		if !acct.Contains(">ON<") || !acct.Contains("10 recovery codes left") {
			t.Fatalf("account page after enrolment:\n%s", acct.Body)
		}

		// A login in another browser asks for the code after the password.
		other := env.NewBrowser()
		f := r.start()
		p := other.Follow(env.Issuer, other.Get(f.authURL))
		form := p.Form()
		form.Set("username", "alice")
		form.Set("password", alicePassword)
		p = other.Follow(env.Issuer, other.Post(env.Issuer+"/login/password", form))
		for _, want := range []string{"Authentication Code", "Remember this device for 30 days", "Log In", "Try another method"} {
			if !p.Contains(want) {
				t.Fatalf("second-factor page lacks %q:\n%s", want, p.Body)
			}
		}
		wrong := submitCode(t, env, other, p, "123456", false)
		if wrong.Status != http.StatusUnauthorized || !wrong.Contains("not right") {
			t.Fatalf("wrong code: %s", wrong)
		}
		code := app.code(t, 0)
		p = submitCode(t, env, other, wrong, code, false)
		if p.Contains(`value="allow"`) {
			form := p.Form()
			form.Set("decision", "allow")
			p = other.Follow(env.Issuer, other.Post(env.Issuer+"/login/consent", form))
		}
		tok, _, c := r.exchange(f, r.codeFrom(f, p))
		if !slices.Equal(c.AMR, []string{"pwd", "otp", "mfa"}) || c.ACR != "mfa" {
			t.Fatalf("amr %v acr %q, want [pwd otp mfa] mfa", c.AMR, c.ACR)
		}
		if _, c2 := refresh(t, r, tok.RefreshToken); c2.ACR != "mfa" || !slices.Equal(c2.AMR, c.AMR) {
			t.Fatalf("after refresh amr %v acr %q", c2.AMR, c2.ACR)
		}

		// The same code is never accepted twice, even within its 30 s.
		third := env.NewBrowser()
		f = r.start()
		p = login(t, env, third, f, "alice", alicePassword)
		if p2 := submitCode(t, env, third, p, code, false); !p2.Contains("already used") {
			t.Fatalf("a used code was not refused as used: %s\n%s", p2, p2.Body)
		}
		// One step of skew either way is accepted (the step after the used one).
		env.Clock.Advance(30 * time.Second)
		r.codeFrom(f, consentIfAsked(t, env, third, submitCode(t, env, third, p, app.code(t, 30*time.Second), false)))

		// Recovery codes are shown only as a count afterwards.
		if acct := br.Get(env.Issuer + "/account"); acct.Contains(codes[0]) {
			t.Fatal("the account page shows a recovery code")
		}
	})
}

func consentIfAsked(t *testing.T, env *idptest.Env, b *idptest.Browser, p *idptest.Page) *idptest.Page {
	t.Helper()
	if p.Status == http.StatusOK && p.Contains(`value="allow"`) {
		form := p.Form()
		form.Set("decision", "allow")
		return b.Follow(env.Issuer, b.Post(env.Issuer+"/login/consent", form))
	}
	return p
}

func TestRecoveryCodeLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		ctx := context.Background()
		br := env.NewBrowser()
		_, codes := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))

		other := env.NewBrowser()
		f := r.start()
		p := login(t, env, other, f, "alice", alicePassword)
		methods := other.Get(env.Issuer + mustHref(t, p, "Try another method"))
		for _, want := range []string{"Authenticator app", "Recovery code"} {
			if !methods.Contains(want) {
				t.Fatalf("methods page lacks %q:\n%s", want, methods.Body)
			}
		}
		p = other.Get(env.Issuer + mustHref(t, methods, "Recovery code"))
		if !p.Contains(">Recovery code</label>") {
			t.Fatalf("recovery form: %s\n%s", p, p.Body)
		}
		form := p.Form()
		form.Set("recovery_code", "aaaa-bbbb-cccc")
		if p2 := other.Post(env.Issuer+"/login/recovery", form); p2.Status != http.StatusUnauthorized {
			t.Fatalf("wrong recovery code: %s", p2)
		}
		form.Set("recovery_code", strings.ToUpper(codes[3])) // typed in capitals
		p = other.Follow(env.Issuer, other.Post(env.Issuer+"/login/recovery", form))
		m := regexp.MustCompile(`id="replacement-code"(?s:.*?)<code[^>]*>([0-9a-z-]{14})</code>`).FindStringSubmatch(p.Body)
		if m == nil || !p.Contains("Continue") {
			t.Fatalf("no replacement code shown:\n%s", p.Body)
		}
		replacement := m[1]
		p = other.Follow(env.Issuer, other.Post(env.Issuer+"/login/continue", p.Form()))
		_, _, c := r.exchange(f, r.codeFrom(f, consentIfAsked(t, env, other, p)))
		if !slices.Equal(c.AMR, []string{"pwd", "mfa"}) || c.ACR != "mfa" {
			t.Fatalf("recovery login amr %v acr %q", c.AMR, c.ACR)
		}
		alice, _ := env.Store.UserByUsername(ctx, "alice")
		if n, _ := env.Store.CountRecoveryCodes(ctx, alice.ID); n != 10 {
			t.Fatalf("%d codes left, want 10 (the used one replaced)", n)
		}

		// The used code is spent; the replacement works.
		for _, tc := range []struct {
			code string
			ok   bool
		}{{codes[3], false}, {replacement, true}} {
			b3 := env.NewBrowser()
			f := r.start()
			p := login(t, env, b3, f, "alice", alicePassword)
			p = b3.Get(env.Issuer + "/login/recovery?id=" + url.QueryEscape(p.Form().Get("id")))
			form := p.Form()
			form.Set("recovery_code", tc.code)
			p = b3.Post(env.Issuer+"/login/recovery", form)
			if got := p.Status == http.StatusSeeOther; got != tc.ok {
				t.Fatalf("recovery code %q: %s, want ok=%v", tc.code, p, tc.ok)
			}
		}
	})
}

var hrefRE = regexp.MustCompile(`<a[^>]*href="([^"]+)"[^>]*>(?:\s|<[^>]*>)*([^<]+)`)

func mustHref(t *testing.T, p *idptest.Page, text string) string {
	t.Helper()
	for _, m := range hrefRE.FindAllStringSubmatch(p.Body, -1) {
		if strings.TrimSpace(m[2]) == text {
			return unescapeHTML(m[1])
		}
	}
	t.Fatalf("no link %q on %s:\n%s", text, p.URL, p.Body)
	return ""
}

func TestRememberDevice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		ctx := context.Background()
		br := env.NewBrowser()
		app, _ := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))

		dev := env.NewBrowser()
		f := r.start()
		p := consentIfAsked(t, env, dev, submitCode(t, env, dev, login(t, env, dev, f, "alice", alicePassword), app.code(t, 0), true))
		r.exchange(f, r.codeFrom(f, p))
		env.Clock.Advance(30 * time.Second)

		// prompt=login asks for the password again, but the device waives the code.
		f = r.start(oauth2.SetAuthURLParam("prompt", "login"))
		p = login(t, env, dev, f, "alice", alicePassword)
		_, _, c := r.exchange(f, r.codeFrom(f, p))
		if !slices.Equal(c.AMR, []string{"pwd", "mfa"}) || c.ACR != "mfa" {
			t.Fatalf("remembered device login amr %v acr %q", c.AMR, c.ACR)
		}
		acct := dev.Get(env.Issuer + "/account")
		if !acct.Contains("Forget all devices") {
			t.Fatalf("account page lists no device:\n%s", acct.Body)
		}

		// Forget all devices: the code is asked again.
		if p := dev.Follow(env.Issuer, dev.Post(env.Issuer+"/account/devices/forget", acct.Form())); !p.Contains("forgotten") {
			t.Fatalf("forget all devices: %s\n%s", p, p.Body)
		}
		f = r.start(oauth2.SetAuthURLParam("prompt", "login"))
		if p := login(t, env, dev, f, "alice", alicePassword); !p.Contains("Authentication Code") {
			t.Fatalf("after forgetting devices no code was asked: %s", p)
		}

		// Remember again, then a password change forgets it.
		rememberAgain(t, env, r, dev, app, alicePassword)
		env.Clock.Advance(30 * time.Second)
		if err := env.Manage.SetPassword(ctx, manage.Operator, "alice", "a brand new passphrase"); err != nil {
			t.Fatal(err)
		}
		f = r.start(oauth2.SetAuthURLParam("prompt", "login"))
		if p := login(t, env, dev, f, "alice", "a brand new passphrase"); !p.Contains("Authentication Code") {
			t.Fatalf("after a password change the device still skips the code: %s", p)
		}

		// And it expires.
		rememberAgain(t, env, r, dev, app, "a brand new passphrase")
		env.Clock.Advance(31 * 24 * time.Hour)
		f = r.start(oauth2.SetAuthURLParam("prompt", "login"))
		if p := login(t, env, dev, f, "alice", "a brand new passphrase"); !p.Contains("Authentication Code") {
			t.Fatalf("an expired remembered device still skips the code: %s", p)
		}
	})
}

// rememberAgain logs alice in with the password and a code, ticking
// "Remember this device", and checks the portal got a code.
func rememberAgain(t *testing.T, env *idptest.Env, r *rp, b *idptest.Browser, app *authenticator, pw string) {
	t.Helper()
	f := r.start(oauth2.SetAuthURLParam("prompt", "login"))
	r.codeFrom(f, consentIfAsked(t, env, b, submitCode(t, env, b, login(t, env, b, f, "alice", pw), app.code(t, 0), true)))
}

func TestDisableRegenerateAndReset(t *testing.T) {
	forEachBackend(t, testDisableRegenerateAndReset)
}

func testDisableRegenerateAndReset(t *testing.T, b idptest.Backend) {
	env, r := setup(t, b)
	ctx := context.Background()
	br := env.NewBrowser()
	app, codes := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
	alice, _ := env.Store.UserByUsername(ctx, "alice")
	if v, err := env.Manage.ViewUserWithMFA(ctx, alice); err != nil || !v.MFA.TOTP || v.MFA.RecoveryCodesLeft != 10 {
		t.Fatalf("user view after enrolment: %+v %v", v.MFA, err)
	}

	// New recovery codes: after a code, the old set stops working.
	p := br.Get(env.Issuer + "/account/recovery-codes")
	form := p.Form()
	form.Set("code", "999999")
	if p := br.Post(env.Issuer+"/account/recovery-codes", form); p.Status != http.StatusUnauthorized {
		t.Fatalf("regenerate with a wrong code: %s", p)
	}
	form.Set("code", app.code(t, 0))
	p = br.Post(env.Issuer+"/account/recovery-codes", form)
	if n := len(codeInListRE.FindAllString(recoveryListRE.FindString(p.Body), -1)); n != 10 {
		t.Fatalf("regenerated %d codes:\n%s", n, p.Body)
	}
	env.Clock.Advance(30 * time.Second)
	b2 := env.NewBrowser()
	f := r.start()
	p = login(t, env, b2, f, "alice", alicePassword)
	p = b2.Get(env.Issuer + "/login/recovery?id=" + url.QueryEscape(p.Form().Get("id")))
	form = p.Form()
	form.Set("recovery_code", codes[0])
	if p := b2.Post(env.Issuer+"/login/recovery", form); p.Status != http.StatusUnauthorized {
		t.Fatalf("an old recovery code still works after regeneration: %s", p)
	}

	// Turn it off with a code: everything is removed.
	p = br.Get(env.Issuer + "/account/2fa/disable")
	form = p.Form()
	form.Set("code", app.code(t, 0))
	p = br.Follow(env.Issuer, br.Post(env.Issuer+"/account/2fa/disable", form))
	if !p.Contains(">OFF<") {
		t.Fatalf("after turning 2FA off:\n%s", p.Body)
	}
	if st, _ := env.Manage.MFA(ctx, alice.ID); st.TOTP || st.RecoveryCodesLeft != 0 || st.RememberedDevices != 0 {
		t.Fatalf("after disable: %+v", st)
	}

	// Support reset after enrolling again.
	env.Clock.Advance(30 * time.Second)
	enrol(t, env, br, br.Get(env.Issuer+"/account"))
	if _, err := env.Manage.ResetMFA(ctx, manage.Operator, "alice"); err != nil {
		t.Fatal(err)
	}
	if st, _ := env.Manage.MFA(ctx, alice.ID); st.TOTP || st.RecoveryCodesLeft != 0 {
		t.Fatalf("after reset: %+v", st)
	}
	f = r.start()
	r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword))
	events, _ := env.Store.ListAudit(ctx, storageQuery())
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	for _, want := range []string{"mfa.totp_enabled", "mfa.totp_disabled", "mfa.recovery_codes_regenerated", "mfa.reset"} {
		if !slices.Contains(types, want) {
			t.Errorf("no %s audit event in %v", want, types)
		}
	}
}

func TestFiveWrongCodesEndTheLogin(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
	other := env.NewBrowser()
	f := r.start()
	p := login(t, env, other, f, "alice", alicePassword)
	form := p.Form()
	form.Set("code", "000000")
	var last *idptest.Page
	for range 5 {
		last = other.Post(env.Issuer+"/login/mfa", form)
	}
	if last.Status != http.StatusTooManyRequests {
		t.Fatalf("after 5 wrong codes: %s", last)
	}
	if p := other.Get(env.Issuer + "/login?id=" + url.QueryEscape(form.Get("id"))); p.Status != http.StatusBadRequest {
		t.Fatalf("the login goes on after 5 wrong codes: %s", p)
	}
}

func TestRequiredMFAAndStepUp(t *testing.T) {
	forEachBackend(t, testRequiredMFAAndStepUp)
}

func testRequiredMFAAndStepUp(t *testing.T, b idptest.Backend) {
	t.Run("mfa.required enrols at login", func(t *testing.T) {
		env := idptest.New(t, b, idptest.Options{Configure: func(c *config.Config) { c.MFA.Required = true }})
		env.AddUser("bob", alicePassword)
		secret := env.AddClient(manage.NewClient{ID: "portal", RedirectURIs: []string{portalRedirect}, FirstParty: true})
		r := newRP(t, env, "portal", secret)
		br := env.NewBrowser()
		f := r.start()
		p := login(t, env, br, f, "bob", alicePassword)
		tok, c := enrolDuringLogin(t, env, br, r, f, p)
		if c.ACR != "mfa" || !slices.Equal(c.AMR, []string{"pwd", "otp", "mfa"}) || tok == nil {
			t.Fatalf("enrolled login amr %v acr %q", c.AMR, c.ACR)
		}
	})
	t.Run("require-mfa client", func(t *testing.T) {
		env := idptest.New(t, b, idptest.Options{})
		env.AddUser("bob", alicePassword)
		plain := env.AddClient(manage.NewClient{ID: "plain", RedirectURIs: []string{portalRedirect}, FirstParty: true})
		strict := env.AddClient(manage.NewClient{ID: "strict", RedirectURIs: []string{portalRedirect}, FirstParty: true, RequireMFA: true})
		br := env.NewBrowser()
		rp1 := newRP(t, env, "plain", plain)
		f := rp1.start()
		_, _, c := rp1.exchange(f, rp1.codeFrom(f, login(t, env, br, f, "bob", alicePassword)))
		if c.ACR != "pwd" {
			t.Fatalf("plain client acr %q", c.ACR)
		}
		// Same session, a client that requires MFA: enrolment, no password.
		rp2 := newRP(t, env, "strict", strict)
		f = rp2.start()
		p := br.Follow(env.Issuer, br.Get(f.authURL))
		if p.Contains(`name="password"`) {
			t.Fatal("step-up asked for the password again")
		}
		_, c = enrolDuringLogin(t, env, br, rp2, f, p)
		if c.ACR != "mfa" {
			t.Fatalf("strict client acr %q", c.ACR)
		}
	})
	t.Run("acr_values=mfa steps up a password session", func(t *testing.T) {
		env, r := setup(t, b)
		// A session made by a password-only login (before 2-Factor Auth was
		// turned on in it) is not enough for acr_values=mfa.
		b2 := env.NewBrowser()
		f := r.start()
		r.codeFrom(f, login(t, env, b2, f, "alice", alicePassword))
		app2, _ := enrol(t, env, b2, b2.Get(env.Issuer+"/account"))
		f = r.start(oauth2.SetAuthURLParam("acr_values", "mfa"))
		p := b2.Follow(env.Issuer, b2.Get(f.authURL))
		if p.Contains(`name="password"`) {
			t.Fatal("step-up asked for the password again")
		}
		if !p.Contains("Authentication Code") {
			t.Fatalf("acr_values=mfa on a password session did not ask for the code: %s\n%s", p, p.Body)
		}
		_, _, c := r.exchange(f, r.codeFrom(f, consentIfAsked(t, env, b2, submitCode(t, env, b2, p, app2.code(t, 0), false))))
		if c.ACR != "mfa" {
			t.Fatalf("after step-up acr %q", c.ACR)
		}
	})
}

// enrolDuringLogin completes a required enrolment inside a login.
func enrolDuringLogin(t *testing.T, env *idptest.Env, b *idptest.Browser, r *rp, f *flow, p *idptest.Page) (*oauth2.Token, claims) {
	t.Helper()
	m := setupKeyRE.FindStringSubmatch(p.Body)
	if m == nil || !p.Contains("Authentication Code") {
		t.Fatalf("no enrolment in the login: %s\n%s", p, p.Body)
	}
	app := &authenticator{secret: strings.ReplaceAll(m[1], " ", ""), clock: env.Clock}
	form := p.Form()
	form.Set("code", app.code(t, 0))
	p = b.Follow(env.Issuer, b.Post(env.Issuer+"/login/enrol", form))
	if n := len(codeInListRE.FindAllString(recoveryListRE.FindString(p.Body), -1)); n != 10 {
		t.Fatalf("%d recovery codes after enrolment in a login:\n%s", n, p.Body)
	}
	p = b.Follow(env.Issuer, b.Post(env.Issuer+"/login/continue", p.Form()))
	tok, _, c := r.exchange(f, r.codeFrom(f, consentIfAsked(t, env, b, p)))
	env.Clock.Advance(30 * time.Second)
	return tok, c
}
