package manage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
)

// NewClient is what CreateClient needs: the fields of `idp client add`.
// Without Grants a client gets authorization_code and refresh_token. A
// confidential client (Public false) without a Secret gets a generated one.
// Source defaults to storage.ClientSourceCLI.
type NewClient struct {
	ID                     string
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	Public                 bool
	Secret                 string
	FirstParty             bool
	RequireMFA             bool
	Grants                 []string
	Scopes                 []string
	Source                 string
}

// DefaultGrants are the grants of a client declared without any.
var DefaultGrants = []string{"authorization_code", "refresh_token"}

// generatedSecretBytes is the entropy of a generated client secret.
const generatedSecretBytes = 32

// clientFields names the keys of config.ClientConfig.Validate's errors in a sentence.
var clientFields = map[string]string{
	"id":                        "client id",
	"redirect_uris":             "redirect URI",
	"post_logout_redirect_uris": "post-logout redirect URI",
	"grants":                    "grants",
	"secret":                    "client secret",
}

// validateClient checks cl with the rules of the configuration file (plus
// the name and scopes) and returns *InvalidErrors, all at once.
func validateClient(cl config.ClientConfig) error {
	var errs []error
	for _, err := range cl.Validate() {
		key, msg, _ := strings.Cut(err.Error(), ": ")
		label, ok := clientFields[key]
		if !ok {
			label = key
		}
		errs = append(errs, invalid(key, "invalid %s: %s", label, msg))
	}
	if err := ValidateName(cl.Name); err != nil {
		errs = append(errs, err)
	}
	for _, sc := range cl.Scopes {
		if err := validateScope(sc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validateScope checks a scope token (RFC 6749 section 3.3).
func validateScope(sc string) error {
	ok := sc != "" && len(sc) <= 128
	for i := 0; ok && i < len(sc); i++ {
		c := sc[i]
		ok = c == 0x21 || c >= 0x23 && c <= 0x5B || c >= 0x5D && c <= 0x7E
	}
	if !ok {
		return invalid("scopes", "invalid scope %q: a scope is 1 to 128 printable characters without spaces, quotes or backslashes, e.g. idp:admin", sc)
	}
	return nil
}

// uniq drops empty and repeated values, keeping the first of each.
func uniq(l []string) []string {
	var out []string
	for _, v := range l {
		v = strings.TrimSpace(v)
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// CreateClient validates and stores a relying party. It returns the
// generated secret when the client is confidential and none was given (the
// only time it can be read: the store keeps a hash). Event: client.created.
func (s *Service) CreateClient(ctx context.Context, actor Actor, nc NewClient) (c *storage.Client, generatedSecret string, err error) {
	cl := config.ClientConfig{
		ID:                     strings.TrimSpace(nc.ID),
		Name:                   strings.TrimSpace(nc.Name),
		Secret:                 nc.Secret,
		Public:                 nc.Public,
		RedirectURIs:           uniq(nc.RedirectURIs),
		PostLogoutRedirectURIs: uniq(nc.PostLogoutRedirectURIs),
		FirstParty:             nc.FirstParty,
		RequireMFA:             nc.RequireMFA,
		Grants:                 uniq(nc.Grants),
		Scopes:                 uniq(nc.Scopes),
	}
	if !cl.Public && cl.Secret == "" {
		generatedSecret = secret.RandomToken(generatedSecretBytes)
		cl.Secret = generatedSecret
	}
	if err := validateClient(cl); err != nil {
		return nil, "", err
	}
	source := nc.Source
	if source == "" {
		source = storage.ClientSourceCLI
	}
	now := s.now()
	c = clientFromConfig(cl, source)
	c.CreatedAt, c.UpdatedAt = now, now
	if err := s.Store.CreateClient(ctx, c); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, "", conflict("a client with id %s already exists", c.ID)
		}
		return nil, "", fmt.Errorf("creating client %s: %w", c.ID, err)
	}
	err = s.audit(ctx, actor, storage.AuditEvent{Type: "client.created", ClientID: c.ID, Details: clientDetails(c)},
		"client "+c.ID+" was created")
	return c, generatedSecret, err
}

// clientFromConfig turns a validated declaration into a record, hashing its secret.
func clientFromConfig(cl config.ClientConfig, source string) *storage.Client {
	grants := cl.Grants
	if len(grants) == 0 {
		grants = slices.Clone(DefaultGrants)
	}
	c := &storage.Client{
		ID:                     cl.ID,
		Name:                   cl.Name,
		Public:                 cl.Public,
		RedirectURIs:           cl.RedirectURIs,
		PostLogoutRedirectURIs: cl.PostLogoutRedirectURIs,
		GrantTypes:             grants,
		Scopes:                 cl.Scopes,
		FirstParty:             cl.FirstParty,
		RequireMFA:             cl.RequireMFA,
		Source:                 source,
	}
	if !cl.Public {
		c.SecretHash = secret.HashClientSecret(cl.Secret)
	}
	return c
}

// clientDetails are a client's settings for its audit events (never its secret).
func clientDetails(c *storage.Client) map[string]string {
	return map[string]string{
		"source":        c.Source,
		"public":        fmt.Sprint(c.Public),
		"grants":        strings.Join(c.GrantTypes, " "),
		"scopes":        strings.Join(c.Scopes, " "),
		"redirect_uris": strings.Join(c.RedirectURIs, " "),
		"first_party":   fmt.Sprint(c.FirstParty),
		"require_mfa":   fmt.Sprint(c.RequireMFA),
	}
}

// GetClient returns the client with id.
func (s *Service) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	c, err := s.Store.ClientByID(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, notFound("no client with id %s", id)
	case err != nil:
		return nil, fmt.Errorf("looking up client %s: %w", id, err)
	}
	return c, nil
}

// ListClients returns every client, ordered by id.
func (s *Service) ListClients(ctx context.Context) ([]*storage.Client, error) {
	cs, err := s.Store.ListClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing clients: %w", err)
	}
	return cs, nil
}

// ErrDeclaredInConfig: the client comes from the configuration file, which
// puts it back at every start, so it is changed or removed there (HTTP 409
// in the admin API). RemoveClient's error wraps it; test with errors.Is.
var ErrDeclaredInConfig = errors.New("manage: client is declared in the configuration file")

// RemoveClient deletes a client with its refresh tokens and consents.
// Clients declared in the configuration file are refused (they would come
// back at the next start). Event: client.removed.
func (s *Service) RemoveClient(ctx context.Context, actor Actor, id string) error {
	c, err := s.GetClient(ctx, id)
	if err != nil {
		return err
	}
	if c.Source == storage.ClientSourceConfig {
		return &statusError{
			msg:  fmt.Sprintf("client %s is declared in the configuration file; remove it from the file's clients list and restart the server", id),
			kind: ErrDeclaredInConfig,
		}
	}
	return s.removeClient(ctx, actor, c)
}

func (s *Service) removeClient(ctx context.Context, actor Actor, c *storage.Client) error {
	if err := s.Store.DeleteClient(ctx, c.ID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return notFound("no client with id %s", c.ID)
		}
		return fmt.Errorf("removing client %s: %w", c.ID, err)
	}
	return s.audit(ctx, actor, storage.AuditEvent{Type: "client.removed", ClientID: c.ID, Details: map[string]string{"source": c.Source}},
		"client "+c.ID+" was removed")
}

// SyncConfigClients makes the store hold exactly the clients declared in
// the configuration file (Source config): it creates the new ones, updates
// the changed ones (a secret is rehashed only when it changed) and removes
// those no longer declared. A declared id that belongs to a client added
// with `idp client add` or the admin API is refused, not taken over. The
// server calls it at every start, as System. Events: client.created,
// client.updated, client.removed.
func (s *Service) SyncConfigClients(ctx context.Context, declared []config.ClientConfig) error {
	var errs []error
	for _, cl := range declared {
		if err := validateClient(cl); err != nil {
			errs = append(errs, fmt.Errorf("client %s in the configuration file: %w", cl.ID, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	stored, err := s.ListClients(ctx)
	if err != nil {
		return err
	}
	byID := map[string]*storage.Client{}
	for _, c := range stored {
		byID[c.ID] = c
	}
	// Refuse before writing anything, so that a refused start changes nothing.
	for _, cl := range declared {
		if old, ok := byID[cl.ID]; ok && old.Source != storage.ClientSourceConfig {
			errs = append(errs, conflict("client %s is declared in the configuration file but was added with `idp client add` or the admin API (source %s); remove one of the two", cl.ID, old.Source))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	now := s.now()
	for _, cl := range declared {
		cl.Grants, cl.Scopes = uniq(cl.Grants), uniq(cl.Scopes)
		cl.RedirectURIs, cl.PostLogoutRedirectURIs = uniq(cl.RedirectURIs), uniq(cl.PostLogoutRedirectURIs)
		want := clientFromConfig(cl, storage.ClientSourceConfig)
		old, ok := byID[cl.ID]
		if !ok {
			want.CreatedAt, want.UpdatedAt = now, now
			if err := s.Store.CreateClient(ctx, want); err != nil {
				return fmt.Errorf("creating client %s from the configuration file: %w", cl.ID, err)
			}
			if err := s.audit(ctx, System, storage.AuditEvent{Type: "client.created", ClientID: want.ID, Details: clientDetails(want)},
				"client "+want.ID+" was created"); err != nil {
				return err
			}
			continue
		}
		if !cl.Public && secret.CheckClientSecret(old.SecretHash, cl.Secret) {
			want.SecretHash = old.SecretHash
		}
		if sameClient(old, want) {
			continue
		}
		want.CreatedAt, want.UpdatedAt = old.CreatedAt, now
		if err := s.Store.UpdateClient(ctx, want); err != nil {
			return fmt.Errorf("updating client %s from the configuration file: %w", cl.ID, err)
		}
		details := clientDetails(want)
		details["secret_changed"] = fmt.Sprint(want.SecretHash != old.SecretHash)
		if err := s.audit(ctx, System, storage.AuditEvent{Type: "client.updated", ClientID: want.ID, Details: details},
			"client "+want.ID+" was updated"); err != nil {
			return err
		}
	}
	for _, c := range stored {
		if c.Source == storage.ClientSourceConfig && !slices.ContainsFunc(declared, func(cl config.ClientConfig) bool { return cl.ID == c.ID }) {
			if err := s.removeClient(ctx, System, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// sameClient reports whether two records hold the same settings.
func sameClient(a, b *storage.Client) bool {
	return a.Name == b.Name && a.SecretHash == b.SecretHash && a.Public == b.Public &&
		slices.Equal(a.RedirectURIs, b.RedirectURIs) && slices.Equal(a.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs) &&
		slices.Equal(a.GrantTypes, b.GrantTypes) && slices.Equal(a.Scopes, b.Scopes) &&
		a.FirstParty == b.FirstParty && a.RequireMFA == b.RequireMFA && a.Source == b.Source
}
