package mfa

import (
	"crypto/rand"
	"math/big"
	"strings"

	"github.com/hostportal/idp/secret"
)

// SMSCodeDigits is the length of a code sent by SMS.
const SMSCodeDigits = 6

// hashPurposeSMSCode separates SMS-code hashes from other uses of
// secret.Keys.Hash.
const hashPurposeSMSCode = "sms-code"

// NewSMSCode returns a uniformly random six-digit code ("042917").
func NewSMSCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	s := n.String()
	return strings.Repeat("0", SMSCodeDigits-len(s)) + s
}

// NormalizeSMSCode accepts what a person types or pastes for a six-digit
// code (spaces and dashes between the digits are ignored) and reports
// whether it has the code's form at all.
func NormalizeSMSCode(s string) (string, bool) { return normalizeTOTPCode(s) }

// HashSMSCode is the keyed hash under which a sent code waits: bound to
// what it was sent for (scope, e.g. a pending login) and to the number it
// went to, so a code cannot serve another login or another phone.
func HashSMSCode(keys *secret.Keys, scope, phone, code string) string {
	return keys.Hash(hashPurposeSMSCode, scope, phone, code)
}

// SMSMessage is the text of a code message: template (sms.message) with
// {code}, {issuer} and {minutes} replaced, and the WebOTP origin-bound line
// ("@login.example.com #123456") last, so that phones offer to fill the code
// in on that site only.
func SMSMessage(template, code, issuer, host, minutes string) string {
	body := strings.NewReplacer("{code}", code, "{issuer}", issuer, "{minutes}", minutes).Replace(template)
	return body + "\n\n@" + host + " #" + code
}
