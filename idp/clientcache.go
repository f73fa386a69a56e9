package idp

import (
	"sync"
	"time"
)

// clientCacheTTL is how long a relying party read from the store is
// reused. Every token request and login step needs the client (twice for
// a token request: authentication, then the grant), and reading it is most
// of what a client-credentials or refresh request costs. A change made in
// this process (the admin API) drops the entry at once; other instances,
// and the CLI's changes, are seen within the TTL.
const clientCacheTTL = 5 * time.Second

// clientCache holds recently read clients. Unknown ids are not cached, so
// a new client works at once.
type clientCache struct {
	mu      sync.Mutex
	entries map[string]clientEntry
}

type clientEntry struct {
	c      *client
	loaded time.Time
}

func (cc *clientCache) get(id string, now time.Time) (*client, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.entries[id]
	if !ok || now.Sub(e.loaded) >= clientCacheTTL || now.Before(e.loaded) {
		return nil, false
	}
	return e.c, true
}

func (cc *clientCache) put(id string, c *client, now time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.entries == nil || len(cc.entries) > 10000 {
		cc.entries = make(map[string]clientEntry) // bounded: start over rather than grow
	}
	cc.entries[id] = clientEntry{c: c, loaded: now}
}

// forget drops a client changed in this process.
func (cc *clientCache) forget(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	delete(cc.entries, id)
}
