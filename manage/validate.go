package manage

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/storage"
)

// Limits of the values users and clients are made of.
const (
	MaxUsernameLength = 64
	MaxNameLength     = 200
	// MinPasswordLength and MaxPasswordLength follow NIST SP 800-63B: length
	// is what makes a password strong; there are no composition rules.
	// MinPasswordLength is the default of Service.MinPasswordLength, which
	// takes no value below MinPasswordLengthFloor, the least NIST allows
	// for a password the user chooses.
	MinPasswordLength      = 12
	MinPasswordLengthFloor = 8
	MaxPasswordLength      = 1024
	maxEmailLength         = 254 // RFC 5321 path limit
)

// NormalizeUsername lower-cases a username and checks it: 1 to 64 ASCII
// letters, digits and . _ - @ + (so that an e-mail address can serve as one).
func NormalizeUsername(username string) (string, error) {
	ok := username != "" && len(username) <= MaxUsernameLength
	// Checked before lower-casing: Unicode lower-cases the Kelvin sign K
	// (U+212A) to k and İ (U+0130) to i.
	for _, r := range username {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@+", r)) {
			ok = false
			break
		}
	}
	u := strings.ToLower(username)
	// "." and ".." would be path segments in URLs that name the user.
	if strings.Trim(u, ".") == "" {
		ok = false
	}
	if !ok {
		return "", invalid("username", "invalid username %q: use 1 to %d letters, digits and . _ - @ +, not only dots", username, MaxUsernameLength)
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

// ValidatePassword checks a new password with the default rules and no
// user to compare it with: what Service.CheckPassword does for a Service
// without MinPasswordLength and a nil user.
func ValidatePassword(pw string) error {
	return checkPassword(pw, MinPasswordLength)
}

// CheckPassword checks a new password for u, following NIST SP 800-63B
// 5.1.1.2: at least s.MinPasswordLength characters (counted as Unicode
// characters, spaces included) and at most MaxPasswordLength; valid UTF-8;
// not common (password.IsCommon: on the list of passwords known from
// breaches, or a simple pattern, or either with digits or symbols
// appended); and not u's username, e-mail address (or the part before its
// @) or name, nor one of them with digits or symbols appended
// (password.IsVariantOf). u may be nil, for no such comparison. There are
// no composition rules.
//
// A refused password is an *InvalidError for the field "password" whose
// message is a sentence safe to show on a page: it never repeats the
// password, nor its length.
func (s *Service) CheckPassword(pw string, u *storage.User) error {
	if err := checkPassword(pw, s.minPasswordLength()); err != nil {
		return err
	}
	return checkNotFromUser(pw, u)
}

// checkNotFromUser refuses a password made from the words of u (nil for
// none): the username, the e-mail address, the name, and the part before
// the @ of the first two.
func checkNotFromUser(pw string, u *storage.User) error {
	if u == nil {
		return nil
	}
	words := []string{u.Username, u.Email, u.Name}
	for _, w := range []string{u.Username, u.Email} {
		if local, _, ok := strings.Cut(w, "@"); ok {
			words = append(words, local)
		}
	}
	if password.IsVariantOf(pw, words...) {
		return invalid("password", "That password is too easy to guess: it is your username, e-mail address or name, or made from one of them. Choose another, such as a few unrelated words.")
	}
	return nil
}

// checkPassword applies the rules that need no user.
func checkPassword(pw string, min int) error {
	if !utf8.ValidString(pw) {
		return invalid("password", "That password is not valid UTF-8 text. Type it again, or choose another.")
	}
	n := utf8.RuneCountInString(pw)
	// Characters other than white space: twelve spaces are not twelve characters of secret.
	visible := utf8.RuneCountInString(strings.Join(strings.Fields(pw), ""))
	switch {
	case n < min:
		return invalid("password", "That password is too short: use at least %d characters; a passphrase of a few words is easy to remember.", min)
	// The login reads at most MaxPasswordLength bytes (bounded hashing
	// cost), so a longer password could be set but never used.
	case len(pw) > MaxPasswordLength:
		return invalid("password", "That password is too long: use at most %d bytes (fewer characters for letters outside English).", MaxPasswordLength)
	case visible < min/2:
		return invalid("password", "That password is mostly spaces. Use at least %d characters other than spaces.", min/2)
	case password.IsPattern(pw):
		return invalid("password", "That password is too easy to guess: one character or a short piece repeated, or letters, digits or keys in order, are among the first things attackers try. Choose another, such as a few unrelated words.")
	case password.IsCommon(pw):
		return invalid("password", "That password is too common: it is on a list of passwords people use often, which attackers try first. Choose another, such as a few unrelated words.")
	}
	return nil
}

// minPasswordLength is s.MinPasswordLength in effect.
func (s *Service) minPasswordLength() int { return effectiveMinPasswordLength(s.MinPasswordLength) }

// effectiveMinPasswordLength: 0 (or less) is MinPasswordLength; a value
// below MinPasswordLengthFloor is the floor, one above MaxPasswordLength the
// maximum. The configuration refuses such values; this keeps a Service
// built by hand from accepting four-character passwords.
func effectiveMinPasswordLength(min int) int {
	switch {
	case min <= 0:
		return MinPasswordLength
	case min < MinPasswordLengthFloor:
		return MinPasswordLengthFloor
	case min > MaxPasswordLength:
		return MaxPasswordLength
	}
	return min
}

// PasswordRules lists, one sentence each, the rules CheckPassword applies
// with a minimum length of min (0 is the default, as for
// Service.MinPasswordLength): for the page where a user chooses a password.
func PasswordRules(min int) []string {
	return []string{
		fmt.Sprintf("At least %d characters.", effectiveMinPasswordLength(min)),
		"Not a common password (we check a list of passwords known from breaches), nor a simple pattern such as one character repeated.",
		"Not your username, e-mail address or name.",
		"Any characters you like, spaces included: no other rules.",
	}
}

// PasswordRules lists the rules s.CheckPassword applies, as the package's
// PasswordRules does.
func (s *Service) PasswordRules() []string { return PasswordRules(s.MinPasswordLength) }

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
