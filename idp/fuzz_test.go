package idp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/internal/webauthntest"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/mfa/sms/smstest"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
)

// Fuzz targets of the provider's web surface. Each starts one provider
// (SQLite and the in-process store) for all its inputs and drives the real
// handler; none may answer 5xx (or drop the connection, which is what a
// panic does) where the input is the only thing that is wrong. The seeds
// run in every go test; make fuzz runs each target for a while.

const (
	fuzzTOTPSecret = "0123456789abcdefghij"
	bobPassword    = "a staple of batteries"
	bobPhone       = "+14155550123"
)

// fuzzEnv is a provider with a first-party portal, alice (password only)
// and bob (password, authenticator app, recovery codes and a verified cell
// phone; SMS goes to a fake Twilio).
type fuzzEnv struct {
	*idptest.Env
	twilio   *smstest.Twilio
	bobID    string
	recovery []string // bob's recovery codes
}

func newFuzzEnv(f *testing.F, configure ...func(*config.Config)) *fuzzEnv {
	f.Helper()
	return newFuzzEnvAt(f, false, configure...)
}

// newFuzzEnvAt is newFuzzEnv, at http://localhost:PORT when localhost is
// true (WebAuthn needs a domain name).
func newFuzzEnvAt(f *testing.F, localhost bool, configure ...func(*config.Config)) *fuzzEnv {
	f.Helper()
	tw := smstest.NewTwilio(f)
	// The brute-force delays would refuse most inputs unchecked after the
	// first few failures: let every input reach the checks. (The limits
	// have tests of their own.)
	unlimited := func(c *config.Config) {
		c.Regulation.AccountFailures, c.Regulation.AccountTotalFailures, c.Regulation.NetworkFailures = 1<<30, 1<<30, 1<<30
	}
	o := withTwilio(tw, append([]func(*config.Config){unlimited}, configure...)...)
	o.Localhost = localhost
	env := idptest.New(f, idptest.Backends[0], o)
	env.AddUser("alice", alicePassword)
	bob := env.AddUser("bob", bobPassword)
	env.AddClient(manage.NewClient{ID: "portal", Name: "Client Portal", RedirectURIs: []string{portalRedirect},
		PostLogoutRedirectURIs: []string{portalLogout}, FirstParty: true, Secret: portalSecret})
	ctx := context.Background()
	if err := env.Store.SetTOTP(ctx, &storage.TOTP{UserID: bob.ID,
		Secret: env.Keys.Seal([]byte(fuzzTOTPSecret), []byte("totp:"+bob.ID)), CreatedAt: env.Clock.Now()}); err != nil {
		f.Fatal(err)
	}
	codes := mfa.NewRecoveryCodes(mfa.RecoveryCodeCount)
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i], _ = mfa.HashRecoveryCode(env.Keys, bob.ID, c)
	}
	if err := env.Store.ReplaceRecoveryCodes(ctx, bob.ID, hashes, env.Clock.Now()); err != nil {
		f.Fatal(err)
	}
	if _, err := env.Manage.SetPhone(ctx, manage.Operator, "bob", bobPhone); err != nil {
		f.Fatal(err)
	}
	return &fuzzEnv{Env: env, twilio: tw, bobID: bob.ID, recovery: codes}
}

const portalSecret = "portal-secret-for-the-fuzz-targets-0123456789"

// browser is a new browser whose failures are t's.
func (e *fuzzEnv) browser(t testing.TB) *idptest.Browser {
	b := e.NewBrowser()
	b.T = t
	return b
}

// authorizeURL is a portal's authorization request (confidential client:
// no PKCE needed).
func (e *fuzzEnv) authorizeURL(redirectURI string) string {
	q := url.Values{"client_id": {"portal"}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"st"}, "nonce": {"n"}}
	return e.Issuer + "/authorize?" + q.Encode()
}

// loginPage starts a login in b and returns the password page.
func (e *fuzzEnv) loginPage(t testing.TB, b *idptest.Browser) *idptest.Page {
	t.Helper()
	p := b.Follow(e.Issuer, b.Get(e.authorizeURL(portalRedirect)))
	if p.Status != http.StatusOK || !p.Contains(`name="password"`) {
		t.Fatalf("no login page: %s\n%s", p, p.Body)
	}
	return p
}

// secondFactorPage logs bob in with his password in a new browser and
// returns the second-factor page.
func (e *fuzzEnv) secondFactorPage(t testing.TB) (*idptest.Browser, *idptest.Page) {
	t.Helper()
	b := e.browser(t)
	form := e.loginPage(t, b).Form()
	form.Set("username", "bob")
	form.Set("password", bobPassword)
	p := b.Follow(e.Issuer, b.Post(e.Issuer+"/login/password", form))
	if !p.Contains("Authentication Code") {
		t.Fatalf("no second-factor page: %s\n%s", p, p.Body)
	}
	return b, p
}

// post sends a form body as it is (the fuzzer's bytes, not url.Values).
func post(t testing.TB, b *idptest.Browser, u, body string) *idptest.Page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, b, req)
}

func do(t testing.TB, b *idptest.Browser, req *http.Request) *idptest.Page {
	t.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v (a panic in the handler drops the connection)", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := &idptest.Page{Status: resp.StatusCode, Header: resp.Header, Body: string(body), URL: req.URL.String()}
	if loc, err := resp.Location(); err == nil {
		p.Location = loc.String()
	}
	return p
}

// validHeaderValue reports whether an HTTP client can send v as a header
// value (no control characters but tab).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != '\t' && (c < 0x20 || c == 0x7f) {
			return false
		}
	}
	return true
}

func no5xx(t testing.TB, what string, p *idptest.Page) {
	t.Helper()
	if p.Status >= 500 {
		t.Fatalf("%s: %s\n%s", what, p, p.Body)
	}
}

// formBody is the form's fields followed by the fuzzer's raw bytes, which
// may repeat or break fields.
func formBody(form url.Values, raw string) string {
	if raw == "" {
		return form.Encode()
	}
	return form.Encode() + "&" + raw
}

// FuzzLoginPasswordForm posts the password step with made-up username,
// password and extra raw form bytes. Never 5xx; the login moves on (here:
// back to the first-party portal) only for alice's password.
func FuzzLoginPasswordForm(f *testing.F) {
	for _, s := range []struct{ username, password, raw string }{
		{"alice", alicePassword, ""},
		{" ALICE ", alicePassword, ""},
		{"alice", alicePassword + " ", ""},
		{"alice", "wrong password", ""},
		{"nobody", alicePassword, ""},
		{"", "", ""},
		{"alice", "", "password=" + url.QueryEscape(alicePassword)},
		{"alice", alicePassword, "id=other&csrf_token=x"},
		{strings.Repeat("a", 5000), strings.Repeat("b", 5000), ""},
		{"alice\x00", "\xff\xfe", "%zz=%zz&&&=&"},
		{"alice", alicePassword, strings.Repeat("x=1&", 2000)},
	} {
		f.Add(s.username, s.password, s.raw)
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, username, password, raw string) {
		b := e.browser(t)
		form := e.loginPage(t, b).Form()
		form.Set("username", username)
		form.Set("password", password)
		p := post(t, b, e.Issuer+"/login/password", formBody(form, raw))
		no5xx(t, "POST /login/password", p)
		p = b.Follow(e.Issuer, p)
		no5xx(t, "after POST /login/password", p)
		if strings.HasPrefix(p.Location, portalRedirect) {
			// What the handler read: the first value of each field.
			sent, _ := url.ParseQuery(formBody(form, raw))
			if strings.ToLower(strings.TrimSpace(sent.Get("username"))) != "alice" || sent.Get("password") != alicePassword {
				t.Fatalf("logged in with username %q and password %q", sent.Get("username"), sent.Get("password"))
			}
		}
	})
}

// FuzzSecondFactorForms posts bob's second-factor step with a made-up code
// to the authenticator-app, recovery-code and SMS forms (route picks one;
// route 3 first sends a code by SMS). Never 5xx; the step is passed only
// with a code that is right: the app's for this time step (once), one of
// the recovery codes (once), or the code just texted.
func FuzzSecondFactorForms(f *testing.F) {
	e := newFuzzEnv(f)
	now := e.Clock.Now()
	app := mfa.TOTPCode([]byte(fuzzTOTPSecret), now)
	for _, s := range []struct {
		route      uint8
		code, raw  string
		rememberMe bool
	}{
		{0, app, "", false},
		{0, app[:3] + " " + app[3:], "", true},
		{0, "000000", "", false},
		{0, "", "", false},
		{0, strings.Repeat("9", 5000), "", false},
		{0, "１２３４５６", "code=" + app, false},
		{1, e.recovery[0], "", false},
		{1, strings.ToUpper(e.recovery[1]), "", false},
		{1, "abcd-efgh-jkmn", "", false},
		{1, e.recovery[2] + "\x00", "", false},
		{2, "123456", "", false},
		{3, "", "", false}, // the code sent
		{3, "000000", "", false},
		{3, "", "code=%zz", false},
	} {
		f.Add(s.route, s.code, s.raw, s.rememberMe)
	}
	usedSteps := map[int64]bool{}
	usedCodes := map[string]bool{}
	f.Fuzz(func(t *testing.T, route uint8, code, raw string, remember bool) {
		b, page := e.secondFactorPage(t)
		form := page.Form()
		form.Set("code", code)
		if remember {
			form.Set("remember", "on")
		}
		path := "/login/mfa"
		switch route % 4 {
		case 1:
			form.Del("code")
			form.Set("recovery_code", code)
			path = "/login/recovery"
		case 2:
			path = "/login/sms"
		case 3:
			sent := e.twilio.Count()
			p := b.Post(e.Issuer+"/login/sms/send", page.Form())
			no5xx(t, "POST /login/sms/send", p)
			if e.twilio.Count() > sent && code == "" {
				msg := e.twilio.Last(t)
				form.Set("code", msg.Body[:mfa.SMSCodeDigits]) // the right code, for the seed
			}
			path = "/login/sms"
		}
		body := formBody(form, raw)
		p := post(t, b, e.Issuer+path, body)
		no5xx(t, "POST "+path, p)
		p = b.Follow(e.Issuer, p)
		no5xx(t, "after POST "+path, p)
		passed := strings.HasPrefix(p.Location, portalRedirect) || p.Contains(`action="/login/continue"`)
		if !passed {
			return
		}
		sent, _ := url.ParseQuery(body)
		switch route % 4 {
		case 0:
			step, ok := mfa.MatchTOTP([]byte(fuzzTOTPSecret), sent.Get("code"), e.Clock.Now())
			if !ok || usedSteps[step] {
				t.Fatalf("the app's step passed with %q (right: %v, used before: %v)", sent.Get("code"), ok, usedSteps[step])
			}
			usedSteps[step] = true
		case 1:
			n, ok := mfa.NormalizeRecoveryCode(sent.Get("recovery_code"))
			if !ok || usedCodes[n] || !slices.ContainsFunc(e.recovery, func(c string) bool { m, _ := mfa.NormalizeRecoveryCode(c); return m == n }) {
				t.Fatalf("the recovery step passed with %q", sent.Get("recovery_code"))
			}
			usedCodes[n] = true
		case 2:
			t.Fatalf("the SMS step passed with %q though no code was sent", sent.Get("code"))
		case 3:
			want := e.twilio.Last(t).Body[:mfa.SMSCodeDigits]
			if n, ok := mfa.NormalizeSMSCode(sent.Get("code")); !ok || n != want {
				t.Fatalf("the SMS step passed with %q; the code sent was %s", sent.Get("code"), want)
			}
		}
	})
}

// FuzzAccountForms posts the account pages' forms of a logged-in alice
// with made-up values (route picks the form). Never 5xx, never a change of
// password without her current one.
func FuzzAccountForms(f *testing.F) {
	for _, s := range []struct {
		route   uint8
		a, b, c string
	}{
		{0, "US", "(415) 555-0123", ""},
		{0, "", "+44 7400 123456", ""},
		{0, "XX", "call me", ""},
		{0, "\xff", strings.Repeat("9", 5000), "phone=1&phone=2"},
		{1, "123456", "", ""},
		{1, "", "", "code=%"},
		{2, "wrong current password", "a new password of some length", "a new password of some length"},
		{2, "", "", ""},
		{3, "alice.new@example.com", "wrong current password", ""},
		{3, "not an address", "", ""},
		{3, "a@b.c\r\nBcc: x@example.com", "", ""},
		{4, "AAAA", "", ""},
		{4, strings.Repeat("A", 200), "", ""},
		{5, "000000", "", ""},
		{6, "my key", `{"id":"x","rawId":"x","type":"public-key","response":{}}`, ""},
		{6, "\u202e", "{", ""},
	} {
		f.Add(s.route, s.a, s.b, s.c)
	}
	e := newFuzzEnv(f, func(c *config.Config) {
		c.Email.Provider, c.Email.From = "console", "no-reply@localhost"
	})
	b := e.browser(f)
	loginToAccountTB(f, e, b)
	csrf := b.Get(e.Issuer + "/account").Form().Get("csrf_token")
	if csrf == "" {
		f.Fatal("no CSRF token on the account page")
	}
	alice := mustUser(f, e, "alice")
	routes := []struct {
		path   string
		fields [3]string
	}{
		{"/account/phone", [3]string{"country", "phone"}},
		{"/account/phone/verify", [3]string{"code"}},
		{"/account/password", [3]string{"current_password", "password", "password2"}},
		{"/account/email", [3]string{"email", "current_password"}},
		{"/account/email/confirm", [3]string{"token"}},
		{"/account/2fa/setup", [3]string{"code"}},
		{"/account/keys/add", [3]string{"name", "credential"}},
	}
	f.Fuzz(func(t *testing.T, route uint8, a, v2, v3 string) {
		b.T = t
		defer func() { b.T = f }()
		rt := routes[int(route)%len(routes)]
		form := url.Values{"csrf_token": {csrf}}
		raw := ""
		for i, v := range []string{a, v2, v3} {
			switch {
			case rt.fields[i] != "":
				form.Set(rt.fields[i], v)
			case i == 2:
				raw = v
			}
		}
		p := post(t, b, e.Issuer+rt.path, formBody(form, raw))
		no5xx(t, "POST "+rt.path, p)
		// The session is still alice's: no password change went through.
		// Only too many wrong codes end it (by design), with a 429.
		if acct := b.Get(e.Issuer + "/account"); acct.Status != http.StatusOK {
			if p.Status != http.StatusTooManyRequests {
				t.Fatalf("POST %s with %q, %q, %q ended alice's session: %s, then %s", rt.path, a, v2, v3, p, acct)
			}
			// Forget the failures, or the password that logs alice in
			// again would be delayed too.
			if err := regulation.Unlock(context.Background(), e.Pending, "alice"); err != nil {
				t.Fatal(err)
			}
			loginToAccountTB(t, e, b)
		}
		if mustUser(t, e, "alice").PasswordHash != alice.PasswordHash {
			t.Fatalf("POST %s with %q, %q, %q changed alice's password", rt.path, a, v2, v3)
		}
	})
}

func mustUser(t testing.TB, e *fuzzEnv, username string) *storage.User {
	t.Helper()
	u, err := e.Store.UserByUsername(context.Background(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// loginToAccountTB logs alice in to /account in b.
func loginToAccountTB(t testing.TB, e *fuzzEnv, b *idptest.Browser) {
	t.Helper()
	p := b.Follow(e.Issuer, b.Get(e.Issuer+"/account"))
	form := p.Form()
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	if p = b.Follow(e.Issuer, b.Post(e.Issuer+"/login/password", form)); !p.Contains("2-Factor Auth") {
		t.Fatalf("not on the account page: %s\n%s", p, p.Body)
	}
}

// FuzzCookies sends made-up values of the provider's cookies (session,
// browser id, remembered device, last method) to the account page and to
// a login. Never 5xx; the account page opens only with the session cookie
// the provider set, as it set it.
func FuzzCookies(f *testing.F) {
	e := newFuzzEnv(f)
	b := e.browser(f)
	loginToAccountTB(f, e, b)
	u, _ := url.Parse(e.Issuer)
	var session, browser string
	for _, c := range b.Client.Jar.Cookies(u) {
		switch c.Name {
		case "idp_session":
			session = c.Value
		case "idp_browser":
			browser = c.Value
		}
	}
	if session == "" || browser == "" {
		f.Fatal("no session or browser cookie after the login")
	}
	dot := strings.LastIndexByte(session, '.')
	for _, s := range []struct{ session, browser, device, method string }{
		{session, browser, "", ""},
		{session, "", "", "totp"},
		{session[:dot], browser, "", ""},
		{session[:dot] + "x" + session[dot:], browser, "", ""},
		{session + "x", browser, "", ""},
		{"x" + session, browser, "", ""},
		{strings.ToUpper(session), browser, "", ""},
		{session[dot+1:], "", "", ""},
		{`"` + session + `"`, browser, "", ""},
		{"", "", "a.b", "sms"},
		{"..", "..", "..", ".."},
		{strings.Repeat("A", 4000), browser + "x", strings.Repeat(".", 100), "security_key"},
	} {
		f.Add(s.session, s.browser, s.device, s.method)
	}
	f.Fuzz(func(t *testing.T, sess, br, device, method string) {
		header := fmt.Sprintf("idp_session=%s; idp_browser=%s; idp_device=%s; idp_method=%s", sess, br, device, method)
		if !validHeaderValue(header) {
			return // no client can send it
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		nb := &idptest.Browser{T: t, Client: c}
		for _, path := range []string{"/account", "/authorize?" + strings.SplitN(e.authorizeURL(portalRedirect), "?", 2)[1]} {
			req, err := http.NewRequest(http.MethodGet, e.Issuer+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Cookie", header)
			p := do(t, nb, req)
			no5xx(t, "GET "+path, p)
			if path != "/account" {
				continue
			}
			// What the server reads as the session cookie: the first one of
			// the name, as net/http parses the header.
			read := &http.Request{Header: http.Header{"Cookie": {header}}}
			got := ""
			if c, err := read.Cookie("idp_session"); err == nil {
				got = c.Value
			}
			if open := p.Status == http.StatusOK && p.Contains("2-Factor Auth"); open != (got == session) {
				t.Fatalf("session cookie %q (read as %q): account page open %v: %s", sess, got, open, p)
			}
		}
	})
}

// FuzzAuthorizeRedirectURI sends authorization requests with a made-up
// redirect_uri, for the portal and for a client registered with that very
// URI when registration takes it. Never 5xx; an unregistered URI gets a
// page and is never redirected to; a registered one leads to the login,
// and no other text (one byte more, less or changed) stands in for it.
func FuzzAuthorizeRedirectURI(f *testing.F) {
	for _, s := range []string{
		portalRedirect, portalRedirect + "/", portalRedirect + "?x=1", "http://127.0.0.1:9/Callback", "HTTP://127.0.0.1:9/callback",
		"http://127.0.0.1:9/callback#x", "https://evil.example/callback", "", "http://127.0.0.1:9/callback%00", " " + portalRedirect,
		"https://portal.example.com/cb", "com.example.app:/cb", "http://[::1]:9/cb", "https://portal.example.com/a%20b",
	} {
		f.Add(s)
	}
	e := newFuzzEnv(f)
	n := 0
	f.Fuzz(func(t *testing.T, raw string) {
		b := e.browser(t)
		check := func(clientID string, registered []string, uri string) *idptest.Page {
			t.Helper()
			q := url.Values{"client_id": {clientID}, "redirect_uri": {uri}, "response_type": {"code"},
				"scope": {"openid"}, "state": {"st"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
				"code_challenge_method": {"S256"}}
			p := b.Get(e.Issuer + "/authorize?" + q.Encode())
			no5xx(t, "GET /authorize", p)
			if slices.Contains(registered, uri) {
				if !(p.Status == http.StatusFound || p.Status == http.StatusSeeOther) || !strings.Contains(p.Location, "/login?") {
					t.Fatalf("registered redirect_uri %q of %s did not lead to the login: %s\n%s", uri, clientID, p, p.Body)
				}
				return p
			}
			if p.Status != http.StatusBadRequest || p.Location != "" {
				t.Fatalf("unregistered redirect_uri %q of %s (registered %q): %s", uri, clientID, registered, p)
			}
			return p
		}
		check("portal", []string{portalRedirect}, raw)
		if config.ValidateRedirectURI(strings.TrimSpace(raw)) != nil {
			return
		}
		n++
		id := fmt.Sprintf("fuzz-%d", n)
		// App schemes are for public clients (native apps), the rest for
		// either kind; a confidential one here.
		nc := manage.NewClient{ID: id, RedirectURIs: []string{raw}, Secret: portalSecret}
		if u := strings.TrimSpace(raw); !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			nc.Public, nc.Secret = true, ""
		}
		_, _, err := e.Manage.CreateClient(context.Background(), manage.Operator, nc)
		if err != nil {
			t.Fatalf("registration refused %q after ValidateRedirectURI took it: %v", raw, err)
		}
		c, err := e.Store.ClientByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		uri := c.RedirectURIs[0]
		check(id, c.RedirectURIs, uri)
		for _, other := range []string{uri + "/", uri + "x", uri[:len(uri)-1], strings.ToUpper(uri), strings.ToLower(uri), "x" + uri} {
			check(id, c.RedirectURIs, other)
		}
	})
}

// FuzzAdminJSON sends made-up JSON bodies to the admin API's calls that
// take one. The answer is never 5xx; a refusal is a problem (RFC 9457)
// with its status; what is created or changed holds only values within the
// documented limits.
func FuzzAdminJSON(f *testing.F) {
	for _, s := range []struct {
		route       uint8
		body, ctype string
	}{
		{0, `{"username":"carol","email":"carol@example.com","name":"Carol"}`, "application/json"},
		{0, `{"username":"Dave","email":"dave@example.com","name":"Dave","password":"a long enough password for dave","phone":"+14155550199"}`, "application/json"},
		{0, `{"username":"\u212aate","email":"kate@example.com"}`, "application/json"},
		{0, `{"username":"x","email":"x@example.com","extra":1}`, "application/json"},
		{0, `{"username":1}`, "application/json"},
		{0, `{"username":"x"}{"a":1}`, "application/json"},
		{0, `[]`, "application/json"},
		{0, `{"username":"x"}`, "text/plain"},
		{0, `{"username":"x"}`, "application/json; charset=latin1"},
		{1, `{"name":"Alice A."}`, "application/merge-patch+json"},
		{1, `{"email":null,"name":null}`, "application/json"},
		{1, `{"email":"not an address"}`, "application/json"},
		{2, `{"phone":"+1 415 555 0123"}`, "application/json"},
		{2, `{"phone":"+1900 555 0123"}`, "application/json"},
		{2, `{}`, "application/json"},
		{3, `{"client_id":"team","redirect_uris":["https://team.example.com/cb"],"grants":["authorization_code"]}`, "application/json"},
		{3, `{"client_id":"spa","public":true,"redirect_uris":["http://localhost:3000/cb"],"scopes":["idp:admin"]}`, "application/json"},
		{3, `{"client_id":"x","redirect_uris":["HTTPS://x.example.com/cb"]}`, "application/json"},
		{4, `{"redirect_uris":["https://portal2.example.com/cb","https://portal2.example.com/cb"]}`, "application/json"},
		{4, `{"require_mfa":true,"name":"\u0000"}`, "application/json"},
		{4, `{"redirect_uris":null}`, "application/json"},
	} {
		f.Add(s.route, s.body, s.ctype)
	}
	e := newFuzzEnv(f)
	admin := e.AddClient(manage.NewClient{ID: "admin", Grants: []string{"client_credentials"}, Scopes: []string{"idp:admin"}})
	e.AddClient(manage.NewClient{ID: "portal2", RedirectURIs: []string{"https://portal2.example.com/cb"}})
	tok, err := clientCredentialsConfig(e.Env, "admin", admin, []string{"idp:admin"}).Token(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{http.MethodPost, "/admin/v1/users"},
		{http.MethodPatch, "/admin/v1/users/alice"},
		{http.MethodPut, "/admin/v1/users/alice/phone"},
		{http.MethodPost, "/admin/v1/clients"},
		{http.MethodPatch, "/admin/v1/clients/portal2"},
	}
	f.Fuzz(func(t *testing.T, route uint8, body, ctype string) {
		rt := routes[int(route)%len(routes)]
		req, err := http.NewRequest(rt.method, e.Issuer+rt.path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if !validHeaderValue(ctype) {
			ctype = "application/json"
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", rt.method, rt.path, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("%s %s %q: %d %s", rt.method, rt.path, body, resp.StatusCode, raw)
		if resp.StatusCode >= 500 {
			t.Fatal(what)
		}
		if resp.StatusCode >= 400 {
			var p struct {
				Type, Title, Detail string
				Status              int
			}
			if resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(raw, &p) != nil ||
				p.Status != resp.StatusCode || p.Type == "" || p.Title == "" || p.Detail == "" {
				t.Fatalf("refusal is not a problem: %s", what)
			}
			return
		}
		if route%5 < 3 {
			var u struct {
				Username, Email, Name, Phone string
			}
			if err := json.Unmarshal(raw, &u); err != nil {
				t.Fatalf("%v: %s", err, what)
			}
			if n, err := manage.NormalizeUsername(u.Username); err != nil || n != u.Username {
				t.Fatalf("username %q outside the rules: %s", u.Username, what)
			}
			if err := manage.ValidateEmail(u.Email); err != nil {
				t.Fatalf("e-mail outside the rules (%v): %s", err, what)
			}
			if err := manage.ValidateName(u.Name); err != nil {
				t.Fatalf("name outside the rules (%v): %s", err, what)
			}
			if u.Phone != "" {
				if n, err := manage.NormalizePhone(u.Phone); err != nil || n != u.Phone {
					t.Fatalf("phone %q outside the rules: %s", u.Phone, what)
				}
			}
			return
		}
		var c struct {
			ClientID               string   `json:"client_id"`
			Name                   string   `json:"name"`
			RedirectURIs           []string `json:"redirect_uris"`
			PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
			Scopes                 []string `json:"scopes"`
			FirstParty             bool     `json:"first_party"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("%v: %s", err, what)
		}
		if err := config.ValidateClientID(c.ClientID); err != nil {
			t.Fatalf("client id outside the rules (%v): %s", err, what)
		}
		if err := manage.ValidateName(c.Name); err != nil {
			t.Fatalf("client name outside the rules (%v): %s", err, what)
		}
		for _, u := range append(slices.Clone(c.RedirectURIs), c.PostLogoutRedirectURIs...) {
			if err := config.ValidateRedirectURI(u); err != nil {
				t.Fatalf("redirect URI outside the rules (%v): %s", err, what)
			}
		}
		if slices.Contains(c.Scopes, "idp:admin") || c.FirstParty {
			t.Fatalf("the API made an admin or first-party client: %s", what)
		}
	})
}

// FuzzPendingLoginJSON puts made-up JSON where a pending login lives in
// the pending-login store and opens the login page for it in a new
// browser. No panic (not in decoding, the handler or the logging of the
// login); a login that decodes re-encodes to what it decodes from again
// (compare-and-swap rests on the bytes); one bound to another browser, or
// expired, goes no further than a page saying so.
func FuzzPendingLoginJSON(f *testing.F) {
	e := newFuzzEnv(f)
	now := e.Clock.Now()
	valid, err := json.Marshal(&idp.AuthRequest{ID: "x", CreatedAt: now, ExpiresAt: now.Add(time.Minute), ClientID: "portal",
		RedirectURI: portalRedirect, Scopes: []string{"openid"}, ResponseType: "code", Step: "password"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{
		valid,
		bytes.Replace(valid, []byte(`"step":"password"`), []byte(`"step":"done"`), 1),
		bytes.Replace(valid, []byte(`"step":"password"`), []byte(`"step":"done","browser":"someone else's"`), 1),
		bytes.Replace(valid, []byte(`"step":"password"`), []byte(`"step":"consent","user_id":"nobody"`), 1),
		bytes.Replace(valid, []byte(`"step":"password"`), []byte(`"step":"no such step"`), 1),
		bytes.Replace(valid, []byte(`"client_id":"portal"`), []byte(`"client_id":"gone"`), 1),
		bytes.Replace(valid, []byte(`"id":"x"`), []byte(`"id":""`), 1),
		[]byte(`{"expires_at":"9999-12-31T23:59:59Z","step":"done","return_to":"/account"}`),
		[]byte(`{"expires_at":"1970-01-01T00:00:00Z","step":"done"}`),
		[]byte(`{"expires_at":"2999-01-01T00:00:00+14:00","max_age":0,"prompt":["none"],"step":"password","client_id":"portal"}`),
		[]byte(`null`), []byte(`[]`), []byte(`{"id":1}`), []byte(``), []byte("\xff"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var a idp.AuthRequest
		decoded := json.Unmarshal(raw, &a) == nil
		if decoded {
			_ = a.LogValue().Resolve().String() // the library logs logins
			once, err := json.Marshal(&a)
			if err != nil {
				t.Fatalf("a decoded login does not encode: %v", err)
			}
			var b idp.AuthRequest
			if err := json.Unmarshal(once, &b); err != nil {
				t.Fatalf("a re-encoded login does not decode: %v\n%s", err, once)
			}
			if twice, _ := json.Marshal(&b); !bytes.Equal(once, twice) {
				t.Fatalf("encoding is not stable:\n%s\n%s", once, twice)
			}
		}
		id := "fuzz-login-" + fmt.Sprint(time.Now().UnixNano())
		if err := e.Pending.Set(context.Background(), "ar:"+id, raw, time.Minute); err != nil {
			t.Fatal(err)
		}
		defer e.Pending.Delete(context.Background(), "ar:"+id)
		b := e.browser(t)
		p := b.Get(e.Issuer + "/login?id=" + url.QueryEscape(id))
		if p.Status >= 500 && decoded && slices.Contains([]string{"password", "second_factor", "enrol", "show_codes", "consent", "done"}, a.Step) &&
			a.ClientID == "portal" {
			t.Fatalf("a pending login that decodes, of a known step and client, gave %s\n%s", p, p.Body)
		}
		if !decoded {
			return
		}
		if !a.ExpiresAt.After(e.Clock.Now()) || a.Browser != "" {
			if p.Status != http.StatusBadRequest || p.Location != "" {
				t.Fatalf("an expired login (%v) or one of another browser (%q) gave %s", a.ExpiresAt, a.Browser, p)
			}
		}
	})
}

// FuzzPasswordResetLink opens /password/reset with a made-up token while
// one link for alice is live. Never 5xx; only the token sent by mail
// starts the reset.
func FuzzPasswordResetLink(f *testing.F) {
	e := newFuzzEnv(f, func(c *config.Config) {
		c.Email.Provider, c.Email.From = "console", "no-reply@localhost"
	})
	link, _, err := e.Server.IssuePasswordLink(context.Background(), mustUser(f, e, "alice"), "", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	lu, _ := url.Parse(link)
	token := lu.Query().Get("token")
	for _, s := range []string{
		token, token[:len(token)-1], token + "A", strings.ToUpper(token), " " + token, "", strings.Repeat("A", 43),
		strings.Repeat("A", 129), "%00", token + "&token=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		b := e.browser(t)
		p := b.Get(e.Issuer + "/password/reset?token=" + url.QueryEscape(tok))
		no5xx(t, "GET /password/reset", p)
		if started := p.Status == http.StatusSeeOther && strings.HasPrefix(p.Location, e.Issuer+"/login?id="); started != (tok == token) {
			t.Fatalf("token %q: reset started %v: %s", tok, started, p)
		}
	})
}

// FuzzClientIP reads the caller's address from a made-up peer and
// X-Forwarded-For headers, with trusted_proxies 10.0.0.0/8, fd00::/8 and
// 192.0.2.1. The address is the peer's unless the peer is a trusted proxy;
// then it is the right-most hop that is not one, and every hop to its
// right is one: never a hop a client could have written.
func FuzzClientIP(f *testing.F) {
	for _, s := range []struct{ remote, xff1, xff2 string }{
		{"203.0.113.7:5000", "", ""},
		{"203.0.113.7:5000", "198.51.100.1", ""},
		{"10.1.2.3:443", "198.51.100.1", ""},
		{"10.1.2.3:443", "1.2.3.4, 198.51.100.1", ""},
		{"10.1.2.3:443", "198.51.100.1, 10.9.9.9", "192.0.2.1"},
		{"10.1.2.3:443", "198.51.100.1, not-an-ip", ""},
		{"10.1.2.3:443", "10.4.4.4", ""},
		{"[fd00::1]:443", "2001:db8:1:2:3:4:5:6", ""},
		{"[::ffff:10.1.2.3]:443", "::ffff:198.51.100.1", ""},
		{"192.0.2.1:80", "198.51.100.1:1234", ""},
		{"10.1.2.3:443", "[2001:db8::1]", ""},
		{"10.1.2.3:443", " , ,", "fe80::1%eth0"},
		{"not an address", "198.51.100.1", ""},
	} {
		f.Add(s.remote, s.xff1, s.xff2)
	}
	e := idptest.New(f, idptest.Backends[0], idptest.Options{Configure: func(c *config.Config) {
		c.TrustedProxies = []string{"10.0.0.0/8", "fd00::/8", "192.0.2.1"}
	}})
	var trusted []*net.IPNet
	for _, p := range e.Config.TrustedProxies {
		n, err := config.ParseProxy(p)
		if err != nil {
			f.Fatal(err)
		}
		trusted = append(trusted, n)
	}
	isTrusted := func(ip net.IP) bool {
		return slices.ContainsFunc(trusted, func(n *net.IPNet) bool { return n.Contains(ip) })
	}
	f.Fuzz(func(t *testing.T, remote, xff1, xff2 string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		for _, h := range []string{xff1, xff2} {
			if h != "" {
				r.Header.Add("X-Forwarded-For", h)
			}
		}
		got := idp.ClientIP(e.Server, r)
		peer, _, err := net.SplitHostPort(remote)
		if err != nil {
			peer = remote
		}
		if got == peer {
			return // the peer itself: always the safe answer
		}
		if ip := net.ParseIP(peer); ip == nil || !isTrusted(ip) {
			t.Fatalf("peer %q is not a trusted proxy, yet the client is %q", remote, got)
		}
		ip := net.ParseIP(got)
		if ip == nil || ip.String() != got || isTrusted(ip) {
			t.Fatalf("client %q is not an address outside trusted_proxies", got)
		}
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		i := len(hops) - 1
		for ; i >= 0; i-- {
			h := net.ParseIP(strings.TrimSpace(hops[i]))
			if h == nil {
				t.Fatalf("client %q was read past the hop %q, which no proxy wrote", got, hops[i])
			}
			if !isTrusted(h) {
				break
			}
		}
		if i < 0 || net.ParseIP(strings.TrimSpace(hops[i])).String() != got {
			t.Fatalf("client %q is not the right-most untrusted hop of %q", got, hops)
		}
		if n := idp.ClientNetwork(e.Server, r); n != got && !strings.HasSuffix(n, "/64") {
			t.Fatalf("network %q of client %q", n, got)
		}
	})
}

// FuzzWebAuthnResponses posts made-up browser answers (the JSON of
// PublicKeyCredential.toJSON()) to a ceremony begun for them: adding a
// security key to alice's account (route 0) and a passkey login (route 1).
// The library parses them; our handlers bound them and must answer every
// one without 5xx. No made-up answer adds a key or logs anyone in: each
// ceremony has its own challenge.
func FuzzWebAuthnResponses(f *testing.F) {
	e := newFuzzEnvAt(f, true, func(c *config.Config) { c.WebAuthn.Passkeys = true })
	b := e.browser(f)
	loginToAccountTB(f, e, b)
	addPage := b.Get(e.Issuer + "/account/keys/add")
	if addPage.Status != http.StatusOK {
		f.Fatalf("add key page: %s", addPage)
	}
	addForm := addPage.Form()
	// Answers of a real (software) authenticator to earlier ceremonies.
	phone := webauthntest.New(e.Issuer)
	phone.UserVerified, phone.Attachment = true, webauthntest.Platform
	opts := b.Post(e.Issuer+"/account/keys/add/begin", addForm)
	reg, err := phone.Register([]byte(opts.Body))
	if err != nil {
		f.Fatalf("the authenticator refused %s: %v", opts.Body, err)
	}
	lb := e.browser(f)
	opts = lb.Post(e.Issuer+"/login/passkey/begin", e.loginPage(f, lb).Form())
	assertion, err := phone.Assert([]byte(opts.Body))
	if err != nil {
		f.Fatalf("the authenticator refused %s: %v", opts.Body, err)
	}
	for _, s := range []struct {
		route      uint8
		name, cred string
	}{
		{0, "Laptop", string(reg)},
		{0, "Laptop", strings.Replace(string(reg), `"type":"public-key"`, `"type":"other"`, 1)},
		{0, "", string(reg)},
		{0, "Laptop", `{}`},
		{0, "Laptop", `{"id":"","rawId":"","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`},
		{0, "Laptop", `{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"","attestationObject":"\u0000"}}`},
		{0, "Laptop", `[` + strings.Repeat(`[`, 10000) + `]`},
		{0, "\u202e", "not json"},
		{1, "", string(assertion)},
		{1, "", strings.Replace(string(assertion), `"userHandle":"`, `"userHandle":"AA`, 1)},
		{1, "", `{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`},
		{1, "", ""},
	} {
		f.Add(s.route, s.name, s.cred)
	}
	alice := mustUser(f, e, "alice")
	f.Fuzz(func(t *testing.T, route uint8, name, cred string) {
		if route%2 == 0 {
			b.T = t
			defer func() { b.T = f }()
			p := b.Post(e.Issuer+"/account/keys/add/begin", addForm)
			if p.Status != http.StatusOK {
				t.Fatalf("POST /account/keys/add/begin: %s\n%s", p, p.Body)
			}
			form := url.Values{"csrf_token": {addForm.Get("csrf_token")}, "name": {name}, "credential": {cred}}
			p = b.Post(e.Issuer+"/account/keys/add", form)
			no5xx(t, "POST /account/keys/add", p)
			if n, err := e.Store.CountSecurityKeys(context.Background(), alice.ID); err != nil || n != 0 {
				t.Fatalf("a made-up answer added a key (%d, %v): %q", n, err, cred)
			}
			return
		}
		lb := e.browser(t)
		form := e.loginPage(t, lb).Form()
		p := lb.Post(e.Issuer+"/login/passkey/begin", form)
		if p.Status != http.StatusOK {
			t.Fatalf("POST /login/passkey/begin: %s\n%s", p, p.Body)
		}
		form.Set("credential", cred)
		p = lb.Follow(e.Issuer, lb.Post(e.Issuer+"/login/passkey", form))
		no5xx(t, "POST /login/passkey", p)
		if strings.HasPrefix(p.Location, portalRedirect) {
			t.Fatalf("a made-up passkey answer logged in: %q", cred)
		}
	})
}
