package pending_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/storage/pending/conformance"
)

func TestMemory(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) pending.Store {
		m := pending.NewMemory()
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newMemoryWithClock(t *testing.T) (*pending.Memory, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	m := pending.NewMemory()
	m.Now = clk.Now
	t.Cleanup(func() { _ = m.Close() })
	return m, clk
}

func TestMemoryExpiryFollowsClock(t *testing.T) {
	ctx := t.Context()
	m, clk := newMemoryWithClock(t)

	if err := m.Set(ctx, "set", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.SetNX(ctx, "nx", []byte("v"), time.Minute); err != nil || !ok {
		t.Fatalf("SetNX = %v, %v", ok, err)
	}
	if n, err := m.Incr(ctx, "ctr", time.Minute); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	if err := m.Set(ctx, "cas", []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}

	clk.Advance(30 * time.Second)
	// An existing counter keeps its ttl; a CAS sets a new one.
	if n, err := m.Incr(ctx, "ctr", time.Hour); err != nil || n != 2 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	if ok, err := m.CompareAndSwap(ctx, "cas", []byte("a"), []byte("b"), time.Minute); err != nil || !ok {
		t.Fatalf("CompareAndSwap = %v, %v", ok, err)
	}

	clk.Advance(30*time.Second - time.Nanosecond)
	for _, k := range []string{"set", "nx", "ctr", "cas"} {
		if _, err := m.Get(ctx, k); err != nil {
			t.Fatalf("Get(%q) one nanosecond before expiry: %v", k, err)
		}
	}

	clk.Advance(time.Nanosecond) // exactly one minute: the ttl has elapsed
	for _, k := range []string{"set", "nx", "ctr"} {
		if _, err := m.Get(ctx, k); !errors.Is(err, pending.ErrNotFound) {
			t.Fatalf("Get(%q) at expiry = %v, want ErrNotFound", k, err)
		}
		if _, err := m.GetDel(ctx, k); !errors.Is(err, pending.ErrNotFound) {
			t.Fatalf("GetDel(%q) at expiry = %v, want ErrNotFound", k, err)
		}
	}
	if _, err := m.Get(ctx, "cas"); err != nil {
		t.Fatalf("CompareAndSwap did not renew the ttl: %v", err)
	}
	if ok, err := m.SetNX(ctx, "nx", []byte("w"), time.Minute); err != nil || !ok {
		t.Fatalf("SetNX on expired key = %v, %v; want true", ok, err)
	}
	if n, err := m.Incr(ctx, "ctr", time.Minute); err != nil || n != 1 {
		t.Fatalf("Incr on expired counter = %d, %v; want 1", n, err)
	}

	clk.Advance(30 * time.Second)
	if ok, err := m.CompareAndSwap(ctx, "cas", []byte("b"), []byte("c"), time.Minute); err != nil || ok {
		t.Fatalf("CompareAndSwap on expired key = %v, %v; want false", ok, err)
	}
}

func TestMemorySweep(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	m := pending.NewMemory()
	m.Now = clk.Now
	pending.SetSweepInterval(m, 5*time.Millisecond)
	t.Cleanup(func() { _ = m.Close() })

	for i := range 500 {
		key := "short-" + strconv.Itoa(i)
		if err := m.Set(ctx, key, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"long-1", "long-2", "long-3"} {
		if err := m.Set(ctx, k, []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := pending.StoredEntries(m); n != 503 {
		t.Fatalf("stored %d entries, want 503", n)
	}

	// Nothing has expired yet: sweeps must keep everything.
	time.Sleep(30 * time.Millisecond)
	if n := pending.StoredEntries(m); n != 503 {
		t.Fatalf("sweep removed live entries: %d left, want 503", n)
	}

	clk.Advance(2 * time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for pending.StoredEntries(m) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("sweep left %d entries, want 3", pending.StoredEntries(m))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, k := range []string{"long-1", "long-2", "long-3"} {
		if _, err := m.Get(ctx, k); err != nil {
			t.Fatalf("Get(%q) after sweep: %v", k, err)
		}
	}

	// Close stops the sweep and waits for it; calls then fail.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Ping(ctx); err == nil {
		t.Fatal("Ping after Close = nil, want an error")
	}
	if err := m.Set(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Fatal("Set after Close = nil, want an error")
	}
}

// A store closed before any write never starts its sweep, and one never
// written to can still be closed.
func TestMemoryCloseUnused(t *testing.T) {
	m := pending.NewMemory()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(t.Context(), "k", []byte("v"), time.Minute); err == nil {
		t.Fatal("Set after Close = nil, want an error")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
