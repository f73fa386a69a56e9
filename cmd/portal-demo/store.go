package main

import (
	"crypto/rand"
	"sync"
	"time"
)

// store keeps values in memory under random, unguessable ids, each for a
// limited time. The portal keeps both its sessions and its logins in progress
// in one: the browser holds only the id, in an HttpOnly cookie, so tokens and
// PKCE verifiers never leave the server.
//
// An in-memory store suits a single demo process; a portal with more than one
// instance keeps the same records in a shared store such as Redis.
type store[T any] struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	items map[string]stored[T]
}

type stored[T any] struct {
	value   T
	expires time.Time
}

func newStore[T any](ttl time.Duration, now func() time.Time) *store[T] {
	return &store[T]{ttl: ttl, now: now, items: make(map[string]stored[T])}
}

// add keeps v under a new random id and returns the id.
func (s *store[T]) add(v T) string {
	id := rand.Text() // 128 bits from crypto/rand
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep()
	s.items[id] = stored[T]{value: v, expires: s.now().Add(s.ttl)}
	return id
}

// get returns the value kept under id, if it has not expired.
func (s *store[T]) get(id string) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok || !s.now().Before(it.expires) {
		var zero T
		return zero, false
	}
	return it.value, true
}

// take returns the value kept under id and forgets it, so that it serves
// once: a login in progress cannot be completed twice.
func (s *store[T]) take(id string) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	delete(s.items, id)
	if !ok || !s.now().Before(it.expires) {
		var zero T
		return zero, false
	}
	return it.value, true
}

// replace changes the value kept under id without extending its life. It
// reports false when id is unknown or expired.
func (s *store[T]) replace(id string, v T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok || !s.now().Before(it.expires) {
		return false
	}
	s.items[id] = stored[T]{value: v, expires: it.expires}
	return true
}

// delete forgets id.
func (s *store[T]) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, id)
}

// sweep drops expired values so that abandoned logins do not pile up.
// The caller holds s.mu.
func (s *store[T]) sweep() {
	now := s.now()
	for id, it := range s.items {
		if !now.Before(it.expires) {
			delete(s.items, id)
		}
	}
}
