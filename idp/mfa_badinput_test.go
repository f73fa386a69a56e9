package idp_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
)

// Bad input on the second-factor pages: a clear answer, and nothing saved
// or spent.
func TestSecondFactorBadInput(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	account := loginToAccount(t, env, br, "alice", alicePassword, nil)

	t.Run("account forms without the CSRF token", func(t *testing.T) {
		for _, path := range []string{"/account/2fa/enable", "/account/2fa/setup", "/account/2fa/disable",
			"/account/recovery-codes", "/account/devices/forget", "/account/logout"} {
			if p := br.Post(env.Issuer+path, url.Values{}); p.Status != http.StatusForbidden {
				t.Errorf("POST %s without a token: %s", path, p)
			}
		}
		if st, _ := env.Manage.MFA(t.Context(), mustID(t, env, "alice")); st.TOTP {
			t.Fatal("a form without a token changed something")
		}
	})
	t.Run("account form without a session", func(t *testing.T) {
		stranger := env.NewBrowser()
		stranger.Get(env.Issuer + "/account") // gets a browser cookie and a login
		p := stranger.Post(env.Issuer+"/account/2fa/enable", url.Values{"csrf_token": {account.Form().Get("csrf_token")}})
		if p.Status != http.StatusForbidden {
			t.Fatalf("another browser's token: %s", p)
		}
	})
	t.Run("enrolment that took too long", func(t *testing.T) {
		p := br.Follow(env.Issuer, br.Post(env.Issuer+"/account/2fa/enable", account.Form()))
		if !p.Contains("Trouble Scanning?") {
			t.Fatalf("no enrolment page: %s", p)
		}
		env.Clock.Advance(11 * time.Minute)
		form := p.Form()
		form.Set("code", "123456")
		p = br.Follow(env.Issuer, br.Post(env.Issuer+"/account/2fa/setup", form))
		if !p.Contains("took too long") || !p.Contains(">OFF<") {
			t.Fatalf("expired enrolment: %s\n%s", p, p.Body)
		}
	})
	t.Run("malformed codes at login", func(t *testing.T) {
		enrol(t, env, br, br.Get(env.Issuer+"/account"))
		other := env.NewBrowser()
		f := r.start()
		p := login(t, env, other, f, "alice", alicePassword)
		for _, code := range []string{"", "abcdef", "12345", strings.Repeat("9", 5000)} {
			form := p.Form()
			form.Set("code", code)
			got := other.Post(env.Issuer+"/login/mfa", form)
			if got.Status != http.StatusUnauthorized || !got.Contains("not right") {
				t.Fatalf("code %.10q: %s", code, got)
			}
			p = got
		}
		// Continue before any codes were shown: back to the step the login is at.
		if got := other.Post(env.Issuer+"/login/continue", p.Form()); got.Status != http.StatusSeeOther || !strings.Contains(got.Location, "/login?id=") {
			t.Fatalf("continue out of turn: %s", got)
		}
	})
	t.Run("oversized form", func(t *testing.T) {
		form := account.Form()
		form.Set("padding", strings.Repeat("x", 100<<10))
		p := br.Post(env.Issuer+"/account/devices/forget", form)
		if p.Status != http.StatusBadRequest {
			t.Fatalf("100 KiB form: %s", p)
		}
	})
}

func TestRequiredEnrolmentBadCode(t *testing.T) {
	env := idptest.New(t, idptest.Backends[0], idptest.Options{Configure: func(c *config.Config) { c.MFA.Required = true }})
	env.AddUser("bob", alicePassword)
	secret := env.AddClient(manage.NewClient{ID: "portal", RedirectURIs: []string{portalRedirect}, FirstParty: true})
	r := newRP(t, env, "portal", secret)
	br := env.NewBrowser()
	f := r.start()
	p := login(t, env, br, f, "bob", alicePassword)
	form := p.Form()
	form.Set("code", "000000")
	p = br.Post(env.Issuer+"/login/enrol", form)
	if p.Status != http.StatusUnauthorized || !p.Contains("not right") || !p.Contains("Trouble Scanning?") {
		t.Fatalf("wrong code in a required enrolment: %s", p)
	}
	if st, _ := env.Manage.MFA(t.Context(), mustID(t, env, "bob")); st.TOTP || st.RecoveryCodesLeft != 0 {
		t.Fatalf("a wrong code saved an enrolment: %+v", st)
	}
	// The portal gets no code until the enrolment is done.
	if p := br.Get(env.Issuer + "/authorize/callback?id=" + url.QueryEscape(form.Get("id"))); strings.Contains(p.Location, "code=") {
		t.Fatalf("callback before the required enrolment: %s", p)
	}
}

func mustID(t *testing.T, env *idptest.Env, username string) string {
	t.Helper()
	u, err := env.Store.UserByUsername(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
