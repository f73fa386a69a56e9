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
	SendSMSAction string // a "Send SMS Code" button posting "id" here when not empty
}

// SMSCodePage is the second factor by text message. Until a code is sent
// (Sent false) it offers only "Send SMS Code", posting "id" to SendAction;
// then it says where the code went and asks for it: the form posts "code",
// "remember" and "id" to Action.
type SMSCodePage struct {
	Base
	Action        string
	SendAction    string
	AuthRequestID string
	ClientName    string
	MaskedPhone   string // "+1 ••• ••• 0123"
	Sent          bool
	RememberDays  int
	MethodsURL    string
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
	Username          string
	Name              string
	Email             string
	EmailVerified     bool
	ChangeEmailURL    string // "Change e-mail" when not empty
	ChangePasswordURL string // "Change password" when not empty

	TOTPEnabled      bool
	OtherFactor      string // "security key" or "cell phone" when one protects the login without the app
	EnableTOTPAction string // the OFF switch: a form posting here starts enrolment
	DisableTOTPURL   string // the ON switch: a link to the page that turns it off

	RecoveryCodesLeft  int
	RecoveryCodesLow   bool   // warn that few codes are left
	RegenerateCodesURL string // "Generate new recovery codes" (shown when TOTPEnabled)

	Devices             []DeviceItem
	ForgetDevicesAction string // "Forget all devices" posts here

	Phone PhoneSection
	Keys  KeysSection

	// Activity is "Recent security activity", newest first: sign-ins and
	// changes to the login, so that the user notices what they did not do.
	Activity []ActivityItem

	LogoutAction string // "Log Out" posts here
}

// SecurityKeyPage is the second factor with a security key: "Use security
// key" fetches options from BeginURL (posting the form), runs the
// browser's prompt and posts the answer as "credential" (with "id" and
// "remember") to Action.
type SecurityKeyPage struct {
	Base
	Action        string
	BeginURL      string
	AuthRequestID string
	ClientName    string
	RememberDays  int
	MethodsURL    string
}

// AddKeyPage adds a security key: a name, then the browser's prompt; the
// form posts "name" and "credential" to Action.
type AddKeyPage struct {
	Base
	Action    string
	BeginURL  string
	Name      string // kept after an error
	CancelURL string
}

// RemoveKeyPage asks before a key is removed; the form posts "key".
type RemoveKeyPage struct {
	Base
	Action    string
	KeyID     string
	Name      string
	CancelURL string
}

// KeysSection is the account page's "Security keys".
type KeysSection struct {
	Available bool // WebAuthn is configured (a domain issuer)
	Items     []KeyItem
	AddURL    string // "Add security key"
}

// KeyItem is one security key, with dates already formatted.
type KeyItem struct {
	Name      string
	Added     string
	LastUsed  string
	RemoveURL string // "Remove": the page that asks first
}

// PhoneSection is the account page's "Cell Phone": the number, whether it
// is verified, the form that sets it (Country Code, Cell Phone, Save), and
// while it waits for verification the form for the code sent to it
// (Authentication Code, Update).
type PhoneSection struct {
	Available     bool   // SMS is configured; otherwise the section only shows the number
	Number        string // for people: "+1 415-555-0123"; empty when none is set
	Verified      bool
	AppOn         bool // the user has an authenticator app, so SMS is offered next to it
	SecondFactor  bool // the phone is the user's only second factor (mfa.sms_as_only_factor)
	CodeSentTo    string
	Countries     []CountryOption
	Input         string // the number typed, kept after an error
	Error         string // a sentence about the phone forms, shown in the section
	ErrorAt       string // "save" or "verify": the field the error is about gets the focus
	Notice        string
	SaveAction    string // posts "country" and "phone"
	VerifyAction  string // posts "code"
	ResendAction  string
	RemoveAction  string
	AllowedNotice string // which countries codes are sent to, when restricted
}

// CountryOption is one entry of the Country Code select.
type CountryOption struct {
	Region   string // posted as "country": "US"
	Label    string // "United States (+1)"
	Selected bool
}

// DeviceItem is one remembered device, with dates already formatted.
type DeviceItem struct {
	Description string
	Created     string
	LastUsed    string
	Expires     string
}

// ActivityItem is one security event on the account page, in plain
// language, with its time already formatted. Device and IP are empty when
// the event did not come from a browser (an operator's command).
type ActivityItem struct {
	Label  string // "New sign-in", "2-Factor Auth turned on", ...
	Time   string
	Device string // "Chrome on macOS", from the user agent
	IP     string
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
	Action       string
	Heading      string
	Message      string
	SubmitLabel  string // e.g. "Turn off 2-Factor Auth"
	CancelURL    string
	Danger       bool // style the submit button as destructive
	AppCode      bool // the user has an authenticator app (the hint mentions it)
	RecoveryOnly bool // only a recovery code can confirm (a user with security keys only)
	// SendSMSAction, when not empty, is a "Send SMS Code" button that posts
	// "action" (this page's Action) there; SMSSentTo says where the last
	// code went.
	SendSMSAction string
	SMSSentTo     string
}

func (SecondFactorPage) templateName() string    { return "second_factor" }
func (SMSCodePage) templateName() string         { return "sms_code" }
func (SecurityKeyPage) templateName() string     { return "security_key" }
func (AddKeyPage) templateName() string          { return "add_key" }
func (RemoveKeyPage) templateName() string       { return "remove_key" }
func (MethodsPage) templateName() string         { return "methods" }
func (RecoveryLoginPage) templateName() string   { return "recovery_login" }
func (ReplacementCodePage) templateName() string { return "replacement_code" }
func (AccountPage) templateName() string         { return "account" }
func (EnrolTOTPPage) templateName() string       { return "enrol_totp" }
func (RecoveryCodesPage) templateName() string   { return "recovery_codes" }
func (ConfirmFactorPage) templateName() string   { return "confirm_factor" }
