package password_test

import (
	"context"
	"crypto/rand"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/hostportal/idp/password"
)

// benchParams are the parameters the benchmarks compare: the production
// defaults (OWASP's argon2id recommendation, config.Defaults) and the cheap
// ones the tests run with (idptest).
var benchParams = []struct {
	name string
	p    password.Params
}{
	{"owasp", password.Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}},
	{"test", password.Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}},
}

const benchPassword = "correct horse battery staple"

func benchHasher(b *testing.B, p password.Params, maxConcurrent, maxQueue int) (*password.Hasher, string) {
	b.Helper()
	h, err := password.NewHasher(p, maxConcurrent, maxQueue)
	if err != nil {
		b.Fatal(err)
	}
	encoded, err := h.Hash(context.Background(), benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	return h, encoded
}

// BenchmarkPasswordVerify is one login's password check through the
// Hasher: PHC decoding, the concurrency gate, argon2id and the comparison.
// Compare with BenchmarkArgon2Raw of the same parameters: the difference is
// the Hasher's own overhead.
func BenchmarkPasswordVerify(b *testing.B) {
	for _, bp := range benchParams {
		b.Run(bp.name, func(b *testing.B) {
			h, encoded := benchHasher(b, bp.p, 0, 0)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if ok, _, err := h.Verify(ctx, encoded, benchPassword); !ok || err != nil {
					b.Fatalf("Verify = %v, %v", ok, err)
				}
			}
		})
	}
}

// BenchmarkArgon2Raw is argon2id alone (x/crypto), with the parameters of
// BenchmarkPasswordVerify.
func BenchmarkArgon2Raw(b *testing.B) {
	for _, bp := range benchParams {
		b.Run(bp.name, func(b *testing.B) {
			salt := make([]byte, 16)
			rand.Read(salt)
			pw := []byte(benchPassword)
			b.ReportAllocs()
			for b.Loop() {
				argon2.IDKey(pw, salt, bp.p.Iterations, bp.p.MemoryKiB, bp.p.Parallelism, 32)
			}
		})
	}
}

// BenchmarkPasswordVerifyParallel runs 4×GOMAXPROCS logins at once at the
// OWASP parameters. With a cap of one hash at a time ns/op is about that of
// BenchmarkPasswordVerify (the others wait their turn); with the default cap
// (GOMAXPROCS) it falls to that divided by the number of CPUs and no lower,
// however many logins wait, and memory in use stays at cap×MemoryKiB. The
// default queue (64 per slot) admits every waiting login, so none is busy.
func BenchmarkPasswordVerifyParallel(b *testing.B) {
	p := benchParams[0].p
	for _, maxConcurrent := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run("cap="+strconv.Itoa(maxConcurrent), func(b *testing.B) {
			h, encoded := benchHasher(b, p, maxConcurrent, 0)
			b.SetParallelism(4)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if ok, _, err := h.Verify(ctx, encoded, benchPassword); !ok || err != nil {
						b.Errorf("Verify = %v, %v", ok, err)
						return
					}
				}
			})
		})
	}
}
