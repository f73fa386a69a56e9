package conformance

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hostportal/idp/storage"
)

// Tests of the second-factor records: TOTP enrolments, recovery codes and
// remembered devices. RunTests lists them.

func totpByUser(t *testing.T, s storage.Store, userID string) *storage.TOTP {
	t.Helper()
	got, err := s.TOTPByUser(t.Context(), userID)
	must(t, err, "TOTPByUser "+userID)
	return got
}

func testTOTP(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2"}, nil)

	_, err := s.TOTPByUser(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound, "TOTPByUser before enrolment")

	t1 := &storage.TOTP{UserID: "u1", Secret: []byte("sealed-secret-1\x00\xff"), LastStep: 0, CreatedAt: base}
	must(t, s.SetTOTP(ctx, t1), "SetTOTP u1")
	checkSame(t, "TOTPByUser u1", totpByUser(t, s, "u1"), t1)
	t2 := &storage.TOTP{UserID: "u2", Secret: []byte("sealed-secret-2"), LastStep: 7, CreatedAt: at(time.Second)}
	must(t, s.SetTOTP(ctx, t2), "SetTOTP u2")

	// A new enrolment replaces the old one as a whole, LastStep included.
	t1b := &storage.TOTP{UserID: "u1", Secret: []byte("sealed-secret-1b"), LastStep: 42, CreatedAt: at(time.Minute)}
	must(t, s.SetTOTP(ctx, t1b), "SetTOTP u1 again")
	checkSame(t, "TOTPByUser u1 after replacement", totpByUser(t, s, "u1"), t1b)
	t1c := &storage.TOTP{UserID: "u1", Secret: []byte("sealed-secret-1c"), LastStep: 0, CreatedAt: at(2 * time.Minute)}
	must(t, s.SetTOTP(ctx, t1c), "SetTOTP u1 with a lower LastStep")
	checkSame(t, "TOTPByUser u1 after a replacement with a lower LastStep", totpByUser(t, s, "u1"), t1c)
	checkSame(t, "TOTPByUser u2 (untouched)", totpByUser(t, s, "u2"), t2)

	wantErr(t, s.SetTOTP(ctx, &storage.TOTP{UserID: "nobody", Secret: []byte("s"), CreatedAt: base}),
		storage.ErrNotFound, "SetTOTP for a user that does not exist")
	_, err = s.TOTPByUser(ctx, "nobody")
	wantErr(t, err, storage.ErrNotFound, "TOTPByUser of a user that does not exist")

	must(t, s.DeleteTOTP(ctx, "u1"), "DeleteTOTP")
	_, err = s.TOTPByUser(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound, "TOTPByUser after DeleteTOTP")
	must(t, s.DeleteTOTP(ctx, "u1"), "DeleteTOTP again")
	must(t, s.DeleteTOTP(ctx, "nobody"), "DeleteTOTP of a user that does not exist")
	checkSame(t, "TOTPByUser u2 after u1's DeleteTOTP", totpByUser(t, s, "u2"), t2)
}

func testTOTPAdvanceStep(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2"}, nil)
	advance := func(userID string, step int64, want bool) {
		t.Helper()
		got, err := s.AdvanceTOTPStep(ctx, userID, step)
		must(t, err, fmt.Sprintf("AdvanceTOTPStep(%s, %d)", userID, step))
		if got != want {
			t.Errorf("AdvanceTOTPStep(%s, %d) = %v, want %v", userID, step, got, want)
		}
	}
	lastStep := func(userID string, want int64) {
		t.Helper()
		if got := totpByUser(t, s, userID).LastStep; got != want {
			t.Errorf("%s LastStep = %d, want %d", userID, got, want)
		}
	}

	_, err := s.AdvanceTOTPStep(ctx, "u1", 5)
	wantErr(t, err, storage.ErrNotFound, "AdvanceTOTPStep without enrolment")
	_, err = s.AdvanceTOTPStep(ctx, "nobody", 5)
	wantErr(t, err, storage.ErrNotFound, "AdvanceTOTPStep of a user that does not exist")

	must(t, s.SetTOTP(ctx, &storage.TOTP{UserID: "u1", Secret: []byte("s1"), LastStep: 10, CreatedAt: base}), "SetTOTP u1")
	must(t, s.SetTOTP(ctx, &storage.TOTP{UserID: "u2", Secret: []byte("s2"), LastStep: 10, CreatedAt: base}), "SetTOTP u2")

	advance("u1", 11, true) // greater
	lastStep("u1", 11)
	advance("u1", 11, false) // equal: the same code again
	advance("u1", 10, false) // smaller: an older code
	advance("u1", 9, false)
	lastStep("u1", 11)
	advance("u1", 20, true)
	lastStep("u1", 20)
	lastStep("u2", 10) // another user's step is their own

	// A re-enrolment starts from the LastStep it is given.
	must(t, s.SetTOTP(ctx, &storage.TOTP{UserID: "u1", Secret: []byte("s1b"), LastStep: 0, CreatedAt: at(time.Minute)}),
		"SetTOTP u1 again")
	advance("u1", 5, true)
	lastStep("u1", 5)

	must(t, s.DeleteTOTP(ctx, "u1"), "DeleteTOTP")
	_, err = s.AdvanceTOTPStep(ctx, "u1", 100)
	wantErr(t, err, storage.ErrNotFound, "AdvanceTOTPStep after DeleteTOTP")
}

// testTOTPConcurrentAdvance uses one code from several goroutines at once
// (a replayed code racing the real one): exactly one call wins.
func testTOTPConcurrentAdvance(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, nil)
	must(t, s.SetTOTP(ctx, &storage.TOTP{UserID: "u1", Secret: []byte("s"), LastStep: 1, CreatedAt: base}), "SetTOTP")

	const n = 8
	run := func(step func(i int) int64) (ok []bool, errs []error) {
		ok = make([]bool, n)
		errs = concurrently(n, func(i int) (err error) {
			ok[i], err = s.AdvanceTOTPStep(ctx, "u1", step(i))
			return err
		})
		return ok, errs
	}

	// The same step from every goroutine.
	ok, errs := run(func(int) int64 { return 100 })
	wins := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("AdvanceTOTPStep #%d: %v", i, errs[i])
		}
		if ok[i] {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent AdvanceTOTPStep calls with one step got true, want exactly 1", wins, n)
	}
	if got := totpByUser(t, s, "u1").LastStep; got != 100 {
		t.Errorf("LastStep = %d, want 100", got)
	}

	// Different steps: whatever the order, the greatest is the one that
	// stays, and its call got true.
	ok, errs = run(func(i int) int64 { return 200 + int64(i) })
	for i := range n {
		if errs[i] != nil {
			t.Errorf("AdvanceTOTPStep #%d: %v", i, errs[i])
		}
	}
	if !ok[n-1] {
		t.Errorf("AdvanceTOTPStep with the greatest step (%d) got false", 200+n-1)
	}
	if got := totpByUser(t, s, "u1").LastStep; got != 200+n-1 {
		t.Errorf("LastStep = %d, want %d", got, 200+n-1)
	}
}

func countCodes(t *testing.T, s storage.Store, userID string) int {
	t.Helper()
	n, err := s.CountRecoveryCodes(t.Context(), userID)
	must(t, err, "CountRecoveryCodes "+userID)
	return n
}

func testRecoveryCodes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2"}, nil)
	wantCount := func(userID string, want int) {
		t.Helper()
		if got := countCodes(t, s, userID); got != want {
			t.Errorf("CountRecoveryCodes(%s) = %d, want %d", userID, got, want)
		}
	}
	consume := func(userID, hash, replacement string, target error) {
		t.Helper()
		err := s.ConsumeRecoveryCode(ctx, userID, hash, replacement, at(time.Hour))
		what := fmt.Sprintf("ConsumeRecoveryCode(%s, %s -> %s)", userID, hash, replacement)
		if target == nil {
			must(t, err, what)
		} else {
			wantErr(t, err, target, what)
		}
	}

	wantCount("u1", 0)
	wantCount("nobody", 0)

	must(t, s.ReplaceRecoveryCodes(ctx, "u1", []string{"a", "b", "c"}, base), "ReplaceRecoveryCodes u1")
	wantCount("u1", 3)
	// Two users may hold the same hash.
	must(t, s.ReplaceRecoveryCodes(ctx, "u2", []string{"a", "x"}, base), "ReplaceRecoveryCodes u2")
	wantCount("u2", 2)

	// A new set replaces the old one: the old codes no longer work.
	must(t, s.ReplaceRecoveryCodes(ctx, "u1", []string{"d", "e"}, at(time.Minute)), "ReplaceRecoveryCodes u1 again")
	wantCount("u1", 2)
	consume("u1", "a", "a2", storage.ErrNotFound)
	wantCount("u1", 2)

	// Consuming a code replaces it: the count stays, the consumed hash no
	// longer works, the replacement does.
	consume("u1", "d", "d2", nil)
	wantCount("u1", 2)
	consume("u1", "d", "d3", storage.ErrNotFound)
	consume("u1", "d2", "d3", nil)
	wantCount("u1", 2)

	consume("u1", "unknown", "z", storage.ErrNotFound)
	wantCount("u1", 2)
	consume("nobody", "a", "z", storage.ErrNotFound)

	// Another user's code is not one's own.
	consume("u1", "x", "z", storage.ErrNotFound)
	wantCount("u1", 2)
	wantCount("u2", 2)
	consume("u2", "x", "x2", nil)
	consume("u2", "a", "a2", nil) // u1's consumption of its "a" left u2's alone
	wantCount("u2", 2)

	// A replacement the user already holds fails as a whole: the consumed
	// code is still there.
	consume("u1", "d3", "e", storage.ErrConflict)
	wantCount("u1", 2)
	consume("u1", "d3", "d4", nil)

	// So does a new set with a repeated hash: the old set stays.
	wantErr(t, s.ReplaceRecoveryCodes(ctx, "u1", []string{"p", "q", "p"}, at(2*time.Minute)),
		storage.ErrConflict, "ReplaceRecoveryCodes with a repeated hash")
	wantCount("u1", 2)
	consume("u1", "p", "p2", storage.ErrNotFound)
	consume("u1", "e", "e2", nil)

	wantErr(t, s.ReplaceRecoveryCodes(ctx, "nobody", []string{"n"}, base),
		storage.ErrNotFound, "ReplaceRecoveryCodes for a user that does not exist")
	wantCount("nobody", 0)

	// An empty set leaves the user with no codes.
	must(t, s.ReplaceRecoveryCodes(ctx, "u1", nil, at(3*time.Minute)), "ReplaceRecoveryCodes with no codes")
	wantCount("u1", 0)
	consume("u1", "e2", "e3", storage.ErrNotFound)

	must(t, s.DeleteRecoveryCodes(ctx, "u2"), "DeleteRecoveryCodes")
	wantCount("u2", 0)
	consume("u2", "x2", "x3", storage.ErrNotFound)
	must(t, s.DeleteRecoveryCodes(ctx, "u2"), "DeleteRecoveryCodes again")
	must(t, s.DeleteRecoveryCodes(ctx, "nobody"), "DeleteRecoveryCodes of a user that does not exist")
}

// testRecoveryCodeConcurrentConsume submits one recovery code from several
// goroutines at once: exactly one succeeds, and only its replacement is
// stored.
func testRecoveryCodeConcurrentConsume(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, nil)
	must(t, s.ReplaceRecoveryCodes(ctx, "u1", []string{"c1", "c2"}, base), "ReplaceRecoveryCodes")

	const n = 8
	winner := oneWinner(t, "consumer", storage.ErrNotFound, concurrently(n, func(i int) error {
		return s.ConsumeRecoveryCode(ctx, "u1", "c1", fmt.Sprintf("r%d", i), at(time.Duration(i)*time.Second))
	}))
	if got := countCodes(t, s, "u1"); got != 2 {
		t.Errorf("CountRecoveryCodes = %d, want 2", got)
	}
	for i := range n {
		err := s.ConsumeRecoveryCode(ctx, "u1", fmt.Sprintf("r%d", i), fmt.Sprintf("s%d", i), at(time.Hour))
		if i == winner {
			must(t, err, "consuming the winner's replacement")
		} else {
			wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("consuming loser %d's replacement", i))
		}
	}
}

// testRecoveryCodesConcurrentReplace regenerates the codes from several
// goroutines at once: the user ends up with exactly one of the sets, not a
// mix.
func testRecoveryCodesConcurrentReplace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, nil)
	must(t, s.ReplaceRecoveryCodes(ctx, "u1", []string{"old-0", "old-1", "old-2"}, base), "ReplaceRecoveryCodes")

	const n, size = 8, 3
	set := func(i int) []string {
		hashes := make([]string, size)
		for j := range hashes {
			hashes[j] = fmt.Sprintf("set%d-%d", i, j)
		}
		return hashes
	}
	errs := concurrently(n, func(i int) error {
		return s.ReplaceRecoveryCodes(ctx, "u1", set(i), at(time.Duration(i)*time.Second))
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("ReplaceRecoveryCodes #%d: %v", i, err)
		}
	}
	if got := countCodes(t, s, "u1"); got != size {
		t.Fatalf("after concurrent replacements the user has %d codes, want %d", got, size)
	}
	// Which set won shows by which codes still work; the replacement
	// hashes are fresh, so the probes do not change the count.
	var survivors []int
	for i := range n {
		err := s.ConsumeRecoveryCode(ctx, "u1", set(i)[0], fmt.Sprintf("probe-%d", i), at(time.Hour))
		switch {
		case err == nil:
			survivors = append(survivors, i)
		case !errors.Is(err, storage.ErrNotFound):
			t.Errorf("ConsumeRecoveryCode of set %d: %v", i, err)
		}
	}
	if len(survivors) != 1 {
		t.Errorf("codes of sets %v survive, want those of exactly one set", survivors)
	}
	if err := s.ConsumeRecoveryCode(ctx, "u1", "old-0", "probe-old", at(time.Hour)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a code of the set before the replacements: got %v, want ErrNotFound", err)
	}
}

func deviceIDs(devices []*storage.RememberedDevice) []string {
	ids := make([]string, len(devices))
	for i, d := range devices {
		ids[i] = d.ID
	}
	return ids
}

func testRememberedDevices(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2"}, nil)
	list := func(userID string) []*storage.RememberedDevice {
		t.Helper()
		devices, err := s.ListRememberedDevices(ctx, userID)
		must(t, err, "ListRememberedDevices "+userID)
		return devices
	}
	byHash := func(hash string) *storage.RememberedDevice {
		t.Helper()
		d, err := s.RememberedDeviceByHash(ctx, hash)
		must(t, err, "RememberedDeviceByHash "+hash)
		return d
	}

	d1 := &storage.RememberedDevice{ID: "d1", UserID: "u1", TokenHash: "h1", Description: "Chrome on Linux",
		CreatedAt: base, LastUsedAt: base, ExpiresAt: at(30 * 24 * time.Hour)}
	d2 := &storage.RememberedDevice{ID: "d2", UserID: "u1", TokenHash: "h2", Description: "",
		CreatedAt: at(time.Minute), ExpiresAt: at(time.Hour)} // never used: LastUsedAt stays zero
	d3 := &storage.RememberedDevice{ID: "d3", UserID: "u1", TokenHash: "h3", Description: "Firefox on macOS",
		CreatedAt: at(2 * time.Minute), LastUsedAt: at(2 * time.Minute), ExpiresAt: at(2 * time.Hour)}
	e1 := &storage.RememberedDevice{ID: "e1", UserID: "u2", TokenHash: "h4", Description: "Safari on iOS",
		CreatedAt: at(3 * time.Minute), LastUsedAt: at(3 * time.Minute), ExpiresAt: at(time.Hour)}
	for _, d := range []*storage.RememberedDevice{d1, d3, d2, e1} {
		must(t, s.CreateRememberedDevice(ctx, d), "CreateRememberedDevice "+d.ID)
	}
	checkSame(t, "RememberedDeviceByHash h1", byHash("h1"), d1)
	checkSame(t, "RememberedDeviceByHash h2", byHash("h2"), d2)
	_, err := s.RememberedDeviceByHash(ctx, "missing")
	wantErr(t, err, storage.ErrNotFound, "RememberedDeviceByHash missing")

	wantErr(t, s.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "d1", UserID: "u1", TokenHash: "h9",
		CreatedAt: base, ExpiresAt: at(time.Hour)}), storage.ErrConflict, "CreateRememberedDevice duplicate id")
	wantErr(t, s.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "d9", UserID: "u2", TokenHash: "h1",
		CreatedAt: base, ExpiresAt: at(time.Hour)}), storage.ErrConflict, "CreateRememberedDevice duplicate hash")
	wantErr(t, s.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "d9", UserID: "nobody", TokenHash: "h9",
		CreatedAt: base, ExpiresAt: at(time.Hour)}), storage.ErrNotFound, "CreateRememberedDevice for a user that does not exist")
	_, err = s.RememberedDeviceByHash(ctx, "h9")
	wantErr(t, err, storage.ErrNotFound, "device of a failed CreateRememberedDevice")

	// Touch sets LastUsedAt and nothing else.
	must(t, s.TouchRememberedDevice(ctx, "d2", at(5*time.Minute)), "TouchRememberedDevice")
	want2 := *d2
	want2.LastUsedAt = at(5 * time.Minute)
	checkSame(t, "after TouchRememberedDevice", byHash("h2"), &want2)
	checkSame(t, "another device after TouchRememberedDevice", byHash("h1"), d1)
	wantErr(t, s.TouchRememberedDevice(ctx, "missing", at(5*time.Minute)),
		storage.ErrNotFound, "TouchRememberedDevice missing")

	// Listed newest first, one user's only, whole records.
	got := list("u1")
	if ids := deviceIDs(got); !slices.Equal(ids, []string{"d3", "d2", "d1"}) {
		t.Fatalf("ListRememberedDevices u1 = %q, want [d3 d2 d1]", ids)
	}
	checkSame(t, "listed d3", got[0], d3)
	checkSame(t, "listed d2", got[1], &want2)
	checkSame(t, "listed d1", got[2], d1)
	if ids := deviceIDs(list("u2")); !slices.Equal(ids, []string{"e1"}) {
		t.Errorf("ListRememberedDevices u2 = %q, want [e1]", ids)
	}
	if got := list("nobody"); len(got) != 0 {
		t.Errorf("ListRememberedDevices of a user that does not exist = %q, want none", deviceIDs(got))
	}

	// DeleteExpiredRememberedDevices removes devices that expired strictly
	// before now: d2 and e1 expire at 1h.
	n, err := s.DeleteExpiredRememberedDevices(ctx, at(time.Hour))
	must(t, err, "DeleteExpiredRememberedDevices at the exact expiry")
	if n != 0 {
		t.Errorf("DeleteExpiredRememberedDevices at the exact expiry deleted %d, want 0", n)
	}
	n, err = s.DeleteExpiredRememberedDevices(ctx, at(time.Hour+time.Second))
	must(t, err, "DeleteExpiredRememberedDevices")
	if n != 2 {
		t.Errorf("DeleteExpiredRememberedDevices deleted %d, want 2 (d2, e1)", n)
	}
	if ids := deviceIDs(list("u1")); !slices.Equal(ids, []string{"d3", "d1"}) {
		t.Errorf("after DeleteExpiredRememberedDevices u1 has %q, want [d3 d1]", ids)
	}
	_, err = s.RememberedDeviceByHash(ctx, "h4")
	wantErr(t, err, storage.ErrNotFound, "expired device e1")

	// DeleteRememberedDevices forgets one user's devices only.
	f1 := &storage.RememberedDevice{ID: "f1", UserID: "u2", TokenHash: "h5", CreatedAt: at(4 * time.Minute),
		ExpiresAt: at(48 * time.Hour)}
	must(t, s.CreateRememberedDevice(ctx, f1), "CreateRememberedDevice f1")
	n, err = s.DeleteRememberedDevices(ctx, "u1")
	must(t, err, "DeleteRememberedDevices u1")
	if n != 2 {
		t.Errorf("DeleteRememberedDevices u1 deleted %d, want 2", n)
	}
	if got := list("u1"); len(got) != 0 {
		t.Errorf("after DeleteRememberedDevices u1 has %q, want none", deviceIDs(got))
	}
	for _, h := range []string{"h1", "h3"} {
		_, err := s.RememberedDeviceByHash(ctx, h)
		wantErr(t, err, storage.ErrNotFound, "forgotten device "+h)
	}
	checkSame(t, "other user's device after DeleteRememberedDevices", byHash("h5"), f1)
	n, err = s.DeleteRememberedDevices(ctx, "u1")
	must(t, err, "DeleteRememberedDevices u1 again")
	if n != 0 {
		t.Errorf("DeleteRememberedDevices of a user with none deleted %d, want 0", n)
	}
}

// testDeleteUserCascadesSecondFactors checks that DeleteUser takes the
// user's TOTP enrolment, recovery codes, remembered devices, security keys
// and WebAuthn handle with it, and leaves another user's alone.
func testDeleteUserCascadesSecondFactors(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2"}, nil)
	for _, u := range []string{"u1", "u2"} {
		must(t, s.SetTOTP(ctx, &storage.TOTP{UserID: u, Secret: []byte("s-" + u), LastStep: 3, CreatedAt: base}),
			"SetTOTP "+u)
		must(t, s.ReplaceRecoveryCodes(ctx, u, []string{u + "-a", u + "-b"}, base), "ReplaceRecoveryCodes "+u)
		must(t, s.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "dev-" + u, UserID: u,
			TokenHash: "hash-" + u, CreatedAt: base, ExpiresAt: at(time.Hour)}), "CreateRememberedDevice "+u)
		_, err := s.WebAuthnHandle(ctx, u, []byte("handle-"+u))
		must(t, err, "WebAuthnHandle "+u)
		must(t, s.CreateSecurityKey(ctx, newSecurityKey("key-"+u, u, base)), "CreateSecurityKey "+u)
	}

	must(t, s.DeleteUser(ctx, "u1"), "DeleteUser")

	_, err := s.TOTPByUser(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound, "deleted user's TOTP")
	if n := countCodes(t, s, "u1"); n != 0 {
		t.Errorf("deleted user has %d recovery codes, want 0", n)
	}
	_, err = s.RememberedDeviceByHash(ctx, "hash-u1")
	wantErr(t, err, storage.ErrNotFound, "deleted user's remembered device")
	devices, err := s.ListRememberedDevices(ctx, "u1")
	must(t, err, "ListRememberedDevices of deleted user")
	if len(devices) != 0 {
		t.Errorf("deleted user's remembered devices survived: %q", deviceIDs(devices))
	}
	_, err = s.SecurityKeyByCredentialID(ctx, newSecurityKey("key-u1", "u1", base).CredentialID)
	wantErr(t, err, storage.ErrNotFound, "deleted user's security key")
	if n := countSecurityKeys(t, s, "u1"); n != 0 {
		t.Errorf("deleted user has %d security keys, want 0", n)
	}
	_, err = s.UserIDByWebAuthnHandle(ctx, []byte("handle-u1"))
	wantErr(t, err, storage.ErrNotFound, "deleted user's WebAuthn handle")

	// A new account that reuses the id starts with none of it.
	must(t, s.CreateUser(ctx, newUser("u1", "reborn")), "CreateUser reusing the id")
	_, err = s.TOTPByUser(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound, "TOTP of a new user with a deleted user's id")
	if n := countCodes(t, s, "u1"); n != 0 {
		t.Errorf("new user with a deleted user's id has %d recovery codes, want 0", n)
	}
	if n := countSecurityKeys(t, s, "u1"); n != 0 {
		t.Errorf("new user with a deleted user's id has %d security keys, want 0", n)
	}
	// The new account's handle is its own, not the one the old account's
	// passkeys were registered under.
	handle, err := s.WebAuthnHandle(ctx, "u1", []byte("handle-reborn"))
	must(t, err, "WebAuthnHandle of a new user with a deleted user's id")
	if string(handle) != "handle-reborn" {
		t.Errorf("new user with a deleted user's id has WebAuthn handle %q, want its own candidate", handle)
	}

	totpByUser(t, s, "u2")
	if n := countCodes(t, s, "u2"); n != 2 {
		t.Errorf("other user has %d recovery codes, want 2", n)
	}
	_, err = s.RememberedDeviceByHash(ctx, "hash-u2")
	must(t, err, "other user's remembered device")
	checkSame(t, "other user's security key",
		securityKeyByCredentialID(t, s, newSecurityKey("key-u2", "u2", base).CredentialID), newSecurityKey("key-u2", "u2", base))
	owner, err := s.UserIDByWebAuthnHandle(ctx, []byte("handle-u2"))
	must(t, err, "other user's WebAuthn handle")
	if owner != "u2" {
		t.Errorf("other user's WebAuthn handle belongs to %q, want u2", owner)
	}
}
