package manage

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Limits of the values users and clients are made of.
const (
	MaxUsernameLength = 64
	MaxNameLength     = 200
	// MinPasswordLength and MaxPasswordLength follow NIST SP 800-63B: length
	// is what makes a password strong; there are no composition rules.
	MinPasswordLength = 12
	MaxPasswordLength = 1024
	maxEmailLength    = 254 // RFC 5321 path limit
)

// NormalizeUsername lower-cases a username and checks it: 1 to 64 ASCII
// letters, digits and . _ - @ + (so that an e-mail address can serve as one).
func NormalizeUsername(username string) (string, error) {
	u := strings.ToLower(username)
	ok := u != "" && len(u) <= MaxUsernameLength
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@+", r)) {
			ok = false
			break
		}
	}
	if !ok {
		return "", invalid("username", "invalid username %q: use 1 to %d letters, digits and . _ - @ +", username, MaxUsernameLength)
	}
	return u, nil
}

// ValidateEmail checks that email is one bare address (no display name, no
// angle brackets) with a dot in its domain.
func ValidateEmail(email string) error {
	if email == "" {
		return invalid("email", "an e-mail address is required")
	}
	if len(email) > maxEmailLength {
		return invalid("email", "invalid e-mail address %q: longer than %d characters", email, maxEmailLength)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil {
		return invalid("email", "invalid e-mail address %q: %s", email, strings.TrimPrefix(err.Error(), "mail: "))
	}
	if addr.Name != "" || addr.Address != email {
		return invalid("email", "invalid e-mail address %q: give the bare address, such as alice@example.com", email)
	}
	at := strings.LastIndexByte(email, '@')
	domain := email[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.HasPrefix(domain, "[") {
		return invalid("email", "invalid e-mail address %q: the domain must be a name such as example.com", email)
	}
	return nil
}

// ValidateName checks a display name: up to 200 characters, no control characters.
func ValidateName(name string) error {
	if !utf8.ValidString(name) {
		return invalid("name", "invalid name: not valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLength {
		return invalid("name", "invalid name: %d characters, at most %d are allowed", n, MaxNameLength)
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return invalid("name", "invalid name %q: it must not contain control characters such as tabs or line breaks", name)
	}
	return nil
}

// ValidatePassword checks a new password's length (12 to 1024 characters).
// The message never repeats the password.
func ValidatePassword(pw string) error {
	if !utf8.ValidString(pw) {
		return invalid("password", "the password is not valid UTF-8 text")
	}
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLength:
		return invalid("password", "the password is too short: %d characters, at least %d are required (a passphrase of a few words is easy to remember)", n, MinPasswordLength)
	case n > MaxPasswordLength:
		return invalid("password", "the password is too long: %d characters, at most %d are allowed", n, MaxPasswordLength)
	}
	return nil
}

// NormalizePhone parses an international phone number (a leading + and the
// country code; spaces, dots, dashes and brackets allowed) and returns it in
// E.164 form, e.g. "+1 (415) 555-0123" becomes "+14155550123". It applies
// the rules of ParsePhone, so a number no SMS reaches (landline, toll-free,
// premium-rate, ...) is refused here too; the other messages name the value,
// for operators and API clients.
func NormalizePhone(phone string) (string, error) {
	p := strings.TrimSpace(phone)
	if !strings.HasPrefix(p, "+") {
		return "", invalid("phone", "invalid phone number %q: start it with + and the country code, e.g. +14155550123", phone)
	}
	num, problem := parsePhone("", p)
	switch {
	case problem == phoneOK:
		return phonenumbers.Format(num, phonenumbers.E164), nil
	case problem == phoneNoSMS:
		return "", errNoSMS(num)
	case num != nil && (problem == phoneInvalid || problem == phoneImplausible):
		return "", invalid("phone", "invalid phone number %q: it is not a valid number for country code +%d; check the digits", phone, num.GetCountryCode())
	default:
		return "", invalid("phone", "invalid phone number %q: it is not a phone number; write + , the country code and the number, e.g. +14155550123", phone)
	}
}

// maskPhone keeps the country code's first digits and the last two digits,
// for audit details: enough to tell numbers apart, not enough to dial.
func maskPhone(e164 string) string {
	if len(e164) <= 5 {
		return e164
	}
	return e164[:2] + strings.Repeat("*", len(e164)-4) + e164[len(e164)-2:]
}
