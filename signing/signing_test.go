package signing_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/signing"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

// t0 is a fixed clock, on a whole millisecond as the store keeps times.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "idp.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}

func newKeys(t *testing.T, fill byte) *secret.Keys {
	t.Helper()
	k, err := secret.NewKeys(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func listKeys(t *testing.T, st storage.Keys) []*storage.SigningKey {
	t.Helper()
	keys, err := st.ListKeys(t.Context())
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	return keys
}

func activeKeys(keys []*storage.SigningKey) []*storage.SigningKey {
	var out []*storage.SigningKey
	for _, k := range keys {
		if k.State == storage.KeyActive {
			out = append(out, k)
		}
	}
	return out
}

// signAndVerify signs a message as a token would be signed for alg and
// checks the signature with pub.
func signAndVerify(t *testing.T, alg string, priv crypto.Signer, pub crypto.PublicKey) {
	t.Helper()
	msg := []byte("header.payload")
	digest := sha256.Sum256(msg)
	switch alg {
	case "RS256":
		sig, err := priv.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
			t.Errorf("RS256 signature does not verify: %v", err)
		}
	case "ES256":
		sig, err := priv.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
			t.Error("ES256 signature does not verify")
		}
	case "EdDSA":
		sig, err := priv.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(pub.(ed25519.PublicKey), msg, sig) {
			t.Error("EdDSA signature does not verify")
		}
	default:
		t.Fatalf("unknown algorithm %s", alg)
	}
}

func TestGenerate(t *testing.T) {
	for _, tc := range []struct {
		alg   string
		check func(crypto.Signer) bool
	}{
		{"RS256", func(k crypto.Signer) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() >= 2048 }},
		{"ES256", func(k crypto.Signer) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P256() }},
		{"EdDSA", func(k crypto.Signer) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
		{"HS256", nil},
		{"ES384", nil},
		{"rs256", nil},
		{"none", nil},
		{"", nil},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			k, err := signing.Generate(tc.alg)
			if tc.check == nil {
				if err == nil || k != nil {
					t.Fatalf("Generate(%q) = %T, %v; want an error", tc.alg, k, err)
				}
				if !strings.Contains(err.Error(), "RS256") {
					t.Errorf("error %q does not say which algorithms work", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if !tc.check(k) {
				t.Errorf("Generate(%s) = %T, not the expected key", tc.alg, k)
			}
			signAndVerify(t, tc.alg, k, k.Public())
		})
	}
}

func TestNewKeyIsSealed(t *testing.T) {
	sk := newKeys(t, 1)
	k, err := signing.NewKey(sk, "ES256", t0)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID == "" || k.Algorithm != "ES256" || k.State != storage.KeyActive || !k.CreatedAt.Equal(t0) || len(k.PublicKey) == 0 {
		t.Errorf("NewKey = %+v", k)
	}
	// The private key is sealed, bound to the key id.
	if _, err := sk.Open(k.PrivateKey, []byte("signing-key:"+k.ID)); err != nil {
		t.Errorf("the private key is not sealed to its id: %v", err)
	}
	if _, err := sk.Open(k.PrivateKey, []byte("signing-key:other")); err == nil {
		t.Error("the sealed private key opens for another key id")
	}
	if k2, _ := signing.NewKey(sk, "ES256", t0); k2.ID == k.ID {
		t.Error("two keys share an id")
	}
	if _, err := signing.NewKey(sk, "HS256", t0); err == nil {
		t.Error("NewKey(HS256) accepted")
	}
}

func TestEnsureActive(t *testing.T) {
	st := openStore(t)
	sk := newKeys(t, 1)
	for i := range 3 {
		rot, err := signing.EnsureActive(t.Context(), st, sk, "ES256", t0.Add(time.Duration(i)*time.Hour), time.Hour)
		if err != nil {
			t.Fatalf("EnsureActive #%d: %v", i+1, err)
		}
		switch {
		case i == 0 && (rot == nil || rot.Key == nil || rot.Key.Algorithm != "ES256" || rot.Replaced != nil):
			t.Errorf("first EnsureActive = %+v, want the new ES256 key and nothing replaced", rot)
		case i > 0 && rot != nil:
			t.Errorf("EnsureActive #%d = %+v, want nil (the active key has the algorithm)", i+1, rot)
		}
		keys := listKeys(t, st)
		if len(keys) != 1 || len(activeKeys(keys)) != 1 {
			t.Fatalf("after EnsureActive #%d: %d keys, %d active; want exactly one active key", i+1, len(keys), len(activeKeys(keys)))
		}
		if !keys[0].CreatedAt.Equal(t0) || keys[0].Algorithm != "ES256" {
			t.Errorf("key %+v: made again or with another algorithm", keys[0])
		}
	}
	if _, err := signing.EnsureActive(t.Context(), openStore(t), sk, "HS256", t0, time.Hour); err == nil {
		t.Error("EnsureActive with an unknown algorithm succeeded")
	}
}

// When keys.algorithm changed, EnsureActive rotates to a key of the new
// algorithm once; the old key stays published for retireFor.
func TestEnsureActiveAlgorithmChange(t *testing.T) {
	for _, tc := range []struct{ from, to string }{
		{"RS256", "ES256"}, {"RS256", "EdDSA"}, {"ES256", "EdDSA"}, {"EdDSA", "RS256"},
	} {
		t.Run(tc.from+"_to_"+tc.to, func(t *testing.T) {
			st := openStore(t)
			sk := newKeys(t, 1)
			if _, err := signing.EnsureActive(t.Context(), st, sk, tc.from, t0, time.Hour); err != nil {
				t.Fatal(err)
			}
			first := listKeys(t, st)[0]
			t1 := t0.Add(24 * time.Hour)
			retireFor := 65 * time.Minute
			rot, err := signing.EnsureActive(t.Context(), st, sk, tc.to, t1, retireFor)
			if err != nil {
				t.Fatalf("EnsureActive(%s): %v", tc.to, err)
			}
			if rot == nil || rot.Key == nil || rot.Key.Algorithm != tc.to || rot.Replaced == nil || rot.Replaced.ID != first.ID || rot.Replaced.Algorithm != tc.from {
				t.Fatalf("EnsureActive(%s) = %+v, want a new %s key replacing %s", tc.to, rot, tc.to, first.ID)
			}
			keys := listKeys(t, st)
			if len(keys) != 2 || len(activeKeys(keys)) != 1 || activeKeys(keys)[0].ID != rot.Key.ID {
				t.Fatalf("after the change: %d keys, active %v; want 2 keys, the new one active", len(keys), activeKeys(keys))
			}
			for _, k := range keys {
				if k.ID == first.ID && (k.State != storage.KeyRetired || !k.ExpiresAt.Equal(t1.Add(retireFor))) {
					t.Errorf("old key %+v, want retired until %v", k, t1.Add(retireFor))
				}
			}

			// The set signs with the new key and publishes both.
			set := &signing.Set{Store: st, Keys: sk, Now: func() time.Time { return t1 }}
			if err := set.Load(t.Context()); err != nil {
				t.Fatal(err)
			}
			if k, err := set.Active(); err != nil || k.ID != rot.Key.ID || k.Algorithm != tc.to {
				t.Errorf("Active = %+v, %v; want the new %s key", k, err, tc.to)
			}
			if n := len(set.Published()); n != 2 {
				t.Errorf("%d published keys, want the new and the old", n)
			}

			// Once only: the next starts keep the new key.
			for i := range 2 {
				if rot, err := signing.EnsureActive(t.Context(), st, sk, tc.to, t1.Add(time.Duration(i+1)*time.Minute), retireFor); err != nil || rot != nil {
					t.Errorf("EnsureActive(%s) again = %+v, %v; want nil, nil", tc.to, rot, err)
				}
			}
			if n := len(listKeys(t, st)); n != 2 {
				t.Errorf("%d keys after further starts, want 2", n)
			}
		})
	}

	// An unknown algorithm is refused even when a key is active, and
	// changes nothing.
	st := openStore(t)
	sk := newKeys(t, 1)
	if _, err := signing.EnsureActive(t.Context(), st, sk, "RS256", t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"HS256", "es256", ""} {
		if rot, err := signing.EnsureActive(t.Context(), st, sk, alg, t0, time.Hour); err == nil || rot != nil {
			t.Errorf("EnsureActive(%q) = %+v, %v; want an error", alg, rot, err)
		}
	}
	if keys := listKeys(t, st); len(keys) != 1 || keys[0].Algorithm != "RS256" {
		t.Errorf("refused algorithms changed the keys: %+v", keys)
	}
}

// Every value keys.algorithm accepts makes a key the set can load.
func TestConfigAlgorithms(t *testing.T) {
	for _, alg := range config.SigningAlgorithms {
		st := openStore(t)
		sk := newKeys(t, 1)
		if _, err := signing.EnsureActive(t.Context(), st, sk, alg, t0, time.Hour); err != nil {
			t.Errorf("keys.algorithm %s: %v", alg, err)
			continue
		}
		set := &signing.Set{Store: st, Keys: sk, Now: func() time.Time { return t0 }}
		if err := set.Load(t.Context()); err != nil {
			t.Errorf("keys.algorithm %s: Load: %v", alg, err)
		} else if k, _ := set.Active(); k.Algorithm != alg {
			t.Errorf("keys.algorithm %s: the active key is %s", alg, k.Algorithm)
		}
	}
	if def := config.Defaults().Keys.Algorithm; def != signing.DefaultAlgorithm {
		t.Errorf("keys.algorithm defaults to %s, signing.DefaultAlgorithm is %s", def, signing.DefaultAlgorithm)
	}
}

// PublishedVersion changes when a reload finds other keys to publish, and
// only then: the JWKS built from the keys is kept between changes.
func TestSetPublishedVersion(t *testing.T) {
	st := openStore(t)
	sk := newKeys(t, 1)
	now := t0
	set := &signing.Set{Store: st, Keys: sk, Now: func() time.Time { return now }}
	if keys, v := set.PublishedVersion(); len(keys) != 0 || v != 0 {
		t.Errorf("before Load: %d keys, version %d; want none, 0", len(keys), v)
	}
	if _, err := signing.EnsureActive(t.Context(), st, sk, "RS256", now, time.Hour); err != nil {
		t.Fatal(err)
	}
	load := func(what string) uint64 {
		t.Helper()
		if err := set.Load(t.Context()); err != nil {
			t.Fatalf("Load (%s): %v", what, err)
		}
		_, v := set.PublishedVersion()
		return v
	}
	v1 := load("first")
	if v1 == 0 {
		t.Fatal("the first Load left the version at 0")
	}
	now = now.Add(time.Minute)
	if v := load("same keys"); v != v1 {
		t.Errorf("a reload with the same keys changed the version %d -> %d", v1, v)
	}

	// A rotation adds a key: a new version, with both keys.
	now = now.Add(time.Minute)
	rot, err := signing.EnsureActive(t.Context(), st, sk, "EdDSA", now, 30*time.Minute)
	if err != nil || rot == nil {
		t.Fatalf("EnsureActive(EdDSA) = %+v, %v", rot, err)
	}
	if _, v := set.PublishedVersion(); v != v1 {
		t.Errorf("the version changed before Load: %d -> %d", v1, v)
	}
	v2 := load("after the rotation")
	keys, _ := set.PublishedVersion()
	if v2 == v1 || len(keys) != 2 || keys[0].ID != rot.Key.ID {
		t.Errorf("after a rotation: version %d (was %d), %d keys, first %s; want a new version, the new key first of 2", v2, v1, len(keys), keys[0].ID)
	}
	now = now.Add(10 * time.Minute)
	if v := load("old key still published"); v != v2 {
		t.Errorf("a reload while the old key is still published changed the version %d -> %d", v2, v)
	}

	// The old key expires: a new version, with the new key only.
	now = now.Add(30 * time.Minute)
	v3 := load("old key expired")
	keys, _ = set.PublishedVersion()
	if v3 == v2 || len(keys) != 1 || keys[0].ID != rot.Key.ID {
		t.Errorf("after the old key expired: version %d (was %d), %d keys; want a new version and 1 key", v3, v2, len(keys))
	}

	// A failed Load changes nothing.
	bad := &signing.Set{Store: st, Keys: newKeys(t, 2), Now: func() time.Time { return now }}
	if err := bad.Load(t.Context()); err == nil {
		t.Fatal("Load with another secret_key succeeded")
	}
	if keys, v := bad.PublishedVersion(); len(keys) != 0 || v != 0 {
		t.Errorf("after a failed first Load: %d keys, version %d", len(keys), v)
	}
}

func TestRotate(t *testing.T) {
	st := openStore(t)
	sk := newKeys(t, 1)
	if _, err := signing.EnsureActive(t.Context(), st, sk, "ES256", t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	first := listKeys(t, st)[0]
	t1 := t0.Add(24 * time.Hour)
	retireFor := 65 * time.Minute
	second, err := signing.Rotate(t.Context(), st, sk, "EdDSA", t1, retireFor)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	keys := listKeys(t, st)
	if len(keys) != 2 {
		t.Fatalf("%d keys after a rotation, want 2", len(keys))
	}
	byID := map[string]*storage.SigningKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}
	if k := byID[second.ID]; k == nil || k.State != storage.KeyActive || !k.ExpiresAt.IsZero() || k.Algorithm != "EdDSA" {
		t.Errorf("new key %+v, want active, no expiry, EdDSA", k)
	}
	if k := byID[first.ID]; k == nil || k.State != storage.KeyRetired || !k.ExpiresAt.Equal(t1.Add(retireFor)) {
		t.Errorf("previous key %+v, want retired until %v", k, t1.Add(retireFor))
	}
	if n := len(activeKeys(keys)); n != 1 {
		t.Errorf("%d active keys, want 1", n)
	}
	if _, err := signing.Rotate(t.Context(), st, sk, "HS256", t1, retireFor); err == nil {
		t.Error("Rotate with an unknown algorithm succeeded")
	}
	if n := len(listKeys(t, st)); n != 2 {
		t.Errorf("a refused rotation changed the keys: %d", n)
	}
}

// Load signs with the active key and publishes it with the retired keys
// that have not expired.
func TestSetLoad(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			st := openStore(t)
			sk := newKeys(t, 1)
			// a: made at t0, retired at t1 until t1+10m (expired by now).
			// b: made at t1, retired at t2 until t2+2h (still published).
			// c: made at t2, active.
			t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
			if _, err := signing.EnsureActive(t.Context(), st, sk, alg, t0, time.Hour); err != nil {
				t.Fatal(err)
			}
			a := listKeys(t, st)[0]
			b, err := signing.Rotate(t.Context(), st, sk, alg, t1, 10*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			c, err := signing.Rotate(t.Context(), st, sk, alg, t2, 2*time.Hour)
			if err != nil {
				t.Fatal(err)
			}

			for _, tc := range []struct {
				name      string
				now       time.Time
				published []string
			}{
				{"a still published", t1.Add(5 * time.Minute), []string{c.ID, b.ID, a.ID}},
				{"a expired", t2.Add(time.Minute), []string{c.ID, b.ID}},
				{"b expires now", t2.Add(2 * time.Hour), []string{c.ID}},
				{"long after", t2.Add(1000 * time.Hour), []string{c.ID}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					set := &signing.Set{Store: st, Keys: sk, Now: func() time.Time { return tc.now }}
					if _, err := set.Active(); !errors.Is(err, signing.ErrNoActiveKey) {
						t.Errorf("Active before Load = %v, want ErrNoActiveKey", err)
					}
					if err := set.Load(t.Context()); err != nil {
						t.Fatalf("Load: %v", err)
					}
					active, err := set.Active()
					if err != nil {
						t.Fatal(err)
					}
					if active.ID != c.ID || active.State != storage.KeyActive || active.Algorithm != alg || active.Private == nil {
						t.Fatalf("Active = %+v, want key %s opened", active, c.ID)
					}
					signAndVerify(t, alg, active.Private, active.Public)

					var ids []string
					for _, k := range set.Published() {
						ids = append(ids, k.ID)
						if k.Public == nil {
							t.Errorf("published key %s has no public key", k.ID)
						}
						if k.ID != c.ID && (k.Private != nil || k.State != storage.KeyRetired) {
							t.Errorf("retired key %s: state %s, private key opened %v", k.ID, k.State, k.Private != nil)
						}
					}
					if strings.Join(ids, ",") != strings.Join(tc.published, ",") {
						t.Errorf("published %v, want %v", ids, tc.published)
					}
				})
			}
		})
	}
}

func TestSetLoadNoKey(t *testing.T) {
	set := &signing.Set{Store: openStore(t), Keys: newKeys(t, 1), Now: time.Now}
	if err := set.Load(t.Context()); !errors.Is(err, signing.ErrNoActiveKey) {
		t.Errorf("Load of an empty store = %v, want ErrNoActiveKey", err)
	}
}

// A key sealed under another secret_key cannot be opened, and says why.
func TestSetLoadOtherSecretKey(t *testing.T) {
	st := openStore(t)
	if _, err := signing.EnsureActive(t.Context(), st, newKeys(t, 1), "ES256", t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	id := listKeys(t, st)[0].ID
	set := &signing.Set{Store: st, Keys: newKeys(t, 2), Now: func() time.Time { return t0 }}
	err := set.Load(t.Context())
	if err == nil {
		t.Fatal("Load opened a key sealed under another secret_key")
	}
	if !errors.Is(err, secret.ErrOpen) || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "secret_key") {
		t.Errorf("error %q: want ErrOpen, the key id and a hint about secret_key", err)
	}
	if _, err := set.Active(); !errors.Is(err, signing.ErrNoActiveKey) {
		t.Errorf("Active after a failed Load = %v", err)
	}

	// A retired key is only published, so the secret key it was sealed
	// under does not matter once a key made with the new secret key signs.
	if _, err := signing.Rotate(t.Context(), st, newKeys(t, 2), "ES256", t0.Add(time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := set.Load(t.Context()); err != nil {
		t.Fatalf("Load after rotating with the new secret key: %v", err)
	}
	if n := len(set.Published()); n != 2 {
		t.Errorf("%d published keys, want 2", n)
	}
}

func TestOpenPublicOnly(t *testing.T) {
	sk := newKeys(t, 1)
	k, err := signing.NewKey(sk, "RS256", t0)
	if err != nil {
		t.Fatal(err)
	}
	retired := *k
	retired.State, retired.ExpiresAt, retired.PrivateKey = storage.KeyRetired, t0.Add(time.Hour), []byte("garbage")
	got, err := signing.Open(sk, &retired)
	if err != nil || got.Private != nil || got.Public == nil || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("Open(retired) = %+v, %v", got, err)
	}
	broken := *k
	broken.PublicKey = []byte("not DER")
	if _, err := signing.Open(sk, &broken); err == nil || !strings.Contains(err.Error(), k.ID) {
		t.Errorf("Open with a broken public key = %v", err)
	}
}

// Run rereads the keys, so a rotation made elsewhere is picked up, and
// returns when its context ends.
func TestSetRun(t *testing.T) {
	st := openStore(t)
	sk := newKeys(t, 1)
	if _, err := signing.EnsureActive(t.Context(), st, sk, "ES256", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	set := &signing.Set{Store: st, Keys: sk, Now: time.Now}
	if err := set.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	before, _ := set.Active()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		set.Run(ctx, 10*time.Millisecond)
		close(done)
	})

	// Readers while Run reloads (for the race detector).
	stopReaders := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stopReaders:
					return
				default:
				}
				if _, err := set.Active(); err != nil {
					t.Errorf("Active while running: %v", err)
					return
				}
				_ = set.Published()
				time.Sleep(time.Millisecond)
			}
		})
	}

	rotated, err := signing.Rotate(t.Context(), st, sk, "ES256", time.Now().Add(time.Millisecond), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		k, err := set.Active()
		if err == nil && k.ID == rotated.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not pick up the rotation: active %s, want %s (was %s)", k.ID, rotated.ID, before.ID)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(set.Published()); n != 2 {
		t.Errorf("%d published keys after the rotation, want 2", n)
	}

	close(stopReaders)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	wg.Wait()
}

// A failed reload keeps the keys the set had.
func TestSetRunKeepsKeysOnError(t *testing.T) {
	st := openStore(t)
	sk := newKeys(t, 1)
	if _, err := signing.EnsureActive(t.Context(), st, sk, "ES256", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	set := &signing.Set{Store: st, Keys: sk, Now: time.Now}
	if err := set.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	before, _ := set.Active()
	// A key this instance cannot open becomes active.
	if _, err := signing.Rotate(t.Context(), st, newKeys(t, 2), "ES256", time.Now().Add(time.Millisecond), time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		set.Run(ctx, 20*time.Millisecond)
		close(done)
	}()
	time.Sleep(70 * time.Millisecond) // a few failed reloads
	cancel()
	<-done
	if k, err := set.Active(); err != nil || k.ID != before.ID {
		t.Errorf("after failed reloads Active = %v, %v; want the previous key %s", k, err, before.ID)
	}
}
