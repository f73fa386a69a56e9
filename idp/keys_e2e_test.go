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

	"golang.org/x/oauth2"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/internal/webauthntest"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/storage"
)

// keySetup starts a provider at http://localhost:PORT (WebAuthn needs a
// domain) with alice and a first-party portal.
func keySetup(t *testing.T, b idptest.Backend, more ...func(*config.Config)) (*idptest.Env, *rp) {
	t.Helper()
	env := idptest.New(t, b, idptest.Options{Localhost: true, Configure: func(c *config.Config) {
		for _, f := range more {
			f(c)
		}
	}})
	env.AddUser("alice", alicePassword)
	secret := env.AddClient(manage.NewClient{ID: "portal", Name: "Client Portal", RedirectURIs: []string{portalRedirect}, FirstParty: true})
	return env, newRP(t, env, "portal", secret)
}

// ceremony posts form to a begin endpoint and has the authenticator answer
// the options; it returns the answer for the page's "credential" field.
func ceremony(t *testing.T, env *idptest.Env, b *idptest.Browser, begin string, form url.Values, answer func([]byte) ([]byte, error)) string {
	t.Helper()
	p := b.Post(env.Issuer+begin, form)
	if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("POST %s: %s\n%s", begin, p, p.Body)
	}
	resp, err := answer([]byte(p.Body))
	if err != nil {
		t.Fatalf("the authenticator refused the options of %s: %v\n%s", begin, err, p.Body)
	}
	return string(resp)
}

// addKey adds a key named name from the account pages (b has a fresh login)
// and returns the page after.
func addKey(t *testing.T, env *idptest.Env, b *idptest.Browser, a *webauthntest.Authenticator, name string) *idptest.Page {
	t.Helper()
	page := b.Get(env.Issuer + "/account/keys/add")
	if page.Status != http.StatusOK || !page.Contains(">Add security key<") || !page.Contains(`<label for="key-name">Name</label>`) {
		t.Fatalf("add key page: %s\n%s", page, page.Body)
	}
	form := page.Form()
	form.Set("credential", ceremony(t, env, b, "/account/keys/add/begin", form, a.Register))
	form.Set("name", name)
	return b.Post(env.Issuer+"/account/keys/add", form)
}

// keyLogin passes the security-key step of a login at p.
func keyLogin(t *testing.T, env *idptest.Env, b *idptest.Browser, p *idptest.Page, a *webauthntest.Authenticator) *idptest.Page {
	t.Helper()
	if !p.Contains(">Use security key<") {
		t.Fatalf("not the security key page: %s\n%s", p, p.Body)
	}
	form := p.Form()
	form.Set("credential", ceremony(t, env, b, "/login/key/begin", form, a.Assert))
	return b.Follow(env.Issuer, b.Post(env.Issuer+"/login/key", form))
}

var keyRemoveRE = regexp.MustCompile(`href="(/account/keys/remove\?key=[^"]+)"`)

func TestSecurityKeyAddLoginRemove(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := keySetup(t, b)
		ctx := context.Background()
		br := env.NewBrowser()
		acct := loginToAccount(t, env, br, "alice", alicePassword, nil)
		if !acct.Contains("Security keys") || !acct.Contains(">Add security key<") {
			t.Fatalf("account page lacks Security keys:\n%s", acct.Body)
		}
		key := webauthntest.New(env.Issuer)
		p := addKey(t, env, br, key, "YubiKey")
		// The first second factor comes with recovery codes.
		codes := codeInListRE.FindAllStringSubmatch(recoveryListRE.FindString(p.Body), -1)
		if len(codes) != 10 {
			t.Fatalf("%d recovery codes after the first key:\n%s", len(codes), p.Body)
		}
		acct = br.Get(env.Issuer + "/account")
		if !acct.Contains(">YubiKey<") || !acct.Contains("Never") || keyRemoveRE.FindStringSubmatch(acct.Body) == nil {
			t.Fatalf("account page does not list the key:\n%s", acct.Body)
		}
		if st, _ := env.Manage.MFA(ctx, mustID(t, env, "alice")); st.SecurityKeys != 1 || st.TOTP {
			t.Fatalf("MFA status %+v", st)
		}

		// A second key on the same authenticator is refused by the browser
		// (excludeCredentials); another authenticator is fine.
		page := br.Get(env.Issuer + "/account/keys/add")
		opts := br.Post(env.Issuer+"/account/keys/add/begin", page.Form())
		if _, err := key.Register([]byte(opts.Body)); err == nil {
			t.Fatal("the same authenticator registered twice: the options do not exclude its key")
		}
		env.Clock.Advance(time.Minute) // listed oldest first
		laptop := webauthntest.New(env.Issuer)
		laptop.Attachment = webauthntest.Platform
		if p := addKey(t, env, br, laptop, "Laptop"); p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "key-added") {
			t.Fatalf("second key: %s\n%s", p, p.Body)
		}

		// Login: password, then the key (her only kind of second factor).
		lb := env.NewBrowser()
		f := r.start()
		p = login(t, env, lb, f, "alice", alicePassword)
		_, _, c := r.exchange(f, r.codeFrom(f, keyLogin(t, env, lb, p, key)))
		if !slices.Equal(c.AMR, []string{"pwd", "hwk", "mfa"}) || c.ACR != "mfa" {
			t.Fatalf("amr %v acr %q, want [pwd hwk mfa] mfa", c.AMR, c.ACR)
		}
		// The platform authenticator gives swk; Try another method lists it.
		lb = env.NewBrowser()
		f = r.start()
		p = login(t, env, lb, f, "alice", alicePassword)
		methods := lb.Get(env.Issuer + mustHref(t, p, "Try another method"))
		if !methods.Contains(">Security key<") || !methods.Contains(">Recovery code<") || methods.Contains(">Authenticator app<") {
			t.Fatalf("methods page:\n%s", methods.Body)
		}
		_, _, c = r.exchange(f, r.codeFrom(f, keyLogin(t, env, lb, p, laptop)))
		if !slices.Equal(c.AMR, []string{"pwd", "swk", "mfa"}) {
			t.Fatalf("platform authenticator amr %v, want [pwd swk mfa]", c.AMR)
		}

		// The sign count and last use were written back.
		keys, _ := env.Store.ListSecurityKeys(ctx, mustID(t, env, "alice"))
		if len(keys) != 2 || keys[0].SignCount == 0 || keys[0].LastUsedAt.IsZero() {
			t.Fatalf("after use: %+v", keys[0])
		}

		// A key counts for step-up: acr_values=mfa asks for it, not for an app.
		f = r.start(oauth2.SetAuthURLParam("acr_values", "mfa"), oauth2.SetAuthURLParam("prompt", "login"))
		p = login(t, env, lb, f, "alice", alicePassword)
		r.codeFrom(f, keyLogin(t, env, lb, p, key))

		// Remove asks first, then the key no longer works.
		acct = br.Get(env.Issuer + "/account")
		confirm := br.Get(env.Issuer + unescapeHTML(keyRemoveRE.FindStringSubmatch(acct.Body)[1]))
		if !confirm.Contains("Remove <strong>YubiKey</strong>?") || !confirm.Contains(">Remove<") {
			t.Fatalf("remove page:\n%s", confirm.Body)
		}
		if p := br.Post(env.Issuer+"/account/keys/remove", confirm.Form()); !strings.Contains(p.Location, "key-removed") {
			t.Fatalf("removing: %s", p)
		}
		if n, _ := env.Store.CountSecurityKeys(ctx, mustID(t, env, "alice")); n != 1 {
			t.Fatalf("%d keys after removing one", n)
		}
		lb = env.NewBrowser()
		f = r.start()
		p = login(t, env, lb, f, "alice", alicePassword)
		form := p.Form()
		begin := lb.Post(env.Issuer+"/login/key/begin", form)
		if _, err := key.Assert([]byte(begin.Body)); err == nil {
			t.Fatal("the removed key is still offered in allowCredentials")
		}

		var types []string
		events, _ := env.Store.ListAudit(ctx, storage.AuditQuery{UserID: mustID(t, env, "alice"), Limit: 100})
		for _, e := range events {
			types = append(types, e.Type)
		}
		for _, want := range []string{"mfa.security_key_added", "mfa.security_key_removed", "mfa.passed"} {
			if !slices.Contains(types, want) {
				t.Errorf("audit log lacks %s: %v", want, types)
			}
		}
	})
}

// Replays, clones, other origins, other users' keys and posts out of
// order are refused and audited; adding needs a fresh login and a name.
func TestSecurityKeyRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := keySetup(t, b)
		ctx := context.Background()
		br := env.NewBrowser()
		loginToAccount(t, env, br, "alice", alicePassword, nil)
		key := webauthntest.New(env.Issuer)
		addKey(t, env, br, key, "YubiKey")

		// Bad names keep the page and add nothing.
		for _, name := range []string{"", "   ", "a\nb", strings.Repeat("k", 65)} {
			page := br.Get(env.Issuer + "/account/keys/add")
			form := page.Form()
			form.Set("name", name)
			form.Set("credential", `{}`)
			if p := br.Post(env.Issuer+"/account/keys/add", form); p.Status != http.StatusBadRequest {
				t.Errorf("name %q: %s", name, p)
			}
		}
		// Without the CSRF token: 403, at begin and finish.
		for _, path := range []string{"/account/keys/add/begin", "/account/keys/add", "/account/keys/remove"} {
			if p := br.Post(env.Issuer+path, url.Values{"name": {"x"}}); p.Status != http.StatusForbidden {
				t.Errorf("POST %s without a CSRF token: %s", path, p)
			}
		}
		// Bob's key does not pass alice's login.
		env.AddUser("bob", alicePassword)
		bb := env.NewBrowser()
		loginToAccount(t, env, bb, "bob", alicePassword, nil)
		bobKey := webauthntest.New(env.Issuer)
		addKey(t, env, bb, bobKey, "Bob's key")

		refused := func(name string, answer func([]byte) ([]byte, error)) *idptest.Page {
			t.Helper()
			lb := env.NewBrowser()
			p := login(t, env, lb, r.start(), "alice", alicePassword)
			form := p.Form()
			form.Set("credential", ceremony(t, env, lb, "/login/key/begin", form, answer))
			got := lb.Post(env.Issuer+"/login/key", form)
			if got.Status != http.StatusUnauthorized || !got.Contains("was not accepted") && !got.Contains("copied") {
				t.Fatalf("%s: %s\n%s", name, got, got.Body)
			}
			return got
		}
		refused("another user's key", func(o []byte) ([]byte, error) {
			bobKey.Tamper.Credential = bobKey.Credentials()[0]
			defer func() { bobKey.Tamper.Credential = nil }()
			return bobKey.Assert(o)
		})
		refused("another origin", func(o []byte) ([]byte, error) {
			key.Tamper.Origin = "http://evil.localhost:1"
			defer func() { key.Tamper.Origin = "" }()
			return key.Assert(o)
		})
		refused("a bad signature", func(o []byte) ([]byte, error) {
			key.Tamper.BadSignature = true
			defer func() { key.Tamper.BadSignature = false }()
			return key.Assert(o)
		})
		// Finish without begin: refused with a clear sentence.
		lb3 := env.NewBrowser()
		p3 := login(t, env, lb3, r.start(), "alice", alicePassword)
		form3 := p3.Form()
		form3.Set("credential", `{"id":"x"}`)
		if p := lb3.Post(env.Issuer+"/login/key", form3); p.Status != http.StatusUnauthorized || !p.Contains("took too long") {
			t.Fatalf("finish without begin: %s\n%s", p, p.Body)
		}
		// A replayed answer (the same response posted again) is refused: the
		// ceremony's session is consumed by the first.
		key.SetCounter(key.Credentials()[0], 100)
		lb := env.NewBrowser()
		f := r.start()
		p := login(t, env, lb, f, "alice", alicePassword)
		form := p.Form()
		form.Set("credential", ceremony(t, env, lb, "/login/key/begin", form, key.Assert))
		r.codeFrom(f, lb.Follow(env.Issuer, lb.Post(env.Issuer+"/login/key", form)))
		lb2 := env.NewBrowser()
		p2 := login(t, env, lb2, r.start(), "alice", alicePassword)
		form2 := p2.Form()
		form2.Set("credential", form.Get("credential"))
		if p := lb2.Post(env.Issuer+"/login/key", form2); p.Status != http.StatusUnauthorized {
			t.Fatalf("a replayed assertion in another login: %s", p)
		}
		// A counter that went backwards (the key reported 101 last time): a
		// clone. Refused and audited.
		key.SetCounter(key.Credentials()[0], 5)
		if p := refused("a clone", key.Assert); !p.Contains("copied") {
			t.Fatalf("clone warning page:\n%s", p.Body)
		}
		events, _ := env.Store.ListAudit(ctx, storage.AuditQuery{UserID: mustID(t, env, "alice"), Limit: 50})
		var clone, failed int
		for _, e := range events {
			switch {
			case e.Type == "mfa.security_key_clone_warning":
				clone++
			case e.Type == "mfa.failed" && e.Details["method"] == "security_key":
				failed++
			}
		}
		if clone != 1 || failed != 6 {
			t.Fatalf("%d clone warnings and %d failed assertions audited, want 1 and 6", clone, failed)
		}
		// The cloned key is gone: a copy that runs its counter ahead gets nowhere.
		if n, _ := env.Store.CountSecurityKeys(ctx, mustID(t, env, "alice")); n != 0 {
			t.Fatalf("%d keys after a clone warning, want the key removed", n)
		}
	})
}

// recentAuthForTests is longer than the provider's recent-login window (15 minutes).
const recentAuthForTests = 20 * time.Minute

// Adding a key from a session that logged in long ago needs the password again.
func TestAddKeyNeedsRecentLogin(t *testing.T) {
	env, _ := keySetup(t, idptest.Backends[0])
	br := env.NewBrowser()
	loginToAccount(t, env, br, "alice", alicePassword, nil)
	env.Clock.Advance(recentAuthForTests)
	p := br.Get(env.Issuer + "/account/keys/add")
	if p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "/login?id=") {
		t.Fatalf("an old session reached the add key page: %s", p)
	}
	if lp := br.Follow(env.Issuer, p); !lp.Contains("log in again to change your security keys") {
		t.Fatalf("login page does not say why:\n%s", lp.Body)
	}
}

// With webauthn.passkeys, a discoverable credential with user verification
// signs in without username and password and stands for both factors.
func TestPasskeyLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := keySetup(t, b, func(c *config.Config) { c.WebAuthn.Passkeys = true })
		br := env.NewBrowser()
		loginToAccount(t, env, br, "alice", alicePassword, nil)
		phone := webauthntest.New(env.Issuer)
		phone.UserVerified, phone.Attachment = true, webauthntest.Platform
		addKey(t, env, br, phone, "Phone")

		lb := env.NewBrowser()
		f := r.start()
		p := lb.Follow(env.Issuer, lb.Get(f.authURL))
		if !p.Contains(">Sign in with a passkey<") || !p.Contains("/static/webauthn.js") {
			t.Fatalf("login page lacks the passkey button:\n%s", p.Body)
		}
		form := p.Form()
		form.Set("credential", ceremony(t, env, lb, "/login/passkey/begin", form, phone.Assert))
		done := lb.Follow(env.Issuer, lb.Post(env.Issuer+"/login/passkey", form))
		_, _, c := r.exchange(f, r.codeFrom(f, done))
		if !slices.Equal(c.AMR, []string{"swk", "mfa"}) || c.ACR != "mfa" || c.Sub != mustID(t, env, "alice") {
			t.Fatalf("passkey login: amr %v acr %q sub %q", c.AMR, c.ACR, c.Sub)
		}

		// User verification is required: an authenticator that skips it fails.
		phone.Tamper.IgnoreUserVerification, phone.UserVerified = true, false
		lb = env.NewBrowser()
		p = lb.Follow(env.Issuer, lb.Get(r.start().authURL))
		form = p.Form()
		form.Set("credential", ceremony(t, env, lb, "/login/passkey/begin", form, phone.Assert))
		if p := lb.Post(env.Issuer+"/login/passkey", form); p.Status != http.StatusUnauthorized || !p.Contains("passkey was not accepted") {
			t.Fatalf("a passkey without user verification: %s\n%s", p, p.Body)
		}
		phone.Tamper.IgnoreUserVerification, phone.UserVerified = false, true

		// A disabled user's passkey does not sign in.
		if _, err := env.Manage.Disable(context.Background(), manage.Operator, "alice"); err != nil {
			t.Fatal(err)
		}
		lb = env.NewBrowser()
		p = lb.Follow(env.Issuer, lb.Get(r.start().authURL))
		form = p.Form()
		form.Set("credential", ceremony(t, env, lb, "/login/passkey/begin", form, phone.Assert))
		if p := lb.Post(env.Issuer+"/login/passkey", form); p.Status != http.StatusUnauthorized {
			t.Fatalf("a disabled user's passkey: %s", p)
		}
	})
}

// Only a key registered as a passkey (user verification at registration,
// passkeys offered) signs in alone; login_hint is honoured.
func TestPasskeyOnlyForPasskeys(t *testing.T) {
	env, r := keySetup(t, idptest.Backends[0], func(c *config.Config) { c.WebAuthn.Passkeys = true })
	br := env.NewBrowser()
	loginToAccount(t, env, br, "alice", alicePassword, nil)
	// Registered without user verification: a second factor, not a passkey,
	// though the authenticator keeps it discoverable.
	laptop := webauthntest.New(env.Issuer)
	laptop.Attachment = webauthntest.Platform
	addKey(t, env, br, laptop, "Laptop")
	laptop.UserVerified = true
	passkey := func(a *webauthntest.Authenticator, extra ...oauth2.AuthCodeOption) *idptest.Page {
		lb := env.NewBrowser()
		p := lb.Follow(env.Issuer, lb.Get(r.start(extra...).authURL))
		form := p.Form()
		form.Set("credential", ceremony(t, env, lb, "/login/passkey/begin", form, a.Assert))
		return lb.Post(env.Issuer+"/login/passkey", form)
	}
	if p := passkey(laptop); p.Status != http.StatusUnauthorized {
		t.Fatalf("a second-factor key signed in alone: %s", p)
	}
	phone := webauthntest.New(env.Issuer)
	phone.UserVerified, phone.Attachment = true, webauthntest.Platform
	addKey(t, env, br, phone, "Phone")
	if p := passkey(phone, oauth2.SetAuthURLParam("login_hint", "bob")); p.Status != http.StatusUnauthorized {
		t.Fatalf("alice's passkey answered a login for bob: %s", p)
	}
	if p := passkey(phone); p.Status != http.StatusSeeOther {
		t.Fatalf("a passkey: %s\n%s", p, p.Body)
	}
}

// Removing the last key removes the recovery codes it came with.
func TestRemoveLastKey(t *testing.T) {
	env, _ := keySetup(t, idptest.Backends[0])
	br := env.NewBrowser()
	loginToAccount(t, env, br, "alice", alicePassword, nil)
	addKey(t, env, br, webauthntest.New(env.Issuer), "YubiKey")
	acct := br.Get(env.Issuer + "/account")
	confirm := br.Get(env.Issuer + unescapeHTML(keyRemoveRE.FindStringSubmatch(acct.Body)[1]))
	br.Post(env.Issuer+"/account/keys/remove", confirm.Form())
	if n, _ := env.Store.CountRecoveryCodes(context.Background(), mustID(t, env, "alice")); n != 0 {
		t.Fatalf("%d recovery codes left after the last key went", n)
	}
}

// Passkeys off (the default): the login page has no passkey button and the
// endpoints answer nothing useful.
func TestPasskeysOffByDefault(t *testing.T) {
	env, r := keySetup(t, idptest.Backends[0])
	lb := env.NewBrowser()
	p := lb.Follow(env.Issuer, lb.Get(r.start().authURL))
	if p.Contains("passkey") || p.Contains("webauthn.js") {
		t.Fatalf("passkeys offered while webauthn.passkeys is off:\n%s", p.Body)
	}
	if got := lb.Post(env.Issuer+"/login/passkey/begin", p.Form()); got.Status != http.StatusNotFound {
		t.Fatalf("passkey begin while off: %s", got)
	}
}

// With an IP-address issuer WebAuthn cannot work: keys are offered nowhere,
// and a user who has keys is asked for a recovery code, never let in with
// the password alone.
func TestKeysWithoutWebAuthn(t *testing.T) {
	env, r := keySetup(t, idptest.Backends[0])
	br := env.NewBrowser()
	loginToAccount(t, env, br, "alice", alicePassword, nil)
	p := addKey(t, env, br, webauthntest.New(env.Issuer), "YubiKey")
	codes := codeInListRE.FindAllStringSubmatch(recoveryListRE.FindString(p.Body), -1)

	o := idptest.Options{Store: env.Store, SecretKey: env.SecretKey} // issuer http://127.0.0.1:PORT
	after := idptest.New(t, idptest.Backends[0], o)
	secret := after.AddClient(manage.NewClient{ID: "portal2", RedirectURIs: []string{portalRedirect}, FirstParty: true})
	r = newRP(t, after, "portal2", secret)
	// The keys are still listed, with Remove, though they cannot be used now.
	ab := after.NewBrowser()
	p = ab.Follow(after.Issuer, ab.Get(after.Issuer+"/account"))
	form := p.Form()
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	p = ab.Follow(after.Issuer, ab.Post(after.Issuer+"/login/password", form))
	form = p.Form()
	form.Set("recovery_code", codes[1][1])
	p = ab.Follow(after.Issuer, ab.Post(after.Issuer+"/login/recovery", form))
	acct := ab.Follow(after.Issuer, ab.Post(after.Issuer+"/login/continue", p.Form()))
	if !acct.Contains(">YubiKey<") || keyRemoveRE.FindString(acct.Body) == "" || acct.Contains(">Add security key<") {
		t.Fatalf("account page without WebAuthn:\n%s", acct.Body)
	}
	lb := after.NewBrowser()
	f := r.start()
	sf := login(t, after, lb, f, "alice", alicePassword)
	if !sf.Contains(`<label for="recovery_code">Recovery code</label>`) {
		t.Fatalf("a user with keys and no WebAuthn was not asked for a recovery code:\n%s", sf.Body)
	}
	form = sf.Form()
	form.Set("recovery_code", codes[0][1])
	p = lb.Follow(after.Issuer, lb.Post(after.Issuer+"/login/recovery", form))
	p = lb.Follow(after.Issuer, lb.Post(after.Issuer+"/login/continue", p.Form()))
	r.codeFrom(f, p)
}
