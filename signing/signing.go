// Package signing owns the token signing keys: generating them, sealing the
// private half with secret_key before it reaches the database, rotating
// (the new key signs at once, the old public key stays published until every
// token it signed has expired), also when keys.algorithm is not the active
// key's algorithm, and the in-memory key set a running server signs with and
// publishes, reloaded from the database so that a rotation made by `idp keys
// rotate` or another instance is picked up within a minute.
package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
)

// DefaultAlgorithm is RS256, which OpenID Connect requires every provider to support.
const DefaultAlgorithm = "RS256"

// ReloadInterval is how often a running server rereads the keys unless
// keys.reload_interval says otherwise.
const ReloadInterval = 30 * time.Second

// Key is a usable key: an opened private key or a published public one.
type Key struct {
	ID        string
	Algorithm string
	Private   crypto.Signer // nil for keys that are only published
	Public    crypto.PublicKey
	State     string
	ExpiresAt time.Time
}

// algorithms are the supported algorithms, each with its key generator.
var algorithms = map[string]func() (crypto.Signer, error){
	"RS256": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	"ES256": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
	"EdDSA": func() (crypto.Signer, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	},
}

// Generate makes a new key pair for alg (RS256, ES256 or EdDSA).
func Generate(alg string) (crypto.Signer, error) {
	gen, ok := algorithms[alg]
	if !ok {
		return nil, fmt.Errorf("signing: unsupported algorithm %q (use RS256, ES256 or EdDSA)", alg)
	}
	return gen()
}

// NewKey generates a key for alg and returns its record with the private key sealed.
func NewKey(sk *secret.Keys, alg string, now time.Time) (*storage.SigningKey, error) {
	priv, err := Generate(alg)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	id := secret.RandomToken(12)
	return &storage.SigningKey{
		ID:         id,
		Algorithm:  alg,
		PrivateKey: sk.Seal(der, []byte("signing-key:"+id)),
		PublicKey:  pub,
		State:      storage.KeyActive,
		CreatedAt:  now,
	}, nil
}

// Rotate makes a new active key; the previous active key stays published
// for retireFor (the longest lifetime of a token it signed).
func Rotate(ctx context.Context, store storage.Keys, sk *secret.Keys, alg string, now time.Time, retireFor time.Duration) (*storage.SigningKey, error) {
	k, err := NewKey(sk, alg, now)
	if err != nil {
		return nil, err
	}
	if err := store.ActivateKey(ctx, k, now.Add(retireFor)); err != nil {
		return nil, fmt.Errorf("signing: storing the new key: %w", err)
	}
	return k, nil
}

// Rotation is what EnsureActive changed.
type Rotation struct {
	Key      *storage.SigningKey // the key it made, which signs from now on
	Replaced *storage.SigningKey // the active key of another algorithm it retired; nil for the first key
}

// EnsureActive makes sure a key of alg signs: it makes the first key when
// there is no active key, and rotates (as Rotate, so the old key stays
// published for retireFor) when the active key has another algorithm, as
// after keys.algorithm was changed. It returns nil when the active key
// already has alg. Instances that start at once with a new algorithm may
// each rotate; the newest key signs and the others stay published.
func EnsureActive(ctx context.Context, store storage.Keys, sk *secret.Keys, alg string, now time.Time, retireFor time.Duration) (*Rotation, error) {
	if _, ok := algorithms[alg]; !ok {
		return nil, fmt.Errorf("signing: unsupported algorithm %q (use RS256, ES256 or EdDSA)", alg)
	}
	keys, err := store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing: reading keys: %w", err)
	}
	var active *storage.SigningKey
	for _, k := range keys { // newest first: the one Set.Load signs with
		if k.State == storage.KeyActive {
			active = k
			break
		}
	}
	if active != nil && active.Algorithm == alg {
		return nil, nil
	}
	k, err := Rotate(ctx, store, sk, alg, now, retireFor)
	if err != nil {
		return nil, err
	}
	return &Rotation{Key: k, Replaced: active}, nil
}

// Open turns a stored key into a usable one (opening the private key of the active key).
func Open(sk *secret.Keys, k *storage.SigningKey) (*Key, error) {
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signing: key %s: public key: %w", k.ID, err)
	}
	out := &Key{ID: k.ID, Algorithm: k.Algorithm, Public: pub, State: k.State, ExpiresAt: k.ExpiresAt}
	if k.State != storage.KeyActive {
		return out, nil
	}
	der, err := sk.Open(k.PrivateKey, []byte("signing-key:"+k.ID))
	if err != nil {
		return nil, fmt.Errorf("signing: key %s cannot be opened: is secret_key the one it was made with? %w", k.ID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing: key %s: private key: %w", k.ID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing: key %s is not a signing key", k.ID)
	}
	out.Private = signer
	return out, nil
}

// Set is the key set a running server signs with and publishes.
type Set struct {
	Store storage.Keys
	Keys  *secret.Keys
	Now   func() time.Time

	mu        sync.RWMutex
	active    *Key
	published []*Key
	version   uint64 // grows each time Load finds other keys to publish
}

// ErrNoActiveKey: the database holds no active key (run `idp keys rotate`).
var ErrNoActiveKey = errors.New("signing: no active signing key")

// Load rereads the keys from the database.
func (s *Set) Load(ctx context.Context) error {
	stored, err := s.Store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("signing: reading keys: %w", err)
	}
	now := s.Now()
	var active *Key
	var published []*Key
	for _, k := range stored {
		if k.State == storage.KeyRetired && !k.ExpiresAt.After(now) {
			continue
		}
		if k.State == storage.KeyActive && active != nil {
			// Two instances made a first key at once: the newest signs, the
			// other is still published.
			k2 := *k
			k2.State = storage.KeyRetired
			k = &k2
		}
		key, err := Open(s.Keys, k)
		if err != nil {
			return err
		}
		if key.State == storage.KeyActive {
			active = key
		}
		published = append(published, key)
	}
	if active == nil {
		return ErrNoActiveKey
	}
	s.mu.Lock()
	if !sameKeys(s.published, published) {
		s.version++
	}
	s.active, s.published = active, published
	s.mu.Unlock()
	return nil
}

// sameKeys reports whether a and b are the same keys in the same order (an
// id always names the same key material).
func sameKeys(a, b []*Key) bool {
	return slices.EqualFunc(a, b, func(x, y *Key) bool { return x.ID == y.ID })
}

// Active returns the key that signs.
func (s *Set) Active() (*Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.active == nil {
		return nil, ErrNoActiveKey
	}
	return s.active, nil
}

// Published returns the keys served at the JWKS endpoint.
func (s *Set) Published() []*Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.published
}

// PublishedVersion returns the published keys and their version, a number
// that changes exactly when a Load finds other keys to publish (one added
// by a rotation, one expired) and stays the same across reloads that find
// the same keys: what is built from the published keys (the marshalled
// JWKS) can be kept until it changes. Before the first Load it is 0.
func (s *Set) PublishedVersion() ([]*Key, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.published, s.version
}

// Run reloads the keys every interval until ctx ends; a failed reload keeps
// the keys it had and is logged.
func (s *Set) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Load(ctx); err != nil && ctx.Err() == nil {
				slog.ErrorContext(ctx, "reloading signing keys failed; keeping the current ones", "error", err)
			}
		}
	}
}
