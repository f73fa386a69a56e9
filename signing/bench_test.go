package signing_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/signing"
)

// idTokenClaims is an ID token as the provider issues one to a portal at a
// code exchange or a refresh (about 500 bytes of JSON).
func idTokenClaims(b *testing.B) []byte {
	b.Helper()
	now := time.Now()
	raw, err := json.Marshal(map[string]any{
		"iss": "https://id.example.com", "sub": secret.RandomToken(16), "aud": []string{"portal"}, "azp": "portal",
		"client_id": "portal", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "auth_time": now.Add(-time.Minute).Unix(),
		"nonce": secret.RandomToken(32), "acr": "mfa", "amr": []string{"pwd", "otp", "mfa"}, "at_hash": secret.RandomToken(16),
		"name": "Alice Martin", "preferred_username": "alice.martin", "email": "alice.martin@example.com",
		"email_verified": true, "updated_at": now.Add(-24 * time.Hour).Unix(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkSignIDToken signs an ID-token-sized payload with a key of each
// algorithm the key set can hold, made by signing.Generate as the provider
// makes them (RS256 is RSA-2048), through go-jose as the OpenID library
// signs: the JWS and its compact form. RS256_crypto_rsa is the RSA
// signature alone, without JOSE.
func BenchmarkSignIDToken(b *testing.B) {
	payload := idTokenClaims(b)
	for _, alg := range []string{signing.DefaultAlgorithm, "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			priv, err := signing.Generate(alg)
			if err != nil {
				b.Fatal(err)
			}
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg),
				Key: jose.JSONWebKey{Key: priv, KeyID: secret.RandomToken(12)}}, (&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				jws, err := signer.Sign(payload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := jws.CompactSerialize(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(payload)), "payload-B")
		})
	}
	b.Run("RS256_crypto_rsa", func(b *testing.B) {
		priv, err := signing.Generate(signing.DefaultAlgorithm)
		if err != nil {
			b.Fatal(err)
		}
		key, ok := priv.(*rsa.PrivateKey)
		if !ok {
			b.Fatalf("signing.Generate(%s) made a %T", signing.DefaultAlgorithm, priv)
		}
		b.ReportAllocs()
		for b.Loop() {
			digest := sha256.Sum256(payload)
			if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
