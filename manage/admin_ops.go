package manage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
)

// The operations the admin API needs beyond those of the idp commands:
// editing a user's details, deleting a user, editing a client and
// rotating its secret.

// UserChanges are the details UpdateUser sets; a nil field stays as it is.
type UserChanges struct {
	Email *string
	Name  *string
}

// UpdateUser sets the user's e-mail address and/or name. An address set
// here counts as confirmed: it is an operator's (or a portal's) word, as in
// CreateUser. Every bad value is reported at once. Changing nothing is not
// an error and writes nothing. Event: user.updated.
func (s *Service) UpdateUser(ctx context.Context, actor Actor, username string, ch UserChanges) (*storage.User, error) {
	var errs []error
	var email, name string
	if ch.Email != nil {
		email = strings.TrimSpace(*ch.Email)
		if err := ValidateEmail(email); err != nil {
			errs = append(errs, err)
		}
	}
	if ch.Name != nil {
		name = strings.TrimSpace(*ch.Name)
		if err := ValidateName(name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	var changed []string
	if ch.Email != nil && (u.Email != email || !u.EmailVerified) {
		u.Email, u.EmailVerified = email, true
		changed = append(changed, "email")
	}
	if ch.Name != nil && u.Name != name {
		u.Name = name
		changed = append(changed, "name")
	}
	if len(changed) == 0 {
		return u, nil
	}
	u.UpdatedAt = s.now()
	if err := s.Store.UpdateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, notFound("no user named %s", username)
		}
		return nil, fmt.Errorf("updating user %s: %w", u.Username, err)
	}
	return u, s.audit(ctx, actor, storage.AuditEvent{Type: "user.updated", UserID: u.ID, Username: u.Username,
		Details: map[string]string{"changed": strings.Join(changed, " ")}}, "user "+u.Username+" was updated")
}

// DeleteUser removes the user with their refresh tokens, consents and
// second factors; their audit events stay. It returns the user as they
// were. (Sessions in the pending-login store are the server's to end.)
// Event: user.deleted.
func (s *Service) DeleteUser(ctx context.Context, actor Actor, username string) (*storage.User, error) {
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	if err := s.Store.DeleteUser(ctx, u.ID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, notFound("no user named %s", username)
		}
		return nil, fmt.Errorf("deleting user %s: %w", u.Username, err)
	}
	return u, s.audit(ctx, actor, storage.AuditEvent{Type: "user.deleted", UserID: u.ID, Username: u.Username},
		"user "+u.Username+" was deleted")
}

// ClientChanges are the settings UpdateClient sets; a nil field stays as it is.
type ClientChanges struct {
	Name                   *string
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	FirstParty             *bool
	RequireMFA             *bool
}

// configSecretPlaceholder stands in for a confidential client's secret when
// its other settings are validated: the store keeps only the hash, and the
// secret does not change here.
var configSecretPlaceholder = strings.Repeat("x", config.MinClientSecretLength)

// declaredInConfig is the refusal to change a client of the configuration
// file through the store (the file puts it back at every start).
func declaredInConfig(id, what string) error {
	return &statusError{
		msg:  fmt.Sprintf("client %s is declared in the configuration file; %s in the file's clients list and restart the server", id, what),
		kind: ErrDeclaredInConfig,
	}
}

// UpdateClient changes a client's name, redirect URIs, post-logout
// redirect URIs, first-party and require-MFA settings, with the rules of
// CreateClient (all problems at once). Clients declared in the
// configuration file are refused (ErrDeclaredInConfig). Changing nothing
// writes nothing. Event: client.updated.
func (s *Service) UpdateClient(ctx context.Context, actor Actor, id string, ch ClientChanges) (*storage.Client, error) {
	c, err := s.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Source == storage.ClientSourceConfig {
		return nil, declaredInConfig(id, "change it")
	}
	next := *c
	if ch.Name != nil {
		next.Name = strings.TrimSpace(*ch.Name)
	}
	if ch.RedirectURIs != nil {
		next.RedirectURIs = uniq(*ch.RedirectURIs)
	}
	if ch.PostLogoutRedirectURIs != nil {
		next.PostLogoutRedirectURIs = uniq(*ch.PostLogoutRedirectURIs)
	}
	if ch.FirstParty != nil {
		next.FirstParty = *ch.FirstParty
	}
	if ch.RequireMFA != nil {
		next.RequireMFA = *ch.RequireMFA
	}
	cl := config.ClientConfig{
		ID: next.ID, Name: next.Name, Public: next.Public, RedirectURIs: next.RedirectURIs,
		PostLogoutRedirectURIs: next.PostLogoutRedirectURIs, FirstParty: next.FirstParty, RequireMFA: next.RequireMFA,
		Grants: next.GrantTypes, Scopes: next.Scopes,
	}
	if !cl.Public {
		cl.Secret = configSecretPlaceholder
	}
	if err := validateClient(cl); err != nil {
		return nil, err
	}
	if sameClient(c, &next) {
		return c, nil
	}
	next.UpdatedAt = s.now()
	if err := s.Store.UpdateClient(ctx, &next); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, notFound("no client with id %s", id)
		}
		return nil, fmt.Errorf("updating client %s: %w", id, err)
	}
	details := clientDetails(&next)
	details["post_logout_redirect_uris"] = strings.Join(next.PostLogoutRedirectURIs, " ")
	details["name_changed"] = fmt.Sprint(next.Name != c.Name)
	return &next, s.audit(ctx, actor, storage.AuditEvent{Type: "client.updated", ClientID: id, Details: details},
		"client "+id+" was updated")
}

// ErrPublicClient: the client is public, so it has no secret (HTTP 409 in
// the admin API). RotateClientSecret's error wraps it.
var ErrPublicClient = errors.New("manage: client is public")

// RotateClientSecret gives a confidential client a new generated secret
// and returns it (the only time it can be read). The old secret stops
// working at once; tokens already issued stay valid until they expire.
// Public clients (ErrPublicClient) and clients declared in the
// configuration file (ErrDeclaredInConfig) are refused.
// Event: client.secret_rotated.
func (s *Service) RotateClientSecret(ctx context.Context, actor Actor, id string) (*storage.Client, string, error) {
	c, err := s.GetClient(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if c.Source == storage.ClientSourceConfig {
		return nil, "", declaredInConfig(id, "change its secret")
	}
	if c.Public {
		return nil, "", &statusError{msg: fmt.Sprintf("client %s is public: it has no secret to rotate", id), kind: ErrPublicClient}
	}
	newSecret := secret.RandomToken(generatedSecretBytes)
	next := *c
	next.SecretHash, next.UpdatedAt = secret.HashClientSecret(newSecret), s.now()
	if err := s.Store.UpdateClient(ctx, &next); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, "", notFound("no client with id %s", id)
		}
		return nil, "", fmt.Errorf("rotating the secret of client %s: %w", id, err)
	}
	return &next, newSecret, s.audit(ctx, actor, storage.AuditEvent{Type: "client.secret_rotated", ClientID: id},
		"the secret of client "+id+" was rotated")
}
