package pending

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is the in-process Store for a single instance. Entries live in a
// sharded map so that concurrent logins rarely wait on one lock. An expired
// entry is invisible at once (every read checks its deadline) and its memory
// is reclaimed by a background sweep that Close stops.
//
// Values are copied in and out: a caller cannot change a stored value by
// changing a slice it passed in or got back.
//
// Counters made by Incr are stored as decimal text, as Redis stores them, so
// Get on a counter gives "1", "2", ... on both stores.
type Memory struct {
	// Now is the clock behind every expiry decision; NewMemory sets it to
	// time.Now. Tests replace it before the first call on the store and must
	// not replace it afterwards (the function it holds may of course return
	// whatever time the test wants).
	Now func() time.Time

	seed   maphash.Seed
	shards [memoryShards]memoryShard

	// sweepEvery is how often the background sweep runs. The sweep starts
	// with the first write, so a Memory that is never written to owns no
	// goroutine, and a Now set before the first call is seen by the sweep
	// without a data race.
	sweepEvery time.Duration
	started    atomic.Bool
	closed     atomic.Bool
	life       sync.Mutex // guards starting the sweep against Close
	stop       chan struct{}
	swept      sync.WaitGroup
}

var _ Store = (*Memory)(nil)

// memoryShards is a power of two so a hash picks a shard with a mask.
const memoryShards = 32

const defaultSweepEvery = 30 * time.Second

// errMemoryClosed is returned by every call after Close, as a closed Redis
// client does.
var errMemoryClosed = errors.New("pending: memory store is closed")

type memoryShard struct {
	mu      sync.Mutex
	entries map[string]memoryEntry
	_       [48]byte // keep neighbouring shard locks off one cache line
}

type memoryEntry struct {
	value   []byte
	expires time.Time
}

// live reports whether the entry is still visible at now: it expires at the
// instant its ttl has fully elapsed.
func (e memoryEntry) live(now time.Time) bool { return now.Before(e.expires) }

// NewMemory returns an empty in-process store whose clock is time.Now.
func NewMemory() *Memory {
	m := &Memory{
		Now:        time.Now,
		seed:       maphash.MakeSeed(),
		sweepEvery: defaultSweepEvery,
		stop:       make(chan struct{}),
	}
	for i := range m.shards {
		m.shards[i].entries = make(map[string]memoryEntry)
	}
	return m
}

func (m *Memory) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func (m *Memory) shard(key string) *memoryShard {
	return &m.shards[maphash.String(m.seed, key)&(memoryShards-1)]
}

// check refuses calls on a closed store or with a finished context.
func (m *Memory) check(ctx context.Context) error {
	if m.closed.Load() {
		return errMemoryClosed
	}
	return ctx.Err()
}

// checkWrite is check plus the ttl rule, and it starts the sweep: only
// writes create entries that need sweeping.
func (m *Memory) checkWrite(ctx context.Context, ttl time.Duration) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("pending: ttl must be positive, got %v", ttl)
	}
	if !m.started.Load() {
		m.startSweep()
	}
	return nil
}

func (m *Memory) startSweep() {
	m.life.Lock()
	defer m.life.Unlock()
	if m.started.Load() || m.closed.Load() {
		return
	}
	m.started.Store(true)
	m.swept.Add(1)
	go m.sweepLoop()
}

func (m *Memory) sweepLoop() {
	defer m.swept.Done()
	tick := time.NewTicker(m.sweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.sweep()
		}
	}
}

// sweep deletes expired entries one shard at a time, so a writer waits at
// most for the sweep of one shard, never of the whole store.
func (m *Memory) sweep() {
	for i := range m.shards {
		select {
		case <-m.stop:
			return
		default:
		}
		sh := &m.shards[i]
		now := m.now()
		sh.mu.Lock()
		for k, e := range sh.entries {
			if !e.live(now) {
				delete(sh.entries, k)
			}
		}
		sh.mu.Unlock()
	}
}

// Set implements Store.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.checkWrite(ctx, ttl); err != nil {
		return err
	}
	v := clone(value)
	sh := m.shard(key)
	sh.mu.Lock()
	sh.entries[key] = memoryEntry{value: v, expires: m.now().Add(ttl)}
	sh.mu.Unlock()
	return nil
}

// SetNX implements Store.
func (m *Memory) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := m.checkWrite(ctx, ttl); err != nil {
		return false, err
	}
	v := clone(value)
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := m.now()
	if e, ok := sh.entries[key]; ok && e.live(now) {
		return false, nil
	}
	sh.entries[key] = memoryEntry{value: v, expires: now.Add(ttl)}
	return true, nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.entries[key]
	if !ok || !e.live(m.now()) {
		return nil, ErrNotFound
	}
	// Copied under the lock: once GetDel removes the entry, its slice
	// belongs to GetDel's caller, who may change it.
	return clone(e.value), nil
}

// GetDel implements Store.
func (m *Memory) GetDel(ctx context.Context, key string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	sh := m.shard(key)
	sh.mu.Lock()
	e, ok := sh.entries[key]
	if ok {
		delete(sh.entries, key)
	}
	now := m.now()
	sh.mu.Unlock()
	if !ok || !e.live(now) {
		return nil, ErrNotFound
	}
	// The entry left the map and Get copies only under the lock, so nobody
	// else holds this slice: it can go to the caller without a copy.
	return e.value, nil
}

// CompareAndSwap implements Store.
func (m *Memory) CompareAndSwap(ctx context.Context, key string, old, next []byte, ttl time.Duration) (bool, error) {
	if err := m.checkWrite(ctx, ttl); err != nil {
		return false, err
	}
	v := clone(next)
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := m.now()
	e, ok := sh.entries[key]
	if !ok || !e.live(now) || !bytes.Equal(e.value, old) {
		return false, nil
	}
	sh.entries[key] = memoryEntry{value: v, expires: now.Add(ttl)}
	return true, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	sh := m.shard(key)
	sh.mu.Lock()
	delete(sh.entries, key)
	sh.mu.Unlock()
	return nil
}

// Incr implements Store. A value that is not a decimal integer (one stored
// by Set) is an error, as in Redis.
func (m *Memory) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := m.checkWrite(ctx, ttl); err != nil {
		return 0, err
	}
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := m.now()
	e, ok := sh.entries[key]
	if !ok || !e.live(now) {
		sh.entries[key] = memoryEntry{value: []byte("1"), expires: now.Add(ttl)}
		return 1, nil
	}
	n, err := strconv.ParseInt(string(e.value), 10, 64)
	if err != nil {
		return 0, errors.New("pending: incr: value is not an integer")
	}
	if n == 1<<63-1 {
		return 0, errors.New("pending: incr: counter would overflow")
	}
	n++
	sh.entries[key] = memoryEntry{value: strconv.AppendInt(nil, n, 10), expires: e.expires}
	return n, nil
}

// Ping implements Store; it fails only once the store is closed.
func (m *Memory) Ping(ctx context.Context) error { return m.check(ctx) }

// Close stops the background sweep. Calls after Close fail; a second Close
// does nothing.
func (m *Memory) Close() error {
	m.life.Lock()
	if m.closed.Load() {
		m.life.Unlock()
		return nil
	}
	m.closed.Store(true)
	close(m.stop)
	m.life.Unlock()
	m.swept.Wait()
	return nil
}

// clone copies b; a nil or empty b gives an empty, non-nil slice so that
// every stored value and every returned value is distinct from the caller's.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
