// Package redisstore implements pending.Store on Redis (go-redis v9), so that
// several instances of the provider share pending logins, sessions, codes and
// counters. Every key is stored as prefix+key; each operation is one atomic
// Redis command or Lua script, so it is safe across instances.
//
// # URLs
//
// Open and NewClient accept:
//
//	redis://[user:password@]host[:port][/db][?options]     one server (port 6379, db 0 by default)
//	rediss://[user:password@]host[:port][/db][?options]    the same over TLS
//	unix://[user:password@]/path/to/socket[?db=N&options]  one server on a Unix socket
//	redis+sentinel://[user:password@]host1[:26379][,host2[:26379]...]/mastername[/db][?options]
//	redis+cluster://[user:password@]host1[:6379][,host2[:6379]...][?options]
//
// and rediss+sentinel:// and rediss+cluster:// for TLS (each connection's
// certificate is checked against the host it dials). IPv6 hosts go in
// brackets. For Sentinel the user information authenticates to the
// Sentinels, and username= and password= query options to the master (the
// go-redis convention). The options are those of go-redis's ParseURL,
// ParseFailoverURL and ParseClusterURL in snake case (dial_timeout=3s,
// pool_size=20, skip_verify=true, ...); an unknown option is an error.
// dial_timeout, read_timeout and write_timeout default to the store's
// timeout, DefaultTimeout (2s) unless OpenWithTimeout is given another (a
// negative value disables one).
//
// # Outages
//
// Each operation of a store from Open is bounded by its timeout as a
// whole. An operation that fails because Redis could not be reached, did
// not answer in time or said it cannot serve for now (LOADING, MASTERDOWN,
// ...) returns an error that wraps pending.ErrUnavailable. go-redis
// reconnects by itself when Redis is back.
//
// With Redis Cluster, each operation touches one key, so no hash tags are
// needed.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hostportal/idp/storage/pending"
)

// Store is a pending.Store on Redis.
type Store struct {
	client  redis.UniversalClient
	prefix  string
	owned   bool          // Open made the client, so Close closes it
	timeout time.Duration // bounds each operation; 0: only the caller's context does

	closeOnce sync.Once
	closeErr  error
}

var _ pending.Store = (*Store)(nil)

// casScript replaces the value only if it equals ARGV[1] byte for byte; a
// missing key (GET gives false) never equals a string.
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	return 1
end
return 0
`)

// incrScript gives the counter its ttl in the same atomic step that may
// create it, so no counter lives forever if a process dies half-way. A
// counter that has a ttl keeps it; one without (made outside this package)
// gets one.
var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) == -1 then
	redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
`)

// Open connects to the Redis the URL names (see the package documentation
// for the forms) and returns a Store whose keys start with prefix, each
// operation bounded by DefaultTimeout. It does not dial: go-redis connects
// on first use, so call Ping to check the server. Close closes the client
// Open made.
func Open(url string, prefix string) (*Store, error) {
	return OpenWithTimeout(url, prefix, DefaultTimeout)
}

// OpenWithTimeout is Open with each operation bounded by timeout
// (redis.timeout): dialling, the command and go-redis's retries together.
// A Redis that does not answer within it fails the operation with
// pending.ErrUnavailable. timeout is also the dial, read and write timeout
// unless the URL sets those.
func OpenWithTimeout(url string, prefix string, timeout time.Duration) (*Store, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("redisstore: timeout must be positive, got %v", timeout)
	}
	client, err := newClient(url, timeout)
	if err != nil {
		return nil, err
	}
	return &Store{client: client, prefix: prefix, owned: true, timeout: timeout}, nil
}

// New returns a Store on a client the caller owns: Close leaves it open.
// Its operations are bounded by the client's timeouts and the caller's
// context only.
func New(client redis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix}
}

// bound gives ctx the store's deadline for one operation.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) key(k string) string { return s.prefix + k }

// ttlMillis rounds ttl up to whole milliseconds, Redis's finest expiry.
func ttlMillis(ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("redisstore: ttl must be positive, got %v", ttl)
	}
	ms := ttl.Milliseconds()
	if time.Duration(ms)*time.Millisecond < ttl {
		ms++
	}
	return ms, nil
}

// wrap names the operation but never the key: keys can be session ids or
// codes, which must not reach logs. An error that is not Redis's answer
// (a refused dial, a broken connection, a timeout) or that is Redis saying
// it cannot serve now is marked pending.ErrUnavailable.
func wrap(op string, err error) error {
	if errors.Is(err, redis.Nil) {
		return pending.ErrNotFound
	}
	if unavailable(err) {
		return fmt.Errorf("redisstore: %s: %w: %w", op, pending.ErrUnavailable, err)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// busyReplies start the error replies of a Redis that is up but cannot
// serve for now: loading its data, a replica without its master, a cluster
// without a quorum, or a failover under way.
var busyReplies = []string{"LOADING ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "READONLY "}

func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up; Redis may be fine
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		return true
	}
	msg := reply.Error()
	return slices.ContainsFunc(busyReplies, func(p string) bool { return strings.HasPrefix(msg, p) })
}

// Set implements pending.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ms, err := ttlMillis(ttl)
	if err != nil {
		return err
	}
	if err := s.client.Set(ctx, s.key(key), value, time.Duration(ms)*time.Millisecond).Err(); err != nil {
		return wrap("set", err)
	}
	return nil
}

// SetNX implements pending.Store with SET NX PX.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ms, err := ttlMillis(ttl)
	if err != nil {
		return false, err
	}
	err = s.client.SetArgs(ctx, s.key(key), value, redis.SetArgs{Mode: "NX", TTL: time.Duration(ms) * time.Millisecond}).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil): // NX refused: the key exists
		return false, nil
	default:
		return false, wrap("setnx", err)
	}
}

// Get implements pending.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	v, err := s.client.Get(ctx, s.key(key)).Bytes()
	if err != nil {
		return nil, wrap("get", err)
	}
	return v, nil
}

// GetDel implements pending.Store with GETDEL (Redis 6.2 or later).
func (s *Store) GetDel(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	v, err := s.client.GetDel(ctx, s.key(key)).Bytes()
	if err != nil {
		return nil, wrap("getdel", err)
	}
	return v, nil
}

// CompareAndSwap implements pending.Store with a Lua script.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, next []byte, ttl time.Duration) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ms, err := ttlMillis(ttl)
	if err != nil {
		return false, err
	}
	n, err := casScript.Run(ctx, s.client, []string{s.key(key)}, old, next, ms).Int64()
	if err != nil {
		return false, wrap("compare-and-swap", err)
	}
	return n == 1, nil
}

// Delete implements pending.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.client.Del(ctx, s.key(key)).Err(); err != nil {
		return wrap("delete", err)
	}
	return nil
}

// Incr implements pending.Store with a Lua script (INCR, then PEXPIRE if the
// counter has no ttl).
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ms, err := ttlMillis(ttl)
	if err != nil {
		return 0, err
	}
	n, err := incrScript.Run(ctx, s.client, []string{s.key(key)}, ms).Int64()
	if err != nil {
		return 0, wrap("incr", err)
	}
	return n, nil
}

// Ping implements pending.Store.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return wrap("ping", err)
	}
	return nil
}

// Close closes the client if Open made it; a client given to New is left to
// its owner. A second Close does nothing.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	s.closeOnce.Do(func() { s.closeErr = s.client.Close() })
	return s.closeErr
}
