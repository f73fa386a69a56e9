package mfa

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"
	"unicode"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// The TOTP parameters every authenticator app reads (RFC 6238 defaults):
// HMAC-SHA1, 6 digits, 30-second steps, and one step of clock skew
// accepted either way.
const (
	TOTPPeriod = 30 * time.Second
	TOTPDigits = 6
	TOTPSkew   = 1
)

// TOTPSecretSize is the length of a new TOTP secret in bytes (160 bits, the
// size RFC 4226 recommends for HMAC-SHA1).
const TOTPSecretSize = 20

// maxClockSteps bounds ClockOffset's search to a day either way.
const maxClockSteps = 24 * 60 * 60 / 30

// maxCodeInput bounds the work done on a submitted code before it is
// refused: a real code with separators is far shorter.
const maxCodeInput = 64

// b32 is the encoding of TOTP secrets in otpauth URIs and setup keys:
// RFC 4648 base32 without padding, as authenticator apps expect.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a new random TOTP secret of TOTPSecretSize bytes.
func NewTOTPSecret() []byte {
	b := make([]byte, TOTPSecretSize)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b
}

// TOTPURL returns the otpauth:// URI an authenticator app enrols from:
//
//	otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
//
// The label and the parameters are percent-encoded (spaces as %20, never
// "+", which apps and url.ParseQuery read as a space). The Key URI format
// forbids a colon inside the issuer or account of the label, and readers
// (otp.Key.AccountName among them) split the label at its first colon, so
// colons in the issuer's part of the label become spaces, as with an
// issuer such as "localhost:8080"; the issuer parameter keeps the issuer
// as given, and apps show that one. An empty issuer leaves the label as
// the account alone and omits the parameter.
//
// Unlike totp.Generate of pquerna/otp (v1.5.0), which leaves "&", "+" and
// "=" unescaped in the query, the result parses back with otp.NewKeyFromURL
// to exactly the issuer, account and secret given.
func TOTPURL(issuer, account string, secret []byte) string {
	label := escapeURIComponent(account, true)
	if issuer != "" {
		label = escapeURIComponent(strings.ReplaceAll(issuer, ":", " "), true) + ":" + label
	}
	var q strings.Builder
	q.WriteString("secret=" + b32.EncodeToString(secret))
	if issuer != "" {
		q.WriteString("&issuer=" + escapeURIComponent(issuer, false))
	}
	fmt.Fprintf(&q, "&algorithm=%s&digits=%d&period=%d", otp.AlgorithmSHA1, TOTPDigits, int(TOTPPeriod/time.Second))
	return "otpauth://totp/" + label + "?" + q.String()
}

// escapeURIComponent percent-encodes every byte but RFC 3986's unreserved
// characters (and "@", legal in a path and common in account names, when
// inLabel).
func escapeURIComponent(s string, inLabel bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', inLabel && c == '@':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// TOTPQRCode returns a size×size PNG of the QR code of otpauthURL (from
// TOTPURL). It fails when size is too small for the code's modules.
func TOTPQRCode(otpauthURL string, size int) ([]byte, error) {
	if size <= 0 {
		return nil, errors.New("mfa: QR code size must be positive")
	}
	key, err := otp.NewKeyFromURL(otpauthURL)
	if err != nil {
		return nil, fmt.Errorf("mfa: otpauth URI: %w", err)
	}
	img, err := key.Image(size, size)
	if err != nil {
		return nil, fmt.Errorf("mfa: QR code of %dx%d: %w", size, size, err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("mfa: QR code PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// FormatSetupKey returns the secret as the text a user types into an
// authenticator app ("Trouble Scanning?"): base32 without padding, in
// groups of four separated by spaces ("ABCD EFGH IJKL ...").
func FormatSetupKey(secret []byte) string {
	s := b32.EncodeToString(secret)
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// TOTPStep returns the RFC 6238 time step of t: whole TOTPPeriods since the
// Unix epoch.
func TOTPStep(t time.Time) int64 {
	const p = int64(TOTPPeriod / time.Second)
	u := t.Unix()
	s := u / p
	if u < 0 && u%p != 0 {
		s-- // floor, not truncation, before 1970
	}
	return s
}

// TOTPCode returns the 6-digit code of secret at time t, as an
// authenticator app shows it (for tests and the demo user), or "" before
// 1970.
func TOTPCode(secret []byte, t time.Time) string {
	code, ok := totpCode(b32.EncodeToString(secret), TOTPStep(t))
	if !ok {
		return ""
	}
	return code
}

func totpCode(secretB32 string, step int64) (string, bool) {
	if step < 0 {
		return "", false
	}
	code, err := hotp.GenerateCodeCustom(secretB32, uint64(step), hotp.ValidateOpts{
		Digits:    otp.DigitsSix,
		Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", false
	}
	return code, true
}

// normalizeTOTPCode drops separators ("123 456", "123-456") and requires
// exactly TOTPDigits ASCII digits.
func normalizeTOTPCode(s string) (string, bool) {
	if len(s) > maxCodeInput {
		return "", false
	}
	var b [TOTPDigits]byte
	n := 0
	for _, r := range s {
		switch {
		case isCodeSeparator(r):
		case '0' <= r && r <= '9' && n < TOTPDigits:
			b[n] = byte(r)
			n++
		default:
			return "", false
		}
	}
	if n != TOTPDigits {
		return "", false
	}
	return string(b[:]), true
}

// isCodeSeparator reports whether r may be typed or pasted between the
// characters of a code and is ignored: white space (tabs, line ends,
// no-break and ideographic spaces) and dashes, including the typographic
// ones that text editors and phones substitute.
func isCodeSeparator(r rune) bool {
	return r == '-' || unicode.IsSpace(r) || '\u2010' <= r && r <= '\u2015' || r == '\u2212'
}

// MatchTOTP checks code against the codes of secret for the time steps
// TOTPStep(now)-TOTPSkew .. TOTPStep(now)+TOTPSkew and returns the step it
// matched. Spaces and dashes in code are ignored; anything else but
// exactly six ASCII digits is refused (see isCodeSeparator). Every step of the window is
// compared, in constant time, whether or not an earlier one matched; when
// (rarely) two steps share the code, the later step is returned.
//
// A match is not yet an acceptance. MatchTOTP has no memory, so the caller
// must then call the store's AdvanceTOTPStep(userID, step) and refuse the
// code when it returns false: that atomic set-if-greater is what makes a
// code, and any older code, never accepted twice. A refused code (false
// here or from AdvanceTOTPStep) counts toward the brute-force limits.
func MatchTOTP(secret []byte, code string, now time.Time) (step int64, ok bool) {
	c, valid := normalizeTOTPCode(code)
	if !valid || len(secret) == 0 {
		return 0, false
	}
	secretB32 := b32.EncodeToString(secret)
	given := []byte(c)
	cur := TOTPStep(now)
	var matched int64
	found := 0
	for d := int64(-TOTPSkew); d <= TOTPSkew; d++ {
		s := cur + d
		want, ok := totpCode(secretB32, s)
		if !ok {
			continue // a step before 1970
		}
		eq := subtle.ConstantTimeCompare([]byte(want), given)
		mask := -int64(eq) // all ones on a match
		matched = matched&^mask | s&mask
		found |= eq
	}
	return matched, found == 1
}

// ClockOffset, for a code MatchTOTP refused, looks for it among the steps
// within ±maxSteps of now but outside the accepted ±TOTPSkew, nearest
// first, and returns the offset in steps (positive: the phone is ahead),
// so the page can say that the phone's clock is wrong. maxSteps = 20 covers
// ten minutes either way; more than maxClockSteps (a day) counts as that.
//
// A found code is still refused. Use this only where the user has already
// proved the password and sees the secret (confirming an enrolment), not
// at login: there it would tell an attacker that a guessed code will be
// valid in a few minutes, multiplying each guess by the width of the window.
func ClockOffset(secret []byte, code string, now time.Time, maxSteps int) (offset int, ok bool) {
	c, valid := normalizeTOTPCode(code)
	if !valid || len(secret) == 0 {
		return 0, false
	}
	maxSteps = min(maxSteps, maxClockSteps)
	secretB32 := b32.EncodeToString(secret)
	cur := TOTPStep(now)
	for d := TOTPSkew + 1; d <= maxSteps; d++ {
		for _, o := range [2]int{d, -d} {
			want, ok := totpCode(secretB32, cur+int64(o))
			if ok && subtle.ConstantTimeCompare([]byte(want), []byte(c)) == 1 {
				return o, true
			}
		}
	}
	return 0, false
}
