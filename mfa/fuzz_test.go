package mfa

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzNormalizeSMSCode: what is accepted as an SMS code is six ASCII
// digits, the digits typed in their order with only separators (spaces,
// dashes) dropped; the result reads back as itself, and what is refused
// gives no code.
func FuzzNormalizeSMSCode(f *testing.F) {
	for _, s := range []string{
		"042917", "042 917", "04-29-17", " 042917\n", "042\u00a0917", "042\u2013917", "042\u3000917",
		"04291", "0429170", "04291a", "０４２９１７", "٠٤٢٩١٧", "", "------", strings.Repeat(" ", 100) + "042917",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := NormalizeSMSCode(s)
		if !ok {
			if n != "" {
				t.Fatalf("refused %q but returned %q", s, n)
			}
			return
		}
		if len(n) != SMSCodeDigits || strings.Trim(n, "0123456789") != "" {
			t.Fatalf("NormalizeSMSCode(%q) = %q: not %d ASCII digits", s, n, SMSCodeDigits)
		}
		var digits strings.Builder
		for _, r := range s {
			switch {
			case '0' <= r && r <= '9':
				digits.WriteRune(r)
			case !isCodeSeparator(r):
				t.Fatalf("NormalizeSMSCode(%q) accepted the character %q", s, r)
			case unicode.IsDigit(r):
				t.Fatalf("NormalizeSMSCode(%q) dropped the digit %q as a separator", s, r)
			}
		}
		if digits.String() != n {
			t.Fatalf("NormalizeSMSCode(%q) = %q, but the digits typed are %q", s, n, digits.String())
		}
		if again, ok := NormalizeSMSCode(n); !ok || again != n {
			t.Fatalf("NormalizeSMSCode(%q) = %q, %v; want it unchanged", n, again, ok)
		}
	})
}
