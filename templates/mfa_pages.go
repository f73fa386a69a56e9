package templates

// The pages of the second factor: at login, in the account pages, and
// during an enrolment that a login requires. Field labels are the stable
// ones of SPEC.md ("Authentication Code", "Remember this device for N
// days", "Recovery code", ...).

// SecondFactorPage asks for the authenticator app's code after the
// password. The form posts "code" and, when ticked, "remember"="on", with
// "id", to Action.
type SecondFactorPage struct {
	Base
	Action        string
	AuthRequestID string
	ClientName    string
	RememberDays  int    // shows "Remember this device for {RememberDays} days" when > 0
	MethodsURL    string // the "Try another method" link when not empty
}

// MethodsPage lists the second-factor methods the user has.
type MethodsPage struct {
	Base
	Methods []Method
	BackURL string // back to the code page
}

// Method is one way to pass the second factor.
type Method struct {
	Label       string // "Authenticator app", "SMS code", "Recovery code", "Security key"
	Description string
	URL         string
}

// RecoveryLoginPage asks for a recovery code; the form posts
// "recovery_code" with "id" to Action.
type RecoveryLoginPage struct {
	Base
	Action        string
	AuthRequestID string
	ClientName    string
	MethodsURL    string // "Try another method"
}

// ReplacementCodePage shows the one new recovery code that took the place
// of the one just used. Its Continue button posts "id" to Action.
type ReplacementCodePage struct {
	Base
	Action        string
	AuthRequestID string
	Code          string
	CodesLeft     int
}

// AccountPage is the user's own account: profile and security settings.
type AccountPage struct {
	Base
	Username string
	Name     string
	Email    string

	TOTPEnabled      bool
	EnableTOTPAction string // the OFF switch: a form posting here starts enrolment
	DisableTOTPURL   string // the ON switch: a link to the page that turns it off

	RecoveryCodesLeft  int
	RecoveryCodesLow   bool   // warn that few codes are left
	RegenerateCodesURL string // "Generate new recovery codes" (shown when TOTPEnabled)

	Devices             []DeviceItem
	ForgetDevicesAction string // "Forget all devices" posts here

	LogoutAction string // "Log Out" posts here
}

// DeviceItem is one remembered device, with dates already formatted.
type DeviceItem struct {
	Description string
	Created     string
	LastUsed    string
	Expires     string
}

// EnrolTOTPPage sets up the authenticator app: the QR code, the setup key
// behind "Trouble Scanning?", a link to the otpauth:// URI, and the code
// that confirms it. The form posts "code" (and "id" during a login).
type EnrolTOTPPage struct {
	Base
	Action        string
	AuthRequestID string // set when the enrolment is part of a login
	QRCodePNG     []byte // rendered as a data: image
	SetupKey      string // grouped for reading: "ABCD EFGH ..."
	OTPAuthURL    string // otpauth://totp/...; only that scheme is ever rendered as a link
	Issuer        string // what the app will show
	Account       string
	CancelURL     string // empty during a required enrolment
}

// RecoveryCodesPage shows a new set of recovery codes, once, in <code>
// elements inside #recovery-codes, with the warning to store them, a copy
// button and a download. Continue is a form posting "id" to ContinueAction
// (during a login) or a link to ContinueURL.
type RecoveryCodesPage struct {
	Base
	Codes          []string
	DownloadName   string // e.g. "recovery-codes-alice.txt"
	ContinueAction string
	AuthRequestID  string
	ContinueURL    string
}

// ConfirmFactorPage asks for a current authentication code (or a recovery
// code) before a sensitive change. The form posts "code" to Action.
type ConfirmFactorPage struct {
	Base
	Action      string
	Heading     string
	Message     string
	SubmitLabel string // e.g. "Turn off 2-Factor Auth"
	CancelURL   string
	Danger      bool // style the submit button as destructive
}

func (SecondFactorPage) templateName() string    { return "second_factor" }
func (MethodsPage) templateName() string         { return "methods" }
func (RecoveryLoginPage) templateName() string   { return "recovery_login" }
func (ReplacementCodePage) templateName() string { return "replacement_code" }
func (AccountPage) templateName() string         { return "account" }
func (EnrolTOTPPage) templateName() string       { return "enrol_totp" }
func (RecoveryCodesPage) templateName() string   { return "recovery_codes" }
func (ConfirmFactorPage) templateName() string   { return "confirm_factor" }
