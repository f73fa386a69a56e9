package templates

import (
	"bytes"
	"encoding/base64"
	"html"
	"html/template"
	"image"
	"image/color"
	"image/gif"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestMFAStableLabelsAndButtons(t *testing.T) {
	out := renderAll(t)
	tests := []struct {
		page string
		want []string
	}{
		{"second_factor", []string{
			`<h1>2-Factor Authentication</h1>`,
			`to continue to <strong>Client Portal</strong>`,
			`Open your authenticator app and enter the six-digit code for this account.`,
			`<form method="post" action="/login/totp" class="form">`,
			`<label for="code">Authentication Code</label>`,
			`<input type="checkbox" name="remember" id="remember" value="on">`,
			`<label for="remember">Remember this device for 30 days</label>`,
			`<button type="submit" class="button button-primary">Log In</button>`,
			`<a href="/login/methods?id=ar_7f3k2">Try another method</a>`,
		}},
		{"second_factor_failed", []string{
			`role="alert">That code is not valid.`,
			`aria-invalid="true" aria-describedby="page-error"`,
		}},
		{"methods", []string{
			`<h1>Try another method</h1>`,
			`>Authenticator app</a>`,
			`>SMS code</a>`,
			`>Recovery code</a>`,
			`>Security key</a>`,
			`<a href="/login/recovery?id=ar_7f3k2" aria-describedby="method-2-description">Recovery code</a>`,
			`<span class="method-description" id="method-2-description">Use one of the codes you saved`,
			`<a href="/login/totp?id=ar_7f3k2">Back</a>`,
		}},
		{"recovery_login", []string{
			`<h1>Use a recovery code</h1>`,
			`<label for="recovery_code">Recovery code</label>`,
			`<input type="text" name="recovery_code" id="recovery_code" autocomplete="off" autocapitalize="none" spellcheck="false" required autofocus aria-describedby="recovery-code-hint">`,
			`Each code works only once. After you log in, you will be shown a new code to replace it.`,
			`<button type="submit" class="button button-primary">Log In</button>`,
			`<a href="/login/methods?id=ar_7f3k2">Try another method</a>`,
		}},
		{"replacement_code", []string{
			`no longer works`,
			`<div class="code-single" id="replacement-code"><code>7kq2-mx9d-4hwp</code></div>`,
			`You have 10 recovery codes left.`,
			`It will not be shown again`,
			`<form method="post" action="/login/recovery/continue" class="form">`,
			`<button type="submit" class="button button-primary">Continue</button>`,
		}},
		{"account", []string{
			`<h1>Jane Doe</h1>`,
			`<dd>jane.doe</dd>`,
			`<dd>jane.doe@example.com</dd>`,
			`<h2 id="two-factor-heading">2-Factor Auth</h2>`,
			`<form method="post" action="/account/totp" class="form-inline">`,
			`<button type="submit" class="switch" aria-pressed="false" aria-label="2-Factor Auth is off; turn it on"><span class="switch-track" aria-hidden="true"></span><span class="switch-text">OFF</span></button>`,
			`<h2 id="devices-heading">Remembered devices</h2>`,
			`No remembered devices.`,
			`<form method="post" action="/account/logout" class="form-inline">`,
			`>Log Out</button>`,
		}},
		{"account_totp_on", []string{
			`<a href="/account/totp/disable" class="switch switch-on" aria-label="2-Factor Auth is on; turn it off"><span class="switch-track" aria-hidden="true"></span><span class="switch-text">ON</span></a>`,
			`<h2 id="recovery-heading">Recovery codes</h2>`,
			`2 recovery codes left`,
			`You are running out of recovery codes.`,
			`<a href="/account/recovery-codes" class="button button-secondary button-auto">Generate new recovery codes</a>`,
			`<p class="device-name">Chrome on macOS</p>`,
			`<dd>Today, 09:14</dd>`,
			`<dd>Never</dd>`,
			`<dd>19 April 2026</dd>`,
			`<form method="post" action="/account/devices/forget" class="form">`,
			`<button type="submit" class="button button-danger button-auto">Forget all devices</button>`,
		}},
		{"enrol_totp", []string{
			`Duo Mobile, Google Authenticator or Microsoft Authenticator`,
			`<div class="qr"><img src="data:image/png;base64,`,
			`alt="QR code that adds jane.doe@example.com to your authenticator app" width="200" height="200"></div>`,
			`<a href="#setup-key" aria-controls="setup-key">Trouble Scanning?</a>`,
			`<div class="reveal" id="setup-key">`,
			`<code class="secret">JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP</code>`,
			`<a href="` + html.EscapeString(testOTPAuthURL) + `">Using this phone? Add the account to your authenticator app</a>`,
			`Your app will show <strong>Client Portal</strong> (jane.doe@example.com).`,
			`<label for="code">Authentication Code</label>`,
			`<button type="submit" class="button button-primary">Update</button>`,
			`<a href="/account">Cancel</a>`,
		}},
		{"recovery_codes", []string{
			`<h1>Save your recovery codes</h1>`,
			`<div class="alert alert-warning">`,
			`Each code works only once.`,
			`They will not be shown again.`,
			`<ul class="code-list" id="recovery-codes">`,
			`<li><code>4f7k-q2m9-xd8h</code></li>`,
			`<li><code>w3mk-7xpr-5fza</code></li>`,
			`download="recovery-codes-jane.doe.txt" class="button button-secondary">Download</a>`,
			`<button type="button" class="button button-secondary" data-copy-target="recovery-codes" hidden>Copy</button>`,
			`<a href="/account" class="button button-primary">Continue</a>`,
		}},
		{"recovery_codes_login", []string{
			`<form method="post" action="/login/enrol/done" class="form">`,
			`<button type="submit" class="button button-primary">Continue</button>`,
		}},
		{"confirm_factor", []string{
			`<h1>Turn off 2-factor authentication?</h1>`,
			`<p>Your account will be protected by your password only`,
			`<label for="code">Authentication Code</label>`,
			`or one of your recovery codes`,
			`<button type="submit" class="button button-danger-solid">Turn off 2-Factor Auth</button>`,
			`<a href="/account">Cancel</a>`,
		}},
	}
	for _, tt := range tests {
		got, ok := out[tt.page]
		if !ok {
			t.Fatalf("no case %q", tt.page)
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("page %s lacks %s", tt.page, w)
			}
		}
	}
	// Texts that browser tests look for must not be ambiguous on the page.
	for page, text := range map[string]string{
		"account":         ">2-Factor Auth<",
		"account_totp_on": ">2-Factor Auth<",
		"recovery_codes":  `id="recovery-codes"`,
		"enrol_totp":      ">Trouble Scanning?<",
	} {
		if n := strings.Count(out[page], text); n != 1 {
			t.Errorf("%s: %s appears %d times, want once", page, text, n)
		}
	}
}

var codeInputRE = regexp.MustCompile(`<input\b[^>]*\bname="code"[^>]*>`)

// The code fields let phones offer the code from an SMS or the password
// manager, and show the digit keyboard.
func TestCodeInputs(t *testing.T) {
	out := renderAll(t)
	common := []string{`type="text"`, `id="code"`, `autocomplete="one-time-code"`, `autocapitalize="none"`, `spellcheck="false"`, ` required`}
	for _, tt := range []struct {
		page               string
		numeric, autofocus bool
	}{
		{"second_factor", true, true},
		{"second_factor_failed", true, true},
		{"enrol_totp", true, false}, // the last step: focusing it would scroll the QR code away
		{"enrol_totp_login", true, false},
		{"confirm_factor", false, true}, // also takes a recovery code, which has letters
	} {
		inputs := codeInputRE.FindAllString(out[tt.page], -1)
		if len(inputs) != 1 {
			t.Errorf("%s: %d code inputs, want 1", tt.page, len(inputs))
			continue
		}
		in := inputs[0]
		for _, w := range common {
			if !strings.Contains(in, w) {
				t.Errorf("%s: code input lacks %s: %s", tt.page, w, in)
			}
		}
		if got := strings.Contains(in, `inputmode="numeric"`); got != tt.numeric {
			t.Errorf("%s: inputmode=numeric is %v, want %v: %s", tt.page, got, tt.numeric, in)
		}
		if got := strings.Contains(in, ` autofocus`); got != tt.autofocus {
			t.Errorf("%s: autofocus is %v, want %v: %s", tt.page, got, tt.autofocus, in)
		}
	}
}

func TestAuthRequestIDIsPostedBack(t *testing.T) {
	p := mustLoad(t)
	const id = "ar_9x"
	idField := `<input type="hidden" name="id" value="` + id + `">`
	pages := func(id string) []Page {
		return []Page{
			SecondFactorPage{Base: Base{CSRFToken: token}, AuthRequestID: id, RememberDays: 30},
			RecoveryLoginPage{Base: Base{CSRFToken: token}, AuthRequestID: id},
			ReplacementCodePage{Base: Base{CSRFToken: token}, AuthRequestID: id, Code: "x"},
			EnrolTOTPPage{Base: Base{CSRFToken: token}, AuthRequestID: id, QRCodePNG: qrPNG, OTPAuthURL: testOTPAuthURL},
			RecoveryCodesPage{Base: Base{CSRFToken: token}, AuthRequestID: id, ContinueAction: "/next", Codes: testCodes},
		}
	}
	for _, page := range pages(id) {
		out := render(t, p, page)
		forms := formRE.FindAllStringSubmatch(out, -1)
		if len(forms) != 1 {
			t.Errorf("%T: %d forms, want 1", page, len(forms))
			continue
		}
		if strings.Count(forms[0][2], idField) != 1 {
			t.Errorf("%T: form lacks exactly one %s", page, idField)
		}
	}
	for _, page := range pages("") {
		if out := render(t, p, page); strings.Contains(out, `name="id"`) {
			t.Errorf("%T without AuthRequestID posts an id", page)
		}
	}
}

func TestRememberDevice(t *testing.T) {
	p := mustLoad(t)
	for _, tt := range []struct {
		days int
		want string // "" for no checkbox
	}{
		{30, `<label for="remember">Remember this device for 30 days</label>`},
		{1, `<label for="remember">Remember this device for 1 day</label>`},
		{7, `<label for="remember">Remember this device for 7 days</label>`},
		{0, ""},
		{-1, ""},
	} {
		out := render(t, p, SecondFactorPage{Base: Base{CSRFToken: token}, RememberDays: tt.days})
		if tt.want == "" {
			if strings.Contains(out, "Remember this device") || strings.Contains(out, `name="remember"`) {
				t.Errorf("RememberDays=%d: shows the remember checkbox", tt.days)
			}
			continue
		}
		if !strings.Contains(out, tt.want) {
			t.Errorf("RememberDays=%d: lacks %s", tt.days, tt.want)
		}
		if !strings.Contains(out, `<input type="checkbox" name="remember" id="remember" value="on">`) {
			t.Errorf("RememberDays=%d: no checkbox posting remember=on", tt.days)
		}
	}
}

func TestAccountSwitch(t *testing.T) {
	out := renderAll(t)
	off, on := out["account"], out["account_totp_on"]
	offSwitch := `<span class="switch-text">OFF</span>`
	onSwitch := `<span class="switch-text">ON</span>`

	if !strings.Contains(off, offSwitch) || !strings.Contains(off, `action="/account/totp"`) {
		t.Error("2-Factor Auth off: no OFF switch posting to EnableTOTPAction")
	}
	for _, w := range []string{onSwitch, `href="/account/totp/disable"`, "Generate new recovery codes", "recovery codes left", "Forget all devices"} {
		if strings.Contains(off, w) {
			t.Errorf("2-Factor Auth off (no devices) shows %s", w)
		}
	}

	if !strings.Contains(on, onSwitch) || !strings.Contains(on, `<a href="/account/totp/disable" class="switch switch-on"`) {
		t.Error("2-Factor Auth on: no ON switch linking to DisableTOTPURL")
	}
	for _, w := range []string{offSwitch, `aria-pressed="false"`, `action="/account/totp"`} {
		if strings.Contains(on, w) {
			t.Errorf("2-Factor Auth on shows %s", w)
		}
	}

	// The OFF switch is the submit button of its own form.
	for _, f := range formRE.FindAllStringSubmatch(off, -1) {
		if strings.Contains(f[2], offSwitch) && !strings.Contains(f[1], `action="/account/totp"`) {
			t.Errorf("OFF switch in the wrong form: <form%s>", f[1])
		}
	}

	p := mustLoad(t)
	notLow := render(t, p, AccountPage{TOTPEnabled: true, RecoveryCodesLeft: 1})
	if !strings.Contains(notLow, "1 recovery code left") || strings.Contains(notLow, "running out") {
		t.Error("1 code left, not low: wrong count or a warning")
	}
}

func TestOTPAuthURL(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want template.URL
	}{
		{testOTPAuthURL, template.URL(testOTPAuthURL)},
		{"OTPAUTH://totp/x?secret=A", "OTPAUTH://totp/x?secret=A"},
		{"javascript:alert(1)", "#"},
		{"JavaScript:alert(1)//otpauth://", "#"},
		{" otpauth://totp/x", "#"},
		{"otpauth://totp/x\njavascript:alert(1)", "#"},
		{"https://example.com/", "#"},
		{"data:text/html,<script>alert(1)</script>", "#"},
		{"otpauth://", "#"},
		{"", "#"},
	} {
		if got := otpauthURL(tt.in); got != tt.want {
			t.Errorf("otpauthURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}

	p := mustLoad(t)
	out := render(t, p, EnrolTOTPPage{OTPAuthURL: "javascript:alert(1)"})
	if !strings.Contains(out, `<a href="#">Using this phone?`) {
		t.Error("a javascript: OTPAuthURL was not replaced by #")
	}
}

var imgSrcRE = regexp.MustCompile(`<div class="qr"><img src="([^"]*)"`)

func TestPNGDataURI(t *testing.T) {
	got, err := pngDataURI(qrPNG)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(string(got), prefix) {
		t.Fatalf("pngDataURI = %.40q..., want %s...", got, prefix)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(string(got), prefix))
	if err != nil || !bytes.Equal(b, qrPNG) {
		t.Errorf("the data URI does not hold the PNG (err %v)", err)
	}

	var gifBytes bytes.Buffer
	if err := gif.Encode(&gifBytes, image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.White}), nil); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"nil":            nil,
		"GIF":            gifBytes.Bytes(),
		"SVG":            []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`),
		"HTML":           []byte(`<script>alert(1)</script>`),
		"signature only": qrPNG[:8],
	} {
		if got, err := pngDataURI(b); err == nil {
			t.Errorf("pngDataURI(%s) = %.40q..., want an error", name, got)
		}
	}

	// As rendered (html/template writes "+" as &#43; in the attribute).
	m := imgSrcRE.FindStringSubmatch(renderAll(t)["enrol_totp"])
	if m == nil || html.UnescapeString(m[1]) != string(got) {
		t.Errorf("enrol_totp: the QR code image is not the PNG: %v", m)
	}

	// Rendering fails, and writes nothing, rather than embed such bytes.
	p := mustLoad(t)
	rec := httptest.NewRecorder()
	if err := p.Render(rec, 200, EnrolTOTPPage{QRCodePNG: gifBytes.Bytes()}); err == nil || rec.Body.Len() != 0 {
		t.Errorf("EnrolTOTPPage with a GIF as QRCodePNG: err %v, wrote %d bytes", err, rec.Body.Len())
	}
	// Without a QR code the page still offers the setup key.
	out := render(t, p, EnrolTOTPPage{SetupKey: "ABCD EFGH"})
	if strings.Contains(out, "<img src=\"data:") || !strings.Contains(out, "ABCD EFGH") {
		t.Error("EnrolTOTPPage without QRCodePNG: wrong image or no setup key")
	}
}

var downloadRE = regexp.MustCompile(`<a href="(data:[^"]*)" download="([^"]*)"`)

func TestCodesDownload(t *testing.T) {
	codes := append(append([]string{}, testCodes...), "a#b", "c&d e", "100%")
	uri := string(codesDataURI(codes))
	const prefix = "data:text/plain;charset=utf-8,"
	if !strings.HasPrefix(uri, prefix) {
		t.Fatalf("codesDataURI = %q", uri)
	}
	if strings.ContainsAny(uri, "# \n") {
		t.Errorf("codesDataURI left a character unescaped: %q", uri)
	}
	text, err := url.PathUnescape(strings.TrimPrefix(uri, prefix))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(codes, "\n") + "\n"; text != want {
		t.Errorf("download holds %q, want %q", text, want)
	}

	// As rendered: every code of the page is in the file.
	m := downloadRE.FindStringSubmatch(renderAll(t)["recovery_codes"])
	if m == nil {
		t.Fatal("recovery_codes: no download link")
	}
	href := html.UnescapeString(m[1])
	text, err = url.PathUnescape(strings.TrimPrefix(href, prefix))
	if err != nil || !strings.HasPrefix(href, prefix) {
		t.Fatalf("download href %q (err %v)", href, err)
	}
	for _, c := range testCodes {
		if !strings.Contains(text, c+"\n") {
			t.Errorf("download lacks %s", c)
		}
	}
	if m[2] != "recovery-codes-jane.doe.txt" {
		t.Errorf("download name %q", m[2])
	}
}

var codeElemRE = regexp.MustCompile(`<code>([^<]*)</code>`)

func TestRecoveryCodesEachInCode(t *testing.T) {
	out := renderAll(t)["recovery_codes"]
	start := strings.Index(out, `id="recovery-codes">`)
	end := strings.Index(out[start:], "</ul>")
	if start < 0 || end < 0 {
		t.Fatal("no #recovery-codes list")
	}
	var got []string
	for _, m := range codeElemRE.FindAllStringSubmatch(out[start:start+end], -1) {
		got = append(got, m[1])
	}
	if strings.Join(got, ",") != strings.Join(testCodes, ",") {
		t.Errorf("#recovery-codes holds %v, want %v", got, testCodes)
	}
}

// Only the recovery codes page and the WebAuthn pages ask for a script
// (the login page only when it offers passkeys), and every script a page
// asks for is an embedded asset.
func TestPageScripts(t *testing.T) {
	want := map[string]string{"recovery_codes": "copy.js", "security_key": "webauthn.js", "add_key": "webauthn.js"}
	for _, page := range required {
		got := pageScripts(page)
		if w, ok := want[page.templateName()]; ok {
			if len(got) != 1 || got[0] != w {
				t.Errorf("%s scripts = %v, want [%s]", page.templateName(), got, w)
			}
		} else if len(got) != 0 {
			t.Errorf("%s asks for scripts %v", page.templateName(), got)
		}
	}
	if got := pageScripts(LoginPage{PasskeyAction: "/login/passkey"}); len(got) != 1 || got[0] != "webauthn.js" {
		t.Errorf("login with passkeys scripts = %v, want [webauthn.js]", got)
	}
	versions, err := assetVersions(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if _, ok := versions[w]; !ok {
			t.Errorf("script %s is not an embedded asset", w)
		}
	}
	// A server may pass a pointer: it gets the same scripts.
	if got := pageScripts(&RecoveryCodesPage{}); len(got) != 1 {
		t.Errorf("*RecoveryCodesPage scripts = %v", got)
	}
}

func TestCopyScript(t *testing.T) {
	srv := staticServer(t)
	res, err := srv.Client().Get(srv.URL + "/static/copy.js")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("copy.js Content-Type %q", ct)
	}
	for _, w := range []string{"data-copy-target", "navigator.clipboard.writeText", `"Copied"`, "button.hidden = false"} {
		if !strings.Contains(body.String(), w) {
			t.Errorf("copy.js lacks %s", w)
		}
	}
}
