package mfa

import (
	"bytes"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/hostportal/idp/secret"
)

var recoveryCodeFormat = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

func TestNewRecoveryCodes(t *testing.T) {
	codes := NewRecoveryCodes(RecoveryCodeCount)
	if len(codes) != 10 {
		t.Fatalf("%d codes, want 10", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !recoveryCodeFormat.MatchString(c) {
			t.Errorf("code %q does not look like xxxx-xxxx-xxxx", c)
		}
		if seen[c] {
			t.Errorf("code %q twice", c)
		}
		seen[c] = true
		if n, ok := NormalizeRecoveryCode(c); !ok || n != strings.ReplaceAll(c, "-", "") {
			t.Errorf("NormalizeRecoveryCode(%q) = %q, %v", c, n, ok)
		}
	}
	for _, n := range []int{0, -1} {
		if got := NewRecoveryCodes(n); len(got) != 0 {
			t.Errorf("NewRecoveryCodes(%d) = %v", n, got)
		}
	}
}

func TestRecoveryCodeEntropy(t *testing.T) {
	if len(recoveryAlphabet) != 32 {
		t.Fatalf("alphabet has %d letters", len(recoveryAlphabet))
	}
	seen := map[rune]bool{}
	for _, c := range recoveryAlphabet {
		if seen[c] || strings.ContainsRune("ilou", c) {
			t.Errorf("alphabet letter %q repeated or a look-alike", c)
		}
		seen[c] = true
	}
	if bits := float64(RecoveryCodeLength) * math.Log2(float64(len(recoveryAlphabet))); bits < 60 {
		t.Errorf("a code has %.0f bits of entropy, the SPEC asks for 60", bits)
	}
	// Every letter turns up at every position: the 60 bits are used, not a
	// few of them.
	const n = 2000
	var pos [RecoveryCodeLength]map[byte]bool
	for i := range pos {
		pos[i] = map[byte]bool{}
	}
	for range n {
		c, _ := NormalizeRecoveryCode(NewRecoveryCode())
		for i := range RecoveryCodeLength {
			pos[i][c[i]] = true
		}
	}
	for i, m := range pos {
		if len(m) != 32 {
			t.Errorf("position %d saw %d of 32 letters in %d codes", i, len(m), n)
		}
	}
}

func TestNormalizeRecoveryCode(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"abcd-efgh-jkmn", "abcdefghjkmn", true},
		{"abcdefghjkmn", "abcdefghjkmn", true},
		{"ABCD-EFGH-JKMN", "abcdefghjkmn", true},
		{"AbCd EfGh JkMn", "abcdefghjkmn", true},
		{"  abcd - efgh - jkmn  ", "abcdefghjkmn", true},
		{"abcd\tefgh\tjkmn", "abcdefghjkmn", true},
		{"a-b-c-d-e-f-g-h-j-k-m-n", "abcdefghjkmn", true},
		{"abcd-efgh-jkmn\r\n", "abcdefghjkmn", true},             // pasted with its line end
		{"abcd\u00a0efgh\u3000jkmn", "abcdefghjkmn", true},       // no-break, ideographic space
		{"abcd\u2010efgh\u2013jkmn\u2212", "abcdefghjkmn", true}, // typographic dashes
		{"oooo-OOOO-0000", "000000000000", true},
		{"iiii-llll-IILL", "111111111111", true},
		{"pqrs-tvwx-yz99", "pqrstvwxyz99", true},
		{"", "", false},
		{"----", "", false},
		{"abcd-efgh-jkm", "", false},   // 11
		{"abcd-efgh-jkmnp", "", false}, // 13
		{"abcd-efgh-jkmu", "", false},  // u is not in the alphabet
		{"ABCD-EFGH-JKMU", "", false},  // nor U
		{"abcd_efgh_jkmn", "", false},  // underscore
		{"abcd.efgh.jkmn", "", false},  // dots
		{"abcd-efgh-jkm\u00f1", "", false},
		{"abcd-efgh-jkm\u212a", "", false}, // Kelvin sign, lower-cases to k in Unicode
		{"ａｂｃｄ-efgh-jkmn", "", false},      // full-width
		{"abcd-efgh-jkmn\x00", "", false},
		{"abcd-efgh-jk\xffmn", "", false}, // not UTF-8
		{"abcd-efgh-jkmn" + strings.Repeat(" ", 100), "", false},
		{"123456", "", false}, // a TOTP code typed in the wrong field
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := NormalizeRecoveryCode(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("NormalizeRecoveryCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func testKeys(t testing.TB, b byte) *secret.Keys {
	t.Helper()
	k, err := secret.NewKeys(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHashRecoveryCode(t *testing.T) {
	keys := testKeys(t, 1)
	hash := func(user, code string) string {
		t.Helper()
		h, ok := HashRecoveryCode(keys, user, code)
		if !ok || h == "" {
			t.Fatalf("HashRecoveryCode(%q, %q) refused", user, code)
		}
		return h
	}
	h := hash("u1", "abcd-efgh-jkmn")
	tests := []struct {
		name, user, code string
		same             bool
	}{
		{"again", "u1", "abcd-efgh-jkmn", true},
		{"as typed", "u1", " ABCD EFGH JKMN ", true},
		{"other user", "u2", "abcd-efgh-jkmn", false},
		{"other code", "u1", "abcd-efgh-jkmp", false},
		{"user and code shifted", "u1a", "bcd-efgh-jkmn0", false},
	}
	for _, tt := range tests {
		if got := hash(tt.user, tt.code); (got == h) != tt.same {
			t.Errorf("%s: hash equal = %v, want %v", tt.name, got == h, tt.same)
		}
	}
	if hash("u1", "0111-0000-0000") != hash("u1", "OIL1-oooo-0000") {
		t.Error("look-alikes hash differently")
	}
	if h == testHash(t, testKeys(t, 2), "u1", "abcd-efgh-jkmn") {
		t.Error("the hash does not depend on secret_key")
	}
	if strings.Contains(h, "abcd") {
		t.Errorf("hash %q shows the code", h)
	}
	for _, junk := range []string{"", "123456", "abcd-efgh-jkmu", "abcd-efgh-jkm", "'; drop table users; --"} {
		if got, ok := HashRecoveryCode(keys, "u1", junk); ok || got != "" {
			t.Errorf("HashRecoveryCode(%q) = %q, %v", junk, got, ok)
		}
	}
}

func testHash(t *testing.T, keys *secret.Keys, user, code string) string {
	t.Helper()
	h, ok := HashRecoveryCode(keys, user, code)
	if !ok {
		t.Fatalf("HashRecoveryCode(%q) refused", code)
	}
	return h
}

func FuzzNormalizeRecoveryCode(f *testing.F) {
	for _, s := range []string{
		"abcd-efgh-jkmn", "ABCD EFGH JKMN", "oooo-iiii-llll", "abcd-efgh-jkmu",
		"", "-", "abcd-efgh-jkm", "ａｂｃｄ-efgh-jkmn", "abcd-efgh-jkm\u212a", "\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := NormalizeRecoveryCode(s)
		if !ok {
			if n != "" {
				t.Fatalf("refused %q but returned %q", s, n)
			}
			return
		}
		if len(n) != RecoveryCodeLength {
			t.Fatalf("NormalizeRecoveryCode(%q) = %q: length %d", s, n, len(n))
		}
		for i := 0; i < len(n); i++ {
			if !strings.ContainsRune(recoveryAlphabet, rune(n[i])) {
				t.Fatalf("NormalizeRecoveryCode(%q) = %q: %q outside the alphabet", s, n, n[i])
			}
		}
		// The canonical form, and its display form, are fixed points.
		shown := n[:4] + "-" + n[4:8] + "-" + n[8:]
		for _, again := range []string{n, shown, strings.ToUpper(shown)} {
			if m, ok := NormalizeRecoveryCode(again); !ok || m != n {
				t.Fatalf("NormalizeRecoveryCode(%q) = %q, %v; want %q", again, m, ok, n)
			}
		}
	})
}

func BenchmarkHashRecoveryCode(b *testing.B) {
	keys := testKeys(b, 1)
	code := NewRecoveryCode()
	for b.Loop() {
		if _, ok := HashRecoveryCode(keys, "user-1", code); !ok {
			b.Fatal("refused")
		}
	}
}
