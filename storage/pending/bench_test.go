package pending_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/hostportal/idp/idp"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage/pending"
)

// BenchmarkPendingLoginRoundTrip is the life of a pending login in the
// in-process store, as the provider drives it: stored when /authorize
// creates it (Set), read by the login page (Get), moved from the password
// step to the second factor (CompareAndSwap), and taken once (GetDel), as
// a code is redeemed. The values are the JSON of idp.AuthRequest at those
// two steps. storage/pending/redisstore has the same benchmark on Redis.
func BenchmarkPendingLoginRoundTrip(b *testing.B) {
	atPassword, atSecondFactor := pendingLoginJSON(b, time.Now())
	b.Run("serial", func(b *testing.B) {
		m := pending.NewMemory()
		b.Cleanup(func() { _ = m.Close() })
		key := "ar:" + secret.RandomToken(32)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := pendingLoginRoundTrip(ctx, m, key, atPassword, atSecondFactor); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(atPassword)+len(atSecondFactor))/2, "value-B")
	})
	// Logins of many browsers at once: the shards keep them from waiting
	// on one lock.
	b.Run("parallel", func(b *testing.B) {
		m := pending.NewMemory()
		b.Cleanup(func() { _ = m.Close() })
		var worker atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			key := "ar:" + secret.RandomToken(32) + strconv.FormatInt(worker.Add(1), 10)
			ctx := context.Background()
			for pb.Next() {
				if err := pendingLoginRoundTrip(ctx, m, key, atPassword, atSecondFactor); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func pendingLoginRoundTrip(ctx context.Context, s pending.Store, key string, atPassword, atSecondFactor []byte) error {
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

// pendingLoginJSON returns what the provider stores under "ar:ID" for a
// login of a portal with PKCE: the idp.AuthRequest as /authorize creates it
// (the password step) and as it is after the password (the second-factor
// step), with values of the sizes the provider and the usual OAuth
// libraries use (43-character random tokens, a SHA-256 browser binding).
func pendingLoginJSON(tb testing.TB, now time.Time) (atPassword, atSecondFactor []byte) {
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
	return atPassword, atSecondFactor
}
