// Package conformance is the one test suite every storage.Store backend
// passes (after Dex's storage/conformance). A backend's test calls RunTests
// with a constructor for fresh stores; the suite checks the contract
// documented in package storage, through the interfaces only.
package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostportal/idp/storage"
)

// RunTests runs the suite. newStore must return an empty store, with its
// schema in place, that no other test uses; it registers the store's
// cleanup (Close) with t itself.
func RunTests(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.Store)
	}{
		{"Ping", testPing},
		{"UserCRUD", testUserCRUD},
		{"UserConflict", testUserConflict},
		{"ListUsers", testListUsers},
		{"ListUsersDefaultLimit", testListUsersDefaultLimit},
		{"ClientCRUD", testClientCRUD},
		{"ListClients", testListClients},
		{"Keys", testKeys},
		{"KeysConcurrentActivate", testKeysConcurrentActivate},
		{"RefreshTokenRotate", testRefreshTokenRotate},
		{"RefreshTokenConcurrentRotate", testRefreshTokenConcurrentRotate},
		{"RefreshTokenRevoke", testRefreshTokenRevoke},
		{"RefreshTokenExpiry", testRefreshTokenExpiry},
		{"Consents", testConsents},
		{"RevokedAccessTokens", testRevokedAccessTokens},
		{"Audit", testAudit},
		{"AuditDefaultLimit", testAuditDefaultLimit},
		{"DeleteAuditBefore", testDeleteAuditBefore},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"DeleteClientCascades", testDeleteClientCascades},
		{"TOTP", testTOTP},
		{"TOTPAdvanceStep", testTOTPAdvanceStep},
		{"TOTPConcurrentAdvance", testTOTPConcurrentAdvance},
		{"RecoveryCodes", testRecoveryCodes},
		{"RecoveryCodeConcurrentConsume", testRecoveryCodeConcurrentConsume},
		{"RecoveryCodesConcurrentReplace", testRecoveryCodesConcurrentReplace},
		{"RememberedDevices", testRememberedDevices},
		{"SecurityKeys", testSecurityKeys},
		{"WebAuthnHandle", testWebAuthnHandle},
		{"WebAuthnHandleConcurrentFirst", testWebAuthnHandleConcurrentFirst},
		{"UseSecurityKey", testUseSecurityKey},
		{"UseSecurityKeyConcurrent", testUseSecurityKeyConcurrent},
		{"DeleteUserCascadesSecondFactors", testDeleteUserCascadesSecondFactors},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStore(t))
		})
	}
}

// Fixed times keep results deterministic. base has sub-millisecond digits on
// purpose: stores keep milliseconds, and the suite compares at that precision.
var base = time.Unix(1_700_000_000, 123_456_789)

func at(d time.Duration) time.Time { return base.Add(d) }

// ---- helpers ----

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// diff compares two structs of the same type field by field, as a store
// round trip is expected to preserve them: times equal at millisecond
// precision (whatever their location), nil and empty slices and maps alike.
// It returns one line per differing field.
func diff(got, want any) []string {
	gv, wv := reflect.Indirect(reflect.ValueOf(got)), reflect.Indirect(reflect.ValueOf(want))
	var out []string
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		var same bool
		switch w := w.(type) {
		case time.Time:
			same = g.(time.Time).Equal(w.Truncate(time.Millisecond))
		case []string:
			same = slices.Equal(g.([]string), w)
		case []byte:
			same = bytes.Equal(g.([]byte), w)
		case map[string]string:
			same = maps.Equal(g.(map[string]string), w)
		default:
			same = reflect.DeepEqual(g, w)
		}
		if !same {
			out = append(out, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
		}
	}
	return out
}

func checkSame(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := diff(got, want); len(d) > 0 {
		t.Errorf("%s differs:\n  %s", what, strings.Join(d, "\n  "))
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want.Truncate(time.Millisecond)) {
		t.Errorf("%s = %v, want %v", what, got, want.Truncate(time.Millisecond))
	}
}

func newUser(id, username string) *storage.User {
	return &storage.User{
		ID:        id,
		Username:  username,
		Email:     username + "@example.com",
		Name:      "User " + username,
		CreatedAt: base,
		UpdatedAt: base,
	}
}

func newClient(id string) *storage.Client {
	return &storage.Client{
		ID:           id,
		Name:         "Client " + id,
		SecretHash:   "hash-" + id,
		RedirectURIs: []string{"https://" + id + ".example.com/callback"},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Source:       storage.ClientSourceAPI,
		CreatedAt:    base,
		UpdatedAt:    base,
	}
}

// seed creates the users and clients that tokens and consents refer to.
func seed(t *testing.T, s storage.Store, userIDs, clientIDs []string) {
	t.Helper()
	ctx := t.Context()
	for _, id := range userIDs {
		must(t, s.CreateUser(ctx, newUser(id, "name-"+id)), "CreateUser "+id)
	}
	for _, id := range clientIDs {
		must(t, s.CreateClient(ctx, newClient(id)), "CreateClient "+id)
	}
}

func newToken(hash, family, userID, clientID string, expires time.Time) *storage.RefreshToken {
	return &storage.RefreshToken{
		TokenHash: hash,
		FamilyID:  family,
		UserID:    userID,
		ClientID:  clientID,
		Scopes:    []string{"openid", "offline_access"},
		Audience:  []string{clientID},
		AMR:       []string{"pwd"},
		AuthTime:  base,
		CreatedAt: base,
		ExpiresAt: expires,
	}
}

func tokenByHash(t *testing.T, s storage.Store, hash string) *storage.RefreshToken {
	t.Helper()
	tok, err := s.RefreshTokenByHash(t.Context(), hash)
	must(t, err, "RefreshTokenByHash "+hash)
	return tok
}

// ---- tests ----

func testPing(t *testing.T, s storage.Store) {
	must(t, s.Ping(t.Context()), "Ping")
}

func testUserCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := &storage.User{
		ID:            "u-1",
		Username:      "Alice",
		Email:         "alice@example.com",
		EmailVerified: true,
		Name:          "Alice Liddell",
		Phone:         "+441234567890",
		PhoneVerified: true,
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		Disabled:      false,
		CreatedAt:     base,
		UpdatedAt:     at(time.Second),
	}
	must(t, s.CreateUser(ctx, u), "CreateUser")
	want := *u
	want.Username = "alice" // stored lower-cased

	got, err := s.UserByID(ctx, "u-1")
	must(t, err, "UserByID")
	checkSame(t, "UserByID", got, &want)

	for _, name := range []string{"alice", "ALICE", "aLiCe"} {
		got, err := s.UserByUsername(ctx, name)
		must(t, err, "UserByUsername "+name)
		checkSame(t, "UserByUsername "+name, got, &want)
	}

	_, err = s.UserByID(ctx, "missing")
	wantErr(t, err, storage.ErrNotFound, "UserByID missing")
	_, err = s.UserByUsername(ctx, "nobody")
	wantErr(t, err, storage.ErrNotFound, "UserByUsername missing")

	// UpdateUser writes the profile fields only: not the username, the
	// password hash or the creation time.
	upd := &storage.User{
		ID:            "u-1",
		Username:      "mallory",
		Email:         "alice@example.org",
		EmailVerified: false,
		Name:          "Alice L.",
		Phone:         "",
		PhoneVerified: false,
		PasswordHash:  "not-written",
		Disabled:      true,
		CreatedAt:     at(time.Hour),
		UpdatedAt:     at(2 * time.Second),
	}
	must(t, s.UpdateUser(ctx, upd), "UpdateUser")
	want.Email, want.EmailVerified, want.Name = upd.Email, false, upd.Name
	want.Phone, want.PhoneVerified, want.Disabled = "", false, true
	want.UpdatedAt = upd.UpdatedAt
	got, err = s.UserByID(ctx, "u-1")
	must(t, err, "UserByID after update")
	checkSame(t, "after UpdateUser", got, &want)

	wantErr(t, s.UpdateUser(ctx, &storage.User{ID: "missing", UpdatedAt: base}),
		storage.ErrNotFound, "UpdateUser missing")

	must(t, s.SetPasswordHash(ctx, "u-1", "new-hash", at(3*time.Second)), "SetPasswordHash")
	want.PasswordHash, want.UpdatedAt = "new-hash", at(3*time.Second)
	got, err = s.UserByID(ctx, "u-1")
	must(t, err, "UserByID after SetPasswordHash")
	checkSame(t, "after SetPasswordHash", got, &want)

	// Clearing the hash (a user with no password) round-trips too.
	must(t, s.SetPasswordHash(ctx, "u-1", "", at(4*time.Second)), "SetPasswordHash empty")
	got, err = s.UserByID(ctx, "u-1")
	must(t, err, "UserByID after clearing password")
	if got.PasswordHash != "" {
		t.Errorf("PasswordHash = %q, want empty", got.PasswordHash)
	}

	wantErr(t, s.SetPasswordHash(ctx, "missing", "h", base), storage.ErrNotFound, "SetPasswordHash missing")

	must(t, s.DeleteUser(ctx, "u-1"), "DeleteUser")
	_, err = s.UserByID(ctx, "u-1")
	wantErr(t, err, storage.ErrNotFound, "UserByID after delete")
	_, err = s.UserByUsername(ctx, "alice")
	wantErr(t, err, storage.ErrNotFound, "UserByUsername after delete")
	wantErr(t, s.DeleteUser(ctx, "u-1"), storage.ErrNotFound, "DeleteUser missing")

	// The username is free again.
	must(t, s.CreateUser(ctx, newUser("u-2", "alice")), "CreateUser reusing a deleted username")

	// Zero times stay zero.
	z := &storage.User{ID: "u-3", Username: "zero"}
	must(t, s.CreateUser(ctx, z), "CreateUser with zero times")
	got, err = s.UserByID(ctx, "u-3")
	must(t, err, "UserByID zero times")
	if !got.CreatedAt.IsZero() || !got.UpdatedAt.IsZero() {
		t.Errorf("zero times came back as %v, %v", got.CreatedAt, got.UpdatedAt)
	}
}

func testUserConflict(t *testing.T, s storage.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, newUser("u-1", "bob")), "CreateUser")
	wantErr(t, s.CreateUser(ctx, newUser("u-2", "bob")), storage.ErrConflict, "same username")
	wantErr(t, s.CreateUser(ctx, newUser("u-3", "BoB")), storage.ErrConflict, "same username, other case")
	wantErr(t, s.CreateUser(ctx, newUser("u-1", "robert")), storage.ErrConflict, "same id")

	users, err := s.ListUsers(ctx, storage.UserQuery{})
	must(t, err, "ListUsers")
	if len(users) != 1 {
		t.Errorf("after conflicts: %d users, want 1", len(users))
	}
}

func usernames(users []*storage.User) []string {
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = u.Username
	}
	return names
}

func testListUsers(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, u := range []*storage.User{
		{ID: "1", Username: "carol", Email: "carol@wonder.land", Name: "Carol"},
		{ID: "2", Username: "Alice", Email: "alice@example.com", Name: "Alice Liddell"},
		{ID: "3", Username: "bob", Email: "bob@EXAMPLE.org", Name: "Bob Builder"},
		{ID: "4", Username: "dave_x", Email: "dave@x.test", Name: "Dave 100%"},
		{ID: "5", Username: "eve", Email: "eve@x.test", Name: "Eve"},
	} {
		must(t, s.CreateUser(ctx, u), "CreateUser "+u.Username)
	}

	for _, tc := range []struct {
		name string
		q    storage.UserQuery
		want []string
	}{
		{"all", storage.UserQuery{}, []string{"alice", "bob", "carol", "dave_x", "eve"}},
		{"limit", storage.UserQuery{Limit: 2}, []string{"alice", "bob"}},
		{"after", storage.UserQuery{After: "bob", Limit: 2}, []string{"carol", "dave_x"}},
		{"after last", storage.UserQuery{After: "eve"}, nil},
		{"search username", storage.UserQuery{Search: "AR"}, []string{"carol"}},
		{"search email", storage.UserQuery{Search: "example"}, []string{"alice", "bob"}},
		{"search name", storage.UserQuery{Search: "liddell"}, []string{"alice"}},
		{"search underscore is literal", storage.UserQuery{Search: "_"}, []string{"dave_x"}},
		{"search percent is literal", storage.UserQuery{Search: "%"}, []string{"dave_x"}},
		{"search backslash is literal", storage.UserQuery{Search: `\`}, nil},
		{"search no match", storage.UserQuery{Search: "zzz"}, nil},
		{"search with paging", storage.UserQuery{Search: "x.test", After: "dave_x", Limit: 5}, []string{"eve"}},
		{"search with limit", storage.UserQuery{Search: "e", Limit: 2}, []string{"alice", "bob"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users, err := s.ListUsers(ctx, tc.q)
			must(t, err, "ListUsers")
			if got := usernames(users); !slices.Equal(got, tc.want) {
				t.Errorf("ListUsers(%+v) = %q, want %q", tc.q, got, tc.want)
			}
		})
	}

	// Paging with the cursor visits every user once, in order.
	var all []string
	q := storage.UserQuery{Limit: 2}
	for range 10 {
		page, err := s.ListUsers(ctx, q)
		must(t, err, "ListUsers page")
		if len(page) == 0 {
			break
		}
		all = append(all, usernames(page)...)
		q.After = page[len(page)-1].Username
	}
	if want := []string{"alice", "bob", "carol", "dave_x", "eve"}; !slices.Equal(all, want) {
		t.Errorf("paged ListUsers = %q, want %q", all, want)
	}

	// Results carry the whole record.
	users, err := s.ListUsers(ctx, storage.UserQuery{Search: "liddell"})
	must(t, err, "ListUsers")
	if len(users) == 1 {
		checkSame(t, "listed user", users[0], &storage.User{
			ID: "2", Username: "alice", Email: "alice@example.com", Name: "Alice Liddell",
		})
	}
}

func testListUsersDefaultLimit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for i := range 101 {
		must(t, s.CreateUser(ctx, newUser(fmt.Sprintf("id-%03d", i), fmt.Sprintf("user%03d", i))), "CreateUser")
	}
	users, err := s.ListUsers(ctx, storage.UserQuery{})
	must(t, err, "ListUsers")
	if len(users) != 100 {
		t.Fatalf("ListUsers with Limit 0 returned %d users, want 100", len(users))
	}
	if users[99].Username != "user099" {
		t.Errorf("100th user = %q, want user099", users[99].Username)
	}
}

func testClientCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := &storage.Client{
		ID:                     "portal",
		Name:                   "Client Portal",
		SecretHash:             "$argon2id$secret",
		Public:                 false,
		RedirectURIs:           []string{"https://portal.example.com/cb", "http://localhost:8080/cb"},
		PostLogoutRedirectURIs: []string{"https://portal.example.com/bye"},
		GrantTypes:             []string{"authorization_code", "refresh_token", "client_credentials"},
		Scopes:                 []string{"idp:admin"},
		FirstParty:             true,
		RequireMFA:             true,
		Source:                 storage.ClientSourceConfig,
		CreatedAt:              base,
		UpdatedAt:              at(time.Second),
	}
	must(t, s.CreateClient(ctx, c), "CreateClient")
	got, err := s.ClientByID(ctx, "portal")
	must(t, err, "ClientByID")
	checkSame(t, "ClientByID", got, c)

	wantErr(t, s.CreateClient(ctx, newClient("portal")), storage.ErrConflict, "CreateClient duplicate id")
	_, err = s.ClientByID(ctx, "missing")
	wantErr(t, err, storage.ErrNotFound, "ClientByID missing")

	// A public client with no lists at all.
	pub := &storage.Client{ID: "spa", Name: "SPA", Public: true, Source: storage.ClientSourceCLI, CreatedAt: base}
	must(t, s.CreateClient(ctx, pub), "CreateClient public")
	got, err = s.ClientByID(ctx, "spa")
	must(t, err, "ClientByID public")
	checkSame(t, "public client", got, pub)

	// UpdateClient replaces everything but ID and CreatedAt.
	upd := &storage.Client{
		ID:                     "portal",
		Name:                   "Portal v2",
		SecretHash:             "",
		Public:                 true,
		RedirectURIs:           []string{"https://v2.example.com/cb"},
		PostLogoutRedirectURIs: nil,
		GrantTypes:             []string{"authorization_code"},
		Scopes:                 nil,
		FirstParty:             false,
		RequireMFA:             false,
		Source:                 storage.ClientSourceAPI,
		CreatedAt:              at(time.Hour),
		UpdatedAt:              at(2 * time.Second),
	}
	must(t, s.UpdateClient(ctx, upd), "UpdateClient")
	want := *upd
	want.CreatedAt = c.CreatedAt
	got, err = s.ClientByID(ctx, "portal")
	must(t, err, "ClientByID after update")
	checkSame(t, "after UpdateClient", got, &want)

	wantErr(t, s.UpdateClient(ctx, newClient("missing")), storage.ErrNotFound, "UpdateClient missing")

	must(t, s.DeleteClient(ctx, "portal"), "DeleteClient")
	_, err = s.ClientByID(ctx, "portal")
	wantErr(t, err, storage.ErrNotFound, "ClientByID after delete")
	wantErr(t, s.DeleteClient(ctx, "portal"), storage.ErrNotFound, "DeleteClient missing")
}

func testListClients(t *testing.T, s storage.Store) {
	ctx := t.Context()
	clients, err := s.ListClients(ctx)
	must(t, err, "ListClients empty")
	if len(clients) != 0 {
		t.Fatalf("ListClients on an empty store returned %d clients", len(clients))
	}
	// Ordered by id, byte-wise: upper case sorts before lower case.
	for _, id := range []string{"beta", "alpha", "Zeta", "gamma"} {
		must(t, s.CreateClient(ctx, newClient(id)), "CreateClient "+id)
	}
	clients, err = s.ListClients(ctx)
	must(t, err, "ListClients")
	var ids []string
	for _, c := range clients {
		ids = append(ids, c.ID)
	}
	if want := []string{"Zeta", "alpha", "beta", "gamma"}; !slices.Equal(ids, want) {
		t.Errorf("ListClients ids = %q, want %q", ids, want)
	}
	if len(clients) > 0 {
		checkSame(t, "listed client", clients[0], newClient("Zeta"))
	}
}

func keyIDs(keys []*storage.SigningKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func testKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	keys, err := s.ListKeys(ctx)
	must(t, err, "ListKeys empty")
	if len(keys) != 0 {
		t.Fatalf("ListKeys on an empty store returned %d keys", len(keys))
	}

	newKey := func(id string, created time.Time) *storage.SigningKey {
		return &storage.SigningKey{
			ID:         id,
			Algorithm:  "RS256",
			PrivateKey: []byte("sealed-private-" + id + "\x00\xff"),
			PublicKey:  []byte("public-" + id + "\x00\x01"),
			State:      storage.KeyActive,
			CreatedAt:  created,
		}
	}
	k1 := newKey("k1", base)
	must(t, s.ActivateKey(ctx, k1, at(time.Hour)), "ActivateKey k1")
	keys, err = s.ListKeys(ctx)
	must(t, err, "ListKeys")
	if len(keys) != 1 {
		t.Fatalf("ListKeys = %q, want [k1]", keyIDs(keys))
	}
	checkSame(t, "k1", keys[0], k1)

	// Activating k2 retires k1 until the given time.
	k2 := newKey("k2", at(time.Minute))
	k2.Algorithm = "ES256"
	must(t, s.ActivateKey(ctx, k2, at(2*time.Hour)), "ActivateKey k2")
	// Activating k3 retires k2 but leaves the already retired k1 alone.
	k3 := newKey("k3", at(2*time.Minute))
	must(t, s.ActivateKey(ctx, k3, at(3*time.Hour)), "ActivateKey k3")

	keys, err = s.ListKeys(ctx)
	must(t, err, "ListKeys")
	if got, want := keyIDs(keys), []string{"k3", "k2", "k1"}; !slices.Equal(got, want) {
		t.Fatalf("ListKeys = %q, want %q (newest first)", got, want)
	}
	checkSame(t, "active k3", keys[0], k3)
	wantK2 := *k2
	wantK2.State, wantK2.ExpiresAt = storage.KeyRetired, at(3*time.Hour)
	checkSame(t, "retired k2", keys[1], &wantK2)
	wantK1 := *k1
	wantK1.State, wantK1.ExpiresAt = storage.KeyRetired, at(2*time.Hour)
	checkSame(t, "retired k1", keys[2], &wantK1)

	// A duplicate id fails as a whole: k3 stays active.
	wantErr(t, s.ActivateKey(ctx, newKey("k2", at(3*time.Minute)), at(4*time.Hour)),
		storage.ErrConflict, "ActivateKey duplicate id")
	keys, err = s.ListKeys(ctx)
	must(t, err, "ListKeys after failed activation")
	if len(keys) != 3 || keys[0].ID != "k3" || keys[0].State != storage.KeyActive || !keys[0].ExpiresAt.IsZero() {
		t.Fatalf("after a failed ActivateKey the active key changed: %+v", keys[0])
	}

	// DeleteExpiredKeys removes retired keys that expired strictly before
	// now, never the active one.
	n, err := s.DeleteExpiredKeys(ctx, at(2*time.Hour))
	must(t, err, "DeleteExpiredKeys at k1's expiry")
	if n != 0 {
		t.Errorf("DeleteExpiredKeys at the exact expiry deleted %d keys, want 0", n)
	}
	n, err = s.DeleteExpiredKeys(ctx, at(2*time.Hour+time.Minute))
	must(t, err, "DeleteExpiredKeys")
	if n != 1 {
		t.Errorf("DeleteExpiredKeys deleted %d keys, want 1", n)
	}
	n, err = s.DeleteExpiredKeys(ctx, at(1000*time.Hour))
	must(t, err, "DeleteExpiredKeys far future")
	if n != 1 {
		t.Errorf("DeleteExpiredKeys far in the future deleted %d keys, want 1 (k2)", n)
	}
	keys, err = s.ListKeys(ctx)
	must(t, err, "ListKeys after cleanup")
	if got := keyIDs(keys); !slices.Equal(got, []string{"k3"}) {
		t.Errorf("after cleanup ListKeys = %q, want [k3]", got)
	}
}

// testKeysConcurrentActivate activates keys from several goroutines at once
// (two replicas rotating together): every activation succeeds, and exactly
// one key ends up active.
func testKeysConcurrentActivate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	must(t, s.ActivateKey(ctx, &storage.SigningKey{ID: "k0", Algorithm: "RS256",
		PrivateKey: []byte("p"), PublicKey: []byte("P"), State: storage.KeyActive, CreatedAt: base},
		at(time.Hour)), "ActivateKey k0")

	const n = 4
	errs := concurrently(n, func(i int) error {
		k := &storage.SigningKey{ID: fmt.Sprintf("k%d", i+1), Algorithm: "RS256",
			PrivateKey: []byte("p"), PublicKey: []byte("P"), State: storage.KeyActive,
			CreatedAt: at(time.Duration(i+1) * time.Second)}
		return s.ActivateKey(ctx, k, at(time.Hour))
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent ActivateKey k%d: %v", i+1, err)
		}
	}
	keys, err := s.ListKeys(ctx)
	must(t, err, "ListKeys")
	active := 0
	for _, k := range keys {
		if k.State == storage.KeyActive {
			active++
		}
	}
	if len(keys) != n+1 || active != 1 {
		t.Errorf("after concurrent activations: %d keys, %d active; want %d keys, 1 active", len(keys), active, n+1)
	}
}

func testRefreshTokenRotate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, []string{"c1"})

	t1 := newToken("h1", "f1", "u1", "c1", at(24*time.Hour))
	t1.ACR = "urn:mace:incommon:iap:silver"
	t1.AMR = []string{"pwd", "otp"}
	must(t, s.CreateRefreshToken(ctx, t1), "CreateRefreshToken")
	checkSame(t, "RefreshTokenByHash", tokenByHash(t, s, "h1"), t1)

	wantErr(t, s.CreateRefreshToken(ctx, newToken("h1", "f9", "u1", "c1", at(time.Hour))),
		storage.ErrConflict, "CreateRefreshToken duplicate hash")
	_, err := s.RefreshTokenByHash(ctx, "missing")
	wantErr(t, err, storage.ErrNotFound, "RefreshTokenByHash missing")

	// Rotation marks the old token used and stores the next.
	now := at(time.Minute)
	t2 := newToken("h2", "f1", "u1", "c1", at(25*time.Hour))
	t2.CreatedAt = now
	must(t, s.RotateRefreshToken(ctx, "h1", t2, now), "RotateRefreshToken")
	old := tokenByHash(t, s, "h1")
	sameTime(t, "old UsedAt", old.UsedAt, now)
	if !old.RevokedAt.IsZero() {
		t.Errorf("rotation revoked the old token: RevokedAt = %v", old.RevokedAt)
	}
	checkSame(t, "next token", tokenByHash(t, s, "h2"), t2)

	// Rotating it again fails and stores nothing.
	wantErr(t, s.RotateRefreshToken(ctx, "h1", newToken("h3", "f1", "u1", "c1", at(time.Hour)), at(2*time.Minute)),
		storage.ErrTokenUsed, "second rotation")
	_, err = s.RefreshTokenByHash(ctx, "h3")
	wantErr(t, err, storage.ErrNotFound, "token of a failed rotation")
	sameTime(t, "old UsedAt after second rotation", tokenByHash(t, s, "h1").UsedAt, now)

	// A token that does not exist.
	wantErr(t, s.RotateRefreshToken(ctx, "missing", newToken("h4", "f1", "u1", "c1", at(time.Hour)), now),
		storage.ErrNotFound, "rotation of a missing token")
	_, err = s.RefreshTokenByHash(ctx, "h4")
	wantErr(t, err, storage.ErrNotFound, "token of a rotation of a missing token")

	// A revoked token cannot be rotated.
	must(t, s.RevokeRefreshTokenFamily(ctx, "f1", at(3*time.Minute)), "RevokeRefreshTokenFamily")
	wantErr(t, s.RotateRefreshToken(ctx, "h2", newToken("h5", "f1", "u1", "c1", at(time.Hour)), at(4*time.Minute)),
		storage.ErrTokenUsed, "rotation of a revoked token")
	_, err = s.RefreshTokenByHash(ctx, "h5")
	wantErr(t, err, storage.ErrNotFound, "token of a rotation of a revoked token")
}

func testRefreshTokenConcurrentRotate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, []string{"c1"})
	must(t, s.CreateRefreshToken(ctx, newToken("h0", "f1", "u1", "c1", at(time.Hour))), "CreateRefreshToken")

	const n = 8
	winner := oneWinner(t, "rotation", storage.ErrTokenUsed, concurrently(n, func(i int) error {
		next := newToken(fmt.Sprintf("next-%d", i), "f1", "u1", "c1", at(2*time.Hour))
		return s.RotateRefreshToken(ctx, "h0", next, at(time.Duration(i+1)*time.Second))
	}))
	for i := range n {
		_, err := s.RefreshTokenByHash(ctx, fmt.Sprintf("next-%d", i))
		if i == winner {
			must(t, err, "winner's next token")
		} else {
			wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("loser %d's next token", i))
		}
	}
	sameTime(t, "UsedAt", tokenByHash(t, s, "h0").UsedAt, at(time.Duration(winner+1)*time.Second))
}

func testRefreshTokenRevoke(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2"}, []string{"c1", "c2"})
	for _, tok := range []*storage.RefreshToken{
		newToken("a1", "fa", "u1", "c1", at(time.Hour)), // family fa
		newToken("a2", "fa", "u1", "c1", at(time.Hour)),
		newToken("b1", "fb", "u1", "c1", at(time.Hour)), // another login, same user and client
		newToken("c1", "fc", "u1", "c2", at(time.Hour)), // same user, other client
		newToken("d1", "fd", "u2", "c1", at(time.Hour)), // other user
		newToken("d2", "fe", "u2", "c2", at(time.Hour)),
	} {
		must(t, s.CreateRefreshToken(ctx, tok), "CreateRefreshToken "+tok.TokenHash)
	}
	revokedAt := func(hash string) time.Time { return tokenByHash(t, s, hash).RevokedAt }
	checkRevoked := func(step string, want map[string]time.Time) {
		t.Helper()
		for _, h := range []string{"a1", "a2", "b1", "c1", "d1", "d2"} {
			got, w := revokedAt(h), want[h]
			if !got.Equal(w.Truncate(time.Millisecond)) {
				t.Errorf("%s: %s RevokedAt = %v, want %v", step, h, got, w)
			}
		}
	}

	t1, t2, t3 := at(time.Minute), at(2*time.Minute), at(3*time.Minute)
	must(t, s.RevokeRefreshTokenFamily(ctx, "fa", t1), "RevokeRefreshTokenFamily")
	checkRevoked("family revoked", map[string]time.Time{"a1": t1, "a2": t1})

	must(t, s.RevokeRefreshTokenFamily(ctx, "no-such-family", t1), "RevokeRefreshTokenFamily of an unknown family")

	must(t, s.RevokeUserRefreshTokens(ctx, "u1", "c2", t2), "RevokeUserRefreshTokens for one client")
	checkRevoked("user's tokens for c2 revoked", map[string]time.Time{"a1": t1, "a2": t1, "c1": t2})

	must(t, s.RevokeUserRefreshTokens(ctx, "u2", "", t3), "RevokeUserRefreshTokens for every client")
	checkRevoked("u2's tokens revoked", map[string]time.Time{"a1": t1, "a2": t1, "c1": t2, "d1": t3, "d2": t3})

	must(t, s.RevokeUserRefreshTokens(ctx, "u1", "", t3), "RevokeUserRefreshTokens u1")
	if got := revokedAt("b1"); got.IsZero() {
		t.Error("b1 not revoked with the rest of u1's tokens")
	}
}

func testRefreshTokenExpiry(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, []string{"c1"})
	for _, tok := range []*storage.RefreshToken{
		newToken("e1", "f1", "u1", "c1", at(time.Hour)),
		newToken("e2", "f2", "u1", "c1", at(2*time.Hour)),
		newToken("e3", "f3", "u1", "c1", at(3*time.Hour)),
	} {
		must(t, s.CreateRefreshToken(ctx, tok), "CreateRefreshToken "+tok.TokenHash)
	}
	n, err := s.DeleteExpiredRefreshTokens(ctx, at(time.Hour))
	must(t, err, "DeleteExpiredRefreshTokens at e1's expiry")
	if n != 0 {
		t.Errorf("deleted %d tokens at the exact expiry, want 0", n)
	}
	n, err = s.DeleteExpiredRefreshTokens(ctx, at(2*time.Hour+time.Second))
	must(t, err, "DeleteExpiredRefreshTokens")
	if n != 2 {
		t.Errorf("deleted %d tokens, want 2", n)
	}
	for _, h := range []string{"e1", "e2"} {
		_, err := s.RefreshTokenByHash(ctx, h)
		wantErr(t, err, storage.ErrNotFound, "expired token "+h)
	}
	tokenByHash(t, s, "e3")
}

func testConsents(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2"}, []string{"c1", "c2"})
	scopes := func(userID, clientID string) []string {
		t.Helper()
		got, err := s.ConsentedScopes(ctx, userID, clientID)
		must(t, err, "ConsentedScopes")
		return got
	}

	if got := scopes("u1", "c1"); len(got) != 0 {
		t.Errorf("ConsentedScopes before any grant = %q, want none", got)
	}

	must(t, s.GrantConsent(ctx, "u1", "c1", []string{"openid", "profile"}, base), "GrantConsent")
	must(t, s.GrantConsent(ctx, "u1", "c2", []string{"openid"}, base), "GrantConsent c2")
	must(t, s.GrantConsent(ctx, "u2", "c1", []string{"openid", "email"}, base), "GrantConsent u2")
	if got := scopes("u1", "c1"); !slices.Equal(got, []string{"openid", "profile"}) {
		t.Errorf("ConsentedScopes = %q", got)
	}

	// A new grant replaces the old one rather than adding to it.
	must(t, s.GrantConsent(ctx, "u1", "c1", []string{"openid", "email"}, at(time.Minute)), "GrantConsent again")
	if got := scopes("u1", "c1"); !slices.Equal(got, []string{"openid", "email"}) {
		t.Errorf("ConsentedScopes after a new grant = %q, want [openid email]", got)
	}
	if got := scopes("u1", "c2"); !slices.Equal(got, []string{"openid"}) {
		t.Errorf("other client's consent changed: %q", got)
	}

	must(t, s.RevokeConsent(ctx, "u1", "c1"), "RevokeConsent")
	if got := scopes("u1", "c1"); len(got) != 0 {
		t.Errorf("ConsentedScopes after revoke = %q, want none", got)
	}
	must(t, s.RevokeConsent(ctx, "u1", "c1"), "RevokeConsent of a missing consent")
	if got := scopes("u2", "c1"); !slices.Equal(got, []string{"openid", "email"}) {
		t.Errorf("other user's consent changed: %q", got)
	}
}

func testRevokedAccessTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	isRevoked := func(id string) bool {
		t.Helper()
		ok, err := s.IsAccessTokenRevoked(ctx, id)
		must(t, err, "IsAccessTokenRevoked "+id)
		return ok
	}
	if isRevoked("jti-1") {
		t.Error("a token is revoked before any revocation")
	}
	must(t, s.RevokeAccessToken(ctx, "jti-1", at(time.Hour)), "RevokeAccessToken")
	must(t, s.RevokeAccessToken(ctx, "jti-2", at(2*time.Hour)), "RevokeAccessToken 2")
	must(t, s.RevokeAccessToken(ctx, "jti-1", at(time.Hour)), "RevokeAccessToken again")
	if !isRevoked("jti-1") || !isRevoked("jti-2") {
		t.Error("revoked tokens are not reported revoked")
	}
	if isRevoked("jti-3") {
		t.Error("an unrevoked token is reported revoked")
	}

	n, err := s.DeleteExpiredRevocations(ctx, at(time.Hour+time.Second))
	must(t, err, "DeleteExpiredRevocations")
	if n != 1 {
		t.Errorf("DeleteExpiredRevocations deleted %d, want 1", n)
	}
	if isRevoked("jti-1") {
		t.Error("an expired revocation is still listed")
	}
	if !isRevoked("jti-2") {
		t.Error("a live revocation was deleted")
	}
}

func testAudit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	events := []*storage.AuditEvent{
		{Time: at(0), Type: "login.failed", Actor: "user", UserID: "u1", Username: "alice",
			ClientID: "c1", IP: "192.0.2.1", UserAgent: "curl/8", Result: "failure",
			Details: map[string]string{"reason": "bad_password"}},
		{Time: at(time.Minute), Type: "user.created", Actor: "operator", UserID: "u2", Username: "bob",
			Result: "success"},
		{Time: at(2 * time.Minute), Type: "login.succeeded", Actor: "user", UserID: "u1", Username: "alice",
			ClientID: "c1", IP: "2001:db8::1", UserAgent: "Firefox", Result: "success",
			Details: map[string]string{"amr": "pwd otp", "note": `quotes " and \ backslash`}},
	}
	var lastID int64
	for i, e := range events {
		must(t, s.AppendAudit(ctx, e), "AppendAudit")
		if e.ID == 0 || e.ID <= lastID {
			t.Errorf("event %d got ID %d after %d; want increasing non-zero IDs", i, e.ID, lastID)
		}
		lastID = e.ID
	}
	e0, e1, e2 := events[0], events[1], events[2]

	for _, tc := range []struct {
		name string
		q    storage.AuditQuery
		want []*storage.AuditEvent
	}{
		{"all newest first", storage.AuditQuery{}, []*storage.AuditEvent{e2, e1, e0}},
		{"user", storage.AuditQuery{UserID: "u1"}, []*storage.AuditEvent{e2, e0}},
		{"since is inclusive", storage.AuditQuery{Since: at(time.Minute)}, []*storage.AuditEvent{e2, e1}},
		{"user and since", storage.AuditQuery{UserID: "u1", Since: at(time.Second)}, []*storage.AuditEvent{e2}},
		{"limit", storage.AuditQuery{Limit: 2}, []*storage.AuditEvent{e2, e1}},
		{"unknown user", storage.AuditQuery{UserID: "nobody"}, nil},
		{"type", storage.AuditQuery{Type: "login.failed"}, []*storage.AuditEvent{e0}},
		{"user and type", storage.AuditQuery{UserID: "u1", Type: "login.succeeded"}, []*storage.AuditEvent{e2}},
		{"type and since", storage.AuditQuery{Type: "user.created", Since: at(2 * time.Minute)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tc.q)
			must(t, err, "ListAudit")
			if len(got) != len(tc.want) {
				t.Fatalf("ListAudit(%+v) returned %d events, want %d", tc.q, len(got), len(tc.want))
			}
			for i := range got {
				checkSame(t, fmt.Sprintf("event %d", i), got[i], tc.want[i])
			}
		})
	}
}

func testAuditDefaultLimit(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for i := range 101 {
		must(t, s.AppendAudit(ctx, &storage.AuditEvent{Time: at(time.Duration(i) * time.Second),
			Type: "login.succeeded", Actor: "user", Result: "success"}), "AppendAudit")
	}
	got, err := s.ListAudit(ctx, storage.AuditQuery{})
	must(t, err, "ListAudit")
	if len(got) != 100 {
		t.Fatalf("ListAudit with Limit 0 returned %d events, want 100", len(got))
	}
	sameTime(t, "newest event", got[0].Time, at(100*time.Second))
}

func testDeleteAuditBefore(t *testing.T, s storage.Store) {
	ctx := t.Context()
	n, err := s.DeleteAuditBefore(ctx, at(time.Hour))
	must(t, err, "DeleteAuditBefore on an empty log")
	if n != 0 {
		t.Errorf("DeleteAuditBefore on an empty log deleted %d, want 0", n)
	}

	events := []*storage.AuditEvent{
		{Time: at(-48 * time.Hour), Type: "login.succeeded", Actor: "user", UserID: "u1", Result: "success"},
		{Time: at(-time.Hour), Type: "user.created", Actor: "operator", UserID: "u2", Result: "success"},
		{Time: at(-time.Millisecond), Type: "login.failed", Actor: "user", Result: "failure"},
		{Time: at(0), Type: "login.succeeded", Actor: "user", UserID: "u1", Result: "success"},
		{Time: at(time.Hour), Type: "mfa.totp_enabled", Actor: "user", UserID: "u2", Result: "success"},
	}
	for _, e := range events {
		must(t, s.AppendAudit(ctx, e), "AppendAudit")
	}
	remaining := func(want ...*storage.AuditEvent) {
		t.Helper()
		got, err := s.ListAudit(ctx, storage.AuditQuery{})
		must(t, err, "ListAudit")
		if len(got) != len(want) {
			t.Fatalf("%d events left, want %d", len(got), len(want))
		}
		for i := range got { // newest first
			checkSame(t, fmt.Sprintf("event %d left", i), got[i], want[len(want)-1-i])
		}
	}

	// The cut-off is exclusive: the event at base itself stays, the one a
	// millisecond before goes, whoever's events they are.
	n, err = s.DeleteAuditBefore(ctx, base)
	must(t, err, "DeleteAuditBefore")
	if n != 3 {
		t.Errorf("DeleteAuditBefore(base) deleted %d events, want 3", n)
	}
	remaining(events[3], events[4])

	n, err = s.DeleteAuditBefore(ctx, base)
	must(t, err, "DeleteAuditBefore again")
	if n != 0 {
		t.Errorf("DeleteAuditBefore a second time deleted %d, want 0", n)
	}
	remaining(events[3], events[4])

	// New events get new IDs after a deletion: the log stays in order.
	last := &storage.AuditEvent{Time: at(2 * time.Hour), Type: "login.failed", Actor: "user", UserID: "u1", Result: "failure"}
	must(t, s.AppendAudit(ctx, last), "AppendAudit after DeleteAuditBefore")
	if last.ID <= events[4].ID {
		t.Errorf("event after a deletion got ID %d, not after %d", last.ID, events[4].ID)
	}

	n, err = s.DeleteAuditBefore(ctx, at(24*time.Hour))
	must(t, err, "DeleteAuditBefore everything")
	if n != 3 {
		t.Errorf("DeleteAuditBefore a day later deleted %d events, want 3", n)
	}
	remaining()
}

func testDeleteUserCascades(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1", "u2"}, []string{"c1"})
	must(t, s.CreateRefreshToken(ctx, newToken("t1", "f1", "u1", "c1", at(time.Hour))), "token u1")
	must(t, s.CreateRefreshToken(ctx, newToken("t2", "f2", "u2", "c1", at(time.Hour))), "token u2")
	must(t, s.GrantConsent(ctx, "u1", "c1", []string{"openid"}, base), "consent u1")
	must(t, s.GrantConsent(ctx, "u2", "c1", []string{"openid"}, base), "consent u2")

	must(t, s.DeleteUser(ctx, "u1"), "DeleteUser")
	_, err := s.RefreshTokenByHash(ctx, "t1")
	wantErr(t, err, storage.ErrNotFound, "deleted user's refresh token")
	got, err := s.ConsentedScopes(ctx, "u1", "c1")
	must(t, err, "ConsentedScopes of deleted user")
	if len(got) != 0 {
		t.Errorf("deleted user's consent survived: %q", got)
	}

	tokenByHash(t, s, "t2")
	got, err = s.ConsentedScopes(ctx, "u2", "c1")
	must(t, err, "ConsentedScopes u2")
	if len(got) == 0 {
		t.Error("another user's consent was deleted")
	}
	_, err = s.ClientByID(ctx, "c1")
	must(t, err, "the client survives DeleteUser")
}

func testDeleteClientCascades(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seed(t, s, []string{"u1"}, []string{"c1", "c2"})
	must(t, s.CreateRefreshToken(ctx, newToken("t1", "f1", "u1", "c1", at(time.Hour))), "token c1")
	must(t, s.CreateRefreshToken(ctx, newToken("t2", "f2", "u1", "c2", at(time.Hour))), "token c2")
	must(t, s.GrantConsent(ctx, "u1", "c1", []string{"openid"}, base), "consent c1")
	must(t, s.GrantConsent(ctx, "u1", "c2", []string{"openid"}, base), "consent c2")

	must(t, s.DeleteClient(ctx, "c1"), "DeleteClient")
	_, err := s.RefreshTokenByHash(ctx, "t1")
	wantErr(t, err, storage.ErrNotFound, "deleted client's refresh token")
	got, err := s.ConsentedScopes(ctx, "u1", "c1")
	must(t, err, "ConsentedScopes of deleted client")
	if len(got) != 0 {
		t.Errorf("deleted client's consent survived: %q", got)
	}

	tokenByHash(t, s, "t2")
	got, err = s.ConsentedScopes(ctx, "u1", "c2")
	must(t, err, "ConsentedScopes c2")
	if len(got) == 0 {
		t.Error("another client's consent was deleted")
	}
	_, err = s.UserByID(ctx, "u1")
	must(t, err, "the user survives DeleteClient")
}

// concurrently starts call(0) … call(n-1) at the same moment, each in its
// own goroutine, and returns their errors by index.
func concurrently(n int, call func(i int) error) []error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = call(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one of concurrent calls succeeded and that
// every other failed with loserErr; it returns the winner's index.
func oneWinner(t *testing.T, what string, loserErr error, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("%s %d and %d both succeeded", what, winner, i)
			}
			winner = i
		case !errors.Is(err, loserErr):
			t.Errorf("%s %d: got %v, want %v", what, i, err, loserErr)
		}
	}
	if winner < 0 {
		t.Fatalf("no %s succeeded", what)
	}
	return winner
}
