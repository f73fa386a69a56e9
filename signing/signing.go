// Package signing owns the token signing keys: generating them, sealing the
// private half with secret_key before it reaches the database, rotating
// (the new key signs at once, the old public key stays published until every
// token it signed has expired), and the in-memory key set a running server
// signs with and publishes, reloaded from the database so that a rotation
// made by `idp keys rotate` or another instance is picked up within a minute.
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
	"sync"
	"time"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
)

// DefaultAlgorithm is RS256, which OpenID Connect requires every provider to support.
const DefaultAlgorithm = "RS256"

// ReloadInterval is how often a running server rereads the keys.
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

// Generate makes a new key pair for alg (RS256, ES256 or EdDSA).
func Generate(alg string) (crypto.Signer, error) {
	switch alg {
	case "RS256":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("signing: unsupported algorithm %q (use RS256, ES256 or EdDSA)", alg)
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

// EnsureActive creates the first key when there is no active key.
func EnsureActive(ctx context.Context, store storage.Keys, sk *secret.Keys, alg string, now time.Time, retireFor time.Duration) error {
	keys, err := store.ListKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.State == storage.KeyActive {
			return nil
		}
	}
	_, err = Rotate(ctx, store, sk, alg, now, retireFor)
	return err
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
	s.active, s.published = active, published
	s.mu.Unlock()
	return nil
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
