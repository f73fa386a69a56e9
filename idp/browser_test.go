package idp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/manage"
)

// The browser tests drive the hosted pages in headless Chromium as a person
// would: they find fields by the text of their <label>, buttons and links by
// their words (the stable labels of SPEC.md), type with key events and click
// with the mouse. Every page the user sees is saved as a full-page PNG in
// the artifacts folder (IDP_TEST_ARTIFACTS, else test-artifacts/browser).

const browserPassword = "correct horse battery"

// browserField is the input that the <label> reading label is for.
func browserField(label string) string {
	return fmt.Sprintf(`//*[@id=(//label[normalize-space()=%q]/@for)]`, label)
}

// browserButton is a button (or a link styled as one) reading text.
func browserButton(text string) string {
	return fmt.Sprintf(`//*[self::button or self::a or self::input[@type='submit']][normalize-space()=%q]`, text)
}

// browserLink is a link reading text.
func browserLink(text string) string { return fmt.Sprintf(`//a[normalize-space()=%q]`, text) }

// browserTab is one tab and the person using it.
type browserTab struct {
	t    *testing.T
	ctx  context.Context
	name string

	mu       sync.Mutex
	problems []string // console errors, uncaught exceptions, CSP reports
}

// shots numbers the screenshots of a test run across tabs.
type browserShots struct {
	t   *testing.T
	dir string
	n   int
}

func (s *browserShots) save(tab *browserTab, name string) {
	s.t.Helper()
	png, err := chromedp.Run(tab.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	s.n++
	file := filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// newBrowserTab opens a tab in a new browser context: its own cookies, as
// another browser would have. It is sized like a phone.
func newBrowserTab(t *testing.T, browser context.Context, name string) *browserTab {
	t.Helper()
	tab := &browserTab{t: t, name: name}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(tab.listen))
	t.Cleanup(cancel)
	tab.ctx = ctx
	tab.do(chromedp.EmulateViewport(testenv.ChromiumWidth, testenv.ChromiumHeight))
	return tab
}

func (tab *browserTab) listen(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		p = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			p += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeWarning {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, string(a.Value)+a.Description)
		}
		p = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError && ev.Entry.Level != log.EntryLevelWarning {
			return
		}
		p = "log " + string(ev.Entry.Level) + ": " + ev.Entry.Text + " " + ev.Entry.URL
	default:
		return
	}
	tab.mu.Lock()
	tab.problems = append(tab.problems, p)
	tab.mu.Unlock()
}

// checkConsole fails the test for anything the pages logged as an error
// (a script error, a resource the Content-Security-Policy blocked, a 404).
func (tab *browserTab) checkConsole() {
	tab.t.Helper()
	tab.mu.Lock()
	defer tab.mu.Unlock()
	for _, p := range tab.problems {
		tab.t.Errorf("%s tab: the browser reported %s", tab.name, p)
	}
	tab.problems = nil
}

func (tab *browserTab) do(steps ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	if err := chromedp.Do(tab.ctx, steps...); err != nil {
		tab.t.Fatalf("%s tab at %s: %v", tab.name, tab.location(), err)
	}
}

func (tab *browserTab) location() string {
	ctx, cancel := context.WithTimeout(tab.ctx, 2*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	return u
}

// open navigates to u and waits for the page to load.
func (tab *browserTab) open(u string) {
	tab.t.Helper()
	tab.do(chromedp.Navigate(u))
}

// click clicks the element at the XPath sel and waits for the page it leads
// to (or the fragment it scrolls to) to load.
func (tab *browserTab) click(sel string) {
	tab.t.Helper()
	resp, err := chromedp.RunResponse(tab.ctx, chromedp.Click(sel))
	if err != nil {
		tab.t.Fatalf("%s tab at %s: clicking %s: %v", tab.name, tab.location(), sel, err)
	}
	if resp != nil && resp.Status >= 400 {
		tab.t.Fatalf("%s tab: clicking %s gave %d at %s:\n%s", tab.name, sel, resp.Status, resp.URL, tab.text())
	}
}

// typeInto types v into the field labelled label, as keystrokes, after
// clearing it (a pre-filled username).
func (tab *browserTab) typeInto(label, v string) {
	tab.t.Helper()
	sel := browserField(label)
	tab.do(chromedp.Clear(sel), chromedp.SendKeys(sel, v))
}

// see waits until the XPath sel is on the page and visible.
func (tab *browserTab) see(sel string) {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, 5*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(sel)); err != nil {
		tab.t.Fatalf("%s tab: %s not visible at %s: %v\npage text:\n%s", tab.name, sel, tab.location(), err, tab.text())
	}
}

// lacks checks that nothing matches the XPath sel.
func (tab *browserTab) lacks(sel, why string) {
	tab.t.Helper()
	n := browserEval[int](tab, fmt.Sprintf(`document.evaluate(%q, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null).snapshotLength`, sel))
	if n != 0 {
		tab.t.Fatalf("%s tab at %s: %s (%s present)\n%s", tab.name, tab.location(), why, sel, tab.text())
	}
}

// text is the visible text of the page, for failure messages.
func (tab *browserTab) text() string {
	ctx, cancel := context.WithTimeout(tab.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(no text: " + err.Error() + ")"
	}
	return s
}

func browserEval[T any](tab *browserTab, js string) T {
	tab.t.Helper()
	v, err := chromedp.Run(tab.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tab.t.Fatalf("%s tab: evaluating %s: %v", tab.name, js, err)
	}
	return v
}

// logIn fills the login page with the password.
func (tab *browserTab) logIn(username string) {
	tab.t.Helper()
	tab.see(browserField("Username"))
	tab.typeInto("Username", username)
	tab.typeInto("Password", browserPassword)
	tab.click(browserButton("Log In"))
}

// browserPortal is the Client Portal: a relying party with a callback that
// just answers, so the test reads the code from the browser's address bar.
type browserPortal struct {
	t        *testing.T
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	callback string
}

type browserFlow struct {
	state, nonce, pkce, url string
}

func newBrowserPortal(t *testing.T, env *idptest.Env) *browserPortal {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>Client Portal</title><p id="portal">portal got code</p>`)
	}))
	t.Cleanup(srv.Close)
	callback := srv.URL + "/callback" // http://127.0.0.1:PORT/callback
	secret := env.AddClient(manage.NewClient{ID: "client-portal", Name: "Client Portal",
		RedirectURIs: []string{callback}, FirstParty: true})
	p, err := oidc.NewProvider(context.Background(), env.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &browserPortal{t: t, callback: callback,
		conf: oauth2.Config{ClientID: "client-portal", ClientSecret: secret, Endpoint: p.Endpoint(),
			RedirectURL: callback, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}},
		verifier: p.Verifier(&oidc.Config{ClientID: "client-portal"}),
	}
}

// start builds the URL the portal sends the browser to: code flow, S256 PKCE.
func (p *browserPortal) start(extra ...oauth2.AuthCodeOption) *browserFlow {
	f := &browserFlow{state: "st-" + randomString(), nonce: "n-" + randomString(), pkce: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.pkce)}, extra...)
	f.url = p.conf.AuthCodeURL(f.state, opts...)
	return f
}

// landed checks that the tab is on the portal's callback with a code for f,
// redeems the code and checks the amr of the ID token.
func (p *browserPortal) landed(tab *browserTab, f *browserFlow, wantAMR ...string) {
	p.t.Helper()
	tab.see(`//p[@id='portal'][normalize-space()='portal got code']`)
	u, err := url.Parse(tab.location())
	if err != nil || !strings.HasPrefix(u.String(), p.callback+"?") {
		p.t.Fatalf("%s tab: not on the portal callback: %s", tab.name, tab.location())
	}
	q := u.Query()
	if q.Get("error") != "" {
		p.t.Fatalf("portal got error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("code") == "" || q.Get("state") != f.state {
		p.t.Fatalf("portal callback %s: want a code and state %q", u, f.state)
	}
	tok, err := p.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(f.pkce))
	if err != nil {
		p.t.Fatalf("exchanging the code: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.verifier.Verify(context.Background(), raw)
	if err != nil {
		p.t.Fatalf("ID token: %v", err)
	}
	var c struct {
		AMR   []string `json:"amr"`
		Nonce string   `json:"nonce"`
	}
	if err := idt.Claims(&c); err != nil {
		p.t.Fatal(err)
	}
	if c.Nonce != f.nonce || !slices.Equal(c.AMR, wantAMR) {
		p.t.Fatalf("ID token amr %v nonce %q, want %v %q", c.AMR, c.Nonce, wantAMR, f.nonce)
	}
}

// browserTOTP is the user's authenticator app for the provider's clock.
func browserTOTP(t *testing.T, env *idptest.Env, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, env.Clock.Now(), totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBrowserEnrolAndLogin follows the help articles in seeds/: turn
// 2-Factor Auth on from the account page, then log in to the Client Portal
// with the app's code (remembering the device), again with the remembered
// device, and with a recovery code.
func TestBrowserEnrolAndLogin(t *testing.T) {
	browser := testenv.Chromium(t)
	started := time.Now()
	env := idptest.New(t, idptest.Backends[0], idptest.Options{})
	env.AddUser("alice", browserPassword)
	portal := newBrowserPortal(t, env)
	shots := &browserShots{t: t, dir: testenv.ArtifactsDir(t, "browser")}

	// Setup, steps 1-3: log in, find 2-Factor Auth, click the OFF switch.
	acct := newBrowserTab(t, browser, "account")
	acct.open(env.Issuer + "/account")
	acct.see(browserField("Username"))
	shots.save(acct, "login")
	acct.logIn("alice")
	offSwitch := `//*[normalize-space()='2-Factor Auth']/following::*[self::button or self::a][normalize-space()='OFF'][1]`
	acct.see(offSwitch)
	shots.save(acct, "account-2fa-off")
	acct.click(offSwitch)

	// Steps 4-7: the QR code, and the setup key behind "Trouble Scanning?".
	acct.see(`//img[contains(@alt,'QR code')]`)
	if w := browserEval[int](acct, `(() => { const i = document.querySelector("img[alt*='QR code']"); return i && i.complete ? i.naturalWidth : 0 })()`); w <= 0 {
		t.Fatalf("the QR code image is not displayed (naturalWidth %d)", w)
	}
	if vis := browserEval[bool](acct, `document.querySelector("#setup-key code").checkVisibility()`); vis {
		t.Errorf("the setup key is visible before Trouble Scanning? is clicked")
	}
	acct.click(browserLink("Trouble Scanning?"))
	acct.see(`//*[@id='setup-key']//code`)
	keyText, err := chromedp.Run(acct.ctx, chromedp.Text(`//*[@id='setup-key']//code`))
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.ReplaceAll(strings.TrimSpace(keyText), " ", "")
	if len(secret) < 16 || strings.Trim(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		t.Fatalf("setup key %q is not base32", keyText)
	}
	href, err := chromedp.Run(acct.ctx, chromedp.AttributeValue(`//a[starts-with(@href,'otpauth://')]`, "href"))
	if err != nil || !href.Exists {
		t.Fatalf("no otpauth:// link: %v", err)
	}
	if ou, err := url.Parse(href.Value); err != nil || ou.Query().Get("secret") != secret {
		t.Fatalf("otpauth link %q does not carry the setup key %q", href.Value, secret)
	}
	shots.save(acct, "enrol-setup-key")

	// Step 8: the six-digit code into Authentication Code, then Update.
	acct.typeInto("Authentication Code", browserTOTP(t, env, secret))
	acct.click(browserButton("Update"))

	// Step 9: read the warning, note the backup codes.
	acct.see(`//*[@id='recovery-codes']//code`)
	codes := browserEval[[]string](acct, `[...document.querySelectorAll("#recovery-codes code")].map(c => c.innerText.trim())`)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10: %q", len(codes), codes)
	}
	shots.save(acct, "recovery-codes")
	acct.click(browserButton("Continue"))
	onSwitch := `//*[normalize-space()='2-Factor Auth']/following::*[self::button or self::a][normalize-space()='ON'][1]`
	acct.see(onSwitch)
	shots.save(acct, "account-2fa-on")
	acct.do(chromedp.EmulateViewport(1280, 900))
	shots.save(acct, "account-2fa-on-1280px")
	acct.do(chromedp.EmulateViewport(testenv.ChromiumWidth, testenv.ChromiumHeight))
	acct.checkConsole()
	env.Clock.Advance(30 * time.Second) // the enrolment code is spent

	// Authenticating with the app, in another browser: password, then the
	// code, remembering this device for 30 days.
	phone := newBrowserTab(t, browser, "phone")
	f := portal.start()
	phone.open(f.url)
	phone.see(browserField("Username"))
	shots.save(phone, "login-portal")
	phone.logIn("alice")
	phone.see(browserField("Authentication Code"))
	phone.see(browserField("Remember this device for 30 days"))
	phone.see(browserLink("Try another method"))
	shots.save(phone, "second-factor")
	phone.typeInto("Authentication Code", browserTOTP(t, env, secret))
	phone.do(chromedp.Click(browserField("Remember this device for 30 days")))
	if on := browserEval[bool](phone, `document.getElementById(document.evaluate("//label[normalize-space()='Remember this device for 30 days']/@for", document, null, XPathResult.STRING_TYPE, null).stringValue).checked`); !on {
		t.Fatal("the Remember this device box did not tick")
	}
	phone.click(browserButton("Log In"))
	portal.landed(phone, f, "pwd", "otp", "mfa")

	// The same browser later: prompt=login asks for the password again, the
	// remembered device waives the code.
	env.Clock.Advance(30 * time.Second)
	f = portal.start(oauth2.SetAuthURLParam("prompt", "login"))
	phone.open(f.url)
	phone.see(browserField("Password"))
	phone.logIn("alice")
	phone.lacks(browserField("Authentication Code"), "the remembered device was asked for a code")
	portal.landed(phone, f, "pwd", "mfa")

	// The account page of that browser lists the device; Forget all devices.
	phone.open(env.Issuer + "/account")
	if p := phone.location(); strings.Contains(p, "/login") {
		phone.logIn("alice") // no session from the portal login: the device still waives the code
	}
	phone.see(browserButton("Forget all devices"))
	shots.save(phone, "account-remembered-device")
	phone.click(browserButton("Forget all devices"))
	phone.see(`//*[@id='devices']//p[starts-with(normalize-space(),'No remembered devices')]`)
	phone.checkConsole()

	// Signing in with a recovery code, in a third browser.
	laptop := newBrowserTab(t, browser, "laptop")
	f = portal.start()
	laptop.open(f.url)
	laptop.logIn("alice")
	laptop.see(browserField("Authentication Code"))
	laptop.click(browserLink("Try another method"))
	laptop.see(browserLink("Recovery code"))
	laptop.see(browserLink("Authenticator app"))
	shots.save(laptop, "methods")
	laptop.click(browserLink("Recovery code"))
	laptop.see(browserField("Recovery code"))
	shots.save(laptop, "recovery-form")
	laptop.typeInto("Recovery code", codes[3])
	laptop.click(browserButton("Log In"))
	laptop.see(`//*[@id='replacement-code']//code`)
	replacement, err := chromedp.Run(laptop.ctx, chromedp.Text(`//*[@id='replacement-code']//code`))
	if err != nil {
		t.Fatal(err)
	}
	if replacement = strings.TrimSpace(replacement); replacement == "" || slices.Contains(codes, replacement) {
		t.Fatalf("replacement code %q: want a new code", replacement)
	}
	shots.save(laptop, "replacement-code")
	laptop.click(browserButton("Continue"))
	portal.landed(laptop, f, "pwd", "mfa")
	laptop.checkConsole()

	t.Logf("browser flow took %v after Chromium started; screenshots in %s", time.Since(started).Round(time.Millisecond), shots.dir)
}
