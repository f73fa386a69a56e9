package idp_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/internal/testenv"
)

// resetBrowserText is the visible text of the element at the XPath sel,
// with no-break spaces read as spaces.
func resetBrowserText(tab *browserTab, sel string) string {
	tab.t.Helper()
	tab.see(sel)
	s, err := chromedp.Run(tab.ctx, chromedp.Text(sel))
	if err != nil {
		tab.t.Fatalf("%s tab: reading %s: %v", tab.name, sel, err)
	}
	return strings.TrimSpace(strings.ReplaceAll(s, "\u00a0", " "))
}

// resetBrowserError checks that the page's error alert reads something
// containing want.
func resetBrowserError(tab *browserTab, want string) {
	tab.t.Helper()
	if msg := resetBrowserText(tab, `//*[@id='page-error']`); !strings.Contains(msg, want) {
		tab.t.Fatalf("%s tab at %s: the error reads %q, want it to contain %q", tab.name, tab.location(), msg, want)
	}
}

// TestBrowserForgotPassword follows Forgot Password? as a person would:
// Alice has the authenticator app; from the Client Portal's login page she
// asks for a link, opens it from her e-mail, passes her second factor (a
// wrong code first), chooses a new password (after a mismatch and a common
// one) and logs in to the portal with it; the old one is refused.
func TestBrowserForgotPassword(t *testing.T) {
	browser := testenv.Chromium(t)
	started := time.Now()
	env, _, smtp := mailSetup(t, idptest.Backends[0]) // alice, alice@example.com, alicePassword
	portal := newBrowserPortal(t, env)
	shots := &browserShots{t: t, dir: testenv.ArtifactsDir(t, "browser")}

	// Alice turns 2-Factor Auth on from the account page, with the setup key.
	acct := newBrowserTab(t, browser, "account")
	acct.open(env.Issuer + "/account")
	acct.see(browserField("Username"))
	acct.typeInto("Username", "alice")
	acct.typeInto("Password", alicePassword)
	acct.click(browserButton("Log In"))
	offSwitch := `//*[normalize-space()='2-Factor Auth']/following::*[self::button or self::a][normalize-space()='OFF'][1]`
	acct.see(offSwitch)
	acct.click(offSwitch)
	acct.see(`//img[contains(@alt,'QR code')]`)
	acct.click(browserLink("Trouble Scanning?"))
	secret := strings.ReplaceAll(resetBrowserText(acct, `//*[@id='setup-key']//code`), " ", "")
	if len(secret) < 16 || strings.Trim(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		t.Fatalf("setup key %q is not base32", secret)
	}
	acct.typeInto("Authentication Code", browserTOTP(t, env, secret))
	acct.click(browserButton("Update"))
	acct.see(`//*[@id='recovery-codes']//code`)
	acct.click(browserButton("Continue"))
	acct.see(`//*[normalize-space()='2-Factor Auth']/following::*[self::button or self::a][normalize-space()='ON'][1]`)
	shots.save(acct, "reset-account-2fa-on")
	acct.checkConsole()
	env.Clock.Advance(30 * time.Second) // the enrolment code is spent

	// In another browser the portal sends her to log in: Forgot Password?
	tab := newBrowserTab(t, browser, "reset")
	f := portal.start()
	tab.open(f.url)
	tab.see(browserField("Username"))
	tab.see(browserLink("Forgot Password?"))
	shots.save(tab, "reset-login")
	tab.click(browserLink("Forgot Password?"))
	tab.see(`//h1[normalize-space()='Forgot your password?']`)
	tab.see(browserField("Username or e-mail"))
	tab.see(browserButton("Send link"))
	tab.see(browserLink("Back to log in"))
	shots.save(tab, "reset-forgot")
	tab.typeInto("Username or e-mail", "alice")
	tab.click(browserButton("Send link"))
	sent := resetBrowserText(tab, `//*[@id='reset-sent']`)
	if want := "If an account exists for alice, we sent a link"; !strings.HasPrefix(sent, want) {
		t.Fatalf("the answer reads %q, want it to start with %q", sent, want)
	}
	tab.lacks(browserField("Username or e-mail"), "the form is still shown after Send link")
	tab.see(browserLink("Back to log in"))
	shots.save(tab, "reset-sent")

	// The e-mail.
	env.Server.Wait()
	m := lastMail(t, smtp, "Reset your password")
	if len(m.To) != 1 || m.To[0] != "alice@example.com" {
		t.Fatalf("newest mail to %v %q, want the reset link to alice@example.com", m.To, m.Subject)
	}
	link := linkIn(t, m)

	// The link, in the same browser: the second factor comes first.
	tab.open(link)
	tab.see(browserField("Authentication Code"))
	tab.lacks(browserField("New password"), "the new-password field is shown before the second factor")
	tab.see(browserButton("Log In"))
	shots.save(tab, "reset-second-factor")
	right := browserTOTP(t, env, secret)
	tab.typeInto("Authentication Code", wrongCode(right))
	if st := smsBrowserSubmit(tab, browserButton("Log In")); st != http.StatusUnauthorized {
		t.Fatalf("a wrong code in the reset answered %d, want 401", st)
	}
	resetBrowserError(tab, "not right")
	tab.see(browserField("Authentication Code"))
	tab.lacks(browserField("New password"), "the new-password field is shown after a wrong code")
	shots.save(tab, "reset-second-factor-wrong")
	tab.typeInto("Authentication Code", right)
	tab.click(browserButton("Log In"))

	// Choose a new password: the rules, then a mismatch, a common one, a good one.
	tab.see(`//h1[normalize-space()='Choose a new password']`)
	tab.see(browserField("New password"))
	tab.see(browserField("Repeat new password"))
	tab.see(browserButton("Change password"))
	if rules := browserEval[int](tab, `document.querySelectorAll("#password-rules li").length`); rules == 0 {
		t.Fatal("the new-password page lists no password rules")
	}
	tab.see(`//ul[@id='password-rules']/li`)
	shots.save(tab, "reset-new-password")
	change := func(pw, again string) int64 {
		t.Helper()
		tab.typeInto("New password", pw)
		tab.typeInto("Repeat new password", again)
		return smsBrowserSubmit(tab, browserButton("Change password"))
	}
	if st := change(newPassword, newPassword+"x"); st != http.StatusBadRequest {
		t.Fatalf("mismatched passwords answered %d, want 400", st)
	}
	resetBrowserError(tab, "not the same")
	shots.save(tab, "reset-new-password-mismatch")
	if st := change("password1234", "password1234"); st != http.StatusBadRequest {
		t.Fatalf("password1234 answered %d, want 400", st)
	}
	resetBrowserError(tab, "too common")
	tab.see(`//ul[@id='password-rules']/li`)
	shots.save(tab, "reset-new-password-common")
	if st := change(newPassword, newPassword); st != http.StatusOK {
		t.Fatalf("a good new password answered %d, want 200:\n%s", st, tab.text())
	}
	tab.see(`//h1[normalize-space()='Your password was changed']`)
	tab.see(browserButton("Log in"))
	shots.save(tab, "reset-done")

	// Log in leads back to the portal's login; the old password is refused.
	tab.click(browserButton("Log in"))
	tab.see(browserField("Password"))
	tab.see(`//*[contains(@class,'subtitle')][normalize-space()='to continue to Client Portal']`)
	tab.typeInto("Username", "alice")
	tab.typeInto("Password", alicePassword)
	if st := smsBrowserSubmit(tab, browserButton("Log In")); st != http.StatusUnauthorized {
		t.Fatalf("the old password answered %d, want 401", st)
	}
	resetBrowserError(tab, "The username or password is incorrect.")
	tab.lacks(browserField("Authentication Code"), "the old password led to the second factor")
	shots.save(tab, "reset-old-password-refused")

	// The portal again: the new password and the app's code.
	env.Clock.Advance(30 * time.Second) // the reset's code is spent
	f = portal.start()
	tab.open(f.url)
	tab.see(browserField("Username"))
	tab.typeInto("Username", "alice")
	tab.typeInto("Password", newPassword)
	tab.click(browserButton("Log In"))
	tab.see(browserField("Authentication Code"))
	tab.typeInto("Authentication Code", browserTOTP(t, env, secret))
	tab.click(browserButton("Log In"))
	portal.landed(tab, f, "pwd", "otp", "mfa")

	smsBrowserExpected(tab, "status of 401 (Unauthorized) "+env.Issuer+"/login/mfa")
	smsBrowserExpected(tab, "status of 400 (Bad Request) "+env.Issuer+"/password/new")
	smsBrowserExpected(tab, "status of 401 (Unauthorized) "+env.Issuer+"/login/password")
	tab.checkConsole()
	acct.checkConsole()

	t.Logf("reset browser flow took %v after Chromium started; screenshots in %s", time.Since(started).Round(time.Millisecond), shots.dir)
}
