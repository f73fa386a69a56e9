package redisstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/storage/pending/conformance"
	"github.com/hostportal/idp/storage/pending/redisstore"
)

func TestConformance(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) pending.Store {
		url, prefix := testenv.RedisURL(t)
		s, err := redisstore.Open(url, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// rawClient is a client on the test Redis for looking behind the Store.
func rawClient(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	c, err := redisstore.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestPrefixIsolatesStores(t *testing.T) {
	ctx := t.Context()
	url, prefix := testenv.RedisURL(t)
	a, err := redisstore.Open(url, prefix+"a:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b, err := redisstore.Open(url, prefix+"b:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })

	if err := a.Set(ctx, "k", []byte("from a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, pending.ErrNotFound) {
		t.Fatalf("b sees a's key: %v", err)
	}
	if ok, err := b.SetNX(ctx, "k", []byte("from b"), time.Minute); err != nil || !ok {
		t.Fatalf("b.SetNX = %v, %v; want true", ok, err)
	}
	if n, err := a.Incr(ctx, "n", time.Minute); err != nil || n != 1 {
		t.Fatalf("a.Incr = %d, %v", n, err)
	}
	if n, err := b.Incr(ctx, "n", time.Minute); err != nil || n != 1 {
		t.Fatalf("b.Incr = %d, %v; want its own counter", n, err)
	}
	if v, err := a.GetDel(ctx, "k"); err != nil || string(v) != "from a" {
		t.Fatalf("a.GetDel = %q, %v", v, err)
	}
	if v, err := b.Get(ctx, "k"); err != nil || string(v) != "from b" {
		t.Fatalf("b.Get after a.GetDel = %q, %v", v, err)
	}

	// Keys are stored as prefix+key, nothing more.
	raw := rawClient(t, url)
	if v, err := raw.Get(ctx, prefix+"b:k").Result(); err != nil || v != "from b" {
		t.Fatalf("raw GET %sb:k = %q, %v", prefix, v, err)
	}
	if n, err := raw.Exists(ctx, "k", prefix+"a:k").Result(); err != nil || n != 0 {
		t.Fatalf("unexpected keys: %d, %v", n, err)
	}
}

func TestTTLsReachRedis(t *testing.T) {
	ctx := t.Context()
	url, prefix := testenv.RedisURL(t)
	s, err := redisstore.Open(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	raw := rawClient(t, url)

	wantTTL := func(key string, max time.Duration) {
		t.Helper()
		ttl, err := raw.PTTL(ctx, prefix+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > max || ttl < max-5*time.Second {
			t.Fatalf("PTTL %s = %v, want about %v", key, ttl, max)
		}
	}
	if err := s.Set(ctx, "set", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	wantTTL("set", time.Minute)
	if _, err := s.SetNX(ctx, "nx", []byte("v"), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	wantTTL("nx", 90*time.Second)
	if _, err := s.CompareAndSwap(ctx, "set", []byte("v"), []byte("w"), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	wantTTL("set", 2*time.Minute)
	if _, err := s.Incr(ctx, "ctr", time.Minute); err != nil {
		t.Fatal(err)
	}
	wantTTL("ctr", time.Minute)
	if _, err := s.Incr(ctx, "ctr", time.Hour); err != nil {
		t.Fatal(err)
	}
	wantTTL("ctr", time.Minute)

	// A counter left without a ttl (written by something else) gets one
	// rather than living forever.
	if err := raw.Set(ctx, prefix+"immortal", "7", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(ctx, "immortal", time.Minute); err != nil || n != 8 {
		t.Fatalf("Incr = %d, %v; want 8", n, err)
	}
	wantTTL("immortal", time.Minute)

	// Sub-millisecond parts round up, never down to "no expiry".
	if err := s.Set(ctx, "tiny", []byte("v"), time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if ttl, err := raw.PTTL(ctx, prefix+"tiny").Result(); err != nil || ttl == -1 {
		t.Fatalf("PTTL tiny = %v, %v; want an expiry (or the key gone)", ttl, err)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for _, url := range []string{
		"",
		"localhost:6379",
		"127.0.0.1",
		"http://localhost:6379",
		"postgres://u:hunter2@host/db",
		"redis://user:hunter2@localhost:6379/notanumber",
		"redis://:hunter2@localhost:6379/0/extra",
		"redis://localhost:6379/0?bogus_option=1",
		"redis://localhost:6379/0?dial_timeout=soon",
		"redis://u:hunter2@local host:6379",
		"redis+sentinel://u:hunter2@s1:26379,s2:26379",
		"redis+sentinel://s1:26379,s2:26379/master/0/extra",
		"redis+sentinel://s1:26379,,s2/master",
		"redis+sentinel://s1:notaport/master",
		"redis+sentinel://s1/master?master_name=other",
		"redis+cluster://u:hunter2@n1:6379,n2:6379/3",
		"redis+cluster://",
		"redis+cluster://n1,::1",
		"redis+cluster://n1:6379?addr=n2:6379",
		"redis+cluster://n1:6379?bogus=1",
		"redis+cluster://n1:6379#frag",
		"redis+tls://localhost",
	} {
		s, err := redisstore.Open(url, "p:")
		if err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) = nil error, want one", url)
			continue
		}
		msg := err.Error()
		for _, want := range []string{"invalid Redis URL", "redis://", "rediss://", "redis+sentinel://", "redis+cluster://"} {
			if !strings.Contains(msg, want) {
				t.Errorf("Open(%q) error %q does not mention %q", url, msg, want)
			}
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("Open(%q) error leaks the password: %q", url, msg)
		}
	}
}

func TestOpenDoesNotDial(t *testing.T) {
	// Nothing listens on port 1: Open succeeds, Ping reports the failure.
	s, err := redisstore.Open("redis://127.0.0.1:1/0?dial_timeout=500ms&max_retries=-1", "p:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping on an unreachable server = nil")
	}
}

func TestNewLeavesClientOpen(t *testing.T) {
	ctx := t.Context()
	url, prefix := testenv.RedisURL(t)
	client := rawClient(t, url)
	s := redisstore.New(client, prefix)
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("client closed by Store.Close of New: %v", err)
	}
	if v, err := client.Get(ctx, prefix+"k").Result(); err != nil || v != "v" {
		t.Fatalf("GET = %q, %v", v, err)
	}
}
