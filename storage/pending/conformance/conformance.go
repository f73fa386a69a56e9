// Package conformance is the one test suite every pending.Store passes: a
// backend's test calls RunTests with a function that makes an empty store.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hostportal/idp/storage/pending"
)

// RunTests runs the suite. newStore is called once per subtest and must
// return an empty store isolated from other subtests (for a shared server,
// under a key prefix of its own); it registers the store's Close with
// t.Cleanup itself. The expiry test sleeps once, for under a second.
func RunTests(t *testing.T, newStore func(t *testing.T) pending.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s pending.Store)
	}{
		{"SetGet", testSetGet},
		{"Missing", testMissing},
		{"CopiesValues", testCopiesValues},
		{"BinaryValues", testBinaryValues},
		{"OddKeys", testOddKeys},
		{"SetNX", testSetNX},
		{"SetNXConcurrent", testSetNXConcurrent},
		{"GetDel", testGetDel},
		{"GetDelConcurrent", testGetDelConcurrent},
		{"CompareAndSwap", testCompareAndSwap},
		{"CompareAndSwapConcurrent", testCompareAndSwapConcurrent},
		{"CompareAndSwapCounter", testCompareAndSwapCounter},
		{"Delete", testDelete},
		{"Incr", testIncr},
		{"IncrConcurrent", testIncrConcurrent},
		{"NonPositiveTTL", testNonPositiveTTL},
		{"Ping", testPing},
		{"CanceledContext", testCanceledContext},
		{"Close", testClose},
		{"Expiry", testExpiry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

const (
	long = time.Hour
	// short is the ttl of the keys the expiry tests wait out; wait is how
	// long they wait, with a margin for a loaded machine.
	short = 400 * time.Millisecond
	wait  = short + 250*time.Millisecond
)

func mustSet(t *testing.T, s pending.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, value, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, s pending.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantMissing(t *testing.T, s pending.Store, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, pending.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// run starts n goroutines running f(i) and waits for them all; a start
// barrier makes them contend.
func run(n int, f func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			f(i)
		}()
	}
	start.Done()
	done.Wait()
}

func testSetGet(t *testing.T, s pending.Store) {
	mustSet(t, s, "a", []byte("one"), long)
	wantValue(t, s, "a", []byte("one"))
	mustSet(t, s, "a", []byte("two"), long)
	wantValue(t, s, "a", []byte("two"))
	mustSet(t, s, "b", []byte("other"), long)
	wantValue(t, s, "a", []byte("two"))
	wantValue(t, s, "b", []byte("other"))
	// An empty value is a value, not an absence.
	mustSet(t, s, "empty", []byte{}, long)
	wantValue(t, s, "empty", []byte{})
	mustSet(t, s, "nil", nil, long)
	wantValue(t, s, "nil", []byte{})
}

func testMissing(t *testing.T, s pending.Store) {
	ctx := t.Context()
	wantMissing(t, s, "nope")
	if v, err := s.GetDel(ctx, "nope"); !errors.Is(err, pending.ErrNotFound) {
		t.Errorf("GetDel(missing) = %q, %v; want ErrNotFound", v, err)
	}
	// Keys differ by every byte: a prefix of a key is another key.
	mustSet(t, s, "abc", []byte("x"), long)
	wantMissing(t, s, "ab")
	wantMissing(t, s, "abcd")
	wantMissing(t, s, "ABC")
}

func testCopiesValues(t *testing.T, s pending.Store) {
	ctx := t.Context()
	in := []byte("original")
	mustSet(t, s, "k", in, long)
	in[0] = 'X'
	wantValue(t, s, "k", []byte("original"))

	out, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	out[0] = 'Y'
	wantValue(t, s, "k", []byte("original"))

	in = []byte("nx-value")
	if ok, err := s.SetNX(ctx, "nx", in, long); err != nil || !ok {
		t.Fatalf("SetNX = %v, %v", ok, err)
	}
	in[0] = 'X'
	wantValue(t, s, "nx", []byte("nx-value"))

	next := []byte("swapped")
	if ok, err := s.CompareAndSwap(ctx, "k", []byte("original"), next, long); err != nil || !ok {
		t.Fatalf("CompareAndSwap = %v, %v", ok, err)
	}
	next[0] = 'X'
	wantValue(t, s, "k", []byte("swapped"))
}

func testBinaryValues(t *testing.T, s pending.Store) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	values := map[string][]byte{
		"zeros":   {0, 0, 0},
		"inner0":  []byte("a\x00b\x00"),
		"bytes":   all,
		"invalid": {0xff, 0xfe, 0xc3, 0x28, '\r', '\n'},
		"big":     bytes.Repeat([]byte("0123456789abcdef\x00"), 1<<14), // ~272 KiB
	}
	for k, v := range values {
		mustSet(t, s, k, v, long)
	}
	for k, v := range values {
		wantValue(t, s, k, v)
	}
	got, err := s.GetDel(t.Context(), "bytes")
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("GetDel(bytes) = %q, %v", got, err)
	}
}

func testOddKeys(t *testing.T, s pending.Store) {
	keys := []string{
		"with space", " lead", "trail ", "a:b:c", ":", "::", "{tag}", "{", "}x{",
		"glob*?[a-z]\\", "ключ", "鍵🔑", "tab\tnew\nline", "nul\x00byte",
		"%2F/slash/", "\"quote'", "a", "A", "a ",
	}
	for i, k := range keys {
		mustSet(t, s, k, []byte(strconv.Itoa(i)), long)
	}
	for i, k := range keys {
		wantValue(t, s, k, []byte(strconv.Itoa(i)))
	}
	ctx := t.Context()
	for i, k := range keys {
		ok, err := s.CompareAndSwap(ctx, k, []byte(strconv.Itoa(i)), []byte("cas"+strconv.Itoa(i)), long)
		if err != nil || !ok {
			t.Fatalf("CompareAndSwap(%q) = %v, %v", k, ok, err)
		}
		if n, err := s.Incr(ctx, "n"+k, long); err != nil || n != 1 {
			t.Fatalf("Incr(%q) = %d, %v", "n"+k, n, err)
		}
	}
	for i, k := range keys {
		got, err := s.GetDel(ctx, k)
		if err != nil || string(got) != "cas"+strconv.Itoa(i) {
			t.Fatalf("GetDel(%q) = %q, %v", k, got, err)
		}
		wantMissing(t, s, k)
	}
}

func testSetNX(t *testing.T, s pending.Store) {
	ctx := t.Context()
	ok, err := s.SetNX(ctx, "k", []byte("first"), long)
	if err != nil || !ok {
		t.Fatalf("SetNX(new) = %v, %v; want true", ok, err)
	}
	ok, err = s.SetNX(ctx, "k", []byte("second"), long)
	if err != nil || ok {
		t.Fatalf("SetNX(existing) = %v, %v; want false", ok, err)
	}
	wantValue(t, s, "k", []byte("first"))

	// A key made by Set blocks SetNX too.
	mustSet(t, s, "set", []byte("v"), long)
	if ok, err := s.SetNX(ctx, "set", []byte("w"), long); err != nil || ok {
		t.Fatalf("SetNX(after Set) = %v, %v; want false", ok, err)
	}
	wantValue(t, s, "set", []byte("v"))

	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SetNX(ctx, "k", []byte("third"), long); err != nil || !ok {
		t.Fatalf("SetNX(after Delete) = %v, %v; want true", ok, err)
	}
	wantValue(t, s, "k", []byte("third"))
}

func testSetNXConcurrent(t *testing.T, s pending.Store) {
	const n = 16
	ctx := t.Context()
	var mu sync.Mutex
	var winners []int
	var errs []error
	run(n, func(i int) {
		ok, err := s.SetNX(ctx, "race", []byte(strconv.Itoa(i)), long)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			winners = append(winners, i)
		}
	})
	if len(errs) > 0 {
		t.Fatalf("SetNX errors: %v", errs)
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent SetNX calls won, want exactly 1 (%v)", len(winners), n, winners)
	}
	wantValue(t, s, "race", []byte(strconv.Itoa(winners[0])))
}

func testGetDel(t *testing.T, s pending.Store) {
	ctx := t.Context()
	mustSet(t, s, "code", []byte("secret"), long)
	got, err := s.GetDel(ctx, "code")
	if err != nil || string(got) != "secret" {
		t.Fatalf("GetDel = %q, %v; want secret", got, err)
	}
	if got, err := s.GetDel(ctx, "code"); !errors.Is(err, pending.ErrNotFound) {
		t.Fatalf("second GetDel = %q, %v; want ErrNotFound", got, err)
	}
	wantMissing(t, s, "code")
	// The key can be made again.
	if ok, err := s.SetNX(ctx, "code", []byte("again"), long); err != nil || !ok {
		t.Fatalf("SetNX after GetDel = %v, %v", ok, err)
	}
	// The returned slice is the caller's.
	got, err = s.GetDel(ctx, "code")
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'X'
	mustSet(t, s, "code", []byte("fresh"), long)
	wantValue(t, s, "code", []byte("fresh"))
}

func testGetDelConcurrent(t *testing.T, s pending.Store) {
	const goroutines, rounds = 16, 8
	ctx := t.Context()
	for r := range rounds {
		key := fmt.Sprintf("code-%d", r)
		want := fmt.Sprintf("value-%d", r)
		mustSet(t, s, key, []byte(want), long)
		var mu sync.Mutex
		var got []string
		var errs []error
		run(goroutines, func(int) {
			v, err := s.GetDel(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				got = append(got, string(v))
			case !errors.Is(err, pending.ErrNotFound):
				errs = append(errs, err)
			}
		})
		if len(errs) > 0 {
			t.Fatalf("round %d: GetDel errors: %v", r, errs)
		}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("round %d: %d concurrent GetDel calls got the value %q, want exactly one to get %q", r, len(got), got, want)
		}
		wantMissing(t, s, key)
	}
}

func testCompareAndSwap(t *testing.T, s pending.Store) {
	ctx := t.Context()
	mustSet(t, s, "k", []byte("v1"), long)

	ok, err := s.CompareAndSwap(ctx, "k", []byte("v1"), []byte("v2"), long)
	if err != nil || !ok {
		t.Fatalf("CompareAndSwap(match) = %v, %v; want true", ok, err)
	}
	wantValue(t, s, "k", []byte("v2"))

	for _, old := range [][]byte{[]byte("v1"), []byte("v"), []byte("v2 "), []byte("V2"), {}, nil} {
		ok, err = s.CompareAndSwap(ctx, "k", old, []byte("bad"), long)
		if err != nil || ok {
			t.Fatalf("CompareAndSwap(old %q) = %v, %v; want false", old, ok, err)
		}
	}
	wantValue(t, s, "k", []byte("v2"))

	// A missing key never matches, not even an empty old value.
	for _, old := range [][]byte{[]byte("v1"), {}, nil} {
		ok, err = s.CompareAndSwap(ctx, "missing", old, []byte("new"), long)
		if err != nil || ok {
			t.Fatalf("CompareAndSwap(missing, old %q) = %v, %v; want false, nil", old, ok, err)
		}
	}
	wantMissing(t, s, "missing")

	// Whole binary values are compared, zero bytes included.
	mustSet(t, s, "bin", []byte("a\x00b"), long)
	if ok, _ := s.CompareAndSwap(ctx, "bin", []byte("a\x00c"), []byte("x"), long); ok {
		t.Fatal("CompareAndSwap matched a different binary value")
	}
	if ok, _ := s.CompareAndSwap(ctx, "bin", []byte("a"), []byte("x"), long); ok {
		t.Fatal("CompareAndSwap matched a prefix up to a zero byte")
	}
	if ok, err := s.CompareAndSwap(ctx, "bin", []byte("a\x00b"), []byte("\x00\x01"), long); err != nil || !ok {
		t.Fatalf("CompareAndSwap(binary) = %v, %v", ok, err)
	}
	wantValue(t, s, "bin", []byte("\x00\x01"))

	// An empty value can be compared and swapped in.
	if ok, err := s.CompareAndSwap(ctx, "bin", []byte("\x00\x01"), []byte{}, long); err != nil || !ok {
		t.Fatalf("CompareAndSwap(to empty) = %v, %v", ok, err)
	}
	if ok, err := s.CompareAndSwap(ctx, "bin", []byte{}, []byte("back"), long); err != nil || !ok {
		t.Fatalf("CompareAndSwap(from empty) = %v, %v", ok, err)
	}
	wantValue(t, s, "bin", []byte("back"))
}

func testCompareAndSwapConcurrent(t *testing.T, s pending.Store) {
	const n = 16
	ctx := t.Context()
	mustSet(t, s, "state", []byte("step-1"), long)
	var mu sync.Mutex
	var winners []int
	var errs []error
	run(n, func(i int) {
		ok, err := s.CompareAndSwap(ctx, "state", []byte("step-1"), []byte("step-2-by-"+strconv.Itoa(i)), long)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			winners = append(winners, i)
		}
	})
	if len(errs) > 0 {
		t.Fatalf("CompareAndSwap errors: %v", errs)
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent CompareAndSwap calls won, want exactly 1", len(winners), n)
	}
	wantValue(t, s, "state", []byte("step-2-by-"+strconv.Itoa(winners[0])))
}

// testCompareAndSwapCounter builds a counter from Get and CompareAndSwap
// retries: lost updates would show as a short total.
func testCompareAndSwapCounter(t *testing.T, s pending.Store) {
	const goroutines, increments = 6, 15
	ctx := t.Context()
	mustSet(t, s, "ctr", []byte("0"), long)
	errc := make(chan error, goroutines)
	run(goroutines, func(int) {
		for range increments {
			for {
				cur, err := s.Get(ctx, "ctr")
				if err != nil {
					errc <- err
					return
				}
				n, err := strconv.Atoi(string(cur))
				if err != nil {
					errc <- err
					return
				}
				ok, err := s.CompareAndSwap(ctx, "ctr", cur, []byte(strconv.Itoa(n+1)), long)
				if err != nil {
					errc <- err
					return
				}
				if ok {
					break
				}
			}
		}
	})
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	wantValue(t, s, "ctr", []byte(strconv.Itoa(goroutines*increments)))
}

func testDelete(t *testing.T, s pending.Store) {
	ctx := t.Context()
	if err := s.Delete(ctx, "never"); err != nil {
		t.Fatalf("Delete(missing) = %v, want nil", err)
	}
	mustSet(t, s, "k", []byte("v"), long)
	mustSet(t, s, "k2", []byte("v2"), long)
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, s, "k")
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}
	wantValue(t, s, "k2", []byte("v2"))
	// A deleted counter starts again at 1.
	for want := int64(1); want <= 2; want++ {
		if n, err := s.Incr(ctx, "ctr", long); err != nil || n != want {
			t.Fatalf("Incr = %d, %v; want %d", n, err, want)
		}
	}
	if err := s.Delete(ctx, "ctr"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(ctx, "ctr", long); err != nil || n != 1 {
		t.Fatalf("Incr after Delete = %d, %v; want 1", n, err)
	}
}

func testIncr(t *testing.T, s pending.Store) {
	ctx := t.Context()
	for want := int64(1); want <= 5; want++ {
		n, err := s.Incr(ctx, "attempts", long)
		if err != nil || n != want {
			t.Fatalf("Incr = %d, %v; want %d", n, err, want)
		}
	}
	if n, err := s.Incr(ctx, "other", long); err != nil || n != 1 {
		t.Fatalf("Incr(other) = %d, %v; want 1", n, err)
	}
	// A counter can be consumed like any value.
	if _, err := s.GetDel(ctx, "attempts"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(ctx, "attempts", long); err != nil || n != 1 {
		t.Fatalf("Incr after GetDel = %d, %v; want 1", n, err)
	}
}

func testIncrConcurrent(t *testing.T, s pending.Store) {
	const goroutines, increments = 8, 40
	ctx := t.Context()
	var mu sync.Mutex
	seen := make(map[int64]bool)
	var errs []error
	run(goroutines, func(int) {
		for range increments {
			n, err := s.Incr(ctx, "hits", long)
			mu.Lock()
			if err != nil {
				errs = append(errs, err)
			} else {
				if seen[n] {
					errs = append(errs, fmt.Errorf("Incr returned %d twice", n))
				}
				seen[n] = true
			}
			mu.Unlock()
		}
	})
	if len(errs) > 0 {
		t.Fatalf("Incr errors: %v", errs)
	}
	const total = goroutines * increments
	if len(seen) != total {
		t.Fatalf("got %d distinct counts, want %d", len(seen), total)
	}
	for i := int64(1); i <= total; i++ {
		if !seen[i] {
			t.Fatalf("no Incr returned %d", i)
		}
	}
	if n, err := s.Incr(ctx, "hits", long); err != nil || n != total+1 {
		t.Fatalf("Incr after %d = %d, %v", total, n, err)
	}
}

func testNonPositiveTTL(t *testing.T, s pending.Store) {
	ctx := t.Context()
	mustSet(t, s, "exists", []byte("v"), long)
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Set(ctx, "k", []byte("v"), ttl); err == nil {
			t.Errorf("Set(ttl %v) = nil, want an error", ttl)
		}
		if _, err := s.SetNX(ctx, "k", []byte("v"), ttl); err == nil {
			t.Errorf("SetNX(ttl %v) = nil error, want an error", ttl)
		}
		if _, err := s.Incr(ctx, "k", ttl); err == nil {
			t.Errorf("Incr(ttl %v) = nil error, want an error", ttl)
		}
		if _, err := s.CompareAndSwap(ctx, "exists", []byte("v"), []byte("w"), ttl); err == nil {
			t.Errorf("CompareAndSwap(ttl %v) = nil error, want an error", ttl)
		}
	}
	// Nothing immortal was written.
	wantMissing(t, s, "k")
	wantValue(t, s, "exists", []byte("v"))
}

func testPing(t *testing.T, s pending.Store) {
	ctx := t.Context()
	mustSet(t, s, "k", []byte("before ping"), long)
	for range 3 {
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping = %v", err)
		}
	}
	wantValue(t, s, "k", []byte("before ping"))
	mustSet(t, s, "k2", []byte("after ping"), long)
	wantValue(t, s, "k2", []byte("after ping"))
}

func testCanceledContext(t *testing.T, s pending.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Set(ctx, "k", []byte("v"), long); !errors.Is(err, context.Canceled) {
		t.Errorf("Set(canceled ctx) = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get(canceled ctx) = %v, want context.Canceled", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping(canceled ctx) = %v, want context.Canceled", err)
	}
	wantMissing(t, s, "k")
}

func testClose(t *testing.T, s pending.Store) {
	mustSet(t, s, "k", []byte("v"), long)
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}

// testExpiry waits once for every kind of expiry: values from Set, SetNX
// and CompareAndSwap and new counters vanish after their ttl; overwriting
// and CompareAndSwap replace the ttl; a later Incr does not extend a
// counter's ttl; an expired key can be made again and no longer matches in
// CompareAndSwap. (One sleep rather than parallel subtests: -parallel is
// GOMAXPROCS, as low as 2.)
func testExpiry(t *testing.T, s pending.Store) {
	ctx := t.Context()
	mustSet(t, s, "set", []byte("v"), short)
	if ok, err := s.SetNX(ctx, "nx", []byte("v"), short); err != nil || !ok {
		t.Fatalf("SetNX = %v, %v", ok, err)
	}
	mustSet(t, s, "kept", []byte("v"), long)
	mustSet(t, s, "set-shortened", []byte("v"), long)
	mustSet(t, s, "set-shortened", []byte("w"), short)
	mustSet(t, s, "set-lengthened", []byte("v"), short)
	mustSet(t, s, "set-lengthened", []byte("w"), long)
	mustSet(t, s, "cas-shortened", []byte("a"), long)
	mustSet(t, s, "cas-lengthened", []byte("a"), short)
	mustSet(t, s, "cas-expires", []byte("a"), short)
	if ok, err := s.CompareAndSwap(ctx, "cas-shortened", []byte("a"), []byte("b"), short); err != nil || !ok {
		t.Fatalf("CompareAndSwap(cas-shortened) = %v, %v", ok, err)
	}
	if ok, err := s.CompareAndSwap(ctx, "cas-lengthened", []byte("a"), []byte("b"), long); err != nil || !ok {
		t.Fatalf("CompareAndSwap(cas-lengthened) = %v, %v", ok, err)
	}
	if n, err := s.Incr(ctx, "ctr", short); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v; want 1", n, err)
	}
	wantValue(t, s, "set", []byte("v"))
	wantValue(t, s, "nx", []byte("v"))

	time.Sleep(short / 2)
	// A longer ttl on an existing counter is ignored.
	if n, err := s.Incr(ctx, "ctr", long); err != nil || n != 2 {
		t.Fatalf("Incr = %d, %v; want 2", n, err)
	}
	time.Sleep(wait - short/2)

	for _, k := range []string{"set", "nx", "set-shortened", "cas-shortened", "cas-expires", "ctr"} {
		wantMissing(t, s, k)
		if v, err := s.GetDel(ctx, k); !errors.Is(err, pending.ErrNotFound) {
			t.Fatalf("GetDel(expired %q) = %q, %v; want ErrNotFound", k, v, err)
		}
	}
	wantValue(t, s, "kept", []byte("v"))
	wantValue(t, s, "set-lengthened", []byte("w"))
	wantValue(t, s, "cas-lengthened", []byte("b"))
	if ok, err := s.CompareAndSwap(ctx, "cas-expires", []byte("a"), []byte("b"), long); err != nil || ok {
		t.Fatalf("CompareAndSwap(expired) = %v, %v; want false", ok, err)
	}
	wantMissing(t, s, "cas-expires")
	if ok, err := s.SetNX(ctx, "nx", []byte("again"), long); err != nil || !ok {
		t.Fatalf("SetNX after expiry = %v, %v; want true", ok, err)
	}
	wantValue(t, s, "nx", []byte("again"))
	if n, err := s.Incr(ctx, "ctr", long); err != nil || n != 1 {
		t.Fatalf("Incr after expiry = %d, %v; want 1", n, err)
	}
}
