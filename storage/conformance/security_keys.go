package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hostportal/idp/storage"
)

// Tests of the WebAuthn records: security keys (and passkeys) and each
// user's user handle. RunTests lists them.

func securityKeyIDs(keys []*storage.SecurityKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func newSecurityKey(id, userID string, created time.Time) *storage.SecurityKey {
	return &storage.SecurityKey{
		ID:     id,
		UserID: userID,
		// Credential ids and credentials are binary: NUL and 0xff bytes
		// must survive the round trip.
		CredentialID: []byte("cred\x00" + id + "\xff"),
		Name:         "Key " + id,
		Credential:   []byte("encoded\x00credential\xff" + id),
		SignCount:    3,
		CreatedAt:    created,
	}
}

func securityKeyByCredentialID(t *testing.T, s storage.Store, credentialID []byte) *storage.SecurityKey {
	t.Helper()
	k, err := s.SecurityKeyByCredentialID(t.Context(), credentialID)
	must(t, err, fmt.Sprintf("SecurityKeyByCredentialID %q", credentialID))
	return k
}

func countSecurityKeys(t *testing.T, s storage.Store, userID string) int {
	t.Helper()
	n, err := s.CountSecurityKeys(t.Context(), userID)
	must(t, err, "CountSecurityKeys "+userID)
	return n
}

func testSecurityKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2"}, nil)
	list := func(userID string) []*storage.SecurityKey {
		t.Helper()
		keys, err := s.ListSecurityKeys(ctx, userID)
		must(t, err, "ListSecurityKeys "+userID)
		return keys
	}
	wantCount := func(userID string, want int) {
		t.Helper()
		if got := countSecurityKeys(t, s, userID); got != want {
			t.Errorf("CountSecurityKeys(%s) = %d, want %d", userID, got, want)
		}
	}

	if got := list("u1"); len(got) != 0 {
		t.Errorf("ListSecurityKeys before any key = %q, want none", securityKeyIDs(got))
	}
	wantCount("u1", 0)
	wantCount("nobody", 0)

	k1 := newSecurityKey("k1", "u1", at(time.Minute))
	k1.LastUsedAt = at(2 * time.Minute)
	k2 := newSecurityKey("k2", "u1", base) // never used: LastUsedAt stays zero
	k2.SignCount = 0                       // a passkey's counter
	k2.Name = ""
	k3 := newSecurityKey("k3", "u1", at(2*time.Minute))
	k3.SignCount = 1<<32 - 1 // the whole uint32 range fits
	e1 := newSecurityKey("e1", "u2", at(30*time.Second))
	for _, k := range []*storage.SecurityKey{k1, k3, e1, k2} {
		must(t, s.CreateSecurityKey(ctx, k), "CreateSecurityKey "+k.ID)
	}
	for _, k := range []*storage.SecurityKey{k1, k2, k3, e1} {
		checkSame(t, "SecurityKeyByCredentialID of "+k.ID, securityKeyByCredentialID(t, s, k.CredentialID), k)
	}
	for _, missing := range [][]byte{[]byte("missing"), k1.CredentialID[:len(k1.CredentialID)-1], append(slices.Clone(k1.CredentialID), 0)} {
		_, err := s.SecurityKeyByCredentialID(ctx, missing)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("SecurityKeyByCredentialID %q", missing))
	}

	// Listed oldest first, one user's only, whole records.
	got := list("u1")
	if ids := securityKeyIDs(got); !slices.Equal(ids, []string{"k2", "k1", "k3"}) {
		t.Fatalf("ListSecurityKeys u1 = %q, want [k2 k1 k3]", ids)
	}
	checkSame(t, "listed k2", got[0], k2)
	checkSame(t, "listed k1", got[1], k1)
	checkSame(t, "listed k3", got[2], k3)
	if ids := securityKeyIDs(list("u2")); !slices.Equal(ids, []string{"e1"}) {
		t.Errorf("ListSecurityKeys u2 = %q, want [e1]", ids)
	}
	if got := list("nobody"); len(got) != 0 {
		t.Errorf("ListSecurityKeys of a user that does not exist = %q, want none", securityKeyIDs(got))
	}
	wantCount("u1", 3)
	wantCount("u2", 1)

	// A credential id is stored once, whoever registers it again.
	dup := newSecurityKey("k9", "u1", at(time.Hour))
	dup.CredentialID = slices.Clone(k1.CredentialID)
	wantErr(t, s.CreateSecurityKey(ctx, dup), storage.ErrConflict, "CreateSecurityKey with the user's own credential id")
	dup.UserID = "u2"
	wantErr(t, s.CreateSecurityKey(ctx, dup), storage.ErrConflict, "CreateSecurityKey with another user's credential id")
	orphan := newSecurityKey("k9", "nobody", at(time.Hour))
	wantErr(t, s.CreateSecurityKey(ctx, orphan), storage.ErrNotFound, "CreateSecurityKey for a user that does not exist")
	_, err := s.SecurityKeyByCredentialID(ctx, orphan.CredentialID)
	wantErr(t, err, storage.ErrNotFound, "key of a failed CreateSecurityKey")
	checkSame(t, "k1 after the refused duplicates", securityKeyByCredentialID(t, s, k1.CredentialID), k1)
	wantCount("u1", 3)
	wantCount("u2", 1)

	// DeleteSecurityKey removes the user's own key only.
	wantErr(t, s.DeleteSecurityKey(ctx, "u2", "k1"), storage.ErrNotFound, "DeleteSecurityKey of another user's key")
	checkSame(t, "k1 after another user's DeleteSecurityKey", securityKeyByCredentialID(t, s, k1.CredentialID), k1)
	wantErr(t, s.DeleteSecurityKey(ctx, "u1", "missing"), storage.ErrNotFound, "DeleteSecurityKey of an unknown id")
	wantErr(t, s.DeleteSecurityKey(ctx, "nobody", "k1"), storage.ErrNotFound, "DeleteSecurityKey for a user that does not exist")
	must(t, s.DeleteSecurityKey(ctx, "u1", "k1"), "DeleteSecurityKey k1")
	wantErr(t, s.DeleteSecurityKey(ctx, "u1", "k1"), storage.ErrNotFound, "DeleteSecurityKey k1 again")
	_, err = s.SecurityKeyByCredentialID(ctx, k1.CredentialID)
	wantErr(t, err, storage.ErrNotFound, "deleted key k1")
	if ids := securityKeyIDs(list("u1")); !slices.Equal(ids, []string{"k2", "k3"}) {
		t.Errorf("after DeleteSecurityKey u1 has %q, want [k2 k3]", ids)
	}
	wantCount("u1", 2)
	wantCount("u2", 1)

	// A deleted key's credential id may be registered again, by anyone.
	again := newSecurityKey("e2", "u2", at(time.Hour))
	again.CredentialID = slices.Clone(k1.CredentialID)
	must(t, s.CreateSecurityKey(ctx, again), "CreateSecurityKey with a deleted key's credential id")
	checkSame(t, "re-registered credential", securityKeyByCredentialID(t, s, k1.CredentialID), again)

	// DeleteSecurityKeys removes one user's keys, and keeps their handle.
	handle, err := s.WebAuthnHandle(ctx, "u1", []byte("handle-u1"))
	must(t, err, "WebAuthnHandle u1")
	n, err := s.DeleteSecurityKeys(ctx, "u1")
	must(t, err, "DeleteSecurityKeys u1")
	if n != 2 {
		t.Errorf("DeleteSecurityKeys u1 deleted %d, want 2", n)
	}
	if got := list("u1"); len(got) != 0 {
		t.Errorf("after DeleteSecurityKeys u1 has %q, want none", securityKeyIDs(got))
	}
	wantCount("u1", 0)
	for _, k := range []*storage.SecurityKey{k2, k3} {
		_, err := s.SecurityKeyByCredentialID(ctx, k.CredentialID)
		wantErr(t, err, storage.ErrNotFound, "key "+k.ID+" after DeleteSecurityKeys")
	}
	if ids := securityKeyIDs(list("u2")); !slices.Equal(ids, []string{"e1", "e2"}) {
		t.Errorf("other user's keys after DeleteSecurityKeys = %q, want [e1 e2]", ids)
	}
	n, err = s.DeleteSecurityKeys(ctx, "u1")
	must(t, err, "DeleteSecurityKeys u1 again")
	if n != 0 {
		t.Errorf("DeleteSecurityKeys of a user with none deleted %d, want 0", n)
	}
	n, err = s.DeleteSecurityKeys(ctx, "nobody")
	must(t, err, "DeleteSecurityKeys of a user that does not exist")
	if n != 0 {
		t.Errorf("DeleteSecurityKeys of a user that does not exist deleted %d, want 0", n)
	}
	kept, err := s.WebAuthnHandle(ctx, "u1", []byte("another-candidate"))
	must(t, err, "WebAuthnHandle u1 after DeleteSecurityKeys")
	if !bytes.Equal(kept, handle) {
		t.Errorf("WebAuthnHandle after DeleteSecurityKeys = %q, want the handle from before, %q", kept, handle)
	}
	owner, err := s.UserIDByWebAuthnHandle(ctx, handle)
	must(t, err, "UserIDByWebAuthnHandle after DeleteSecurityKeys")
	if owner != "u1" {
		t.Errorf("UserIDByWebAuthnHandle after DeleteSecurityKeys = %q, want u1", owner)
	}
}

func testWebAuthnHandle(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2", "u3"}, nil)
	handleOf := func(userID string, candidate []byte, want []byte) {
		t.Helper()
		got, err := s.WebAuthnHandle(ctx, userID, candidate)
		must(t, err, fmt.Sprintf("WebAuthnHandle(%s, %q)", userID, candidate))
		if !bytes.Equal(got, want) {
			t.Errorf("WebAuthnHandle(%s, %q) = %q, want %q", userID, candidate, got, want)
		}
	}
	ownerOf := func(handle []byte, want string) {
		t.Helper()
		got, err := s.UserIDByWebAuthnHandle(ctx, handle)
		must(t, err, fmt.Sprintf("UserIDByWebAuthnHandle(%q)", handle))
		if got != want {
			t.Errorf("UserIDByWebAuthnHandle(%q) = %q, want %q", handle, got, want)
		}
	}
	nobodys := func(handle []byte) {
		t.Helper()
		_, err := s.UserIDByWebAuthnHandle(ctx, handle)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("UserIDByWebAuthnHandle(%q)", handle))
	}

	// Handles are 64 random bytes in practice: binary, with NUL bytes.
	h1 := append([]byte("\x00handle-1\xff"), bytes.Repeat([]byte{0}, 54)...)
	h2 := []byte("\x00handle-2\xff")
	nobodys(h1)

	// The first call stores the candidate; later ones return it whatever
	// they offer.
	handleOf("u1", h1, h1)
	handleOf("u1", []byte("other"), h1)
	handleOf("u1", h2, h1)
	ownerOf(h1, "u1")
	nobodys([]byte("other"))
	nobodys(h2)
	nobodys(h1[:len(h1)-1])

	handleOf("u2", h2, h2)
	ownerOf(h2, "u2")
	ownerOf(h1, "u1")
	// A user who has a handle keeps it even when offered another's.
	handleOf("u2", h1, h2)

	// A user without a handle never gets another user's.
	if got, err := s.WebAuthnHandle(ctx, "u3", h1); err == nil && bytes.Equal(got, h1) {
		t.Errorf("WebAuthnHandle(u3, u1's handle) = u1's handle")
	}
	ownerOf(h1, "u1")

	_, err := s.WebAuthnHandle(ctx, "nobody", []byte("handle-n"))
	wantErr(t, err, storage.ErrNotFound, "WebAuthnHandle of a user that does not exist")
	nobodys([]byte("handle-n"))
}

// testWebAuthnHandleConcurrentFirst asks for a new user's handle from several
// goroutines at once (two tabs registering a first key), each with its own
// candidate: all of them get the one handle stored.
func testWebAuthnHandleConcurrentFirst(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, nil)
	const n = 8
	candidate := func(i int) []byte { return []byte(fmt.Sprintf("candidate-%d", i)) }
	handles := make([][]byte, n)
	errs := concurrently(n, func(i int) (err error) {
		handles[i], err = s.WebAuthnHandle(ctx, "u1", candidate(i))
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("WebAuthnHandle #%d: %v", i, err)
		}
	}
	for i := range n {
		if !bytes.Equal(handles[i], handles[0]) {
			t.Errorf("concurrent WebAuthnHandle #%d = %q, #0 = %q; want one handle", i, handles[i], handles[0])
		}
	}
	stored := -1
	for i := range n {
		if bytes.Equal(handles[0], candidate(i)) {
			stored = i
		}
	}
	if stored < 0 {
		t.Fatalf("the handle %q is none of the candidates", handles[0])
	}
	for i := range n {
		owner, err := s.UserIDByWebAuthnHandle(ctx, candidate(i))
		if i == stored {
			must(t, err, "UserIDByWebAuthnHandle of the stored candidate")
			if owner != "u1" {
				t.Errorf("UserIDByWebAuthnHandle of the stored candidate = %q, want u1", owner)
			}
		} else {
			wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("UserIDByWebAuthnHandle of candidate %d, not stored", i))
		}
	}
	again, err := s.WebAuthnHandle(ctx, "u1", []byte("later"))
	must(t, err, "WebAuthnHandle after the race")
	if !bytes.Equal(again, handles[0]) {
		t.Errorf("WebAuthnHandle after the race = %q, want %q", again, handles[0])
	}
}

func testUseSecurityKey(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, nil)
	key := newSecurityKey("k1", "u1", base)
	key.SignCount = 5
	passkey := newSecurityKey("p1", "u1", at(time.Second))
	passkey.SignCount = 0
	must(t, s.CreateSecurityKey(ctx, key), "CreateSecurityKey k1")
	must(t, s.CreateSecurityKey(ctx, passkey), "CreateSecurityKey p1")
	use := func(k *storage.SecurityKey, oldCount, newCount uint32, credential string, now time.Time, want bool) {
		t.Helper()
		got, err := s.UseSecurityKey(ctx, k.ID, oldCount, newCount, []byte(credential), now)
		what := fmt.Sprintf("UseSecurityKey(%s, %d -> %d)", k.ID, oldCount, newCount)
		must(t, err, what)
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	stored := func(k *storage.SecurityKey) *storage.SecurityKey {
		t.Helper()
		return securityKeyByCredentialID(t, s, k.CredentialID)
	}

	// A counter that moved on since it was read: nothing is written.
	use(key, 4, 6, "cred-stale", at(time.Hour), false)
	use(key, 6, 7, "cred-ahead", at(time.Hour), false)
	checkSame(t, "k1 after refused uses", stored(key), key)

	// The counter it was read with: Credential, SignCount and LastUsedAt
	// are written, nothing else.
	use(key, 5, 6, "cred-6", at(time.Hour), true)
	want := *key
	want.Credential, want.SignCount, want.LastUsedAt = []byte("cred-6"), 6, at(time.Hour)
	checkSame(t, "k1 after a use", stored(key), &want)
	// The same use again (a replay of the old counter) loses.
	use(key, 5, 6, "cred-replay", at(2*time.Hour), false)
	checkSame(t, "k1 after a replayed use", stored(key), &want)
	// Up to the top of the uint32 range.
	use(key, 6, 1<<32-1, "cred-max", at(3*time.Hour), true)
	want.Credential, want.SignCount, want.LastUsedAt = []byte("cred-max"), 1<<32-1, at(3*time.Hour)
	checkSame(t, "k1 at the greatest counter", stored(key), &want)

	// A counter that stays 0 compares equal every time.
	use(passkey, 0, 0, "passkey-1", at(time.Hour), true)
	use(passkey, 0, 0, "passkey-2", at(2*time.Hour), true)
	wantPasskey := *passkey
	wantPasskey.Credential, wantPasskey.LastUsedAt = []byte("passkey-2"), at(2*time.Hour)
	checkSame(t, "p1 after two uses", stored(passkey), &wantPasskey)
	checkSame(t, "k1 after p1's uses", stored(key), &want)

	_, err := s.UseSecurityKey(ctx, "missing", 0, 1, []byte("c"), at(time.Hour))
	wantErr(t, err, storage.ErrNotFound, "UseSecurityKey of an unknown key")
	must(t, s.DeleteSecurityKey(ctx, "u1", "p1"), "DeleteSecurityKey p1")
	_, err = s.UseSecurityKey(ctx, "p1", 0, 0, []byte("c"), at(time.Hour))
	wantErr(t, err, storage.ErrNotFound, "UseSecurityKey of a deleted key")
}

// errLostUse stands for a UseSecurityKey that reported false, so that
// oneWinner can count the winners.
var errLostUse = errors.New("use not recorded")

// testUseSecurityKeyConcurrent submits uses of one key read at one counter
// from several goroutines at once (a cloned key racing the real one): exactly
// one is recorded, and what is stored is that one's.
func testUseSecurityKeyConcurrent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, nil)
	key := newSecurityKey("k1", "u1", base)
	key.SignCount = 10
	must(t, s.CreateSecurityKey(ctx, key), "CreateSecurityKey")

	const n = 8
	winner := oneWinner(t, "use", errLostUse, concurrently(n, func(i int) error {
		ok, err := s.UseSecurityKey(ctx, "k1", 10, uint32(11+i), []byte(fmt.Sprintf("cred-%d", i)),
			at(time.Duration(i+1)*time.Second))
		if err == nil && !ok {
			return errLostUse
		}
		return err
	}))
	want := *key
	want.SignCount = uint32(11 + winner)
	want.Credential = []byte(fmt.Sprintf("cred-%d", winner))
	want.LastUsedAt = at(time.Duration(winner+1) * time.Second)
	checkSame(t, "key after concurrent uses", securityKeyByCredentialID(t, s, key.CredentialID), &want)
}
