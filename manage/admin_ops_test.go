package manage_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
)

func ptr[T any](v T) *T { return &v }

func TestUpdateUser(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com", Name: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	// An address the user typed on the account pages is not yet confirmed.
	u.EmailVerified = false
	if err := svc.Store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	actor := manage.ClientActor("portal", "192.0.2.1", "curl/8")

	got, err := svc.UpdateUser(ctx, actor, "ALICE", manage.UserChanges{Email: ptr(" alice@new.example.com "), Name: ptr("Alice Liddell")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "alice@new.example.com" || !got.EmailVerified || got.Name != "Alice Liddell" {
		t.Errorf("after update: %+v", got)
	}
	stored, err := svc.GetUser(ctx, "alice")
	if err != nil || stored.Email != "alice@new.example.com" || !stored.EmailVerified || stored.Name != "Alice Liddell" || stored.Phone != "" {
		t.Errorf("stored: %+v, %v", stored, err)
	}
	evs := events(t, svc)
	last := evs[len(evs)-1]
	if last.Type != "user.updated" || last.Actor != "client:portal" || last.IP != "192.0.2.1" || last.Details["changed"] != "email name" {
		t.Errorf("event %+v", last)
	}

	// Only the name; the same values again write nothing.
	if _, err := svc.UpdateUser(ctx, actor, "alice", manage.UserChanges{Name: ptr("Alice L.")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateUser(ctx, actor, "alice", manage.UserChanges{Name: ptr("Alice L."), Email: ptr("alice@new.example.com")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateUser(ctx, actor, "alice", manage.UserChanges{}); err != nil {
		t.Fatal(err)
	}
	if got := eventTypes(t, svc); strings.Join(got, ",") != "user.created,user.updated,user.updated" {
		t.Errorf("events = %v", got)
	}

	// Every bad value at once, and nothing written.
	_, err = svc.UpdateUser(ctx, actor, "alice", manage.UserChanges{Email: ptr("not an address"), Name: ptr("tab\there")})
	probs := manage.Problems(err)
	if len(probs) != 2 || probs[0].Field != "email" || probs[1].Field != "name" || !errors.Is(err, manage.ErrInvalid) {
		t.Errorf("bad values: %v (%+v)", err, probs)
	}
	if _, err := svc.UpdateUser(ctx, actor, "alice", manage.UserChanges{Email: ptr("")}); len(manage.Problems(err)) != 1 {
		t.Errorf("an empty e-mail address: %v", err)
	}
	if _, err := svc.UpdateUser(ctx, actor, "nobody", manage.UserChanges{Name: ptr("x")}); !errors.Is(err, storage.ErrNotFound) || err.Error() != "no user named nobody" {
		t.Errorf("unknown user: %v", err)
	}
}

func TestDeleteUser(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "bob", Email: "bob@example.com", Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateClient(ctx, manage.Operator, manage.NewClient{ID: "portal", RedirectURIs: []string{"https://portal.example.com/cb"}}); err != nil {
		t.Fatal(err)
	}
	rt := &storage.RefreshToken{TokenHash: "h1", FamilyID: "f1", UserID: u.ID, ClientID: "portal", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := svc.Store.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	gone, err := svc.DeleteUser(ctx, manage.ClientActor("portal", "", ""), "Bob")
	if err != nil || gone.ID != u.ID {
		t.Fatalf("DeleteUser: %+v, %v", gone, err)
	}
	if _, err := svc.GetUser(ctx, "bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if _, err := svc.Store.RefreshTokenByHash(ctx, "h1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the refresh token of a deleted user: %v", err)
	}
	// The audit log outlives the account.
	evs, err := svc.Store.ListAudit(ctx, storage.AuditQuery{UserID: u.ID})
	if err != nil || len(evs) != 2 || evs[0].Type != "user.deleted" || evs[0].Actor != "client:portal" || evs[1].Type != "user.created" {
		t.Errorf("bob's events after delete: %+v, %v", evs, err)
	}
	if _, err := svc.DeleteUser(ctx, manage.Operator, "bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleting twice: %v", err)
	}
}

func TestUpdateClient(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	if _, _, err := svc.CreateClient(ctx, manage.Operator, manage.NewClient{ID: "portal", Name: "Portal",
		RedirectURIs: []string{"https://portal.example.com/cb"}, Source: storage.ClientSourceAPI}); err != nil {
		t.Fatal(err)
	}
	before, err := svc.GetClient(ctx, "portal")
	if err != nil {
		t.Fatal(err)
	}
	actor := manage.ClientActor("admin", "", "")

	got, err := svc.UpdateClient(ctx, actor, "portal", manage.ClientChanges{
		Name:                   ptr(" Team Portal "),
		RedirectURIs:           ptr([]string{"https://portal.example.com/cb2", "https://portal.example.com/cb2", " "}),
		PostLogoutRedirectURIs: ptr([]string{"https://portal.example.com/"}),
		FirstParty:             ptr(true),
		RequireMFA:             ptr(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := svc.GetClient(ctx, "portal")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*storage.Client{got, stored} {
		if c.Name != "Team Portal" || strings.Join(c.RedirectURIs, " ") != "https://portal.example.com/cb2" ||
			strings.Join(c.PostLogoutRedirectURIs, " ") != "https://portal.example.com/" || !c.FirstParty || !c.RequireMFA ||
			c.SecretHash != before.SecretHash || c.Source != storage.ClientSourceAPI || !c.CreatedAt.Equal(before.CreatedAt) {
			t.Errorf("after update: %+v", c)
		}
	}
	// Nothing changed: no event.
	if _, err := svc.UpdateClient(ctx, actor, "portal", manage.ClientChanges{FirstParty: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if got := eventTypes(t, svc); strings.Join(got, ",") != "client.created,client.updated" {
		t.Errorf("events = %v", got)
	}

	// The rules of CreateClient, all at once; nothing written.
	_, err = svc.UpdateClient(ctx, actor, "portal", manage.ClientChanges{
		RedirectURIs:           ptr([]string{}),
		PostLogoutRedirectURIs: ptr([]string{"http://evil.example/"}),
		Name:                   ptr("bad\nname"),
	})
	fields := map[string]bool{}
	for _, p := range manage.Problems(err) {
		fields[p.Field] = true
	}
	if !fields["redirect_uris"] || !fields["post_logout_redirect_uris"] || !fields["name"] || fields["secret"] {
		t.Errorf("bad settings: %v (fields %v)", err, fields)
	}
	if c, _ := svc.GetClient(ctx, "portal"); len(c.RedirectURIs) != 1 {
		t.Errorf("a refused update was written: %+v", c)
	}

	// A client_credentials client needs no redirect URI.
	if _, _, err := svc.CreateClient(ctx, manage.Operator, manage.NewClient{ID: "backend", Grants: []string{"client_credentials"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateClient(ctx, actor, "backend", manage.ClientChanges{RedirectURIs: ptr([]string{})}); err != nil {
		t.Errorf("client_credentials client without redirect URIs: %v", err)
	}

	if _, err := svc.UpdateClient(ctx, actor, "nope", manage.ClientChanges{}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown client: %v", err)
	}
	declareClient(t, svc)
	_, err = svc.UpdateClient(ctx, actor, "declared", manage.ClientChanges{Name: ptr("x")})
	if !errors.Is(err, manage.ErrDeclaredInConfig) || !strings.Contains(err.Error(), "configuration file") {
		t.Errorf("a config client: %v", err)
	}
}

// declareClient stores a client of the configuration file, "declared".
func declareClient(t *testing.T, svc *manage.Service) {
	t.Helper()
	err := svc.SyncConfigClients(context.Background(), []config.ClientConfig{
		{ID: "declared", Secret: strings.Repeat("d", 40), RedirectURIs: []string{"https://declared.example.com/cb"}}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRotateClientSecret(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	_, oldSecret, err := svc.CreateClient(ctx, manage.Operator, manage.NewClient{ID: "backend", Grants: []string{"client_credentials"}})
	if err != nil {
		t.Fatal(err)
	}
	c, newSecret, err := svc.RotateClientSecret(ctx, manage.ClientActor("admin", "", ""), "backend")
	if err != nil {
		t.Fatal(err)
	}
	if newSecret == "" || newSecret == oldSecret || len(newSecret) < config.MinClientSecretLength {
		t.Fatalf("new secret %q (old %q)", newSecret, oldSecret)
	}
	stored, err := svc.GetClient(ctx, "backend")
	if err != nil {
		t.Fatal(err)
	}
	if stored.SecretHash != c.SecretHash || !secret.CheckClientSecret(stored.SecretHash, newSecret) || secret.CheckClientSecret(stored.SecretHash, oldSecret) {
		t.Error("the store does not hold the new secret alone")
	}
	if strings.Join(stored.GrantTypes, ",") != "client_credentials" {
		t.Errorf("grants changed: %v", stored.GrantTypes)
	}
	noSecretIn(t, svc, oldSecret, newSecret)
	if got := eventTypes(t, svc); strings.Join(got, ",") != "client.created,client.secret_rotated" {
		t.Errorf("events = %v", got)
	}

	if _, _, err := svc.CreateClient(ctx, manage.Operator, manage.NewClient{ID: "spa", Public: true, RedirectURIs: []string{"http://localhost:3000/cb"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.RotateClientSecret(ctx, manage.Operator, "spa"); !errors.Is(err, manage.ErrPublicClient) || err.Error() != "client spa is public: it has no secret to rotate" {
		t.Errorf("a public client: %v", err)
	}
	declareClient(t, svc)
	if _, _, err := svc.RotateClientSecret(ctx, manage.Operator, "declared"); !errors.Is(err, manage.ErrDeclaredInConfig) {
		t.Errorf("a config client: %v", err)
	}
	if _, _, err := svc.RotateClientSecret(ctx, manage.Operator, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown client: %v", err)
	}
}
