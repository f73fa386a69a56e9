package idp_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/mfa/sms/smstest"
)

// smsBrowserSection is an XPath inside the account page's Cell Phone section.
func smsBrowserSection(sel string) string { return "//section[@id='phone']" + sel }

// smsBrowserSubmit clicks sel on tab and returns the status of the page it
// leads to, for a form whose refusal is a page of its own (a wrong code
// answers 401), which tab.click would take for a failure.
func smsBrowserSubmit(tab *browserTab, sel string) int64 {
	tab.t.Helper()
	resp, err := chromedp.RunResponse(tab.ctx, chromedp.Click(sel))
	if err != nil {
		tab.t.Fatalf("%s tab at %s: clicking %s: %v", tab.name, tab.location(), sel, err)
	}
	if resp == nil {
		tab.t.Fatalf("%s tab: clicking %s loaded no page", tab.name, sel)
	}
	return resp.Status
}

// smsBrowserSent checks the SMS page's "We sent a code to" line names the
// masked number.
func smsBrowserSent(tab *browserTab) {
	tab.t.Helper()
	tab.see(`//*[@id='sms-sent']`)
	sent, err := chromedp.Run(tab.ctx, chromedp.Text(`//*[@id='sms-sent']`))
	if err != nil {
		tab.t.Fatal(err)
	}
	// The number is kept on one line with no-break spaces; a person reads spaces.
	sent = strings.ReplaceAll(sent, "\u00a0", " ")
	if want := "We sent a code to " + alicePhoneMask; !strings.HasPrefix(strings.TrimSpace(sent), want) {
		tab.t.Fatalf("%s tab: the SMS page says %q, want it to start with %q", tab.name, sent, want)
	}
}

// smsBrowserExpected drops from tab's problems the ones containing want:
// a refusal the test provoked, such as the 401 of a wrong code, which the
// browser logs as a failed load.
func smsBrowserExpected(tab *browserTab, want string) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	tab.problems = slices.DeleteFunc(tab.problems, func(p string) bool { return strings.Contains(p, want) })
}

// TestBrowserSMS follows "Authenticating with SMS" in seeds/: set the cell
// phone on the account page (Country Code, Cell Phone, Save) and confirm it
// with the texted code (Authentication Code, Update); then log in to the
// Client Portal with Send SMS Code from the app's page, and with SMS code
// under Try another method, remembering the device.
func TestBrowserSMS(t *testing.T) {
	browser := testenv.Chromium(t)
	started := time.Now()
	tw := smstest.NewTwilio(t)
	env := idptest.New(t, idptest.Backends[0], withTwilio(tw))
	env.AddUser("alice", browserPassword)
	portal := newBrowserPortal(t, env)
	shots := &browserShots{t: t, dir: testenv.ArtifactsDir(t, "browser")}

	// Step 4 of the article: Country Code, Cell Phone, Save. Alice's browser
	// prefers Swiss German, so the select starts on Switzerland and she has
	// to choose her country.
	acct := newBrowserTab(t, browser, "account")
	if _, err := chromedp.Call(acct.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": "de-CH,de;q=0.9,en;q=0.8"}}); err != nil {
		t.Fatal(err)
	}
	acct.open(env.Issuer + "/account")
	acct.logIn("alice")
	acct.see(smsBrowserSection(`/h2[normalize-space()='Cell Phone']`))
	acct.see(browserField("Country Code"))
	acct.see(browserField("Cell Phone"))
	acct.lacks(browserField("Authentication Code"), "a code field before any number was saved")
	country := func() string {
		return browserEval[string](acct, `(() => { const s = document.getElementById(document.evaluate("//label[normalize-space()='Country Code']/@for", document, null, XPathResult.STRING_TYPE, null).stringValue); return s.value + " " + s.selectedOptions[0].text })()`)
	}
	if got := country(); got != "CH Switzerland (+41)" {
		t.Errorf("Country Code starts on %q for Accept-Language de-CH, want CH Switzerland (+41)", got)
	}
	shots.save(acct, "sms-account-no-phone")
	// As with a keyboard: focus the closed select and type the country's
	// name; the browser's type-ahead picks the option.
	acct.do(chromedp.SendKeys(browserField("Country Code"), "United States"))
	if got := country(); got != "US United States (+1)" {
		t.Fatalf("typing United States into Country Code selected %q", got)
	}
	acct.typeInto("Cell Phone", "(650) 253-0000")
	shots.save(acct, "sms-account-phone-typed")
	acct.click(smsBrowserSection(`//button[normalize-space()='Save']`))

	// The number is saved unverified and a code is texted to it.
	acct.see(browserField("Authentication Code"))
	acct.see(smsBrowserSection(`//button[normalize-space()='Update']`))
	acct.see(smsBrowserSection(`//*[@id='phone-number'][normalize-space()='+1 650-253-0000']`))
	acct.see(smsBrowserSection(`//*[normalize-space()='(not verified yet)']`))
	if tw.Count() != 1 {
		t.Fatalf("%d messages after Save, want 1", tw.Count())
	}
	m := tw.Last(t)
	if m.To != alicePhone {
		t.Fatalf("the code went to %q, want %s", m.To, alicePhone)
	}
	code := codeOf(t, env, m)
	shots.save(acct, "sms-account-verify-form")

	// A wrong code: the error shows in the Cell Phone section.
	acct.typeInto("Authentication Code", wrongCode(code))
	if st := smsBrowserSubmit(acct, smsBrowserSection(`//button[normalize-space()='Update']`)); st != http.StatusUnauthorized {
		t.Fatalf("a wrong verification code answered %d, want 401", st)
	}
	acct.see(smsBrowserSection(`//*[@id='phone-error']`))
	if msg, err := chromedp.Run(acct.ctx, chromedp.Text(smsBrowserSection(`//*[@id='phone-error']`))); err != nil || !strings.Contains(msg, "not right") {
		t.Fatalf("the Cell Phone error reads %q (%v), want it to say the code is not right", msg, err)
	}
	shots.save(acct, "sms-account-wrong-code")

	// The right code: Update, and the number is verified.
	acct.typeInto("Authentication Code", code)
	acct.click(smsBrowserSection(`//button[normalize-space()='Update']`))
	acct.see(smsBrowserSection(`//p[strong[@id='phone-number'][normalize-space()='+1 650-253-0000']][.//*[normalize-space()='(verified)']]`))
	acct.lacks(browserField("Authentication Code"), "the code field is still shown after the number was verified")
	acct.lacks(smsBrowserSection(`//*[@id='phone-error']`), "an error is still shown after the number was verified")
	shots.save(acct, "sms-account-verified")
	smsBrowserExpected(acct, "status of 401 (Unauthorized) "+env.Issuer+"/account/phone/verify")
	acct.checkConsole()

	// SMS is a fallback next to the app: Alice already has one (set
	// directly; TestBrowserEnrolAndLogin covers enrolling it).
	giveApp(t, env, "alice")

	// Logging in with SMS from the app's page, in another browser.
	phone := newBrowserTab(t, browser, "phone")
	f := portal.start()
	phone.open(f.url)
	phone.logIn("alice")
	phone.see(browserField("Authentication Code")) // the app's page comes first
	phone.see(browserButton("Send SMS Code"))
	phone.see(browserLink("Try another method"))
	shots.save(phone, "sms-second-factor")
	phone.click(browserButton("Send SMS Code"))
	smsBrowserSent(phone)
	if tw.Count() != 2 {
		t.Fatalf("%d messages after Send SMS Code, want 2", tw.Count())
	}
	phone.see(browserField("Authentication Code"))
	phone.see(browserButton("Send a new code"))
	shots.save(phone, "sms-code-sent")
	phone.typeInto("Authentication Code", codeOf(t, env, tw.Last(t)))
	phone.click(browserButton("Log In"))
	portal.landed(phone, f, "pwd", "sms", "mfa")
	phone.checkConsole()

	// SMS code under Try another method, in a third browser, remembering it.
	laptop := newBrowserTab(t, browser, "laptop")
	f = portal.start()
	laptop.open(f.url)
	laptop.logIn("alice")
	laptop.see(browserField("Authentication Code"))
	laptop.click(browserLink("Try another method"))
	laptop.see(browserLink("SMS code"))
	laptop.see(browserLink("Authenticator app"))
	laptop.see(browserLink("Recovery code"))
	shots.save(laptop, "sms-methods")
	laptop.click(browserLink("SMS code"))
	laptop.see(browserButton("Send SMS Code"))
	laptop.lacks(browserField("Authentication Code"), "the SMS page shows a code field before a code was sent")
	if tw.Count() != 2 {
		t.Fatalf("opening the SMS page sent a message (%d in all, want 2)", tw.Count())
	}
	shots.save(laptop, "sms-send-form")
	laptop.click(browserButton("Send SMS Code"))
	smsBrowserSent(laptop)
	if tw.Count() != 3 {
		t.Fatalf("%d messages after Send SMS Code, want 3", tw.Count())
	}
	laptop.typeInto("Authentication Code", codeOf(t, env, tw.Last(t)))
	laptop.do(chromedp.Click(browserField("Remember this device for 30 days")))
	if on := browserEval[bool](laptop, `document.getElementById(document.evaluate("//label[normalize-space()='Remember this device for 30 days']/@for", document, null, XPathResult.STRING_TYPE, null).stringValue).checked`); !on {
		t.Fatal("the Remember this device box did not tick")
	}
	shots.save(laptop, "sms-code-remember")
	laptop.click(browserButton("Log In"))
	portal.landed(laptop, f, "pwd", "sms", "mfa")
	laptop.checkConsole()

	t.Logf("SMS browser flow took %v after Chromium started; screenshots in %s", time.Since(started).Round(time.Millisecond), shots.dir)
}
