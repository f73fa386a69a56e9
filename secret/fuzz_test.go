package secret_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hostportal/idp/secret"
)

// Fuzz targets of what secret_key protects against outside input: signed
// cookies, sealed values, CSRF tokens and stored client secrets. The seeds
// run in every go test; make fuzz runs each target for a while.

// FuzzVerifyCookie: a cookie signed for a name reads back as its value
// under that name only, and any other text in its place (a changed value, a
// changed or cut MAC, another name) never reads as a value.
func FuzzVerifyCookie(f *testing.F) {
	for _, s := range []struct{ name, value, forged string }{
		{"idp_session", "q1w2e3r4t5y6u7i8o9p0", "q1w2e3r4t5y6u7i8o9p0.AAAA"},
		{"__Host-idp_browser", "abc.def", "abc.def."},
		{"idp_device", "x", ".x"},
		{"idp_method", "totp", "totp"},
		{"idp_session", "a.b.c", "a.b.c.d"},
		{"", "v", "v.\x00"},
		{"idp_session", "ü\xff", "%00.%00"},
		{"idp_browser", strings.Repeat("A", 4096), "...."},
		{"idp_session", " spaced ", "spaced"},
		{"idp_session", "v", ""},
	} {
		f.Add(s.name, s.value, s.forged)
	}
	k := newKeys(f, 7)
	other := newKeys(f, 8)
	f.Fuzz(func(t *testing.T, name, value, forged string) {
		signed := k.SignCookie(name, value)
		got, ok := k.VerifyCookie(name, signed)
		// An empty value reads as no cookie (readCookie's "missing").
		if value != "" && (!ok || got != value) {
			t.Fatalf("VerifyCookie(%q, SignCookie(%q)) = %q, %v", name, value, got, ok)
		}
		if value == "" && ok {
			t.Fatalf("an empty value read as present: %q", got)
		}
		if v, ok := k.VerifyCookie(name+"x", signed); ok {
			t.Fatalf("cookie of %q read under another name as %q", name, v)
		}
		if v, ok := other.VerifyCookie(name, signed); ok {
			t.Fatalf("cookie read under another secret_key as %q", v)
		}
		// Anything but the signed text itself is tampered with (or made up).
		if v, ok := k.VerifyCookie(name, forged); ok && forged != signed {
			t.Fatalf("VerifyCookie(%q, %q) = %q: a text that is not the signed one read as a value", name, forged, v)
		}
		// Every one-byte change of the signed text is refused.
		for i := 0; i < len(signed) && i < 64; i++ {
			b := []byte(signed)
			b[i] ^= 1 << (i % 8)
			if v, ok := k.VerifyCookie(name, string(b)); ok {
				t.Fatalf("tampered cookie %q (byte %d) read as %q", b, i, v)
			}
		}
		if v, ok := k.VerifyCookie(name, signed[:len(signed)-1]); ok {
			t.Fatalf("cut cookie read as %q", v)
		}
	})
}

// FuzzOpen: a sealed value opens only with its associated data, and no
// changed or made-up bytes ever open.
func FuzzOpen(f *testing.F) {
	for _, s := range []struct{ plain, ad, forged []byte }{
		{[]byte("JBSWY3DPEHPK3PXP"), []byte("totp:user-1"), []byte("")},
		{[]byte(""), []byte(""), make([]byte, 12)},
		{[]byte("x"), []byte("key:1"), make([]byte, 28)},
		{[]byte("x"), []byte("key:1"), make([]byte, 29)},
		{bytes.Repeat([]byte{0xff}, 1000), []byte("access-token v1"), bytes.Repeat([]byte{0xff}, 1028)},
		{[]byte("secret"), nil, []byte("not a sealed value at all")},
		{[]byte("\x00"), []byte("\x00"), []byte{0}},
	} {
		f.Add(s.plain, s.ad, s.forged)
	}
	k := newKeys(f, 1)
	f.Fuzz(func(t *testing.T, plain, ad, forged []byte) {
		sealed := k.Seal(plain, ad)
		got, err := k.Open(sealed, ad)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
		if v, err := k.Open(sealed, append(bytes.Clone(ad), 0)); err == nil {
			t.Fatalf("opened with other associated data: %q", v)
		}
		for i := range sealed {
			b := bytes.Clone(sealed)
			b[i] ^= 0x80
			if v, err := k.Open(b, ad); err == nil {
				t.Fatalf("tampered byte %d opened as %q", i, v)
			}
		}
		if v, err := k.Open(sealed[:len(sealed)-1], ad); err == nil {
			t.Fatalf("cut value opened as %q", v)
		}
		if v, err := k.Open(forged, ad); err == nil {
			t.Fatalf("made-up bytes %q opened as %q", forged, v)
		}
	})
}

// FuzzCheckCSRFToken: a form's token is accepted for its browser and form
// only; no token is accepted without a browser id.
func FuzzCheckCSRFToken(f *testing.F) {
	for _, s := range []struct{ binding, purpose, token string }{
		{"browser-1", "login:abc", ""},
		{"browser-1", "account", "x"},
		{"", "account", ""},
		{"b", "login:", "login:b"},
		{"a:b", "c", "a"},
		{"\xff", "\x00", "\xff\x00"},
		{"browser-1", "login:abc", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	} {
		f.Add(s.binding, s.purpose, s.token)
	}
	k := newKeys(f, 2)
	f.Fuzz(func(t *testing.T, binding, purpose, token string) {
		good := k.CSRFToken(binding, purpose)
		if got := k.CheckCSRFToken(binding, purpose, good); got != (binding != "") {
			t.Fatalf("CheckCSRFToken(%q, %q, its own token) = %v", binding, purpose, got)
		}
		if k.CheckCSRFToken(binding+"x", purpose, good) || k.CheckCSRFToken(binding, purpose+"x", good) {
			t.Fatalf("token of (%q, %q) accepted for another browser or form", binding, purpose)
		}
		if token != good && k.CheckCSRFToken(binding, purpose, token) {
			t.Fatalf("made-up token %q accepted for (%q, %q)", token, binding, purpose)
		}
	})
}

// FuzzCheckClientSecret: a stored hash accepts its secret only, and a
// malformed or made-up hash accepts nothing.
func FuzzCheckClientSecret(f *testing.F) {
	for _, s := range []struct{ secret, hash string }{
		{"a-long-random-client-secret-of-32-chars", ""},
		{"", "hmac-sha256$$"},
		{"s", "hmac-sha256$AAAA$AAAA"},
		{"s", "hmac-sha256$AAAA$AAAA$AAAA"},
		{"s", "plain$s"},
		{"s", "hmac-sha256$!!!!$AAAA"},
		{"s", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"},
		{"\x00", "hmac-sha256$\x00$\x00"},
	} {
		f.Add(s.secret, s.hash)
	}
	f.Fuzz(func(t *testing.T, s, hash string) {
		h := secret.HashClientSecret(s)
		if !secret.CheckClientSecret(h, s) {
			t.Fatalf("hash of %q does not accept it", s)
		}
		if secret.CheckClientSecret(h, s+"x") {
			t.Fatalf("hash of %q accepts %q", s, s+"x")
		}
		// Only HashClientSecret makes hashes that accept s: a made-up one
		// (malformed, of another kind, or a guessed MAC) never does.
		if hash != h && secret.CheckClientSecret(hash, s) {
			t.Fatalf("made-up hash %q accepted %q", hash, s)
		}
	})
}
