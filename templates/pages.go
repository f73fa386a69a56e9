package templates

// Base holds what every page shows besides its own content.
type Base struct {
	Title     string // the page <title>, before the product name
	CSRFToken string // rendered as the hidden input "csrf_token" in every form
	Error     string // a fixed, user-safe sentence shown in an alert (role="alert"); never err.Error()
	Notice    string // an informational sentence (role="status")
}

// LoginPage asks for a username and password.
type LoginPage struct {
	Base
	Action            string // where the form posts
	AuthRequestID     string // posted back as "id"
	ClientName        string // "to continue to {ClientName}" when not empty
	Username          string // pre-filled after a failed attempt; the password field then gets the focus
	ForgotPasswordURL string // a "Forgot Password?" link when not empty
	// PasskeyAction and PasskeyBeginURL, when set, offer "Sign in with a
	// passkey" (static/webauthn.js: options from PasskeyBeginURL, the
	// answer posted as "credential" to PasskeyAction).
	PasskeyAction   string
	PasskeyBeginURL string
}

// ConsentPage asks the user to allow a relying party access to their account.
// The form posts "decision" as "allow" or "deny".
type ConsentPage struct {
	Base
	Action        string
	AuthRequestID string // posted back as "id"
	ClientName    string
	Username      string // "Signed in as {Username}" when not empty
	Scopes        []Scope
}

// Scope is one permission listed on the consent page.
type Scope struct {
	Name        string // the OAuth scope, e.g. "email"; shown only when Description is empty
	Description string // what it grants, in words, e.g. "Your email address"
}

// ErrorPage tells the user that something went wrong. Heading and Message
// must be fixed, user-safe text: details belong in the log.
type ErrorPage struct {
	Base
	Status   int // the HTTP status, shown small as a reference for support; 0 hides it
	Heading  string
	Message  string
	LinkURL  string // a link (e.g. back to the portal) when not empty
	LinkText string
}

// LogoutPage asks the user to confirm an RP-initiated logout.
type LogoutPage struct {
	Base
	Action     string
	ClientName string   // the relying party that asked, when known
	Hidden     []Hidden // carried through the form (e.g. state, post_logout_redirect_uri)
}

// Hidden is a hidden form input.
type Hidden struct {
	Name, Value string
}

// MessagePage shows a short outcome, e.g. "You are logged out".
type MessagePage struct {
	Base
	Heading  string
	Message  string
	LinkURL  string // a button-styled link when not empty
	LinkText string
}

// ForgotPasswordPage asks for the username or e-mail of an account whose
// password is lost; the form posts "username" and "login" (the pending
// login to return to). Sent shows the one answer for every account.
type ForgotPasswordPage struct {
	Base
	Action   string
	LoginID  string
	Username string
	Sent     bool
	BackURL  string // "Back to log in"
}

// NewPasswordPage chooses a new password: "password" twice ("password2"),
// with the rules shown; Current asks for the current password too
// ("current_password", in the account pages).
type NewPasswordPage struct {
	Base
	Action        string
	AuthRequestID string // the reset's pending login, posted as "id"
	Username      string
	Current       bool
	Rules         []string
	CancelURL     string
}

// ChangeEmailPage sets a new e-mail address, which waits for its link.
type ChangeEmailPage struct {
	Base
	Action    string
	Email     string // the current address
	Verified  bool
	Pending   string // an address waiting for its link
	Input     string
	CancelURL string
}

// ConfirmEmailPage confirms a new address with a button (posting "token").
type ConfirmEmailPage struct {
	Base
	Action   string
	Token    string
	Email    string
	Username string
}

func (ForgotPasswordPage) templateName() string { return "forgot_password" }
func (NewPasswordPage) templateName() string    { return "new_password" }
func (ChangeEmailPage) templateName() string    { return "change_email" }
func (ConfirmEmailPage) templateName() string   { return "confirm_email" }
func (LoginPage) templateName() string          { return "login" }
func (ConsentPage) templateName() string        { return "consent" }
func (ErrorPage) templateName() string          { return "error" }
func (LogoutPage) templateName() string         { return "logout" }
func (MessagePage) templateName() string        { return "message" }

// required lists the pages Load insists on: one per data struct above and
// in mfa_pages.go.
// A page added here without its file in pages/ stops the server at start-up.
var required = []Page{
	LoginPage{},
	ConsentPage{},
	ErrorPage{},
	LogoutPage{},
	MessagePage{},
	SecondFactorPage{},
	SMSCodePage{},
	SecurityKeyPage{},
	AddKeyPage{},
	RemoveKeyPage{},
	ForgotPasswordPage{},
	NewPasswordPage{},
	ChangeEmailPage{},
	ConfirmEmailPage{},
	MethodsPage{},
	RecoveryLoginPage{},
	ReplacementCodePage{},
	AccountPage{},
	EnrolTOTPPage{},
	RecoveryCodesPage{},
	ConfirmFactorPage{},
}
