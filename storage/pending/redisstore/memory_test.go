package redisstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/storage/pending/conformance"
	"github.com/hostportal/idp/storage/pending/redisstore"
)

// maxPendingLoginBytes is the Redis memory per pending login that capacity
// planning may assume: 10,000 logins in progress take under 20 MiB.
const maxPendingLoginBytes = 2048

// TestPendingLoginMemory stores 10,000 pending logins as the provider does
// (SET NX PX of the idp.AuthRequest JSON under "ar:ID"), half at the
// password step and half at the second-factor step, and asks Redis what a
// sample of them takes (MEMORY USAGE: the key, the value and their
// allocation overhead; not the entry in the expiry table). testenv deletes
// every key under the test's prefix when it ends.
func TestPendingLoginMemory(t *testing.T) {
	const (
		logins  = 10_000
		every   = 50 // MEMORY USAGE of a pair of logins (one at each step) in this many
		workers = 8
	)
	ctx := context.Background()
	url, prefix := testenv.RedisURL(t)
	s, err := redisstore.Open(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	raw := rawClient(t, url)

	type login struct {
		key          string
		value        []byte
		secondFactor bool
	}
	all := make([]login, logins)
	now := time.Now()
	for i := range all {
		id, atPassword, atSecondFactor := conformance.PendingLoginJSON(t, now)
		all[i] = login{key: "ar:" + id, value: atPassword}
		if i%2 == 1 {
			all[i].value, all[i].secondFactor = atSecondFactor, true
		}
	}

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < logins; i += workers {
				ok, err := s.SetNX(ctx, all[i].key, all[i].value, 10*time.Minute)
				if err == nil && !ok {
					err = errors.New("SetNX found the key taken")
				}
				if err != nil {
					mu.Lock()
					failed = errors.Join(failed, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if failed != nil {
		t.Fatalf("storing %d pending logins: %v", logins, failed)
	}

	// [0] the password step, [1] the second-factor step.
	var used, jsonBytes, n [2]int64
	var most int64
	for i := 0; i < logins; i += every {
		// The logins alternate between the steps: i is at the password step.
		for _, j := range []int{i, i + 1} {
			b, err := raw.MemoryUsage(ctx, prefix+all[j].key).Result()
			if err != nil {
				t.Fatalf("MEMORY USAGE %s: %v", all[j].key, err)
			}
			step := 0
			if all[j].secondFactor {
				step = 1
			}
			used[step] += b
			jsonBytes[step] += int64(len(all[j].value))
			n[step]++
			most = max(most, b)
		}
	}
	avg := float64(used[0]+used[1]) / float64(n[0]+n[1])
	t.Logf("%d pending logins in Redis, %d sampled: MEMORY USAGE average %.0f bytes, largest %d (budget %d); "+
		"password step %.0f bytes for %.0f of JSON, second-factor step %.0f bytes for %.0f of JSON; key %d bytes with the prefix",
		logins, n[0]+n[1], avg, most, maxPendingLoginBytes,
		float64(used[0])/float64(n[0]), float64(jsonBytes[0])/float64(n[0]),
		float64(used[1])/float64(n[1]), float64(jsonBytes[1])/float64(n[1]), len(prefix+all[0].key))
	if avg > maxPendingLoginBytes {
		t.Errorf("a pending login takes %.0f bytes of Redis memory on average; the budget is %d", avg, maxPendingLoginBytes)
	}
}
