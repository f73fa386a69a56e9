package mfa_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

// The second-factor checks as a login runs them (idp/factors.go), on real
// stores: the replay guard and the recovery codes cost a database write
// each, which is what the pure checks are compared against.

// benchBackends are the durable stores the checks run on. PostgreSQL skips
// when it is not reachable (outside CI), as the other PostgreSQL tests do.
var benchBackends = []struct {
	name string
	url  func(b *testing.B) string
}{
	{"sqlite", func(b *testing.B) string { return "sqlite://" + filepath.Join(b.TempDir(), "idp.db") }},
	{"postgres", func(b *testing.B) string { return testenv.PostgresURL(b) }},
}

const benchUser = "u-bench"

// openBenchStore opens and migrates a store holding one user.
func openBenchStore(b *testing.B, url string, now time.Time) *sqlstore.Store {
	b.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateUser(ctx, &storage.User{ID: benchUser, Username: "bench", Email: "bench@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	return st
}

func benchKeys(b *testing.B) *secret.Keys {
	b.Helper()
	sk := make([]byte, 32)
	rand.Read(sk)
	keys, err := secret.NewKeys(sk)
	if err != nil {
		b.Fatal(err)
	}
	return keys
}

// BenchmarkTOTPAccept is accepting an authenticator code: MatchTOTP alone;
// MatchTOTP and the store's AdvanceTOTPStep, the replay guard that makes a
// match an acceptance; and all that checkTOTP does at login (read the
// enrolment, open its sealed secret, match, advance). Every op presents the
// code of a new time step (the clock moves 30 s per op), so every advance
// succeeds and writes, as at a real login.
func BenchmarkTOTPAccept(b *testing.B) {
	base := time.Unix(1_700_000_000, 0)
	secretKey := mfa.NewTOTPSecret()

	b.Run("match_only", func(b *testing.B) {
		code := mfa.TOTPCode(secretKey, base)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := mfa.MatchTOTP(secretKey, code, base); !ok {
				b.Fatal("MatchTOTP refused the current code")
			}
		}
	})

	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			keys := benchKeys(b)
			st := openBenchStore(b, be.url(b), base)
			ad := []byte("totp:" + benchUser) // idp's associated data for the sealed secret
			err := st.SetTOTP(ctx, &storage.TOTP{UserID: benchUser, Secret: keys.Seal(secretKey, ad),
				LastStep: mfa.TOTPStep(base) - 1, CreatedAt: base})
			if err != nil {
				b.Fatal(err)
			}
			// The time of the next op; it only moves on, across the runs
			// the benchmark framework makes with growing b.N.
			next := base
			nextCodes := func(n int) ([]time.Time, []string) {
				times, codes := make([]time.Time, n), make([]string, n)
				for i := range n {
					times[i], codes[i] = next, mfa.TOTPCode(secretKey, next)
					next = next.Add(mfa.TOTPPeriod)
				}
				return times, codes
			}

			b.Run("match_advance", func(b *testing.B) {
				times, codes := nextCodes(b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					step, ok := mfa.MatchTOTP(secretKey, codes[i], times[i])
					if !ok {
						b.Fatal("MatchTOTP refused the current code")
					}
					if advanced, err := st.AdvanceTOTPStep(ctx, benchUser, step); !advanced || err != nil {
						b.Fatalf("AdvanceTOTPStep(%d) = %v, %v", step, advanced, err)
					}
				}
			})

			b.Run("check_totp", func(b *testing.B) {
				times, codes := nextCodes(b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					t, err := st.TOTPByUser(ctx, benchUser)
					if err != nil {
						b.Fatal(err)
					}
					sec, err := keys.Open(t.Secret, ad)
					if err != nil {
						b.Fatal(err)
					}
					step, ok := mfa.MatchTOTP(sec, codes[i], times[i])
					if !ok {
						b.Fatal("MatchTOTP refused the current code")
					}
					if advanced, err := st.AdvanceTOTPStep(ctx, benchUser, step); !advanced || err != nil {
						b.Fatalf("AdvanceTOTPStep(%d) = %v, %v", step, advanced, err)
					}
				}
			})
		})
	}
}

// BenchmarkRecoveryCodeUse is a login with a recovery code as
// useRecoveryCode runs it: hash the code typed, make and hash its
// replacement, and swap them in the store in one transaction. Each op uses
// the replacement the previous op stored.
func BenchmarkRecoveryCodeUse(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)

	b.Run("hash_only", func(b *testing.B) {
		keys := benchKeys(b)
		code := mfa.NewRecoveryCode()
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := mfa.HashRecoveryCode(keys, benchUser, code); !ok {
				b.Fatal("HashRecoveryCode refused a new code")
			}
		}
	})

	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			keys := benchKeys(b)
			st := openBenchStore(b, be.url(b), now)
			codes := mfa.NewRecoveryCodes(mfa.RecoveryCodeCount)
			hashes := make([]string, len(codes))
			for i, c := range codes {
				var ok bool
				if hashes[i], ok = mfa.HashRecoveryCode(keys, benchUser, c); !ok {
					b.Fatalf("HashRecoveryCode refused the new code %q", c)
				}
			}
			if err := st.ReplaceRecoveryCodes(ctx, benchUser, hashes, now); err != nil {
				b.Fatal(err)
			}
			code := codes[0]
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				hash, ok := mfa.HashRecoveryCode(keys, benchUser, code)
				if !ok {
					b.Fatal("HashRecoveryCode refused a stored code")
				}
				replacement := mfa.NewRecoveryCode()
				replacementHash, ok := mfa.HashRecoveryCode(keys, benchUser, replacement)
				if !ok {
					b.Fatal("HashRecoveryCode refused a new code")
				}
				if err := st.ConsumeRecoveryCode(ctx, benchUser, hash, replacementHash, now); err != nil {
					b.Fatal(err)
				}
				code = replacement
			}
			b.StopTimer()
			if n, err := st.CountRecoveryCodes(ctx, benchUser); err != nil || n != mfa.RecoveryCodeCount {
				b.Fatalf("CountRecoveryCodes = %d, %v; want %d", n, err, mfa.RecoveryCodeCount)
			}
		})
	}
}
