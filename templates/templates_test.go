package templates

import (
	"bytes"
	"flag"
	"html/template"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const token = "csrf-TOKEN-123"

// cases are the golden-file cases: at least one per page (checked by
// TestEveryPageHasAGoldenCase), with the data a server would fill in.
var cases = []struct {
	name string
	page Page
}{
	{"login", LoginPage{
		Base:              Base{Title: "Log in", CSRFToken: token},
		Action:            "/login",
		AuthRequestID:     "ar_7f3k2",
		ClientName:        "Client Portal",
		ForgotPasswordURL: "https://portal.example.com/password/reset",
	}},
	{"login_failed", LoginPage{
		Base:          Base{Title: "Log in", CSRFToken: token, Error: "Incorrect username or password."},
		Action:        "/login",
		AuthRequestID: "ar_7f3k2",
		Username:      "jane.doe",
	}},
	{"consent", ConsentPage{
		Base:          Base{Title: "Allow access", CSRFToken: token},
		Action:        "/consent",
		AuthRequestID: "ar_7f3k2",
		ClientName:    "Billing Dashboard",
		Username:      "jane.doe",
		Scopes: []Scope{
			{Name: "openid", Description: "Your user ID"},
			{Name: "profile", Description: "Your name and username"},
			{Name: "email", Description: "Your email address"},
			{Name: "offline_access"},
		},
	}},
	{"error", ErrorPage{
		Base:     Base{Title: "Error"},
		Status:   http.StatusBadRequest,
		Heading:  "This sign-in link is not valid",
		Message:  "The application that sent you here is not registered. Go back to it and try again.",
		LinkURL:  "https://portal.example.com/",
		LinkText: "Back to the Client Portal",
	}},
	{"logout", LogoutPage{
		Base:       Base{Title: "Log out", CSRFToken: token},
		Action:     "/logout",
		ClientName: "Client Portal",
		Hidden: []Hidden{
			{Name: "state", Value: "s-123"},
			{Name: "post_logout_redirect_uri", Value: "https://portal.example.com/bye?a=1&b=2"},
		},
	}},
	{"message", MessagePage{
		Base:     Base{Title: "Logged out", Notice: "Your session has ended on this device."},
		Heading:  "You are logged out",
		Message:  "You can close this page, or log in again.",
		LinkURL:  "https://portal.example.com/",
		LinkText: "Back to the Client Portal",
	}},

	// The second factor at login.
	{"second_factor", SecondFactorPage{
		Base:          Base{Title: "2-Factor Authentication", CSRFToken: token},
		Action:        "/login/totp",
		AuthRequestID: "ar_7f3k2",
		ClientName:    "Client Portal",
		RememberDays:  30,
		MethodsURL:    "/login/methods?id=ar_7f3k2",
	}},
	{"second_factor_failed", SecondFactorPage{
		Base:       Base{Title: "2-Factor Authentication", CSRFToken: token, Error: "That code is not valid. Enter the code your app shows now."},
		Action:     "/login/totp",
		MethodsURL: "/login/methods",
	}},
	{"methods", MethodsPage{
		Base: Base{Title: "Try another method", CSRFToken: token},
		Methods: []Method{
			{Label: "Authenticator app", Description: "Get a code from Duo Mobile, Google Authenticator or another app.", URL: "/login/totp?id=ar_7f3k2"},
			{Label: "SMS code", Description: "Get a code by text message to •••• 0123.", URL: "/login/sms?id=ar_7f3k2"},
			{Label: "Recovery code", Description: "Use one of the codes you saved when you set up 2-factor authentication.", URL: "/login/recovery?id=ar_7f3k2"},
			{Label: "Security key", URL: "/login/webauthn?id=ar_7f3k2"},
		},
		BackURL: "/login/totp?id=ar_7f3k2",
	}},
	{"second_factor_sms", SecondFactorPage{
		Base:          Base{Title: "2-Factor Authentication", CSRFToken: token},
		Action:        "/login/mfa",
		AuthRequestID: "ar_7f3k2",
		ClientName:    "Client Portal",
		RememberDays:  30,
		MethodsURL:    "/login/methods?id=ar_7f3k2",
		SendSMSAction: "/login/sms/send",
	}},
	{"sms_code", SMSCodePage{
		Base:          Base{Title: "2-Factor Authentication", CSRFToken: token},
		Action:        "/login/sms",
		SendAction:    "/login/sms/send",
		AuthRequestID: "ar_7f3k2",
		ClientName:    "Client Portal",
		MaskedPhone:   "+1 ••• ••• 0123",
		RememberDays:  30,
		MethodsURL:    "/login/methods?id=ar_7f3k2",
	}},
	{"sms_code_sent", SMSCodePage{
		Base:          Base{Title: "2-Factor Authentication", CSRFToken: token, Error: "That code is not right. Enter the six-digit code from the text message."},
		Action:        "/login/sms",
		SendAction:    "/login/sms/send",
		AuthRequestID: "ar_7f3k2",
		ClientName:    "Client Portal",
		MaskedPhone:   "+1 ••• ••• 0123",
		Sent:          true,
		RememberDays:  30,
		MethodsURL:    "/login/methods?id=ar_7f3k2",
	}},
	{"login_passkey", LoginPage{
		Base:            Base{Title: "Log in", CSRFToken: token},
		Action:          "/login/password",
		AuthRequestID:   "ar_7f3k2",
		ClientName:      "Client Portal",
		PasskeyAction:   "/login/passkey",
		PasskeyBeginURL: "/login/passkey/begin",
	}},
	{"security_key", SecurityKeyPage{
		Base:          Base{Title: "2-Factor Authentication", CSRFToken: token, Error: "That security key was not accepted."},
		Action:        "/login/key",
		BeginURL:      "/login/key/begin",
		AuthRequestID: "ar_7f3k2",
		ClientName:    "Client Portal",
		RememberDays:  30,
		MethodsURL:    "/login/methods?id=ar_7f3k2",
	}},
	{"recovery_login", RecoveryLoginPage{
		Base:          Base{Title: "Use a recovery code", CSRFToken: token},
		Action:        "/login/recovery",
		AuthRequestID: "ar_7f3k2",
		ClientName:    "Client Portal",
		MethodsURL:    "/login/methods?id=ar_7f3k2",
	}},
	{"replacement_code", ReplacementCodePage{
		Base:          Base{Title: "Your new recovery code", CSRFToken: token},
		Action:        "/login/recovery/continue",
		AuthRequestID: "ar_7f3k2",
		Code:          "7kq2-mx9d-4hwp",
		CodesLeft:     10,
	}},

	// The account pages.
	{"account", AccountPage{
		Base:                Base{Title: "Your account", CSRFToken: token},
		Username:            "jane.doe",
		Name:                "Jane Doe",
		Email:               "jane.doe@example.com",
		EmailVerified:       true,
		ChangeEmailURL:      "/account/email",
		ChangePasswordURL:   "/account/password",
		EnableTOTPAction:    "/account/totp",
		DisableTOTPURL:      "/account/totp/disable",
		RegenerateCodesURL:  "/account/recovery-codes",
		ForgetDevicesAction: "/account/devices/forget",
		LogoutAction:        "/account/logout",
	}},
	{"account_totp_on", AccountPage{
		Base:               Base{Title: "Your account", CSRFToken: token, Notice: "2-factor authentication is on."},
		Username:           "jane.doe",
		Name:               "Jane Doe",
		Email:              "jane.doe@example.com",
		EmailVerified:      true,
		TOTPEnabled:        true,
		EnableTOTPAction:   "/account/totp",
		DisableTOTPURL:     "/account/totp/disable",
		RecoveryCodesLeft:  2,
		RecoveryCodesLow:   true,
		RegenerateCodesURL: "/account/recovery-codes",
		Devices: []DeviceItem{
			{Description: "Chrome on macOS", Created: "2 March 2026", LastUsed: "Today, 09:14", Expires: "1 April 2026"},
			{Description: "Safari on iPhone", Created: "20 March 2026", Expires: "19 April 2026"},
		},
		ForgetDevicesAction: "/account/devices/forget",
		LogoutAction:        "/account/logout",
	}},
	{"account_phone_unverified", AccountPage{
		Base:             Base{Title: "Your account", CSRFToken: token, Notice: "We sent a code to your cell phone."},
		Username:         "jane.doe",
		Email:            "jane.doe@example.com",
		EnableTOTPAction: "/account/2fa/enable",
		LogoutAction:     "/account/logout",
		Phone: PhoneSection{
			Available: true, Number: "+1 415-555-0123", CodeSentTo: "+1 ••• ••• 0123",
			Countries:  []CountryOption{{Region: "CA", Label: "Canada (+1)"}, {Region: "US", Label: "United States (+1)", Selected: true}},
			Error:      "That code is not right. Enter the six-digit code from the text message.",
			SaveAction: "/account/phone", VerifyAction: "/account/phone/verify", ResendAction: "/account/phone/resend", RemoveAction: "/account/phone/remove",
		},
	}},
	{"account_phone_only_factor", AccountPage{
		Base:              Base{Title: "Your account", CSRFToken: token},
		Username:          "jane.doe",
		Email:             "jane.doe@example.com",
		EnableTOTPAction:  "/account/2fa/enable",
		RecoveryCodesLeft: 10,
		LogoutAction:      "/account/logout",
		Phone: PhoneSection{
			Available: true, Number: "+44 7400 123456", Verified: true, SecondFactor: true,
			Countries:     []CountryOption{{Region: "GB", Label: "United Kingdom (+44)", Selected: true}},
			AllowedNotice: "Codes are sent only to the countries in the list.",
			SaveAction:    "/account/phone", RemoveAction: "/account/phone/remove",
		},
	}},
	{"account_no_sms", AccountPage{
		Base:             Base{Title: "Your account", CSRFToken: token},
		Username:         "jane.doe",
		Email:            "jane.doe@example.com",
		EnableTOTPAction: "/account/2fa/enable",
		LogoutAction:     "/account/logout",
		Phone:            PhoneSection{Number: "+1 415-555-0123", Verified: true},
	}},
	{"add_key", AddKeyPage{
		Base:      Base{Title: "Add a security key", CSRFToken: token},
		Action:    "/account/keys/add",
		BeginURL:  "/account/keys/add/begin",
		Name:      "YubiKey",
		CancelURL: "/account",
	}},
	{"remove_key", RemoveKeyPage{
		Base:      Base{Title: "Remove security key", CSRFToken: token},
		Action:    "/account/keys/remove",
		KeyID:     "k_3nq8",
		Name:      "YubiKey 5C",
		CancelURL: "/account",
	}},
	{"account_keys", AccountPage{
		Base:              Base{Title: "Your account", CSRFToken: token},
		Username:          "jane.doe",
		Email:             "jane.doe@example.com",
		EnableTOTPAction:  "/account/2fa/enable",
		RecoveryCodesLeft: 10,
		LogoutAction:      "/account/logout",
		Keys: KeysSection{Available: true, AddURL: "/account/keys/add", Items: []KeyItem{
			{Name: "YubiKey 5C", Added: "2 Mar 2026, 09:14 UTC", LastUsed: "1 Dec 2026, 08:00 UTC", RemoveURL: "/account/keys/remove?key=k_3nq8"},
			{Name: "Laptop", Added: "3 Mar 2026, 10:00 UTC", RemoveURL: "/account/keys/remove?key=k_9x"},
		}},
	}},
	{"account_activity", AccountPage{
		Base:                Base{Title: "Your account", CSRFToken: token},
		Username:            "jane.doe",
		Name:                "Jane Doe",
		Email:               "jane.doe@example.com",
		EmailVerified:       true,
		ChangePasswordURL:   "/account/password",
		TOTPEnabled:         true,
		DisableTOTPURL:      "/account/2fa/disable",
		RecoveryCodesLeft:   9,
		RegenerateCodesURL:  "/account/recovery-codes",
		ForgetDevicesAction: "/account/devices/forget",
		LogoutAction:        "/account/logout",
		Activity: []ActivityItem{
			{Label: "New sign-in", Time: "4 Mar 2026, 09:14 UTC", Device: "Chrome on macOS", IP: "203.0.113.7"},
			{Label: "Recovery code used", Time: "4 Mar 2026, 09:14 UTC", Device: "Chrome on macOS", IP: "203.0.113.7"},
			{Label: "Failed sign-in attempt", Time: "3 Mar 2026, 23:02 UTC", Device: "Unknown browser", IP: "2001:db8::17"},
			{Label: "2-Factor Auth turned on", Time: "2 Mar 2026, 18:40 UTC", Device: "Safari on iPhone", IP: "198.51.100.23"},
			{Label: "Second factors reset by support", Time: "1 Mar 2026, 10:00 UTC"},
		},
	}},
	{"forgot_password", ForgotPasswordPage{
		Base:    Base{Title: "Forgot your password?", CSRFToken: token},
		Action:  "/password/forgot",
		LoginID: "ar_7f3k2",
		BackURL: "/login?id=ar_7f3k2",
	}},
	{"forgot_password_sent", ForgotPasswordPage{
		Base:     Base{Title: "Forgot your password?"},
		Username: "jane.doe",
		Sent:     true,
		BackURL:  "/login?id=ar_7f3k2",
	}},
	{"new_password", NewPasswordPage{
		Base:          Base{Title: "Choose a new password", CSRFToken: token, Error: "The two passwords are not the same. Type the new password twice."},
		Action:        "/password/new",
		AuthRequestID: "ar_7f3k2",
		Username:      "jane.doe",
		Rules:         []string{"At least 12 characters.", "Not a common password."},
	}},
	{"change_password", NewPasswordPage{
		Base:      Base{Title: "Change your password", CSRFToken: token},
		Action:    "/account/password",
		Current:   true,
		Rules:     []string{"At least 12 characters."},
		CancelURL: "/account",
	}},
	{"change_email", ChangeEmailPage{
		Base:      Base{Title: "Change your e-mail address", CSRFToken: token},
		Action:    "/account/email",
		Email:     "jane.doe@example.com",
		Verified:  true,
		Pending:   "jane@example.org",
		CancelURL: "/account",
	}},
	{"confirm_email", ConfirmEmailPage{
		Base:     Base{Title: "Confirm your e-mail address", CSRFToken: token},
		Action:   "/account/email/confirm",
		Token:    "tok_123",
		Email:    "jane@example.org",
		Username: "jane.doe",
	}},
	{"enrol_totp", EnrolTOTPPage{
		Base:       Base{Title: "Set up 2-factor authentication", CSRFToken: token},
		Action:     "/account/totp/confirm",
		QRCodePNG:  qrPNG,
		SetupKey:   "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP",
		OTPAuthURL: testOTPAuthURL,
		Issuer:     "Client Portal",
		Account:    "jane.doe@example.com",
		CancelURL:  "/account",
	}},
	{"enrol_totp_login", EnrolTOTPPage{
		Base:          Base{Title: "Set up 2-factor authentication", CSRFToken: token, Error: "That code is not valid. Enter the code your app shows now."},
		Action:        "/login/enrol",
		AuthRequestID: "ar_7f3k2",
		QRCodePNG:     qrPNG,
		SetupKey:      "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP",
		OTPAuthURL:    testOTPAuthURL,
		Issuer:        "Client Portal",
		Account:       "jane.doe@example.com",
	}},
	{"recovery_codes", RecoveryCodesPage{
		Base:         Base{Title: "Save your recovery codes", CSRFToken: token},
		Codes:        testCodes,
		DownloadName: "recovery-codes-jane.doe.txt",
		ContinueURL:  "/account",
	}},
	{"recovery_codes_login", RecoveryCodesPage{
		Base:           Base{Title: "Save your recovery codes", CSRFToken: token},
		Codes:          testCodes,
		DownloadName:   "recovery-codes-jane.doe.txt",
		ContinueAction: "/login/enrol/done",
		AuthRequestID:  "ar_7f3k2",
	}},
	{"confirm_factor", ConfirmFactorPage{
		Base:        Base{Title: "Turn off 2-Factor Auth", CSRFToken: token},
		Action:      "/account/totp/disable",
		Heading:     "Turn off 2-factor authentication?",
		Message:     "Your account will be protected by your password only, and your recovery codes will stop working.",
		SubmitLabel: "Turn off 2-Factor Auth",
		CancelURL:   "/account",
		Danger:      true,
		AppCode:     true,
	}},
	{"confirm_factor_sms", ConfirmFactorPage{
		Base:          Base{Title: "New recovery codes", CSRFToken: token},
		Action:        "/account/recovery-codes",
		Heading:       "Generate new recovery codes",
		Message:       "Enter a current code (or a recovery code).",
		SubmitLabel:   "Generate new recovery codes",
		CancelURL:     "/account",
		SendSMSAction: "/account/confirm/sms",
		SMSSentTo:     "+1 ••• ••• 0123",
	}},
}

// qrPNG is a real QR code of testOTPAuthURL (53×53 pixels, one per module).
var qrPNG = func() []byte {
	b, err := os.ReadFile("testdata/qr.png")
	if err != nil {
		panic(err)
	}
	return b
}()

const testOTPAuthURL = "otpauth://totp/Client%20Portal:jane.doe%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Client%20Portal"

var testCodes = []string{
	"4f7k-q2m9-xd8h", "p3wz-7nrc-k5tb", "m8hd-2qxv-9jfa", "c6tr-w4kp-3ymz", "x9bn-5fhe-q7dc",
	"r2va-8ktm-6wgp", "h5ys-3dcq-n9xe", "z7pf-6mwa-2kdr", "e4jc-9vtn-8hqb", "w3mk-7xpr-5fza",
}

func mustLoad(t *testing.T) *Pages {
	t.Helper()
	p, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

var assetVersion = regexp.MustCompile(`\?v=[0-9a-f]{12}`)

// render renders page through Render and returns the body, with the asset
// hashes replaced so the golden files do not change with every CSS edit.
func render(t *testing.T, p *Pages, page Page) string {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := p.Render(rec, http.StatusOK, page); err != nil {
		t.Fatalf("Render(%T): %v", page, err)
	}
	return assetVersion.ReplaceAllString(rec.Body.String(), "?v=HASH")
}

func renderAll(t *testing.T) map[string]string {
	t.Helper()
	p := mustLoad(t)
	out := make(map[string]string, len(cases))
	for _, c := range cases {
		out[c.name] = render(t, p, c.page)
	}
	return out
}

func TestLoad(t *testing.T) {
	p := mustLoad(t)
	for _, page := range required {
		if p.pages[page.templateName()] == nil {
			t.Errorf("page %q not loaded", page.templateName())
		}
	}
}

// embedded copies the embedded files into a MapFS that a test may break.
func embedded(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadRefusesBrokenPages(t *testing.T) {
	if _, err := load(embedded(t)); err != nil {
		t.Fatalf("load(copy of embedded files): %v", err)
	}
	tests := []struct {
		name    string
		breakFS func(fstest.MapFS)
		want    []string
	}{
		{"missing page", func(m fstest.MapFS) { delete(m, "pages/consent.html") }, []string{`"consent"`}},
		{"two missing pages", func(m fstest.MapFS) {
			delete(m, "pages/login.html")
			delete(m, "pages/logout.html")
		}, []string{`"login"`, `"logout"`}},
		{"parse error", func(m fstest.MapFS) {
			m["pages/message.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{.Heading{{end}}`)}
		}, []string{`"message"`}},
		{"no content", func(m fstest.MapFS) {
			m["pages/error.html"] = &fstest.MapFile{Data: []byte(`{{define "heading"}}x{{end}}`)}
		}, []string{`"error"`, `"content"`}},
		{"misspelt field", func(m fstest.MapFS) {
			m["pages/login.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{.UserName}}{{end}}`)}
		}, []string{`"login"`, "UserName"}},
		{"unknown asset", func(m fstest.MapFS) {
			m["pages/logout.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}<img src="{{static "nope.png"}}">{{end}}`)}
		}, []string{`"logout"`, "nope.png"}},
		{"missing layout", func(m fstest.MapFS) { delete(m, "layout.html") }, []string{"layout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := embedded(t)
			tt.breakFS(m)
			p, err := load(m)
			if err == nil {
				t.Fatalf("load succeeded (%d pages), want an error", len(p.pages))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestEveryPageHasAGoldenCase(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.page.templateName()] = true
	}
	for _, page := range required {
		if !covered[page.templateName()] {
			t.Errorf("page %q has no golden-file case", page.templateName())
		}
	}
}

func TestGolden(t *testing.T) {
	for name, got := range renderAll(t) {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./templates -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the rendered page (run go test ./templates -update if intended)\n--- got ---\n%s", file, got)
			}
		})
	}
}

func TestStableLabelsAndButtons(t *testing.T) {
	out := renderAll(t)
	tests := []struct {
		page string
		want []string
	}{
		{"login", []string{
			`<label for="username">Username</label>`,
			`id="username"`,
			`name="username"`,
			`autocomplete="username"`,
			`<label for="password">Password</label>`,
			`<input type="password" name="password" id="password" autocomplete="current-password" required`,
			`<button type="submit" class="button button-primary">Log In</button>`,
			`<input type="hidden" name="id" value="ar_7f3k2">`,
			`<a href="https://portal.example.com/password/reset">Forgot Password?</a>`,
			`to continue to <strong>Client Portal</strong>`,
		}},
		{"consent", []string{
			`Billing Dashboard wants to access your account`,
			`Signed in as <strong>jane.doe</strong>`,
			`<button type="submit" name="decision" value="allow" class="button button-primary">Allow</button>`,
			`<button type="submit" name="decision" value="deny" class="button button-secondary">Deny</button>`,
			`<li>Your email address</li>`,
			`<li>offline_access</li>`,
			`<input type="hidden" name="id" value="ar_7f3k2">`,
		}},
		{"logout", []string{
			`Log out of your account?`,
			`<button type="submit" class="button button-primary">Log Out</button>`,
			`<input type="hidden" name="state" value="s-123">`,
			`<input type="hidden" name="post_logout_redirect_uri" value="https://portal.example.com/bye?a=1&amp;b=2">`,
		}},
		{"error", []string{
			`This sign-in link is not valid`,
			`Error 400`,
			`<a href="https://portal.example.com/" class="button button-secondary">Back to the Client Portal</a>`,
		}},
		{"message", []string{
			`<h1>You are logged out</h1>`,
			`role="status">Your session has ended on this device.</div>`,
		}},
	}
	for _, tt := range tests {
		for _, w := range tt.want {
			if !strings.Contains(out[tt.page], w) {
				t.Errorf("page %s lacks %s", tt.page, w)
			}
		}
	}
	if strings.Contains(out["login_failed"], "Forgot Password?") {
		t.Error("login without ForgotPasswordURL shows a Forgot Password? link")
	}
}

var (
	formRE    = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	labelRE   = regexp.MustCompile(`<label for="([^"]+)">`)
	inputRE   = regexp.MustCompile(`<input\b[^>]*>`)
	autofocus = regexp.MustCompile(`<input\b[^>]*\bid="([^"]+)"[^>]*\bautofocus\b`)
)

func TestEveryFormPostsWithCSRFToken(t *testing.T) {
	csrf := `<input type="hidden" name="csrf_token" value="` + token + `">`
	for name, html := range renderAll(t) {
		if n := strings.Count(html, "<form"); n != len(formRE.FindAllString(html, -1)) {
			t.Errorf("%s: %d <form tags, not all closed", name, n)
		}
		for _, f := range formRE.FindAllStringSubmatch(html, -1) {
			if !strings.Contains(f[1], `method="post"`) {
				t.Errorf("%s: form without method=\"post\": <form%s>", name, f[1])
			}
			if strings.Count(f[2], csrf) != 1 {
				t.Errorf("%s: form <form%s> lacks exactly one %s", name, f[1], csrf)
			}
		}
	}
}

func TestLabelsPointAtFields(t *testing.T) {
	for name, html := range renderAll(t) {
		for _, m := range labelRE.FindAllStringSubmatch(html, -1) {
			if strings.Count(html, `id="`+m[1]+`"`) != 1 {
				t.Errorf("%s: <label for=%q> matches no single element", name, m[1])
			}
		}
		for _, in := range inputRE.FindAllString(html, -1) {
			if strings.Contains(in, `type="hidden"`) {
				continue
			}
			id := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(in)
			if id == nil || !strings.Contains(html, `<label for="`+id[1]+`">`) {
				t.Errorf("%s: input without a label: %s", name, in)
			}
		}
	}
}

func TestLoginFocusAndErrorAssociation(t *testing.T) {
	out := renderAll(t)
	if got := autofocus.FindAllStringSubmatch(out["login"], -1); len(got) != 1 || got[0][1] != "username" {
		t.Errorf("empty login form: autofocus on %v, want username only", got)
	}
	failed := out["login_failed"]
	if got := autofocus.FindAllStringSubmatch(failed, -1); len(got) != 1 || got[0][1] != "password" {
		t.Errorf("login with Username: autofocus on %v, want password only", got)
	}
	for _, w := range []string{
		`<div class="alert alert-error" id="page-error" role="alert">Incorrect username or password.</div>`,
		`value="jane.doe"`,
	} {
		if !strings.Contains(failed, w) {
			t.Errorf("failed login lacks %s", w)
		}
	}
	if n := strings.Count(failed, `aria-describedby="page-error"`); n != 2 {
		t.Errorf("failed login: %d fields described by the error, want 2", n)
	}
	if strings.Contains(out["login"], "page-error") {
		t.Error("login without Error refers to page-error")
	}
}

// copyScript is the one script tag a page may have: the recovery codes
// page's copy button, from a static file, never inline code.
const copyScript = `<script src="/static/copy.js?v=HASH" defer></script>`

// withoutPageScripts removes the script tags of the static files page asks
// for (pageScripts), failing unless each is there exactly once and nothing
// else is a script.
func withoutPageScripts(t *testing.T, name, html string, page Page) string {
	t.Helper()
	scripts := pageScripts(page)
	if n := strings.Count(html, "<script"); n != len(scripts) {
		t.Errorf("%s: %d script tags, want %d (%v)", name, n, len(scripts), scripts)
	}
	for _, js := range scripts {
		tag := `<script src="/static/` + js + `?v=HASH" defer></script>`
		if !strings.Contains(html, tag) {
			t.Errorf("%s: lacks %s", name, tag)
		}
		html = strings.Replace(html, tag, "", 1)
	}
	return html
}

func TestNoScriptNoInlineStyle(t *testing.T) {
	forbidden := regexp.MustCompile(`(?i)<script|<style|\sstyle=|\son[a-z]+=|javascript:`)
	p := mustLoad(t)
	for _, c := range cases {
		name := c.name
		html := withoutPageScripts(t, name, render(t, p, c.page), c.page)
		if c.page.templateName() == "recovery_codes" && !strings.Contains(render(t, p, c.page), copyScript) {
			t.Errorf("%s: lacks %s", name, copyScript)
		}
		if m := forbidden.FindString(html); m != "" {
			t.Errorf("%s contains %q: the Content-Security-Policy would block it", name, m)
		}
		for _, w := range []string{`<html lang="en">`, `<meta name="viewport"`, `<link rel="stylesheet" href="/static/style.css?v=HASH">`} {
			if !strings.Contains(html, w) {
				t.Errorf("%s lacks %s", name, w)
			}
		}
	}
}

func TestUserDataIsEscaped(t *testing.T) {
	p := mustLoad(t)
	evil := `<script>alert(1)</script>`
	pages := []Page{
		LoginPage{
			Base:              Base{Title: evil, CSRFToken: `"><script>x</script>`, Error: evil},
			Action:            `javascript:alert(1)`,
			AuthRequestID:     `"><script>`,
			ClientName:        `"><img src=x onerror=alert(1)>`,
			Username:          evil,
			ForgotPasswordURL: "javascript:alert(1)",
		},
		ConsentPage{Base: Base{Notice: evil}, ClientName: evil, Username: evil, Scopes: []Scope{{Name: evil}, {Description: evil}}},
		ErrorPage{Heading: evil, Message: evil, LinkURL: "javascript:alert(1)", LinkText: evil},
		LogoutPage{ClientName: evil, Hidden: []Hidden{{Name: `"><script>`, Value: evil}}},
		MessagePage{Heading: evil, Message: evil, LinkURL: "JaVaScRiPt:alert(1)", LinkText: evil},
		SecondFactorPage{Base: Base{Error: evil}, Action: "javascript:alert(1)", AuthRequestID: evil, ClientName: evil, RememberDays: 30, MethodsURL: "javascript:alert(1)"},
		MethodsPage{Methods: []Method{{Label: evil, Description: evil, URL: "javascript:alert(1)"}}, BackURL: "javascript:alert(1)"},
		RecoveryLoginPage{AuthRequestID: evil, ClientName: evil, MethodsURL: "javascript:alert(1)"},
		ReplacementCodePage{AuthRequestID: evil, Code: evil},
		AccountPage{
			Username: evil, Name: evil, Email: evil, TOTPEnabled: true,
			DisableTOTPURL: "javascript:alert(1)", RegenerateCodesURL: "javascript:alert(1)",
			Devices: []DeviceItem{{Description: evil, Created: evil, LastUsed: evil, Expires: evil}},
		},
		AccountPage{Username: evil, Email: evil, EnableTOTPAction: "javascript:alert(1)"},
		AccountPage{Username: evil, Phone: PhoneSection{Available: true, Number: evil, CodeSentTo: evil, Input: `"><script>x</script>`, Error: evil,
			Countries: []CountryOption{{Region: `"><script>`, Label: evil}}, SaveAction: "javascript:alert(1)", VerifyAction: "javascript:alert(1)",
			ResendAction: "javascript:alert(1)", RemoveAction: "javascript:alert(1)", AllowedNotice: evil}},
		SMSCodePage{Base: Base{Error: evil}, Action: "javascript:alert(1)", SendAction: "javascript:alert(1)", AuthRequestID: evil,
			ClientName: evil, MaskedPhone: evil, Sent: true, MethodsURL: "javascript:alert(1)"},
		SMSCodePage{SendAction: "javascript:alert(1)", MaskedPhone: evil},
		SecondFactorPage{SendSMSAction: "javascript:alert(1)", AuthRequestID: evil},
		SecurityKeyPage{Base: Base{Error: evil}, Action: "javascript:alert(1)", BeginURL: "javascript:alert(1)", AuthRequestID: evil, ClientName: evil, MethodsURL: "javascript:alert(1)"},
		AddKeyPage{Base: Base{Error: evil}, Action: "javascript:alert(1)", BeginURL: "javascript:alert(1)", Name: `"><script>x</script>`, CancelURL: "javascript:alert(1)"},
		RemoveKeyPage{Action: "javascript:alert(1)", KeyID: `"><script>`, Name: evil, CancelURL: "javascript:alert(1)"},
		AccountPage{Keys: KeysSection{Available: true, AddURL: "javascript:alert(1)", Items: []KeyItem{{Name: evil, Added: evil, LastUsed: evil, RemoveURL: "javascript:alert(1)"}}}},
		LoginPage{PasskeyAction: "javascript:alert(1)", PasskeyBeginURL: "javascript:alert(1)", AuthRequestID: evil},
		ForgotPasswordPage{Base: Base{Error: evil}, Action: "javascript:alert(1)", LoginID: evil, Username: evil, BackURL: "javascript:alert(1)"},
		ForgotPasswordPage{Username: evil, Sent: true},
		NewPasswordPage{Action: "javascript:alert(1)", AuthRequestID: evil, Username: evil, Rules: []string{evil}, CancelURL: "javascript:alert(1)"},
		ChangeEmailPage{Action: "javascript:alert(1)", Email: evil, Pending: evil, Input: `"><script>x</script>`, CancelURL: "javascript:alert(1)"},
		ConfirmEmailPage{Action: "javascript:alert(1)", Token: `"><script>`, Email: evil, Username: evil},
		AccountPage{Email: evil, ChangeEmailURL: "javascript:alert(1)", ChangePasswordURL: "javascript:alert(1)"},
		AccountPage{ChangePasswordURL: "javascript:alert(1)", Activity: []ActivityItem{{Label: evil, Time: evil, Device: evil, IP: evil}}},

		EnrolTOTPPage{
			AuthRequestID: evil, QRCodePNG: qrPNG, SetupKey: evil, OTPAuthURL: "javascript:alert(1)",
			Issuer: evil, Account: `"><img src=x onerror=alert(1)>`, CancelURL: "javascript:alert(1)",
		},
		RecoveryCodesPage{Codes: []string{evil, `"><img src=x onerror=alert(1)>`}, DownloadName: `"><script>`, ContinueURL: "javascript:alert(1)"},
		RecoveryCodesPage{Codes: []string{evil}, ContinueAction: "javascript:alert(1)", AuthRequestID: evil},
		ConfirmFactorPage{Heading: evil, Message: evil, SubmitLabel: evil, CancelURL: "javascript:alert(1)"},
		ConfirmFactorPage{Action: `"><script>x</script>`, SendSMSAction: "javascript:alert(1)", SMSSentTo: evil},
	}
	forbidden := regexp.MustCompile(`(?i)<script|<img src=x|javascript:`)
	for _, page := range pages {
		html := withoutPageScripts(t, page.templateName(), render(t, p, page), page)
		if m := forbidden.FindString(html); m != "" {
			t.Errorf("%T: user data came out unescaped: %q", page, m)
		}
		if !strings.Contains(html, "&lt;script&gt;") {
			t.Errorf("%T: escaped user data missing", page)
		}
	}
}

func TestRenderHeaders(t *testing.T) {
	p := mustLoad(t)
	rec := httptest.NewRecorder()
	if err := p.Render(rec, http.StatusBadRequest, ErrorPage{Heading: "Bad request"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", rec.Code)
	}
	for k, v := range map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"} {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

// brokenPage names a template that fails halfway through rendering.
type brokenPage struct{ Base }

func (brokenPage) templateName() string { return "broken" }

func TestRenderWritesNothingOnError(t *testing.T) {
	p := mustLoad(t)
	p.pages["broken"] = template.Must(template.New("layout").Parse(
		`{{define "layout"}}<!doctype html><p>half a page{{.NoSuchField}}</p>{{end}}`))
	for _, page := range []Page{brokenPage{}, nil, unknownPage{}} {
		rec := httptest.NewRecorder()
		if err := p.Render(rec, http.StatusOK, page); err == nil {
			t.Errorf("Render(%T) succeeded, want an error", page)
		}
		if rec.Body.Len() != 0 || len(rec.Header()) != 0 || rec.Result().Header.Get("Content-Type") != "" {
			t.Errorf("Render(%T) wrote %q with headers %v", page, rec.Body, rec.Header())
		}
		// Nothing written means the caller can still send an error.
		http.Error(rec, "Internal Server Error", http.StatusInternalServerError)
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("after a failed Render(%T) the status is %d", page, rec.Code)
		}
	}
}

type unknownPage struct{}

func (unknownPage) templateName() string { return "no-such-page" }

func staticServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle(StaticPath, http.StripPrefix(StaticPath, Static()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestStatic(t *testing.T) {
	srv := staticServer(t)
	tests := []struct {
		method, path string
		status       int
		contentType  string
	}{
		{"GET", "/static/style.css", 200, "text/css; charset=utf-8"},
		{"GET", "/static/style.css?v=0123456789ab", 200, "text/css; charset=utf-8"},
		{"HEAD", "/static/logo.svg", 200, "image/svg+xml"},
		{"GET", "/static/copy.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/", 404, ""},
		{"GET", "/static/nope.css", 404, ""},
		{"GET", "/static/../layout.html", 404, ""},
		{"POST", "/static/style.css", 405, ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		if _, err := body.ReadFrom(res.Body); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, res.StatusCode, tt.status)
			continue
		}
		if tt.status != 200 {
			continue
		}
		if got := res.Header.Get("Content-Type"); got != tt.contentType {
			t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.path, got, tt.contentType)
		}
		if got := res.Header.Get("Cache-Control"); !strings.Contains(got, "max-age=31536000") {
			t.Errorf("%s %s: Cache-Control %q, want a long max-age", tt.method, tt.path, got)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: X-Content-Type-Options %q", tt.method, tt.path, got)
		}
		if tt.path == "/static/style.css" && !strings.Contains(body.String(), ".switch") {
			t.Errorf("style.css served without its rules")
		}
	}
}

// Every asset a page links to must be served: a broken link would only
// show as an unstyled page in a browser.
func TestPagesLinkServedAssets(t *testing.T) {
	srv := staticServer(t)
	p := mustLoad(t)
	link := regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`)
	for _, c := range cases {
		rec := httptest.NewRecorder()
		if err := p.Render(rec, http.StatusOK, c.page); err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(rec.Body.String(), -1) {
			res, err := srv.Client().Get(srv.URL + m[1])
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s links %s: status %d", c.name, m[1], res.StatusCode)
			}
		}
	}
}

// "Recent security activity" comes after "Remembered devices", lists each
// event with its time, device and IP, and tells the user what to do.
func TestAccountActivity(t *testing.T) {
	out := renderAll(t)
	page := out["account_activity"]
	devices, activity := strings.Index(page, `id="devices-heading"`), strings.Index(page, `<h2 id="activity-heading">Recent security activity</h2>`)
	if devices < 0 || activity < devices {
		t.Fatalf("the activity section is missing or not after Remembered devices (at %d, devices at %d)", activity, devices)
	}
	section := page[activity:]
	for _, w := range []string{
		`<p class="device-name">New sign-in</p>`,
		`<dd>4 Mar 2026, 09:14 UTC</dd>`,
		`<dt>Device</dt>
<dd>Chrome on macOS</dd>`,
		`<dt>IP address</dt>
<dd>203.0.113.7</dd>`,
		`<p class="device-name">Failed sign-in attempt</p>`,
		`<p>Not you? <a href="/account/password">Change your password</a> and contact support.</p>`,
	} {
		if !strings.Contains(section, w) {
			t.Errorf("activity section lacks %s", w)
		}
	}
	if n := strings.Count(section, `<p class="device-name">`); n != 5 {
		t.Errorf("activity section lists %d events, want 5", n)
	}
	// An operator's reset has no device or IP: none is made up.
	reset := section[strings.Index(section, "Second factors reset by support"):]
	reset = reset[:strings.Index(reset, "</li>")]
	if strings.Contains(reset, "Device") || strings.Contains(reset, "IP address") {
		t.Errorf("event without a device or IP shows them: %s", reset)
	}

	empty := out["account"]
	if !strings.Contains(empty, "Recent security activity") || !strings.Contains(empty, "No recent security activity.") || strings.Contains(empty, "Not you?") {
		t.Error("account page without activity: want the heading and \"No recent security activity.\" only")
	}
}
