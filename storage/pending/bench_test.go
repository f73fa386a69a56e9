package pending_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/storage/pending/conformance"
)

// BenchmarkPendingLoginRoundTrip is the life of a pending login in the
// in-process store, as the provider drives it: stored when /authorize
// creates it (Set), read by the login page (Get), moved from the password
// step to the second factor (CompareAndSwap), and taken once (GetDel), as
// a code is redeemed. The values are the JSON of idp.AuthRequest at those
// two steps. storage/pending/redisstore has the same benchmark on Redis.
func BenchmarkPendingLoginRoundTrip(b *testing.B) {
	_, atPassword, atSecondFactor := conformance.PendingLoginJSON(b, time.Now())
	b.Run("serial", func(b *testing.B) {
		m := pending.NewMemory()
		b.Cleanup(func() { _ = m.Close() })
		key := "ar:" + secret.RandomToken(32)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := conformance.LoginRoundTrip(ctx, m, key, atPassword, atSecondFactor); err != nil {
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
				if err := conformance.LoginRoundTrip(ctx, m, key, atPassword, atSecondFactor); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
