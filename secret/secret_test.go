package secret_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hostportal/idp/secret"
)

func newKeys(t testing.TB, fill byte) *secret.Keys {
	t.Helper()
	k, err := secret.NewKeys(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatalf("NewKeys: %v", err)
	}
	return k
}

func TestNewKeysLength(t *testing.T) {
	for _, n := range []int{0, 1, 16, 24, 31, 33, 64} {
		if k, err := secret.NewKeys(make([]byte, n)); err == nil || k != nil {
			t.Errorf("NewKeys(%d bytes) = %v, %v; want an error", n, k, err)
		}
	}
	if _, err := secret.NewKeys(nil); err == nil {
		t.Error("NewKeys(nil) accepted")
	}
	if _, err := secret.NewKeys(make([]byte, 32)); err != nil {
		t.Errorf("NewKeys(32 bytes): %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	k := newKeys(t, 1)
	for _, tc := range []struct {
		name          string
		plaintext, ad []byte
	}{
		{"text", []byte("JBSWY3DPEHPK3PXP"), []byte("user:42")},
		{"empty plaintext", []byte{}, []byte("user:42")},
		{"no associated data", []byte("x"), nil},
		{"large", bytes.Repeat([]byte{0xAB}, 1<<16), []byte("signing-key:abc")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed := k.Seal(tc.plaintext, tc.ad)
			if len(tc.plaintext) > 4 && bytes.Contains(sealed, tc.plaintext) {
				t.Error("the sealed value holds the plaintext")
			}
			got, err := k.Open(sealed, tc.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Errorf("Open = %q, want %q", got, tc.plaintext)
			}
		})
	}
}

func TestSealDiffers(t *testing.T) {
	k := newKeys(t, 1)
	a, b := k.Seal([]byte("same"), []byte("ad")), k.Seal([]byte("same"), []byte("ad"))
	if bytes.Equal(a, b) {
		t.Error("two Seals of the same value are equal (nonce reused?)")
	}
	if bytes.Equal(a[:12], b[:12]) {
		t.Error("two Seals share their nonce")
	}
}

func TestOpenFails(t *testing.T) {
	k := newKeys(t, 1)
	other := newKeys(t, 2)
	pt, ad := []byte("TOTP secret"), []byte("user:42")
	sealed := k.Seal(pt, ad)
	flipped := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	cases := []struct {
		name   string
		keys   *secret.Keys
		sealed []byte
		ad     []byte
	}{
		{"other associated data", k, sealed, []byte("user:43")},
		{"no associated data", k, sealed, nil},
		{"associated data with a suffix", k, sealed, []byte("user:420")},
		{"other key", other, sealed, ad},
		{"nil", k, nil, ad},
		{"empty", k, []byte{}, ad},
		{"nonce only", k, sealed[:12], ad},
		{"one byte short of nonce and tag", k, sealed[:12+16-1], ad},
		{"truncated by one", k, sealed[:len(sealed)-1], ad},
		{"one byte more", k, append(bytes.Clone(sealed), 0), ad},
	}
	for i := range sealed {
		cases = append(cases, struct {
			name   string
			keys   *secret.Keys
			sealed []byte
			ad     []byte
		}{fmt.Sprintf("flipped byte %d", i), k, flipped(i), ad})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.keys.Open(tc.sealed, tc.ad)
			if !errors.Is(err, secret.ErrOpen) || got != nil {
				t.Errorf("Open = %q, %v; want nil, ErrOpen", got, err)
			}
		})
	}
	// The failures left the good value intact.
	if got, err := k.Open(sealed, ad); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("Open after the failures = %q, %v", got, err)
	}
}

func TestCookies(t *testing.T) {
	k := newKeys(t, 1)
	signed := k.SignCookie("idp_session", "abc123")
	if !strings.HasPrefix(signed, "abc123.") {
		t.Fatalf("SignCookie = %q, want value.MAC", signed)
	}
	value, mac, _ := strings.Cut(signed, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, cookie, signed string
		want                 string
		ok                   bool
	}{
		{"signed value", "idp_session", signed, "abc123", true},
		{"dots in the value", "idp_session", k.SignCookie("idp_session", "a.b.c"), "a.b.c", true},
		{"tampered value", "idp_session", flip(value, 0) + "." + mac, "", false},
		{"value with a suffix", "idp_session", value + "x." + mac, "", false},
		{"tampered MAC", "idp_session", value + "." + flip(mac, 5), "", false},
		{"truncated MAC", "idp_session", signed[:len(signed)-1], "", false},
		{"empty MAC", "idp_session", value + ".", "", false},
		{"another cookie name", "idp_device", signed, "", false},
		{"another key", "idp_session", newKeys(t, 2).SignCookie("idp_session", "abc123"), "", false},
		{"missing dot", "idp_session", "abc123" + mac, "", false},
		{"value only", "idp_session", "abc123", "", false},
		{"empty", "idp_session", "", "", false},
		{"dot only", "idp_session", ".", "", false},
		{"MAC only", "idp_session", "." + mac, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := k.VerifyCookie(tc.cookie, tc.signed)
			if ok != tc.ok || got != tc.want {
				t.Errorf("VerifyCookie(%q, %q) = %q, %v; want %q, %v", tc.cookie, tc.signed, got, ok, tc.want, tc.ok)
			}
		})
	}
	// The name and value are bound unambiguously: moving the boundary
	// between them changes the MAC.
	if k.SignCookie("ab", "c") == "c."+strings.SplitN(k.SignCookie("a", "bc"), ".", 2)[1] {
		t.Error("name and value are not separated in the MAC")
	}
}

func TestCSRF(t *testing.T) {
	k := newKeys(t, 1)
	token := k.CSRFToken("browser-1", "login")
	if token == "" {
		t.Fatal("empty CSRF token")
	}
	if _, err := base64.RawURLEncoding.DecodeString(token); err != nil {
		t.Errorf("token %q is not base64url: %v", token, err)
	}
	if token != k.CSRFToken("browser-1", "login") {
		t.Error("CSRFToken is not deterministic")
	}
	for _, tc := range []struct {
		name, binding, purpose, token string
		ok                            bool
	}{
		{"right token", "browser-1", "login", token, true},
		{"another browser", "browser-2", "login", token, false},
		{"another form", "browser-1", "consent", token, false},
		{"empty token", "browser-1", "login", "", false},
		{"truncated token", "browser-1", "login", token[:len(token)-1], false},
		{"another key", "browser-1", "login", newKeys(t, 2).CSRFToken("browser-1", "login"), false},
		{"a cookie MAC for the same strings", "browser-1", "login", strings.SplitN(k.SignCookie("browser-1", "login"), ".", 2)[1], false},
		{"empty binding", "", "login", k.CSRFToken("", "login"), false},
		{"boundary moved", "browser-1l", "ogin", token, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := k.CheckCSRFToken(tc.binding, tc.purpose, tc.token); got != tc.ok {
				t.Errorf("CheckCSRFToken(%q, %q, %q) = %v, want %v", tc.binding, tc.purpose, tc.token, got, tc.ok)
			}
		})
	}
}

func TestClientSecretHash(t *testing.T) {
	const s = "0123456789abcdef0123456789abcdef"
	h := secret.HashClientSecret(s)
	if !strings.HasPrefix(h, "hmac-sha256$") || strings.Contains(h, s) {
		t.Fatalf("HashClientSecret = %q", h)
	}
	if h2 := secret.HashClientSecret(s); h2 == h {
		t.Error("two hashes of one secret are equal: no salt")
	} else if !secret.CheckClientSecret(h2, s) {
		t.Error("second hash does not check")
	}
	parts := strings.Split(h, "$")
	for _, tc := range []struct {
		name, hash, secret string
		ok                 bool
	}{
		{"right secret", h, s, true},
		{"wrong secret", h, s + "x", false},
		{"prefix of the secret", h, s[:31], false},
		{"empty secret", h, "", false},
		{"empty hash", "", s, false},
		{"other scheme", "bcrypt$" + parts[1] + "$" + parts[2], s, false},
		{"upper-case scheme", "HMAC-SHA256$" + parts[1] + "$" + parts[2], s, false},
		{"missing hash", "hmac-sha256$" + parts[1], s, false},
		{"empty salt and hash", "hmac-sha256$$", s, false},
		{"extra field", h + "$x", s, false},
		{"salt not base64", "hmac-sha256$!!!$" + parts[2], s, false},
		{"hash not base64", "hmac-sha256$" + parts[1] + "$!!!", s, false},
		{"truncated hash", h[:len(h)-2], s, false},
		{"other salt", "hmac-sha256$" + parts[1][1:] + "A$" + parts[2], s, false},
		{"plain text stored", s, s, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := secret.CheckClientSecret(tc.hash, tc.secret); got != tc.ok {
				t.Errorf("CheckClientSecret(%q, %q) = %v, want %v", tc.hash, tc.secret, got, tc.ok)
			}
		})
	}
}

func TestRandomToken(t *testing.T) {
	for _, n := range []int{0, 1, 12, 16, 32, 33} {
		tok := secret.RandomToken(n)
		if len(tok) != base64.RawURLEncoding.EncodedLen(n) {
			t.Errorf("RandomToken(%d) has length %d, want %d", n, len(tok), base64.RawURLEncoding.EncodedLen(n))
		}
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) != n {
			t.Errorf("RandomToken(%d) = %q: not %d bytes of base64url (%v)", n, tok, n, err)
		}
	}
	seen := map[string]bool{}
	for range 1000 {
		tok := secret.RandomToken(16)
		if seen[tok] {
			t.Fatalf("RandomToken(16) repeated %q", tok)
		}
		seen[tok] = true
	}
}

func BenchmarkCheckClientSecret(b *testing.B) {
	const s = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	h := secret.HashClientSecret(s)
	for b.Loop() {
		if !secret.CheckClientSecret(h, s) {
			b.Fatal("CheckClientSecret = false")
		}
	}
}
