// Package secret owns the provider's use of secret_key: sealing secrets at
// rest (AES-256-GCM with the owning row's identity as associated data),
// keyed MACs for cookies and CSRF tokens (each purpose with its own derived
// key), and the fast keyed hash of long random client secrets.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrOpen: a sealed value could not be opened (wrong key, wrong associated
// data, or tampered).
var ErrOpen = errors.New("secret: cannot open sealed value")

// Keys holds keys derived from secret_key, one per purpose.
type Keys struct {
	aead      cipher.AEAD
	cookieMAC []byte
	csrfMAC   []byte
	hashMAC   []byte
}

// NewKeys derives the purpose keys from the 32-byte secret_key.
func NewKeys(secretKey []byte) (*Keys, error) {
	if len(secretKey) != 32 {
		return nil, fmt.Errorf("secret: secret_key must be 32 bytes, got %d", len(secretKey))
	}
	derive := func(purpose string) []byte {
		k, err := hkdf.Key(sha256.New, secretKey, nil, "idp "+purpose, 32)
		if err != nil {
			panic(err) // only for lengths hkdf cannot produce
		}
		return k
	}
	block, err := aes.NewCipher(derive("seal v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Keys{aead: aead, cookieMAC: derive("cookie v1"), csrfMAC: derive("csrf v1"), hashMAC: derive("hash v1")}, nil
}

// Seal encrypts plaintext bound to ad (e.g. the user id or key id).
func (k *Keys) Seal(plaintext, ad []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return k.aead.Seal(nonce, nonce, plaintext, ad)
}

// Open decrypts a value made by Seal with the same ad.
func (k *Keys) Open(sealed, ad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, ErrOpen
	}
	out, err := k.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// SignCookie returns value.MAC, binding value to the cookie name.
func (k *Keys) SignCookie(name, value string) string {
	return value + "." + k.mac(k.cookieMAC, name, value)
}

// VerifyCookie returns the value of a cookie made by SignCookie, or false
// when it was tampered with.
func (k *Keys) VerifyCookie(name, signed string) (string, bool) {
	i := strings.LastIndexByte(signed, '.')
	if i <= 0 {
		return "", false
	}
	value, mac := signed[:i], signed[i+1:]
	if !hmac.Equal([]byte(mac), []byte(k.mac(k.cookieMAC, name, value))) {
		return "", false
	}
	return value, true
}

// CSRFToken returns the CSRF token for a form bound to binding (the
// browser's id) and purpose (the form).
func (k *Keys) CSRFToken(binding, purpose string) string {
	return k.mac(k.csrfMAC, binding, purpose)
}

// CheckCSRFToken reports whether token is the CSRF token for binding and purpose.
func (k *Keys) CheckCSRFToken(binding, purpose, token string) bool {
	return binding != "" && hmac.Equal([]byte(token), []byte(k.CSRFToken(binding, purpose)))
}

// Hash is a keyed hash (HMAC-SHA-256 under a key derived from secret_key)
// of parts for purpose, for values stored to be compared later (recovery
// codes): a copy of the database alone cannot be used to test guesses.
func (k *Keys) Hash(purpose string, parts ...string) string {
	return k.mac(k.hashMAC, append([]string{purpose}, parts...)...)
}

func (k *Keys) mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		fmt.Fprintf(m, "%d:%s|", len(p), p)
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// RandomToken returns n random bytes, base64url without padding.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashClientSecret returns the stored form of a client secret: HMAC-SHA-256
// under a random per-client salt. Client secrets are long and random (see
// config.MinClientSecretLength), so a fast keyed hash is as safe as a slow
// one and keeps the token endpoint fast.
func HashClientSecret(s string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(s))
	b64 := base64.RawStdEncoding
	return "hmac-sha256$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(m.Sum(nil))
}

// CheckClientSecret compares s with a hash from HashClientSecret in constant time.
func CheckClientSecret(hash, s string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 3 || parts[0] != "hmac-sha256" {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[1])
	want, err2 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return false
	}
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(s))
	return hmac.Equal(m.Sum(nil), want)
}
