package redisstore_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage/pending/conformance"
	"github.com/hostportal/idp/storage/pending/redisstore"
)

// BenchmarkPendingLoginRoundTrip is the life of a pending login on Redis,
// as the provider drives it: stored when /authorize creates it (Set), read
// by the login page (Get), moved from the password step to the second
// factor (CompareAndSwap, a Lua script), and taken once (GetDel), as a code
// is redeemed: four round trips to the server. The values are the JSON of
// idp.AuthRequest at those two steps. storage/pending has the same
// benchmark on the in-process store. Without a reachable Redis it skips
// (fails in CI), as the other Redis tests do.
func BenchmarkPendingLoginRoundTrip(b *testing.B) {
	_, atPassword, atSecondFactor := conformance.PendingLoginJSON(b, time.Now())
	b.Run("serial", func(b *testing.B) {
		s := openBenchStore(b)
		key := benchKey(0)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := conformance.LoginRoundTrip(ctx, s, key, atPassword, atSecondFactor); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(atPassword)+len(atSecondFactor))/2, "value-B")
	})
	// Logins of many browsers at once, over the client's connection pool.
	b.Run("parallel", func(b *testing.B) {
		s := openBenchStore(b)
		var worker atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			key := benchKey(worker.Add(1))
			ctx := context.Background()
			for pb.Next() {
				if err := conformance.LoginRoundTrip(ctx, s, key, atPassword, atSecondFactor); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func openBenchStore(b *testing.B) *redisstore.Store {
	b.Helper()
	url, prefix := testenv.RedisURL(b)
	s, err := redisstore.Open(url, prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// benchKey is a pending login's key, one per worker.
func benchKey(worker int64) string {
	return "ar:" + secret.RandomToken(32) + strconv.FormatInt(worker, 10)
}
