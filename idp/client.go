package idp

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/storage"
)

// standardScopes are the OIDC scopes any client may ask for.
var standardScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone, oidc.ScopeOfflineAccess}

// client adapts a stored relying party to the library's Client.
type client struct {
	c             *storage.Client
	loginURL      string
	idTokenTTL    time.Duration
	allowLoopback bool
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }
func (c *client) LoginURL(id string) string        { return c.loginURL + "?id=" + id }
func (c *client) IDTokenLifetime() time.Duration   { return c.idTokenTTL }
func (c *client) ClockSkew() time.Duration         { return 0 }

// AccessTokenType: opaque tokens whose content is sealed (see accessTokenCrypto),
// so no access token is written anywhere and they survive a restart.
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }

// ApplicationType: public clients with an app scheme or a loopback redirect
// URI are native apps, other public clients browser apps. (The library lets
// native apps vary the loopback port; handleAuthorize's exact match still
// applies to every request.)
func (c *client) ApplicationType() op.ApplicationType {
	if !c.c.Public {
		return op.ApplicationTypeWeb
	}
	for _, u := range c.c.RedirectURIs {
		if isLoopbackURL(u) || !strings.HasPrefix(u, "https://") {
			return op.ApplicationTypeNative
		}
	}
	return op.ApplicationTypeUserAgent
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	if slices.Contains(c.c.GrantTypes, string(oidc.GrantTypeCode)) {
		return []oidc.ResponseType{oidc.ResponseTypeCode}
	}
	return nil
}

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.c.GrantTypes))
	for _, g := range c.c.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

// DevMode only lets a public client use plain http redirect URIs when every
// one of them is on a loopback host (a developer's portal). Redirect URIs
// are still matched exactly.
func (c *client) DevMode() bool { return c.allowLoopback }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed: scopes beyond the standard ones must be granted to the client.
func (c *client) IsScopeAllowed(scope string) bool { return slices.Contains(c.c.Scopes, scope) }

// IDTokenUserinfoClaimsAssertion puts the profile, e-mail and phone claims
// in the ID token too, where portals usually read them.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

func newClient(c *storage.Client, loginURL string, idTokenTTL time.Duration) *client {
	loopbackOnly := len(c.RedirectURIs) > 0
	for _, u := range c.RedirectURIs {
		loopbackOnly = loopbackOnly && isLoopbackURL(u)
	}
	return &client{c: c, loginURL: loginURL, idTokenTTL: idTokenTTL, allowLoopback: c.Public && loopbackOnly}
}

func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "http" && config.IsLoopbackHost(u.Hostname())
}

// name is what the pages call the relying party; empty for the provider's own pages.
func (c *client) name() string {
	if c == nil {
		return ""
	}
	return clientName(c.c)
}
