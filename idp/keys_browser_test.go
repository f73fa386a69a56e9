package idp_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/internal/testenv"
)

// keysBrowserAuthenticator plugs a virtual CTAP2 authenticator into tab (the
// DevTools WebAuthn domain): resident keys and built-in user verification,
// which succeeds when verified. It answers at once, as a touched key would.
// Virtual authenticators belong to the tab: its credentials stay there.
func keysBrowserAuthenticator(tab *browserTab, transport webauthn.AuthenticatorTransport, verified bool) webauthn.AuthenticatorID {
	tab.t.Helper()
	if _, err := chromedp.Call(tab.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		tab.t.Fatalf("%s tab: WebAuthn.enable: %v", tab.name, err)
	}
	res, err := chromedp.Call(tab.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   transport,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              verified,
			AutomaticPresenceSimulation: true, // false leaves the ceremony waiting for a touch
		}})
	if err != nil {
		tab.t.Fatalf("%s tab: WebAuthn.addVirtualAuthenticator: %v", tab.name, err)
	}
	return res.AuthenticatorID
}

// keysBrowserCredentials are the credentials the virtual authenticator holds.
func keysBrowserCredentials(tab *browserTab, id webauthn.AuthenticatorID) []*webauthn.Credential {
	tab.t.Helper()
	res, err := chromedp.Call(tab.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		tab.t.Fatalf("%s tab: WebAuthn.getCredentials: %v", tab.name, err)
	}
	return res.Credentials
}

// keysBrowserText is the text of the element at the XPath sel, trimmed.
func keysBrowserText(tab *browserTab, sel string) string {
	tab.t.Helper()
	s, err := chromedp.Run(tab.ctx, chromedp.Text(sel))
	if err != nil {
		tab.t.Fatalf("%s tab at %s: text of %s: %v", tab.name, tab.location(), sel, err)
	}
	return strings.TrimSpace(s)
}

// keysBrowserHidden reports whether the element at the XPath sel is in the
// page but not shown.
func keysBrowserHidden(tab *browserTab, sel string) bool {
	tab.t.Helper()
	return browserEval[bool](tab, fmt.Sprintf(`(() => { const e = document.evaluate(%q, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue; if (!e) throw new Error("not in the page"); return !e.checkVisibility() })()`, sel))
}

// keysBrowserWait waits until the JavaScript condition cond holds on tab
// (a page that changes without loading another).
func keysBrowserWait(tab *browserTab, cond string) {
	tab.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(tab.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tab.t.Fatalf("%s tab at %s: waited in vain for %s (%v)\npage text:\n%s", tab.name, tab.location(), cond, err, tab.text())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// keysBrowserStatusChanged is a condition for keysBrowserWait: the status
// element id says something other than nothing or "Follow your browser's
// prompt…" (the script's answer to a ceremony that ended).
func keysBrowserStatusChanged(id string) string {
	return fmt.Sprintf(`(() => { const s = document.getElementById(%q); const t = s ? s.textContent.trim() : ""; return t !== "" && !t.startsWith("Follow your browser") })()`, id)
}

// keysBrowserUserVerified sets whether the authenticator's user
// verification (its fingerprint reader) succeeds.
func keysBrowserUserVerified(tab *browserTab, id webauthn.AuthenticatorID, ok bool) {
	tab.t.Helper()
	if _, err := chromedp.Call(tab.ctx, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: id, IsUserVerified: ok}); err != nil {
		tab.t.Fatalf("%s tab: WebAuthn.setUserVerified: %v", tab.name, err)
	}
}

// keysBrowserLogOut presses the account page's Log Out.
func keysBrowserLogOut(tab *browserTab, issuer string) {
	tab.t.Helper()
	tab.open(issuer + "/account")
	if strings.Contains(tab.location(), "/login") {
		tab.t.Fatalf("%s tab: no session to log out of (the account page asks to log in)", tab.name)
	}
	tab.click(browserButton("Log Out"))
	tab.open(issuer + "/account")
	tab.see(browserField("Username")) // logged out: the account page asks to log in
}

// TestBrowserSecurityKeys drives security keys and passkeys in Chromium
// with the DevTools virtual authenticator: add a key from the account page
// (recovery codes come with it, as the first second factor), log in to the
// Client Portal with password and "Use security key", then with "Sign in
// with a passkey" alone; a browser without WebAuthn is told so and keeps
// "Try another method"; remove the key; and a passkey whose authenticator
// cannot verify the user is refused.
func TestBrowserSecurityKeys(t *testing.T) {
	for _, b := range idptest.Backends {
		// Not parallel: each subtest runs its own Chromium.
		t.Run(b.Name, func(t *testing.T) { keysBrowser(t, b) })
	}
}

func keysBrowser(t *testing.T, b idptest.Backend) {
	browser := testenv.Chromium(t)
	started := time.Now()
	env := idptest.New(t, b, idptest.Options{Localhost: true, Configure: func(c *config.Config) { c.WebAuthn.Passkeys = true }})
	env.AddUser("alice", browserPassword)
	portal := newBrowserPortal(t, env)
	shots := &browserShots{t: t, dir: testenv.ArtifactsDir(t, "browser")}
	backend := strings.NewReplacer("+", "-").Replace(b.Name)
	save := func(tab *browserTab, name string) { t.Helper(); shots.save(tab, "keys-"+backend+"-"+name) }
	keysSection := func(sel string) string { return "//section[@id='security-keys']" + sel }
	yubiKey := keysSection(`//li[p[@class='device-name'][normalize-space()='YubiKey']]`)

	// 1. Add a key: log in to the account page, Security keys, Add security
	// key, a name, the button; the authenticator answers.
	acct := newBrowserTab(t, browser, "account")
	key := keysBrowserAuthenticator(acct, webauthn.AuthenticatorTransportUsb, true)
	acct.open(env.Issuer + "/account")
	acct.logIn("alice")
	acct.see(keysSection(`/h2[normalize-space()='Security keys']`))
	acct.lacks(keysSection(`//li`), "a key is listed before any was added")
	save(acct, "account-no-keys")
	acct.click(keysSection(browserButton("Add security key")))
	acct.see(`//h1[normalize-space()='Add a security key']`)
	acct.see(browserButton("Add security key")) // shown by the script: WebAuthn works here
	save(acct, "add-key")
	acct.typeInto("Name", "YubiKey")
	acct.click(browserButton("Add security key"))

	// The first second factor: ten recovery codes, then Continue.
	acct.see(`//*[@id='recovery-codes']//code`)
	codes := browserEval[[]string](acct, `[...document.querySelectorAll("#recovery-codes code")].map(c => c.innerText.trim())`)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown after the first key, want 10: %q", len(codes), codes)
	}
	save(acct, "recovery-codes")
	acct.click(browserButton("Continue"))
	acct.see(yubiKey)
	acct.see(yubiKey + browserButton("Remove"))
	save(acct, "account-key-added")

	// The key was made discoverable (residentKey "preferred" with passkeys
	// on, and an authenticator that can keep it): it can be a passkey.
	creds := keysBrowserCredentials(acct, key)
	if len(creds) != 1 {
		t.Fatalf("the authenticator holds %d credentials after adding one key", len(creds))
	}
	if !creds[0].IsResidentCredential {
		t.Errorf("the key added with passkeys on is not discoverable (not a resident credential)")
	}
	acct.checkConsole()

	// 2. Log in with the key, in the same browser (the credential lives in
	// this tab's authenticator) after logging out: password, then "Use
	// security key".
	keysBrowserLogOut(acct, env.Issuer)
	f := portal.start()
	acct.open(f.url)
	acct.see(browserButton("Sign in with a passkey"))
	save(acct, "login-passkey-button")
	acct.logIn("alice")
	acct.see(browserButton("Use security key"))
	acct.see(browserLink("Try another method"))
	if s := keysBrowserText(acct, `//*[@id='key-status']`); s != "" {
		t.Errorf("the security key page's status reads %q before anything was clicked", s)
	}
	save(acct, "second-factor-key")
	acct.click(browserButton("Use security key"))
	portal.landed(acct, f, "pwd", "hwk", "mfa")
	if creds := keysBrowserCredentials(acct, key); creds[0].SignCount < 1 {
		t.Errorf("the key's sign count is %v after a login", creds[0].SignCount)
	}
	acct.checkConsole()

	// 3. A passkey: the same key on the login page, no password.
	if strings.Contains(acct.location(), env.Issuer) {
		t.Fatalf("still on the provider after the portal callback: %s", acct.location())
	}
	acct.open(env.Issuer + "/account")
	if strings.Contains(acct.location(), "/login") {
		// The portal's login left no account session: log in to log out.
		acct.logIn("alice")
		acct.click(browserButton("Use security key"))
	}
	keysBrowserLogOut(acct, env.Issuer)
	f = portal.start()
	acct.open(f.url)
	acct.click(browserButton("Sign in with a passkey"))
	portal.landed(acct, f, "hwk", "mfa")
	acct.checkConsole()

	// 6 (before the key is removed). A browser without WebAuthn: the
	// security key page keeps its button hidden, says why, and still
	// offers the other methods.
	old := newBrowserTab(t, browser, "old-browser")
	if _, err := chromedp.Call(old.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: "delete window.PublicKeyCredential"}); err != nil {
		t.Fatal(err)
	}
	f = portal.start()
	old.open(f.url)
	old.see(browserField("Username"))
	if !keysBrowserHidden(old, browserButton("Sign in with a passkey")) {
		t.Errorf("the login page shows Sign in with a passkey in a browser without WebAuthn")
	}
	if s := keysBrowserText(old, `//*[@id='passkey-status']`); s != "" {
		t.Errorf("the login page's passkey status reads %q in a browser without WebAuthn, want nothing", s)
	}
	old.logIn("alice")
	old.see(`//*[@id='key-status'][normalize-space()!='']`)
	if !keysBrowserHidden(old, browserButton("Use security key")) {
		t.Errorf("Use security key is shown in a browser without WebAuthn")
	}
	if s := keysBrowserText(old, `//*[@id='key-status']`); !strings.Contains(s, "This browser cannot use security keys") {
		t.Errorf("the security key page says %q in a browser without WebAuthn, want that it cannot use security keys", s)
	}
	old.see(browserLink("Try another method"))
	save(old, "second-factor-no-webauthn")
	old.click(browserLink("Try another method"))
	old.see(browserLink("Recovery code"))
	old.see(browserLink("Security key"))
	save(old, "methods-no-webauthn")
	old.checkConsole()

	// 4. Remove the key: Remove, the confirmation names it, Remove.
	acct.open(env.Issuer + "/account")
	if strings.Contains(acct.location(), "/login") {
		acct.logIn("alice")
		acct.click(browserButton("Use security key"))
	}
	acct.see(yubiKey)
	acct.click(yubiKey + browserButton("Remove"))
	acct.see(`//h1[normalize-space()='Remove security key']`)
	if s := keysBrowserText(acct, `//p[strong]`); s != "Remove YubiKey? It will no longer work for logging in to your account." {
		t.Errorf("the remove page asks %q", s)
	}
	acct.see(`//p/strong[normalize-space()='YubiKey']`)
	acct.see(browserLink("Cancel"))
	save(acct, "remove-key")
	acct.click(browserButton("Remove"))
	acct.see(keysSection(`/h2[normalize-space()='Security keys']`))
	acct.lacks(yubiKey, "the removed key is still listed")
	acct.lacks(keysSection(`//li`), "a key is still listed after the only one was removed")
	save(acct, "account-key-removed")
	acct.checkConsole()

	// 5. A passkey needs user verification: bob's laptop has a fingerprint
	// reader that does not recognise him.
	env.AddUser("bob", browserPassword)
	bob := newBrowserTab(t, browser, "bob")
	bobKey := keysBrowserAuthenticator(bob, webauthn.AuthenticatorTransportInternal, false)
	bob.open(env.Issuer + "/account")
	bob.logIn("bob")
	bob.click(keysSection(browserButton("Add security key")))
	bob.typeInto("Name", "Bob's laptop")
	// Adding asks for verification ("preferred"): an authenticator with a
	// reader that fails gives the browser no credential, and the page
	// stays with the script's message.
	bob.do(chromedp.Click(browserButton("Add security key")))
	keysBrowserWait(bob, keysBrowserStatusChanged("add-key-status"))
	if s := keysBrowserText(bob, `//*[@id='add-key-status']`); !strings.HasPrefix(s, "The prompt was closed, or the key or device did not confirm") {
		t.Errorf("adding a key the authenticator refused: the status reads %q", s)
	}
	if !strings.HasSuffix(bob.location(), "/account/keys/add") {
		t.Errorf("adding a key the authenticator refused left the page for %s", bob.location())
	}
	save(bob, "add-key-refused")
	if creds := keysBrowserCredentials(bob, bobKey); len(creds) != 0 {
		t.Fatalf("bob's authenticator made %d credentials without verifying him", len(creds))
	}
	// His finger is recognised the second time; later it is not.
	keysBrowserUserVerified(bob, bobKey, true)
	bob.click(browserButton("Add security key"))
	bob.see(`//*[@id='recovery-codes']//code`)
	bob.click(browserButton("Continue"))
	bob.see(keysSection(`//li[p[@class='device-name'][normalize-space()="Bob's laptop"]]`))
	if creds := keysBrowserCredentials(bob, bobKey); len(creds) != 1 || !creds[0].IsResidentCredential {
		t.Fatalf("bob's authenticator holds %d credentials after adding one key (want 1, discoverable)", len(creds))
	}
	keysBrowserUserVerified(bob, bobKey, false)
	keysBrowserLogOut(bob, env.Issuer)
	f = portal.start()
	bob.open(f.url)
	bob.see(browserButton("Sign in with a passkey"))
	before := bob.location()
	bob.do(chromedp.Click(browserButton("Sign in with a passkey")))
	// Either the browser gives no assertion without verification (the
	// script's status says so, the page stays), or the provider refuses
	// the assertion (the login page again, with its error, 401).
	keysBrowserWait(bob, `document.getElementById("page-error") || (`+keysBrowserStatusChanged("passkey-status")+`)`)
	save(bob, "passkey-refused")
	if msg := browserEval[string](bob, `(document.getElementById("page-error") || {}).innerText || ""`); msg != "" {
		if !strings.Contains(msg, "That passkey was not accepted") {
			t.Errorf("the refused passkey's error reads %q", msg)
		}
		smsBrowserExpected(bob, fmt.Sprintf("status of %d", http.StatusUnauthorized))
	} else {
		s := keysBrowserText(bob, `//*[@id='passkey-status']`)
		if !strings.Contains(s, "The prompt was closed, or the key or device did not confirm") {
			t.Errorf("the passkey status reads %q after the browser refused", s)
		}
		if bob.location() != before {
			t.Errorf("the page moved to %s", bob.location())
		}
		t.Logf("the browser itself refused the passkey without user verification: %q", s)
	}
	if strings.HasPrefix(bob.location(), portal.callback) {
		t.Fatalf("an unverified passkey reached the portal: %s", bob.location())
	}
	bob.see(browserField("Username"))

	// The provider's own check: an authenticator that says it verified the
	// user but sends the assertion with the UV flag clear (a broken or
	// lying one). The browser passes that on; the provider refuses it.
	keysBrowserUserVerified(bob, bobKey, true)
	bad := true
	if _, err := chromedp.Call(bob.ctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{
		AuthenticatorID: bobKey, IsBadUV: &bad}); err != nil {
		t.Fatal(err)
	}
	bob.open(f.url) // a fresh page: the script's button is enabled again
	bob.see(browserButton("Sign in with a passkey"))
	ctx, cancel := context.WithTimeout(bob.ctx, 10*time.Second)
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(browserButton("Sign in with a passkey")))
	cancel()
	if err != nil {
		t.Fatalf("bob tab: a passkey assertion without the UV flag: no page was posted (%v); status %q", err, keysBrowserText(bob, `//*[@id='passkey-status']`))
	}
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("a passkey assertion without the UV flag answered %d at %s, want 401", resp.Status, resp.URL)
	}
	if strings.HasPrefix(bob.location(), portal.callback) {
		t.Fatalf("a passkey assertion without user verification reached the portal: %s", bob.location())
	}
	bob.see(`//*[@id='page-error']`)
	if msg := keysBrowserText(bob, `//*[@id='page-error']`); !strings.HasPrefix(msg, "That passkey was not accepted") {
		t.Errorf("the refused passkey's error reads %q", msg)
	}
	bob.see(browserField("Username"))
	bob.see(browserButton("Sign in with a passkey"))
	save(bob, "passkey-no-uv-refused")
	smsBrowserExpected(bob, "status of 401 (Unauthorized) "+env.Issuer+"/login/passkey")
	bob.checkConsole()

	t.Logf("security key browser flow (%s) took %v after Chromium started; screenshots in %s", b.Name, time.Since(started).Round(time.Millisecond), shots.dir)
}
