package password

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// cheap are the smallest parameters the configuration accepts: fast tests.
var cheap = Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}

func newHasher(t testing.TB, p Params, maxConcurrent, maxQueue int) *Hasher {
	t.Helper()
	h, err := NewHasher(p, maxConcurrent, maxQueue)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", p, err)
	}
	return h
}

func hash(t testing.TB, h *Hasher, pw string) string {
	t.Helper()
	s, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return s
}

func TestHashAndVerify(t *testing.T) {
	h := newHasher(t, cheap, 0, 0)
	for _, tc := range []struct {
		name, stored, given string
		ok                  bool
	}{
		{"right password", "correct horse", "correct horse", true},
		{"wrong password", "correct horse", "correct horsf", false},
		{"prefix", "correct horse", "correct", false},
		{"case", "correct horse", "Correct horse", false},
		{"empty password given", "correct horse", "", false},
		{"empty password set", "", "", true},
		{"unicode", "pässwörd ✓", "pässwörd ✓", true},
		{"unicode normalisation differs", "é", "e\u0301", false},
		{"long", strings.Repeat("x", 1000), strings.Repeat("x", 1000), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			encoded := hash(t, h, tc.stored)
			ok, rehash, err := h.Verify(context.Background(), encoded, tc.given)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ok != tc.ok || rehash {
				t.Errorf("Verify = ok %v rehash %v, want ok %v rehash false", ok, rehash, tc.ok)
			}
		})
	}
}

func TestPHCFormat(t *testing.T) {
	for _, p := range []Params{cheap, {MemoryKiB: 2048, Iterations: 3, Parallelism: 2}} {
		h := newHasher(t, p, 0, 0)
		encoded := hash(t, h, "pw")
		// 16 bytes of salt and 32 of hash, unpadded standard base64.
		re := regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
		m := re.FindStringSubmatch(encoded)
		if m == nil {
			t.Fatalf("%q is not an argon2id PHC string", encoded)
		}
		if want := []string{fmt.Sprint(p.MemoryKiB), fmt.Sprint(p.Iterations), fmt.Sprint(p.Parallelism)}; m[1] != want[0] || m[2] != want[1] || m[3] != want[2] {
			t.Errorf("%q: params %v, want %v", encoded, m[1:], want)
		}
		// The hash is what argon2id itself computes.
		parts := strings.Split(encoded, "$")
		salt, err := base64.RawStdEncoding.DecodeString(parts[4])
		if err != nil {
			t.Fatal(err)
		}
		want := base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("pw"), salt, p.Iterations, p.MemoryKiB, p.Parallelism, 32))
		if parts[5] != want {
			t.Errorf("hash %s, want argon2id's %s", parts[5], want)
		}
	}
}

func TestSaltDiffers(t *testing.T) {
	h := newHasher(t, cheap, 0, 0)
	a, b := hash(t, h, "same password"), hash(t, h, "same password")
	if a == b {
		t.Fatalf("two hashes of one password are equal: %s", a)
	}
	if strings.Split(a, "$")[4] == strings.Split(b, "$")[4] {
		t.Error("two hashes share their salt")
	}
	for _, enc := range []string{a, b} {
		if ok, _, err := h.Verify(context.Background(), enc, "same password"); !ok || err != nil {
			t.Errorf("Verify(%s) = %v, %v", enc, ok, err)
		}
	}
}

func TestRehash(t *testing.T) {
	old := newHasher(t, cheap, 0, 0)
	encoded := hash(t, old, "pw")
	for _, tc := range []struct {
		name   string
		params Params
		rehash bool
	}{
		{"same parameters", cheap, false},
		{"more memory", Params{MemoryKiB: 2048, Iterations: 1, Parallelism: 1}, true},
		{"more iterations", Params{MemoryKiB: 1024, Iterations: 2, Parallelism: 1}, true},
		{"more parallelism", Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHasher(t, tc.params, 0, 0)
			ok, rehash, err := h.Verify(context.Background(), encoded, "pw")
			if err != nil || !ok || rehash != tc.rehash {
				t.Errorf("right password: ok %v rehash %v err %v, want ok true rehash %v", ok, rehash, err, tc.rehash)
			}
			// A wrong password never asks for a rehash (there is nothing to rehash).
			ok, rehash, err = h.Verify(context.Background(), encoded, "wrong")
			if err != nil || ok || rehash {
				t.Errorf("wrong password: ok %v rehash %v err %v, want false false nil", ok, rehash, err)
			}
		})
	}

	// A hash with today's parameters but another salt or hash length (from
	// another implementation) matches and asks to be replaced.
	salt := []byte("eight-b!")
	short := encode(cheap, salt, argon2.IDKey([]byte("pw"), salt, cheap.Iterations, cheap.MemoryKiB, cheap.Parallelism, 16))
	ok, rehash, err := old.Verify(context.Background(), short, "pw")
	if err != nil || !ok || !rehash {
		t.Errorf("8-byte salt, 16-byte hash: ok %v rehash %v err %v, want true true nil", ok, rehash, err)
	}
}

func TestEmptyStoredHash(t *testing.T) {
	h := newHasher(t, cheap, 0, 0)
	for _, pw := range []string{"", "anything", h.dummy} {
		ok, rehash, err := h.Verify(context.Background(), "", pw)
		if ok || rehash || err != nil {
			t.Errorf("Verify(\"\", %q) = %v %v %v, want false false nil", pw, ok, rehash, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	h := newHasher(t, cheap, 0, 0)
	valid := hash(t, h, "pw")
	parts := strings.Split(valid, "$") // "", argon2id, v=19, m=..., salt, hash
	with := func(i int, s string) string {
		p := append([]string(nil), parts...)
		p[i] = s
		return strings.Join(p, "$")
	}
	b64 := base64.RawStdEncoding.EncodeToString
	for _, tc := range []struct{ name, encoded, bug string }{
		{"plain text", "pw", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", ""},
		{"argon2i", with(1, "argon2i"), ""},
		{"argon2d", with(1, "argon2d"), ""},
		{"no leading $", strings.TrimPrefix(valid, "$"), ""},
		{"version 16", with(2, "v=16"), ""},
		{"version missing", with(2, "19"), ""},
		{"version not a number", with(2, "v=x"), ""},
		{"params missing", with(3, ""), ""},
		{"params reordered", with(3, "t=1,m=1024,p=1"), ""},
		{"1000 iterations", with(3, "m=1024,t=1000,p=1"), ""},
		{"0 iterations", with(3, "m=1024,t=0,p=1"), ""},
		{"10 GiB", with(3, "m=10485760,t=1,p=1"), ""},
		{"memory overflows uint32", with(3, "m=99999999999,t=1,p=1"), ""},
		{"negative memory", with(3, "m=-1,t=1,p=1"), ""},
		{"memory below 8 per lane", with(3, "m=7,t=1,p=1"), ""},
		{"0 parallelism", with(3, "m=1024,t=1,p=0"), ""},
		{"parallelism overflows uint8", with(3, "m=1024,t=1,p=256"), ""},
		{"parallelism 255 with little memory", with(3, "m=1024,t=1,p=255"), ""},
		{"salt not base64", with(4, "!!!!"), ""},
		{"salt padded", with(4, parts[4]+"=="), ""},
		{"salt too short", with(4, b64([]byte("four"))), ""},
		{"hash not base64", with(5, "%%%%"), ""},
		{"hash too short", with(5, b64(make([]byte, 8))), ""},
		{"hash too long", with(5, b64(make([]byte, 100))), ""},
		{"hash missing", with(5, ""), ""},
		{"truncated in the hash", valid[:len(valid)-10], ""},
		{"truncated after the salt", strings.Join(parts[:5], "$"), ""},
		{"truncated in the params", valid[:len("$argon2id$v=19$m=10")], ""},
		{"truncated to the algorithm", "$argon2id$", ""},
		{"extra field", valid + "$extra", ""},
		{"only dollars", "$$$$$", ""},
		{"params with trailing garbage", with(3, parts[3]+"junk"),
			"password.go decode parses the params with fmt.Sscanf, which ignores what follows the last number"},
		{"version with trailing garbage", with(2, "v=19junk"),
			"password.go decode parses the version with fmt.Sscanf, which ignores what follows the number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(context.Background(), tc.encoded, "pw")
			if !errors.Is(err, ErrMalformed) || ok || rehash {
				t.Errorf("Verify(%q) = %v %v %v, want false false ErrMalformed", tc.encoded, ok, rehash, err)
			}
		})
	}
}

func TestNewHasherRefusesBadParams(t *testing.T) {
	for _, p := range []Params{
		{MemoryKiB: 1024, Iterations: 0, Parallelism: 1},
		{MemoryKiB: 1024, Iterations: 1, Parallelism: 0},
		{MemoryKiB: 7, Iterations: 1, Parallelism: 1},
		{MemoryKiB: 1024, Iterations: 1, Parallelism: 255},
	} {
		if _, err := NewHasher(p, 1, 1); err == nil {
			t.Errorf("NewHasher(%+v) accepted", p)
		}
	}
	h := newHasher(t, cheap, 1, 1)
	if h.Params() != cheap {
		t.Errorf("Params() = %+v", h.Params())
	}
}

func TestVerifyUnknownUser(t *testing.T) {
	h := newHasher(t, cheap, 0, 0)
	for _, pw := range []string{"", "guess", h.dummy} {
		if err := h.VerifyUnknownUser(context.Background(), pw); err != nil {
			t.Errorf("VerifyUnknownUser(%q) = %v", pw, err)
		}
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// With one running slot and one waiting slot, a third hash at once is
// refused with ErrBusy and the two others complete. The test holds the
// running slot itself so that the outcome does not depend on timing.
func TestBusy(t *testing.T) {
	h := newHasher(t, cheap, 1, 1)
	encoded := hash(t, h, "pw")

	h.run <- struct{}{} // hold the only running slot
	type result struct {
		ok  bool
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			ok, _, err := h.Verify(context.Background(), encoded, "pw")
			results <- result{ok, err}
		}()
	}
	waitFor(t, "two waiting hashes", func() bool { return len(h.queue) == 2 })

	for _, call := range []struct {
		name string
		fn   func() error
	}{
		{"Verify", func() error { _, _, err := h.Verify(context.Background(), encoded, "pw"); return err }},
		{"Hash", func() error { _, err := h.Hash(context.Background(), "pw"); return err }},
		{"VerifyUnknownUser", func() error { return h.VerifyUnknownUser(context.Background(), "pw") }},
		{"Verify of an empty hash", func() error { _, _, err := h.Verify(context.Background(), "", "pw"); return err }},
	} {
		if err := call.fn(); !errors.Is(err, ErrBusy) {
			t.Errorf("%s with a full queue = %v, want ErrBusy", call.name, err)
		}
	}

	<-h.run // let the waiting two run
	for range 2 {
		if r := <-results; !r.ok || r.err != nil {
			t.Errorf("waiting Verify = %v, %v, want true, nil", r.ok, r.err)
		}
	}
	if len(h.queue) != 0 || len(h.run) != 0 {
		t.Errorf("slots not released: queue %d run %d", len(h.queue), len(h.run))
	}
	if ok, _, err := h.Verify(context.Background(), encoded, "pw"); !ok || err != nil {
		t.Errorf("Verify after the burst = %v, %v", ok, err)
	}
}

// The same through the public API only: many logins at once against a
// hasher that runs one and queues one, with hashes slow enough (16 MiB)
// that the burst arrives while the first is running.
func TestBusyBurst(t *testing.T) {
	p := Params{MemoryKiB: 16 << 10, Iterations: 1, Parallelism: 1}
	h := newHasher(t, p, 1, 1)
	encoded := hash(t, h, "pw")
	const n = 16
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		busy  int
		ok    int
		other []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			match, _, err := h.Verify(context.Background(), encoded, "pw")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrBusy):
				busy++
			case err == nil && match:
				ok++
			default:
				other = append(other, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if busy == 0 || ok == 0 || len(other) > 0 || busy+ok != n {
		t.Errorf("%d busy, %d verified, other results %v; want some busy and the rest verified", busy, ok, other)
	}
}

// A login that waits for a running slot gives up when its context ends.
func TestContextWhileWaiting(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		stop bool // cancel once the login waits; else the deadline ends it
		want error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, true, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, false, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHasher(t, cheap, 1, 1)
			encoded := hash(t, h, "pw")
			h.run <- struct{}{}
			defer func() { <-h.run }()

			ctx, cancel := tc.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, _, err := h.Verify(ctx, encoded, "pw")
				done <- err
			}()
			if tc.stop {
				waitFor(t, "the login to wait", func() bool { return len(h.queue) == 1 })
				cancel()
			}
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Errorf("Verify = %v, want %v", err, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Verify did not return after its context ended")
			}
			if len(h.queue) != 0 {
				t.Errorf("the waiting slot was not released: %d", len(h.queue))
			}
		})
	}
}

// BenchmarkVerify measures one login with the default (OWASP) parameters.
func BenchmarkVerify(b *testing.B) {
	h := newHasher(b, Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}, 0, 0)
	encoded := hash(b, h, "correct horse battery staple")
	ctx := context.Background()
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, encoded, "correct horse battery staple"); !ok || err != nil {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}
