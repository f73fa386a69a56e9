package conformance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/hostportal/idp/idp"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage/pending"
)

// What the benchmarks and the memory test of both stores share: the life of
// a pending login as the provider drives it, and its real JSON.

// LoginRoundTrip stores a pending login (Set), reads it (Get), moves it
// from the password step to the second factor (CompareAndSwap) and takes
// it once (GetDel).
func LoginRoundTrip(ctx context.Context, s pending.Store, key string, atPassword, atSecondFactor []byte) error {
	if err := s.Set(ctx, key, atPassword, 10*time.Minute); err != nil {
		return err
	}
	if v, err := s.Get(ctx, key); err != nil || len(v) != len(atPassword) {
		return fmt.Errorf("Get = %d bytes, %v", len(v), err)
	}
	if ok, err := s.CompareAndSwap(ctx, key, atPassword, atSecondFactor, 10*time.Minute); !ok || err != nil {
		return fmt.Errorf("CompareAndSwap = %v, %v", ok, err)
	}
	if v, err := s.GetDel(ctx, key); err != nil || len(v) != len(atSecondFactor) {
		return fmt.Errorf("GetDel = %d bytes, %v", len(v), err)
	}
	return nil
}

// PendingLoginJSON returns what the provider stores under "ar:ID" for a
// login of a portal with PKCE: the idp.AuthRequest as /authorize creates it
// (the password step) and as it is after the password (the second-factor
// step), with values of the sizes the provider and the usual OAuth
// libraries use (43-character random tokens, a SHA-256 browser binding).
func PendingLoginJSON(tb testing.TB, now time.Time) (id string, atPassword, atSecondFactor []byte) {
	tb.Helper()
	var browserID [32]byte
	rand.Read(browserID[:])
	browser := sha256.Sum256(browserID[:])
	a := &idp.AuthRequest{
		ID:                  secret.RandomToken(32),
		CreatedAt:           now,
		ExpiresAt:           now.Add(10 * time.Minute),
		ClientID:            "portal",
		RedirectURI:         "https://portal.example.com/auth/callback",
		State:               secret.RandomToken(32),
		Nonce:               secret.RandomToken(32),
		Scopes:              []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
		ResponseType:        oidc.ResponseTypeCode,
		CodeChallenge:       secret.RandomToken(32),
		CodeChallengeMethod: oidc.CodeChallengeMethodS256,
		Browser:             hex.EncodeToString(browser[:]),
		Step:                "password",
	}
	id = a.ID
	atPassword, err := json.Marshal(a)
	if err != nil {
		tb.Fatal(err)
	}
	a.Step = "second_factor"
	a.UserID = secret.RandomToken(16)
	a.Username = "alice.martin"
	a.AuthTime = now.Add(20 * time.Second)
	a.AMR = []string{"pwd"}
	a.ACR = "pwd"
	a.FreshAuth = true
	atSecondFactor, err = json.Marshal(a)
	if err != nil {
		tb.Fatal(err)
	}
	return id, atPassword, atSecondFactor
}
