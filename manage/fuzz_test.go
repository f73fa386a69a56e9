package manage_test

import (
	"errors"
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/hostportal/idp/manage"
)

// The checks of the values a user is made of, as the admin API, the CLI and
// the account pages take them from outside: what they accept stays within
// the documented limits, and what they refuse is an *InvalidError naming
// the field.

func refusedAs(t *testing.T, err error, field string) {
	t.Helper()
	var inv *manage.InvalidError
	if !errors.As(err, &inv) || inv.Field != field || inv.Message == "" || !errors.Is(err, manage.ErrInvalid) {
		t.Fatalf("error %#v is not an *InvalidError for %s", err, field)
	}
}

// FuzzNormalizeUsername: an accepted username is the one typed, in lower
// case: 1 to 64 ASCII letters, digits and . _ - @ +, not only dots, and it
// normalises to itself.
func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{
		"alice", "Alice", "alice@example.com", "a.b_c-d+e", ".", "..", "...", "", strings.Repeat("a", 64), strings.Repeat("a", 65),
		"al ice", "alice\n", "ålice", "\u212aate", "İstanbul", "\xff", "a/b", "a%2fb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := manage.NormalizeUsername(s)
		if err != nil {
			refusedAs(t, err, "username")
			return
		}
		if u == "" || len(u) > manage.MaxUsernameLength || strings.Trim(u, ".") == "" {
			t.Fatalf("NormalizeUsername(%q) = %q: outside the limits", s, u)
		}
		for _, r := range u {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@+", r)) {
				t.Fatalf("NormalizeUsername(%q) = %q, with %q", s, u, r)
			}
		}
		if !strings.EqualFold(s, u) || len(s) != len(u) {
			t.Fatalf("NormalizeUsername(%q) = %q, not the name typed in lower case", s, u)
		}
		if again, err := manage.NormalizeUsername(u); err != nil || again != u {
			t.Fatalf("NormalizeUsername(%q) = %q, %v; want it unchanged", u, again, err)
		}
	})
}

// FuzzValidateEmail: an accepted address is one bare address of at most
// 254 bytes, with a domain name that has a dot inside, and nothing that
// could break the header of a mail sent to it (no space or control
// character, no angle bracket or comma).
func FuzzValidateEmail(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "Alice <alice@example.com>", "alice@localhost", "alice@.example.com", "alice@example.com.",
		"alice@[127.0.0.1]", "a@b@example.com", "\"a b\"@example.com", "alice@example.com\r\nBcc: x@example.com",
		"alice@exa mple.com", "", strings.Repeat("a", 250) + "@x.co", "a,b@example.com", "ålice@exämple.com", "(c)alice@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := manage.ValidateEmail(s); err != nil {
			refusedAs(t, err, "email")
			return
		}
		if len(s) > 254 {
			t.Fatalf("accepted %q of %d bytes", s, len(s))
		}
		if strings.IndexFunc(s, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("<>,;\"()", r)
		}) >= 0 {
			t.Fatalf("accepted %q, which could break a mail header", s)
		}
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || a.Address != s {
			t.Fatalf("accepted %q, which reads as %#v, %v", s, a, err)
		}
		domain := s[strings.LastIndexByte(s, '@')+1:]
		if !strings.Contains(strings.Trim(domain, "."), ".") || domain != strings.Trim(domain, ".") {
			t.Fatalf("accepted %q with the domain %q", s, domain)
		}
	})
}

// FuzzValidateName: an accepted display name is UTF-8 text of at most 200
// characters without control characters.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{
		"Alice Example", "", "Zoë Ünïcödé", "a\tb", "a\nb", "\xff", strings.Repeat("é", 200), strings.Repeat("é", 201),
		"\u202eevil", "\x00", "\u0085",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := manage.ValidateName(s); err != nil {
			refusedAs(t, err, "name")
			return
		}
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > manage.MaxNameLength || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			t.Fatalf("accepted the name %q", s)
		}
	})
}

// FuzzNormalizePhone: what the admin API and the CLI accept as a phone
// (with + and the country code) comes out in E.164, which is accepted
// again unchanged.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"+14155550123", "+1 (415) 555-0123", " +44 7400 123456 ", "4155550123", "+", "++14155550123", "+1 900 555 0123",
		"+800 1234 5678", "+0", "+1\n4155550123", "+１４１５５５５０１２３", strings.Repeat("+1", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := manage.NormalizePhone(s)
		if err != nil {
			refusedAs(t, err, "phone")
			return
		}
		if len(got) < 2 || len(got) > 16 || got[0] != '+' || strings.Trim(got[1:], "0123456789") != "" {
			t.Fatalf("NormalizePhone(%q) = %q, not E.164", s, got)
		}
		if again, err := manage.NormalizePhone(got); err != nil || again != got {
			t.Fatalf("NormalizePhone(%q) = %q, %v; want it unchanged", got, again, err)
		}
	})
}
