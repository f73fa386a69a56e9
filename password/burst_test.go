package password

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

// A burst of 500 logins against a Hasher made as `idp serve` makes it
// (NewHasher(params, 0, 0): GOMAXPROCS hashes at once, 64 per slot waiting)
// admits exactly the running and waiting slots, refuses the rest with
// ErrBusy without waiting for any hash, and, while the admitted ones are
// hashed, never runs more than GOMAXPROCS hashes or holds more than their
// memory.
//
// The Hasher exposes no count of running hashes. A sampler counts them from
// outside instead (the goroutines whose stack is inside argon2.IDKey, in a
// stop-the-world dump of all goroutines), and it tracks the heap, which is
// what the cap protects. Each hash holds a block of MemoryKiB from start to
// end: the heap holds the blocks of the running hashes and, until the
// collector catches up, up to as many again of finished ones, so its growth
// stays under 2×(GOMAXPROCS+1)×MemoryKiB plus slack. Without the cap the
// admitted hashes (65×GOMAXPROCS) would all run at once, and hold 20 to 30
// times that.
func TestBurstStaysWithinConcurrencyCap(t *testing.T) {
	const (
		logins = 500
		pw     = "correct horse battery staple"
	)
	p := Params{MemoryKiB: 4 << 10, Iterations: 1, Parallelism: 1}
	procs := runtime.GOMAXPROCS(0)
	h, err := NewHasher(p, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	admitted := procs + 64*procs // the running slots and the queue behind them
	if cap(h.run) != procs || cap(h.queue) != admitted {
		t.Fatalf("NewHasher(p, 0, 0) runs %d and admits %d; want GOMAXPROCS (%d) and %d", cap(h.run), cap(h.queue), procs, admitted)
	}
	if admitted >= logins {
		t.Skipf("GOMAXPROCS %d admits %d logins at once: a burst of %d does not overflow the queue", procs, admitted, logins)
	}

	// Hold every running slot, so that the whole burst has arrived before
	// the first hash starts: the admitted logins wait, the others must not.
	held := procs
	for range held {
		h.run <- struct{}{}
	}
	defer func() {
		for range held {
			<-h.run
		}
	}()
	type result struct {
		ok   bool
		err  error
		took time.Duration
	}
	results := make(chan result, logins)
	start := make(chan struct{})
	for range logins {
		go func() {
			<-start
			t0 := time.Now()
			ok, _, err := h.Verify(context.Background(), encoded, pw)
			results <- result{ok, err, time.Since(t0)}
		}()
	}
	close(start)

	var slowestBusy time.Duration
	timeout := time.After(10 * time.Second)
	for range logins - admitted {
		select {
		case r := <-results:
			if !errors.Is(r.err, ErrBusy) {
				t.Fatalf("a login returned %v, %v while every admitted one waits for a slot; want ErrBusy", r.ok, r.err)
			}
			slowestBusy = max(slowestBusy, r.took)
		case <-timeout:
			t.Fatalf("the logins beyond the queue were not refused within 10s (queue holds %d)", len(h.queue))
		}
	}
	waitUntil(t, "the admitted logins to queue", func() bool { return len(h.queue) == admitted })
	// A refusal takes no hash, only a non-blocking channel send:
	// microseconds, plus the scheduler's turn among 500 goroutines.
	if slowestBusy > time.Second {
		t.Errorf("slowest ErrBusy took %v; want an immediate refusal", slowestBusy)
	}

	// Now let them hash, and sample. One more P than the cap (which
	// NewHasher fixed already) lets the sampler run while every slot hashes.
	// A low GC percent frees the block of a finished hash soon, so that the
	// heap follows the hashes in flight more than the collector's pacing.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs + 1))
	stacks := make([]byte, 1<<20)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var (
		peakHeap    uint64
		peakRunning int
		samples     int
		stop        = make(chan struct{})
		sampler     sync.WaitGroup
	)
	sampler.Go(func() {
		var ms runtime.MemStats
		for i := 0; ; i++ {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapAlloc)
			// A dump of every goroutine stops the world for longer: one
			// sample in ten.
			if i%10 == 0 {
				n := runtime.Stack(stacks, true)
				for n == len(stacks) {
					stacks = make([]byte, 2*len(stacks))
					n = runtime.Stack(stacks, true)
				}
				peakRunning = max(peakRunning, runningHashes(stacks[:n]))
				samples++
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		sampler.Wait()
	}()
	began := time.Now()
	for ; held > 0; held-- {
		<-h.run
	}
	timeout = time.After(30 * time.Second)
	for range admitted {
		select {
		case r := <-results:
			if !r.ok || r.err != nil {
				t.Errorf("an admitted login = %v, %v; want true, nil", r.ok, r.err)
			}
		case <-timeout:
			t.Fatal("the admitted logins did not finish within 30s")
		}
	}
	hashing := time.Since(began)
	close(stop)
	sampler.Wait()

	block := uint64(p.MemoryKiB) << 10
	growth := uint64(0)
	if peakHeap > base {
		growth = peakHeap - base
	}
	const slack = 8 << 20 // results, timers, the rest of the program
	bound := 2*uint64(procs+1)*block + slack
	t.Logf("%d logins, GOMAXPROCS %d: %d refused (slowest in %v); %d hashed in %v; "+
		"at most %d hashes running in %d samples; peak heap growth %.1f MiB (%.1f blocks of %d MiB), bound %.1f MiB",
		logins, procs, logins-admitted, slowestBusy, admitted, hashing,
		peakRunning, samples, mib(growth), float64(growth)/float64(block), p.MemoryKiB>>10, mib(bound))
	if peakRunning > procs {
		t.Errorf("%d hashes ran at once; want at most GOMAXPROCS (%d)", peakRunning, procs)
	}
	if peakRunning == 0 {
		t.Errorf("no sample found a goroutine in argon2.IDKey in %d samples: the count does not work", samples)
	}
	if growth > bound {
		t.Errorf("peak heap growth %.1f MiB > %.1f MiB: more than GOMAXPROCS (%d) hashes held memory at once", mib(growth), mib(bound), procs)
	}
	if len(h.run) != 0 || len(h.queue) != 0 {
		t.Errorf("slots not released: running %d, queued %d", len(h.run), len(h.queue))
	}
}

// runningHashes counts the goroutines of a runtime.Stack(all) dump that are
// inside argon2id. The traceback names inlined frames too.
func runningHashes(dump []byte) int {
	n := 0
	for g := range bytes.SplitSeq(dump, []byte("\n\n")) {
		if bytes.Contains(g, []byte("golang.org/x/crypto/argon2.IDKey(")) {
			n++
		}
	}
	return n
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
