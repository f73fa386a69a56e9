package mfa

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/hostportal/idp/secret"
)

// RecoveryCodeCount is how many recovery codes a user is given at a time.
const RecoveryCodeCount = 10

// RecoveryCodeLength is the number of characters of a recovery code
// without its dashes: 12 of a 32-letter alphabet, 60 bits of entropy.
const RecoveryCodeLength = 12

// recoveryAlphabet is Crockford's base32 in lower case: no i, l, o or u,
// so a code read aloud or copied by hand has no look-alikes.
const recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// hashPurposeRecoveryCode separates recovery-code hashes from other uses
// of secret.Keys.Hash.
const hashPurposeRecoveryCode = "recovery-code"

// NewRecoveryCode returns a random recovery code as it is shown to the
// user: three groups of four, "xxxx-xxxx-xxxx".
func NewRecoveryCode() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	v := binary.BigEndian.Uint64(b[:]) // 5 bits per character, 60 of 64 used
	out := make([]byte, 0, RecoveryCodeLength+2)
	for i := range RecoveryCodeLength {
		if i == 4 || i == 8 {
			out = append(out, '-')
		}
		out = append(out, recoveryAlphabet[v&31])
		v >>= 5
	}
	return string(out)
}

// NewRecoveryCodes returns n distinct recovery codes (RecoveryCodeCount for
// a full set).
func NewRecoveryCodes(n int) []string {
	codes := make([]string, 0, max(n, 0))
	seen := make(map[string]bool, max(n, 0))
	for len(codes) < n {
		c := NewRecoveryCode()
		if !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	return codes
}

// NormalizeRecoveryCode returns the canonical form of a recovery code as a
// user may type or paste it: ASCII letters lower-cased, spaces and dashes
// dropped (see isCodeSeparator), the look-alikes o read as 0 and i, l as 1.
// It reports false unless that leaves exactly RecoveryCodeLength characters
// of the alphabet.
func NormalizeRecoveryCode(s string) (string, bool) {
	if len(s) > maxCodeInput {
		return "", false
	}
	var b [RecoveryCodeLength]byte
	n := 0
	for _, r := range s {
		if isCodeSeparator(r) {
			continue
		}
		if r >= 0x80 {
			return "", false
		}
		c := byte(r)
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch c {
		case 'o':
			c = '0'
		case 'i', 'l':
			c = '1'
		}
		if !inRecoveryAlphabet(c) || n == RecoveryCodeLength {
			return "", false
		}
		b[n] = c
		n++
	}
	if n != RecoveryCodeLength {
		return "", false
	}
	return string(b[:]), true
}

func inRecoveryAlphabet(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u'
}

// HashRecoveryCode returns the stored form of a user's recovery code: a
// keyed hash of its canonical form bound to the user, so a copy of the
// database cannot be used to test guesses and a code never works for
// another user. It reports false, without hashing, for input that cannot be
// a recovery code; the caller counts that as a failed attempt like a code
// that is not found.
func HashRecoveryCode(keys *secret.Keys, userID, code string) (string, bool) {
	c, ok := NormalizeRecoveryCode(code)
	if !ok {
		return "", false
	}
	return keys.Hash(hashPurposeRecoveryCode, userID, c), true
}
