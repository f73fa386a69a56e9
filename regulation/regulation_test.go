package regulation_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/storage/pending/redisstore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// stores runs fn on the in-process store and on Redis.
func stores(t *testing.T, fn func(t *testing.T, st pending.Store, clk *clock)) {
	t.Run("memory", func(t *testing.T) {
		clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
		m := pending.NewMemory()
		m.Now = clk.Now
		t.Cleanup(func() { _ = m.Close() })
		fn(t, m, clk)
	})
	t.Run("redis", func(t *testing.T) {
		url, prefix := testenv.RedisURL(t)
		rs, err := redisstore.Open(url, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rs.Close() })
		// Redis expires keys in real time; the delays follow the clock.
		fn(t, rs, &clock{t: time.Now()})
	})
}

func newRegulator(t *testing.T, st pending.Store, clk *clock) *regulation.Regulator {
	t.Helper()
	r, err := regulation.New(st, regulation.Defaults(), clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fail runs one failed check and returns its bans.
func fail(t *testing.T, r *regulation.Regulator, a regulation.Attempt) []regulation.Ban {
	t.Helper()
	c, err := r.Begin(context.Background(), a)
	if err != nil {
		t.Fatalf("Begin(%+v): %v", a, err)
	}
	bans, err := c.Fail(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bans
}

func throttled(t *testing.T, r *regulation.Regulator, a regulation.Attempt) *regulation.Throttled {
	t.Helper()
	c, err := r.Begin(context.Background(), a)
	var th *regulation.Throttled
	if !errors.As(err, &th) {
		c.Done(context.Background())
		return nil
	}
	return th
}

func TestDelays(t *testing.T) {
	cfg := regulation.Defaults()
	want := map[int]time.Duration{1: 0, 4: 0, 5: time.Second, 6: 2 * time.Second, 7: 4 * time.Second,
		14: 512 * time.Second, 15: 15 * time.Minute, 100: 15 * time.Minute, 1 << 30: 15 * time.Minute}
	for n, d := range want {
		if got := cfg.Delay(n, cfg.AccountFailures); got != d {
			t.Errorf("Delay(%d) = %v, want %v", n, got, d)
		}
	}
	for _, bad := range []func(*regulation.Config){
		func(c *regulation.Config) { c.AccountFailures = 0 },
		func(c *regulation.Config) { c.NetworkFailures = 0 },
		func(c *regulation.Config) { c.BaseDelay = 0 },
		func(c *regulation.Config) { c.MaxDelay = c.BaseDelay / 2 },
		func(c *regulation.Config) { c.ForgetAfter = time.Minute },
	} {
		c := regulation.Defaults()
		bad(&c)
		if _, err := regulation.New(pending.NewMemory(), c, nil); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
}

func TestAccountDelayGrowsAndEnds(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		r := newRegulator(t, st, clk)
		a := regulation.Attempt{Account: "Alice", Factor: regulation.TOTP, Network: "192.0.2.1"}
		for i := 1; i <= 4; i++ {
			if bans := fail(t, r, a); len(bans) != 0 {
				t.Fatalf("failure %d banned: %+v", i, bans)
			}
		}
		bans := fail(t, r, a)
		if len(bans) != 1 || bans[0].Subject != regulation.SubjectAccount || bans[0].Delay != time.Second || bans[0].Failures != 5 || bans[0].Factor != regulation.TOTP {
			t.Fatalf("5th failure: bans %+v, want one 1 s account ban", bans)
		}
		// The delay holds before the check even runs, for any spelling of the name.
		th := throttled(t, r, regulation.Attempt{Account: " alice ", Factor: regulation.TOTP, Network: "192.0.2.1"})
		if th == nil || th.Subject != regulation.SubjectAccount || th.RetryAfter(clk.Now()) != time.Second {
			t.Fatalf("during the delay: %+v", th)
		}
		// The owner on another network is not kept out by it.
		if th := throttled(t, r, regulation.Attempt{Account: "alice", Factor: regulation.TOTP, Network: "198.51.100.1"}); th != nil {
			t.Fatalf("another network was delayed by the account's failures from one: %+v", th)
		}
		// Other factors of the account, and other accounts, are not delayed.
		if throttled(t, r, regulation.Attempt{Account: "alice", Factor: regulation.Password}) != nil ||
			throttled(t, r, regulation.Attempt{Account: "bob", Factor: regulation.TOTP}) != nil {
			t.Fatal("the delay spread to another factor or account")
		}
		clk.Advance(time.Second)
		if bans := fail(t, r, a); len(bans) != 1 || bans[0].Delay != 2*time.Second {
			t.Fatalf("6th failure: %+v, want 2 s", bans)
		}
		clk.Advance(2 * time.Second)
		if bans := fail(t, r, a); len(bans) != 1 || bans[0].Delay != 4*time.Second {
			t.Fatalf("7th failure: %+v, want 4 s", bans)
		}
		if th := throttled(t, r, a); th == nil || th.RetryAfter(clk.Now()) != 4*time.Second {
			t.Fatalf("after the 7th failure: %+v", th)
		}
		clk.Advance(4 * time.Second)
		if th := throttled(t, r, a); th != nil {
			t.Fatalf("the delay did not end: %+v", th)
		}
		if n, _, _ := r.Failures(context.Background(), "alice", regulation.TOTP); n != 7 {
			t.Errorf("count = %d, want 7", n)
		}
	})
}

func TestSuccessResetsOnlyThatFactor(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		r := newRegulator(t, st, clk)
		ctx := context.Background()
		for range 3 {
			fail(t, r, regulation.Attempt{Account: "alice", Factor: regulation.TOTP})
			fail(t, r, regulation.Attempt{Account: "alice", Factor: regulation.Password})
		}
		c, err := r.Begin(ctx, regulation.Attempt{Account: "alice", Factor: regulation.Password})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Done(ctx)
		if err := c.Succeed(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := r.Failures(ctx, "alice", regulation.Password); n != 0 {
			t.Errorf("password count after a correct password = %d, want 0", n)
		}
		// A known password must not wipe the wrong codes.
		if n, _, _ := r.Failures(ctx, "alice", regulation.TOTP); n != 3 {
			t.Errorf("code count after a correct password = %d, want 3", n)
		}
	})
}

func TestNetworkLimit(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		cfg := regulation.Defaults()
		cfg.NetworkFailures = 10
		r, err := regulation.New(st, cfg, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		// Password spraying: one try for each of many accounts.
		var bans []regulation.Ban
		for i := range 10 {
			bans = fail(t, r, regulation.Attempt{Account: "user" + string(rune('a'+i)), Factor: regulation.Password, Network: "2001:db8:1:2::/64"})
		}
		if len(bans) != 1 || bans[0].Subject != regulation.SubjectNetwork || bans[0].Network != "2001:db8:1:2::/64" {
			t.Fatalf("10th failure from the network: %+v", bans)
		}
		th := throttled(t, r, regulation.Attempt{Account: "fresh", Factor: regulation.Password, Network: "2001:db8:1:2::/64"})
		if th == nil || th.Subject != regulation.SubjectNetwork {
			t.Fatalf("a fresh account from the banned network: %+v", th)
		}
		if throttled(t, r, regulation.Attempt{Account: "fresh", Factor: regulation.Password, Network: "192.0.2.7"}) != nil {
			t.Fatal("another network was delayed")
		}
		// A remembered device does not lift a network's delay: a stolen
		// device token must not let one network guess without limits.
		if throttled(t, r, regulation.Attempt{Account: "fresh", Factor: regulation.Password, Network: "2001:db8:1:2::/64", Waive: true}) == nil {
			t.Fatal("the waiver lifted the network delay")
		}
	})
}

func TestWaiveAndUnlock(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		r := newRegulator(t, st, clk)
		ctx := context.Background()
		// A distributed attack: 3 failures from each of 7 networks, under
		// each network's 5 but over the account's 20 from all of them.
		for i := range 7 {
			for range 3 {
				clk.Advance(time.Minute) // past any delay
				fail(t, r, regulation.Attempt{Account: "alice", Factor: regulation.Password, Network: "192.0.2." + strconv.Itoa(10+i)})
			}
		}
		a := regulation.Attempt{Account: "alice", Factor: regulation.Password, Network: "198.51.100.7"}
		if th := throttled(t, r, a); th == nil || th.Subject != regulation.SubjectAccountEverywhere {
			t.Fatalf("no delay from all networks after 21 failures: %+v", th)
		}
		w := a
		w.Waive = true
		if th := throttled(t, r, w); th != nil {
			t.Fatalf("a browser that logged in before was delayed: %+v", th)
		}
		// The CLI unlock (no Regulator of its own) clears every factor.
		if err := regulation.Unlock(ctx, st, "ALICE"); err != nil {
			t.Fatal(err)
		}
		if th := throttled(t, r, a); th != nil {
			t.Fatalf("delayed after unlock: %+v", th)
		}
		if err := r.Unlock(ctx, ""); err == nil {
			t.Error("Unlock of no account succeeded")
		}
	})
}

// TestUnlockedSince: an unlock the server learns from the audit log (the
// CLI cannot reach an in-process store) ends the delay.
func TestUnlockedSince(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		r := newRegulator(t, st, clk)
		var asked atomic.Int32
		var unlockedAt time.Time
		r.UnlockedSince = func(_ context.Context, account string, since time.Time) (bool, error) {
			asked.Add(1)
			if account != "alice" {
				t.Errorf("asked about %q", account)
			}
			return !unlockedAt.IsZero() && unlockedAt.After(since), nil
		}
		a := regulation.Attempt{Account: "Alice", Factor: regulation.SMS}
		for range 10 {
			clk.Advance(time.Hour) // past any delay
			fail(t, r, a)
		}
		if throttled(t, r, a) == nil || asked.Load() != 1 {
			t.Fatalf("not delayed, or the log was not asked (%d)", asked.Load())
		}
		clk.Advance(11 * time.Second)
		if _, ok := st.(*pending.Memory); !ok {
			return // the 10 s window is Redis's real time
		}
		unlockedAt = clk.Now().Add(time.Millisecond)
		// Asked again only after 10 s: then the unlock is seen.
		if th := throttled(t, r, a); th != nil {
			t.Fatalf("still delayed after the unlock: %+v", th)
		}
		if n, _, _ := r.Failures(context.Background(), "alice", regulation.SMS); n != 0 {
			t.Errorf("count after unlock = %d", n)
		}
	})
}

// burst runs n failing checks at once, attempt(i) the i-th, and returns
// how many Begin let through; a refusal other than *Throttled, or any
// error when throttling is not allowed, fails the test.
func burst(t *testing.T, r *regulation.Regulator, n int, mayThrottle bool, attempt func(i int) regulation.Attempt) int {
	t.Helper()
	var checked atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := r.Begin(context.Background(), attempt(i))
			if err != nil {
				var th *regulation.Throttled
				if !mayThrottle || !errors.As(err, &th) {
					t.Error(err)
				}
				return
			}
			checked.Add(1)
			time.Sleep(time.Millisecond) // the check itself
			if _, err := c.Fail(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	return int(checked.Load())
}

// TestParallelGuesses: a burst of guesses at once is checked one at a
// time, so no more run than the free failures allow before the delay.
func TestParallelGuesses(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		r := newRegulator(t, st, clk)
		n := burst(t, r, 40, true, func(int) regulation.Attempt {
			return regulation.Attempt{Account: "alice", Factor: regulation.TOTP, Network: "192.0.2.9"}
		})
		if n != 5 {
			t.Errorf("%d of 40 parallel guesses were checked, want exactly the 5 free ones", n)
		}
		if n, _, _ := r.Failures(context.Background(), "alice", regulation.TOTP); n != 5 {
			t.Errorf("count = %d, want 5", n)
		}
	})
}

// TestSharedAcrossInstances: two regulators on one Redis (two instances)
// count into the same limits.
func TestSharedAcrossInstances(t *testing.T) {
	url, prefix := testenv.RedisURL(t)
	one, err := redisstore.Open(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	two, err := redisstore.Open(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = one.Close(); _ = two.Close() })
	clk := &clock{t: time.Now()}
	r1, r2 := newRegulator(t, one, clk), newRegulator(t, two, clk)
	a := regulation.Attempt{Account: "alice", Factor: regulation.Recovery}
	for i := range 5 {
		fail(t, []*regulation.Regulator{r1, r2}[i%2], a)
	}
	if throttled(t, r1, a) == nil || throttled(t, r2, a) == nil {
		t.Fatal("5 failures across two instances did not delay both")
	}
}

func TestMalformedCountIsDropped(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		r := newRegulator(t, st, clk)
		if err := st.Set(context.Background(), "reg:net:192.0.2.1", []byte("garbage"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if th := throttled(t, r, regulation.Attempt{Factor: regulation.Password, Network: "192.0.2.1"}); th != nil {
			t.Fatalf("a malformed count blocked: %+v", th)
		}
		fail(t, r, regulation.Attempt{Factor: regulation.Password, Network: "192.0.2.1"})
	})
}

func TestResetOneFactor(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		r := newRegulator(t, st, clk)
		ctx := context.Background()
		for range 6 {
			clk.Advance(time.Hour)
			fail(t, r, regulation.Attempt{Account: "alice", Factor: regulation.Password})
			fail(t, r, regulation.Attempt{Account: "alice", Factor: regulation.SMS})
		}
		if err := r.Reset(ctx, "Alice", regulation.Password); err != nil {
			t.Fatal(err)
		}
		if throttled(t, r, regulation.Attempt{Account: "alice", Factor: regulation.Password}) != nil {
			t.Error("the password is still delayed after Reset")
		}
		if throttled(t, r, regulation.Attempt{Account: "alice", Factor: regulation.SMS}) == nil {
			t.Error("Reset of the password cleared the SMS delay")
		}
	})
}

// TestConcurrentNetworkFailures: a spray makes hundreds of failures on one
// network at the same moment; every one is counted, none fails.
func TestConcurrentNetworkFailures(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		cfg := regulation.Defaults()
		cfg.NetworkFailures = 1000
		r, err := regulation.New(st, cfg, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		burst(t, r, 300, false, func(i int) regulation.Attempt {
			return regulation.Attempt{Account: "user" + strconv.Itoa(i), Factor: regulation.Password, Network: "192.0.2.50"}
		})
		v, err := st.Get(context.Background(), "reg:net:192.0.2.50")
		if err != nil || string(v) != "300" {
			t.Fatalf("network count %q, %v; want 300", v, err)
		}
	})
}

// TestParallelSprayOnAHotNetwork: once a network has used half its free
// failures its checks run one at a time, so a burst of parallel guesses
// for many accounts gets no more checks than the free failures left.
func TestParallelSprayOnAHotNetwork(t *testing.T) {
	stores(t, func(t *testing.T, st pending.Store, clk *clock) {
		cfg := regulation.Defaults()
		cfg.NetworkFailures = 10
		r, err := regulation.New(st, cfg, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			fail(t, r, regulation.Attempt{Account: "first" + strconv.Itoa(i), Factor: regulation.Password, Network: "192.0.2.77"})
		}
		n := burst(t, r, 100, true, func(i int) regulation.Attempt {
			return regulation.Attempt{Account: "spray" + strconv.Itoa(i), Factor: regulation.Password, Network: "192.0.2.77"}
		})
		if n != 5 {
			t.Errorf("%d of 100 parallel guesses from a hot network were checked, want the 5 free failures left", n)
		}
	})
}
