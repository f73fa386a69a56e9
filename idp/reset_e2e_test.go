package idp_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/mail/mailtest"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/storage"
)

const newPassword = "a brand new passphrase here"

// mailSetup starts a provider that sends e-mail to a fake SMTP server, with
// alice (e-mail alice@example.com, set by the operator: confirmed) and a portal.
func mailSetup(t *testing.T, b idptest.Backend, more ...func(*config.Config)) (*idptest.Env, *rp, *mailtest.Server) {
	t.Helper()
	srv := mailtest.NewServer(t)
	env := idptest.New(t, b, idptest.Options{Configure: func(c *config.Config) {
		c.Email.Provider, c.Email.From = "smtp", "Secure Sign-In <no-reply@example.com>"
		c.Email.SMTP.Host, c.Email.SMTP.Port, c.Email.SMTP.TLS = srv.Host, srv.Port, "none"
		for _, f := range more {
			f(c)
		}
	}})
	env.AddUser("alice", alicePassword)
	secret := env.AddClient(manage.NewClient{ID: "portal", Name: "Client Portal", RedirectURIs: []string{portalRedirect},
		PostLogoutRedirectURIs: []string{portalLogout}, FirstParty: true})
	return env, newRP(t, env, "portal", secret), srv
}

var resetLinkRE = regexp.MustCompile(`https?://[^\s"<>]+/password/reset\?token=[A-Za-z0-9_%-]+`)

// askReset clicks Forgot Password? on a portal login and asks for name.
func askReset(t *testing.T, env *idptest.Env, r *rp, name string) (*idptest.Browser, *idptest.Page) {
	t.Helper()
	b := env.NewBrowser()
	p := b.Follow(env.Issuer, b.Get(r.start().authURL))
	forgot := b.Get(env.Issuer + unescapeHTML(mustHref(t, p, "Forgot Password?")))
	if !forgot.Contains(`<label for="username">Username or e-mail</label>`) || !forgot.Contains(">Send link<") {
		t.Fatalf("forgot password page:\n%s", forgot.Body)
	}
	form := forgot.Form()
	form.Set("username", name)
	return b, b.Post(env.Issuer+"/password/forgot", form)
}

// lastMail is the newest mail with that subject (other mails, such as
// security notices, may be sent at the same time).
func lastMail(t *testing.T, smtp *mailtest.Server, subject string) mailtest.Mail {
	t.Helper()
	mails := smtp.Mails()
	for i := len(mails) - 1; i >= 0; i-- {
		if mails[i].Subject == subject {
			return mails[i]
		}
	}
	var got []string
	for _, m := range mails {
		got = append(got, m.Subject)
	}
	t.Fatalf("no mail with subject %q; got %q", subject, got)
	return mailtest.Mail{}
}

// linkIn returns the reset link of the newest mail to address.
func linkIn(t *testing.T, m mailtest.Mail) string {
	t.Helper()
	link := resetLinkRE.FindString(m.Text)
	if link == "" || !strings.Contains(m.HTML, strings.ReplaceAll(link, "&", "&amp;")) {
		t.Fatalf("no reset link in both parts of the mail:\n%s\n%s", m.Text, m.HTML)
	}
	return link
}

// setNewPassword posts the new-password form at p.
func setNewPassword(t *testing.T, env *idptest.Env, b *idptest.Browser, p *idptest.Page, pw, again string) *idptest.Page {
	t.Helper()
	if !p.Contains(`<label for="new-password">New password</label>`) || !p.Contains(`<label for="new-password-2">Repeat new password</label>`) {
		t.Fatalf("not the new-password page: %s\n%s", p, p.Body)
	}
	form := p.Form()
	form.Set("password", pw)
	form.Set("password2", again)
	return b.Post(env.Issuer+"/password/new", form)
}

func TestForgotPassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, smtp := mailSetup(t, b)
		ctx := context.Background()
		// Alice has a refresh token and a session in another browser.
		other := env.NewBrowser()
		f := r.start()
		tok, _, _ := r.exchange(f, r.codeFrom(f, login(t, env, other, f, "alice", alicePassword)))

		// Known and unknown names get the same page; only the known one a mail.
		_, sent := askReset(t, env, r, "alice")
		_, unknown := askReset(t, env, r, "nobody-here")
		for _, p := range []*idptest.Page{sent, unknown} {
			if p.Status != http.StatusOK || !p.Contains("If an account exists for") {
				t.Fatalf("answer to a reset request: %s\n%s", p, p.Body)
			}
		}
		loginLink := regexp.MustCompile(`/login\?id=[^"]+`)
		same := func(p *idptest.Page, name string) string {
			return loginLink.ReplaceAllString(strings.ReplaceAll(p.Body, name, "X"), "")
		}
		if same(sent, "alice") != same(unknown, "nobody-here") {
			t.Fatal("the answers for a known and an unknown name differ")
		}
		env.Server.Wait()
		mails := smtp.Mails()
		if len(mails) != 1 || mails[0].To[0] != "alice@example.com" || mails[0].Subject != "Reset your password" {
			t.Fatalf("mails after two requests: %+v", mails)
		}
		link := linkIn(t, mails[0])

		// The link, in a new browser; alice has no second factor: straight to the form.
		lb := env.NewBrowser()
		p := lb.Follow(env.Issuer, lb.Get(link))
		if p := setNewPassword(t, env, lb, p, newPassword, newPassword+"x"); p.Status != http.StatusBadRequest || !p.Contains("not the same") {
			t.Fatalf("mismatched passwords: %s", p)
		}
		for _, bad := range []string{"password1234", "short", "alice@example.com"} {
			if p := setNewPassword(t, env, lb, p, bad, bad); p.Status != http.StatusBadRequest {
				t.Fatalf("password %q accepted: %s", bad, p)
			}
		}
		done := setNewPassword(t, env, lb, p, newPassword, newPassword)
		if done.Status != http.StatusOK || !done.Contains("Your password was changed") {
			t.Fatalf("after the new password: %s\n%s", done, done.Body)
		}
		// The link is spent; the old password is gone; everything it opened is closed.
		if p := lb.Get(link); p.Status != http.StatusBadRequest || !p.Contains("no longer works") {
			t.Fatalf("a used link: %s", p)
		}
		if _, err := refreshErr(r, tok.RefreshToken); err == nil {
			t.Fatal("the refresh token of before the reset still works")
		}
		if p := other.Follow(env.Issuer, other.Get(r.start().authURL)); !p.Contains(`name="password"`) {
			t.Fatalf("the session of before the reset still logs in: %s", p)
		}
		if p := login(t, env, env.NewBrowser(), r.start(), "alice", alicePassword); !p.Contains(msgBadCredentialsHTML) {
			t.Fatalf("the old password still works: %s", p)
		}
		f = r.start()
		r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", newPassword))

		// Audited, and alice is told by e-mail.
		env.Server.Wait()
		lastMail(t, smtp, "Security alert: Your password was reset")
		events, _ := env.Store.ListAudit(ctx, storage.AuditQuery{UserID: mustID(t, env, "alice"), Limit: 50})
		var reset bool
		for _, e := range events {
			reset = reset || e.Type == "password.reset"
		}
		if !reset {
			t.Fatal("no password.reset audit event")
		}
	})
}

// msgBadCredentialsHTML is the login page's message for a wrong password.
const msgBadCredentialsHTML = "The username or password is incorrect."

// A password reset never bypasses the second factor: the link leads to the
// factor first (any method), and a remembered device does not waive it.
func TestResetNeedsSecondFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, smtp := mailSetup(t, b)
		br := env.NewBrowser()
		app, codes := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
		// This browser is remembered.
		f := r.start()
		r.codeFrom(f, submitCode(t, env, br, login(t, env, br, f, "alice", alicePassword), app.code(t, 0), true))
		env.Clock.Advance(30 * time.Second)

		askReset(t, env, r, "alice@example.com") // by e-mail address
		env.Server.Wait()
		link := linkIn(t, lastMail(t, smtp, "Reset your password"))
		p := br.Follow(env.Issuer, br.Get(link)) // the remembered browser
		if !p.Contains(`<label for="code">Authentication Code</label>`) || p.Contains("New password") {
			t.Fatalf("the reset link did not ask for the second factor first:\n%s", p.Body)
		}
		// The form for the new password cannot be reached before it.
		id := p.Form().Get("id")
		if q := br.Get(env.Issuer + "/password/new?id=" + url.QueryEscape(id)); q.Status == http.StatusOK && q.Contains("New password") {
			t.Fatal("the new-password page was shown before the second factor")
		}
		// A reset leaves no remembered device behind: no checkbox, and a
		// posted "remember" is ignored.
		if p.Contains("Remember this device") || !p.Contains("To choose a new password for alice") {
			t.Fatalf("the reset's second-factor page:\n%s", p.Body)
		}
		devicesBefore, _ := env.Store.ListRememberedDevices(context.Background(), mustID(t, env, "alice"))
		wrong := submitCode(t, env, br, p, "000000", false)
		if wrong.Status != http.StatusUnauthorized {
			t.Fatalf("a wrong code in a reset: %s", wrong)
		}
		p = submitCode(t, env, br, wrong, app.code(t, 0), true)
		if devices, _ := env.Store.ListRememberedDevices(context.Background(), mustID(t, env, "alice")); len(devices) != len(devicesBefore) {
			t.Fatalf("a reset remembered the device: %d devices, had %d", len(devices), len(devicesBefore))
		}
		if p := setNewPassword(t, env, br, p, newPassword, newPassword); p.Status != http.StatusOK {
			t.Fatalf("new password after the code: %s\n%s", p, p.Body)
		}
		// The reset logged nobody in: the portal asks for the new password.
		if p := br.Follow(env.Issuer, br.Get(r.start().authURL)); !p.Contains(`name="password"`) {
			t.Fatalf("a reset started a session: %s", p)
		}

		// A recovery code also passes a reset's second factor.
		env.Clock.Advance(30 * time.Second)
		askReset(t, env, r, "alice")
		env.Server.Wait()
		b2 := env.NewBrowser()
		p = b2.Follow(env.Issuer, b2.Get(linkIn(t, lastMail(t, smtp, "Reset your password"))))
		rec := b2.Get(env.Issuer + mustHref(t, p, "Try another method"))
		rec = b2.Get(env.Issuer + mustHref(t, rec, "Recovery code"))
		form := rec.Form()
		form.Set("recovery_code", codes[0])
		p = b2.Follow(env.Issuer, b2.Post(env.Issuer+"/login/recovery", form))
		p = b2.Follow(env.Issuer, b2.Post(env.Issuer+"/login/continue", p.Form()))
		if p := setNewPassword(t, env, b2, p, "another good passphrase", "another good passphrase"); p.Status != http.StatusOK {
			t.Fatalf("new password after a recovery code: %s\n%s", p, p.Body)
		}
	})
}

// Links expire, a newer one voids the older, and each works once.
func TestResetLinks(t *testing.T) {
	env, r, smtp := mailSetup(t, idptest.Backends[0])
	askReset(t, env, r, "alice")
	env.Server.Wait()
	first := linkIn(t, lastMail(t, smtp, "Reset your password"))
	askReset(t, env, r, "alice")
	env.Server.Wait()
	second := linkIn(t, lastMail(t, smtp, "Reset your password"))
	b := env.NewBrowser()
	if p := b.Get(first); p.Status != http.StatusBadRequest {
		t.Fatalf("an older link after a newer one: %s", p)
	}
	if p := b.Get(second); p.Status != http.StatusSeeOther {
		t.Fatalf("the newest link: %s", p)
	}
	env.Clock.Advance(31 * time.Minute)
	if p := b.Get(second); p.Status != http.StatusBadRequest {
		t.Fatalf("a link after 31 minutes: %s", p)
	}
	for _, bad := range []string{"", "x", strings.Repeat("a", 500), "..%2F"} {
		if p := b.Get(env.Issuer + "/password/reset?token=" + bad); p.Status != http.StatusBadRequest {
			t.Errorf("token %q: %s", bad, p)
		}
	}
	// A link opened where another user is logged in ends that session.
	env.AddUser("bob", alicePassword)
	bb := env.NewBrowser()
	loginToAccount(t, env, bb, "bob", alicePassword, nil)
	askReset(t, env, r, "alice")
	env.Server.Wait()
	p := bb.Follow(env.Issuer, bb.Get(linkIn(t, lastMail(t, smtp, "Reset your password"))))
	if !p.Contains("for <strong>alice</strong>") {
		t.Fatalf("reset page in bob's browser:\n%s", p.Body)
	}
	if acct := bb.Follow(env.Issuer, bb.Get(env.Issuer+"/account")); !acct.Contains(`name="password"`) {
		t.Fatal("bob's session survived opening alice's reset link")
	}
}

// Limits: 3 mails per account an hour; 10 requests per network an hour;
// the mail server down: a clear answer, nothing left behind.
func TestResetLimitsAndSMTPDown(t *testing.T) {
	env, r, smtp := mailSetup(t, idptest.Backends[0])
	now := env.Clock.Now()
	env.Clock.Advance(now.Truncate(time.Hour).Add(time.Hour).Sub(now))
	for range 4 {
		askReset(t, env, r, "alice")
	}
	env.Server.Wait()
	if n := len(smtp.Mails()); n != 3 {
		t.Fatalf("%d mails for 4 requests in an hour, want 3", n)
	}
	for range 6 {
		askReset(t, env, r, "nobody")
	}
	if _, p := askReset(t, env, r, "alice"); p.Status != http.StatusTooManyRequests || !p.Contains("Try again in an hour") {
		t.Fatalf("the 11th request from one network: %s\n%s", p, p.Body)
	}

	env.Clock.Advance(time.Hour)
	smtp.Down()
	env.Clock.Advance(time.Minute) // past the cached good check
	if _, p := askReset(t, env, r, "alice"); p.Status != http.StatusServiceUnavailable || !p.Contains("cannot send e-mail") {
		t.Fatalf("reset with the mail server down: %s\n%s", p, p.Body)
	}
	smtp.Up()
	env.Server.Wait()
	if n := len(smtp.Mails()); n != 3 {
		t.Fatalf("%d mails, want still 3", n)
	}
}

// The account pages: change the password (current one needed), change the
// e-mail address (confirmed by a link; the old address is told).
func TestAccountPasswordAndEmail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r, smtp := mailSetup(t, b)
		ctx := context.Background()
		other := env.NewBrowser()
		loginToAccount(t, env, other, "alice", alicePassword, nil)
		br := env.NewBrowser()
		acct := loginToAccount(t, env, br, "alice", alicePassword, nil)
		if !acct.Contains(">Change password<") || !acct.Contains(">Change e-mail<") {
			t.Fatalf("account page lacks the links:\n%s", acct.Body)
		}
		page := br.Get(env.Issuer + "/account/password")
		form := page.Form()
		form.Set("current_password", "not my password")
		form.Set("password", newPassword)
		form.Set("password2", newPassword)
		if p := br.Post(env.Issuer+"/account/password", form); p.Status != http.StatusUnauthorized {
			t.Fatalf("a wrong current password: %s", p)
		}
		form.Set("current_password", alicePassword)
		if p := br.Post(env.Issuer+"/account/password", form); !strings.Contains(p.Location, "password-changed") {
			t.Fatalf("changing the password: %s\n%s", p, p.Body)
		}
		if p := br.Get(env.Issuer + "/account?notice=password-changed"); !p.Contains("Your password was changed") || !p.Contains("2-Factor Auth") {
			t.Fatalf("this browser was logged out: %s", p)
		}
		if p := other.Get(env.Issuer + "/account"); p.Status != http.StatusSeeOther {
			t.Fatalf("the other browser's session survived the change: %s", p)
		}
		f := r.start()
		r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", newPassword))

		// A new e-mail address waits for its link.
		page = br.Get(env.Issuer + "/account/email")
		form = page.Form()
		form.Set("email", "not an address")
		if p := br.Post(env.Issuer+"/account/email", form); p.Status != http.StatusBadRequest {
			t.Fatalf("a bad address: %s", p)
		}
		form.Set("email", "alice@example.org")
		if p := br.Post(env.Issuer+"/account/email", form); p.Status != http.StatusSeeOther {
			t.Fatalf("a new address: %s\n%s", p, p.Body)
		}
		env.Server.Wait()
		m := lastMail(t, smtp, "Confirm your e-mail address")
		if m.To[0] != "alice@example.org" {
			t.Fatalf("confirmation mail %+v", m)
		}
		if u, _ := env.Store.UserByUsername(ctx, "alice"); u.Email != "alice@example.com" {
			t.Fatalf("the address changed before the link: %s", u.Email)
		}
		link := regexp.MustCompile(`https?://[^\s"<>]+/account/email/confirm\?token=[A-Za-z0-9_%-]+`).FindString(m.Text)
		cb := env.NewBrowser()
		confirm := cb.Get(link)
		if !confirm.Contains(">Confirm e-mail address<") {
			t.Fatalf("confirm page:\n%s", confirm.Body)
		}
		if p := cb.Post(env.Issuer+"/account/email/confirm", confirm.Form()); p.Status != http.StatusOK || !p.Contains("alice@example.org") {
			t.Fatalf("confirming: %s\n%s", p, p.Body)
		}
		if u, _ := env.Store.UserByUsername(ctx, "alice"); u.Email != "alice@example.org" || !u.EmailVerified {
			t.Fatalf("after the link: %s verified %v", u.Email, u.EmailVerified)
		}
		if p := cb.Post(env.Issuer+"/account/email/confirm", confirm.Form()); p.Status != http.StatusBadRequest {
			t.Fatalf("a used confirmation link: %s", p)
		}
		env.Server.Wait()
		if m := lastMail(t, smtp, "Security alert: Your e-mail address was changed to alice@example.org"); m.To[0] != "alice@example.com" {
			t.Fatalf("the old address was not told: %+v", m)
		}
	})
}

// Security notifications go to the confirmed address, with "if this
// wasn't you" guidance.
func TestSecurityNotifications(t *testing.T) {
	env, _, smtp := mailSetup(t, idptest.Backends[0])
	br := env.NewBrowser()
	enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
	env.Server.Wait()
	var found bool
	for _, m := range smtp.Mails() {
		if strings.Contains(m.Subject, "2-Factor Auth was turned on") {
			found = true
			if !strings.Contains(strings.ToLower(m.Text), "wasn't you") && !strings.Contains(strings.ToLower(m.Text), "was not you") {
				t.Errorf("the notice lacks the if-this-wasn't-you guidance:\n%s", m.Text)
			}
		}
	}
	if !found {
		t.Fatalf("no notice for turning 2-Factor Auth on: %+v", smtp.Mails())
	}
	// Off with email.notifications false.
	quiet, _, qsmtp := mailSetup(t, idptest.Backends[0], func(c *config.Config) { c.Email.Notifications = false })
	qb := quiet.NewBrowser()
	enrol(t, quiet, qb, loginToAccount(t, quiet, qb, "alice", alicePassword, nil))
	quiet.Server.Wait()
	if n := len(qsmtp.Mails()); n != 0 {
		t.Fatalf("%d mails with notifications off", n)
	}
}

// A new password ends what the old one opened: access tokens, codes of
// logins before it, and a pending change of the e-mail address (whoever
// knew the old password must not move where reset links go).
func TestPasswordChangeEndsTheOldOnes(t *testing.T) {
	env, r, smtp := mailSetup(t, idptest.Backends[0])
	ctx := context.Background()
	f := r.start()
	tok, _, _ := r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
	if _, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
		t.Fatalf("userinfo before the change: %v", err)
	}
	// An attacker with the old password asks to move the e-mail address.
	br := env.NewBrowser()
	loginToAccount(t, env, br, "alice", alicePassword, nil)
	form := br.Get(env.Issuer + "/account/email").Form()
	form.Set("email", "mallory@example.net")
	br.Post(env.Issuer+"/account/email", form)
	env.Server.Wait()
	confirm := regexp.MustCompile(`https?://[^\s"<>]+/account/email/confirm\?token=[A-Za-z0-9_%-]+`).FindString(lastMail(t, smtp, "Confirm your e-mail address").Text)
	// The owner is told while it can still be stopped.
	if m := lastMail(t, smtp, "Security alert: A change of your e-mail address to mallory@example.net was asked for"); m.To[0] != "alice@example.com" {
		t.Fatalf("the owner was not told: %+v", m)
	}
	// A login whose code is not redeemed yet.
	pendingFlow := r.start()
	code := r.codeFrom(pendingFlow, login(t, env, env.NewBrowser(), pendingFlow, "alice", alicePassword))

	env.Clock.Advance(time.Second)
	askReset(t, env, r, "alice")
	env.Server.Wait()
	lb := env.NewBrowser()
	p := lb.Follow(env.Issuer, lb.Get(linkIn(t, lastMail(t, smtp, "Reset your password"))))
	if p := setNewPassword(t, env, lb, p, newPassword, newPassword); p.Status != http.StatusOK {
		t.Fatalf("reset: %s", p)
	}
	if _, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("an access token of before the reset still reads userinfo")
	}
	if _, err := r.conf.Exchange(ctx, code, oauth2.VerifierOption(pendingFlow.verifier)); err == nil {
		t.Fatal("a code of a login before the reset was redeemed")
	}
	cb := env.NewBrowser()
	if p := cb.Get(confirm); p.Status != http.StatusBadRequest {
		t.Fatalf("the e-mail change asked for before the reset still works: %s", p)
	}
	if u, _ := env.Store.UserByUsername(ctx, "alice"); u.Email != "alice@example.com" {
		t.Fatalf("e-mail after all: %s", u.Email)
	}
}
