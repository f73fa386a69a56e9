package redisstore_test

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/storage/pending/redisstore"
)

// A Redis that cannot be reached makes every operation fail with
// pending.ErrUnavailable; Redis's own error replies do not.
func TestUnavailable(t *testing.T) {
	ctx := t.Context()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	s, err := redisstore.Open("redis://"+addr+"/0", "p:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	calls := map[string]func() error{
		"Set":   func() error { return s.Set(ctx, "k", []byte("v"), time.Minute) },
		"SetNX": func() error { _, err := s.SetNX(ctx, "k", []byte("v"), time.Minute); return err },
		"Get":   func() error { _, err := s.Get(ctx, "k"); return err },
		"GetDel": func() error {
			_, err := s.GetDel(ctx, "k")
			return err
		},
		"CompareAndSwap": func() error {
			_, err := s.CompareAndSwap(ctx, "k", []byte("v"), []byte("w"), time.Minute)
			return err
		},
		"Delete": func() error { return s.Delete(ctx, "k") },
		"Incr":   func() error { _, err := s.Incr(ctx, "n", time.Minute); return err },
		"Ping":   func() error { return s.Ping(ctx) },
	}
	var wg sync.WaitGroup // each call retries its dial for a while: at once
	for name, call := range calls {
		wg.Go(func() {
			if err := call(); !errors.Is(err, pending.ErrUnavailable) {
				t.Errorf("%s on a closed port: %v, want pending.ErrUnavailable", name, err)
			}
		})
	}
	wg.Wait()

	url, prefix := testenv.RedisURL(t)
	up, err := redisstore.Open(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if err := up.Set(ctx, "text", []byte("not a number"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Incr(ctx, "text", time.Minute); err == nil || errors.Is(err, pending.ErrUnavailable) {
		t.Errorf("Incr of a text value: %v, want Redis's error, not pending.ErrUnavailable", err)
	}
}

// A Redis that takes connections but never answers, and one that refuses
// them (which go-redis alone would dial five times, and retry three
// times, for about a second), fail each operation within the store's
// timeout.
func TestTimeoutBoundsEachOperation(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	refusing, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing.Close()

	const timeout = 250 * time.Millisecond
	for name, addr := range map[string]string{"silent": silent.Addr().String(), "refusing": refusing.Addr().String()} {
		s, err := redisstore.OpenWithTimeout("redis://"+addr+"/0", "p:", timeout)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for op, call := range map[string]func() error{
			"Get":  func() error { _, err := s.Get(t.Context(), "k"); return err },
			"Incr": func() error { _, err := s.Incr(t.Context(), "n", time.Minute); return err },
		} {
			start := time.Now()
			err := call()
			took := time.Since(start)
			if !errors.Is(err, pending.ErrUnavailable) {
				t.Errorf("%s on a %s Redis: %v, want pending.ErrUnavailable", op, name, err)
			}
			if took > timeout+300*time.Millisecond {
				t.Errorf("%s on a %s Redis took %v with a timeout of %v", op, name, took, timeout)
			}
		}
	}
	if _, err := redisstore.OpenWithTimeout("redis://127.0.0.1:1/0", "p:", 0); err == nil {
		t.Error("OpenWithTimeout with a zero timeout = nil error")
	}
}
