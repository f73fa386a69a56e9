// Package password owns password hashing: argon2id in PHC strings, with the
// number of hashes computed at once capped (each one takes the configured
// memory), verification in constant time, the same cost for unknown users,
// and detection of hashes made with old parameters.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id parameters.
type Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

const (
	saltLen = 16
	keyLen  = 32
)

// ErrMalformed: the stored string is not an argon2id PHC hash.
var ErrMalformed = errors.New("password: malformed hash")

// ErrBusy: too many hashes are waiting; the caller should answer 503.
var ErrBusy = errors.New("password: too many logins at once")

// Hasher hashes and verifies passwords. At most MaxConcurrent hashes run at
// once (each takes MemoryKiB of memory); at most MaxQueue more wait.
type Hasher struct {
	params Params
	run    chan struct{}
	queue  chan struct{}
	dummy  string
}

// NewHasher returns a Hasher for params. maxConcurrent <= 0 means the
// number of CPUs; maxQueue <= 0 means 64 per running slot.
func NewHasher(params Params, maxConcurrent, maxQueue int) (*Hasher, error) {
	if params.MemoryKiB < 8*uint32(params.Parallelism) || params.Iterations < 1 || params.Parallelism < 1 {
		return nil, fmt.Errorf("password: invalid argon2id parameters %+v", params)
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0) // the CPUs this process may use (container limits included)
	}
	if maxQueue <= 0 {
		maxQueue = 64 * maxConcurrent
	}
	h := &Hasher{params: params, run: make(chan struct{}, maxConcurrent), queue: make(chan struct{}, maxConcurrent+maxQueue)}
	// A hash of a random password to verify against when the user does not
	// exist, so that an unknown username costs what a wrong password costs.
	var pw [16]byte
	rand.Read(pw[:])
	dummy, err := h.Hash(context.Background(), base64.RawStdEncoding.EncodeToString(pw[:]))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Params returns the parameters new hashes get.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of pw with fresh salt.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	var salt [saltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	key, err := h.derive(ctx, []byte(pw), salt[:], h.params, keyLen)
	if err != nil {
		return "", err
	}
	return encode(h.params, salt[:], key), nil
}

// Verify reports whether pw matches the encoded hash, and whether the hash
// should be replaced because it was made with other parameters. An empty
// encoded hash (no password set) never matches but costs the same time.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) (ok, rehash bool, err error) {
	if encoded == "" {
		_, _, err := h.Verify(ctx, h.dummy, pw)
		return false, false, err
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	got, err := h.derive(ctx, []byte(pw), salt, p, uint32(len(want)))
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && (p != h.params || len(want) != keyLen || len(salt) != saltLen), nil
}

// VerifyUnknownUser spends the time of one verification and returns false:
// for logins with an unknown username.
func (h *Hasher) VerifyUnknownUser(ctx context.Context, pw string) error {
	_, _, err := h.Verify(ctx, h.dummy, pw)
	return err
}

func (h *Hasher) derive(ctx context.Context, pw, salt []byte, p Params, n uint32) ([]byte, error) {
	select {
	case h.queue <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	defer func() { <-h.queue }()
	select {
	case h.run <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.run }()
	return argon2.IDKey(pw, salt, p.Iterations, p.MemoryKiB, p.Parallelism, n), nil
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decode(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, ErrMalformed
	}
	var version int
	// Sscanf ignores what follows the last number: compare the canonical form.
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version || parts[2] != fmt.Sprintf("v=%d", version) {
		return p, nil, nil, ErrMalformed
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Iterations, p.Parallelism) {
		return p, nil, nil, ErrMalformed
	}
	// Refuse absurd parameters from a tampered database row.
	if p.Iterations < 1 || p.Iterations > 64 || p.Parallelism < 1 || p.MemoryKiB < 8*uint32(p.Parallelism) || p.MemoryKiB > 4<<20 {
		return p, nil, nil, ErrMalformed
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, ErrMalformed
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, ErrMalformed
	}
	return p, salt, key, nil
}
