// Package pending owns the contract of the short-lived store: pending logins
// (authorization requests and their login state), browser sessions,
// authorization codes and attempt counters, each with a time to live. Redis
// backs it when several instances run (redisstore); the in-process Memory
// store serves a single instance. Both pass the suite in pending/conformance.
package pending

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound: the key does not exist or has expired.
var ErrNotFound = errors.New("pending: not found")

// ErrUnavailable: the store could not be reached or did not answer in
// time. Nothing the caller did is wrong: the same call may work in a
// moment (the provider answers 503).
var ErrUnavailable = errors.New("pending: store unavailable")

// Store is a key-value store with expiry. Keys are opaque strings chosen by
// the caller; values are opaque bytes. Every ttl must be positive.
type Store interface {
	// Set stores value under key, replacing any value.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only if key does not exist; it reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Get returns the value, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetDel returns the value and deletes the key atomically: of concurrent
	// callers exactly one gets the value, the others ErrNotFound.
	GetDel(ctx context.Context, key string) ([]byte, error)
	// CompareAndSwap replaces the value with next (and the ttl) only if the
	// current value equals old; it reports whether it did. A missing key
	// gives false, nil.
	CompareAndSwap(ctx context.Context, key string, old, next []byte, ttl time.Duration) (bool, error)
	// Delete removes the key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Incr adds one to the counter at key and returns the new value; a new
	// counter starts at 1 and expires after ttl (the ttl of an existing
	// counter is left as it is).
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// Ping checks that the store answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
