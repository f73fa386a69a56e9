package idp

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/storage"
)

// The admin API's relying parties (see admin.go). Clients declared in the
// configuration file read as any other, but cannot be changed here: the
// file puts them back at every start (409, declared-in-config).

type clientList struct {
	Clients []manage.ClientView `json:"clients"`
}

// clientWithSecret is a client with its secret, answered once: when it is
// created and when the secret is rotated (the store keeps only a hash).
type clientWithSecret struct {
	manage.ClientView
	ClientSecret string `json:"client_secret,omitempty"`
}

func (s *Server) adminListClients(c *adminCall) {
	cs, err := c.svc.ListClients(c.ctx)
	if err != nil {
		c.serverError(err)
		return
	}
	out := clientList{Clients: make([]manage.ClientView, 0, len(cs))}
	for _, cl := range cs {
		out.Clients = append(out.Clients, manage.ViewClient(cl))
	}
	c.reply(http.StatusOK, out)
}

func (s *Server) adminCreateClient(c *adminCall) {
	var req struct {
		ClientID               string   `json:"client_id"`
		Name                   string   `json:"name"`
		Public                 bool     `json:"public"`
		RedirectURIs           []string `json:"redirect_uris"`
		PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
		Grants                 []string `json:"grants"`
		Scopes                 []string `json:"scopes"`
		FirstParty             bool     `json:"first_party"`
		RequireMFA             bool     `json:"require_mfa"`
	}
	if !c.decode(&req) {
		return
	}
	c.clientID = req.ClientID
	if slices.Contains(req.Scopes, adminScope) || req.FirstParty {
		c.cliOnly("Clients with scope idp:admin, and first-party clients (no consent page), are made with `idp client add` or in the configuration file: an admin token must not be able to mint lasting admin credentials or skip consent.")
		return
	}
	cl, generated, err := c.svc.CreateClient(c.ctx, c.actor, manage.NewClient{
		ID: req.ClientID, Name: req.Name, Public: req.Public, RedirectURIs: req.RedirectURIs,
		PostLogoutRedirectURIs: req.PostLogoutRedirectURIs, Grants: req.Grants, Scopes: req.Scopes,
		FirstParty: req.FirstParty, RequireMFA: req.RequireMFA, Source: storage.ClientSourceAPI,
	})
	if err != nil {
		c.fail(err)
		return
	}
	c.clientID = cl.ID
	c.w.Header().Set("Location", "/admin/v1/clients/"+url.PathEscape(cl.ID))
	c.reply(http.StatusCreated, clientWithSecret{ClientView: manage.ViewClient(cl), ClientSecret: generated})
}

// pathClient is the {client_id} of the path, noted for the audit event.
func (c *adminCall) pathClient() string {
	c.clientID = c.r.PathValue("client_id")
	return c.clientID
}

func (s *Server) adminGetClient(c *adminCall) {
	cl, err := c.svc.GetClient(c.ctx, c.pathClient())
	if err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, manage.ViewClient(cl))
}

func (s *Server) adminUpdateClient(c *adminCall) {
	id := c.pathClient()
	var req struct {
		Name                   *string   `json:"name"`
		RedirectURIs           *[]string `json:"redirect_uris"`
		PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris"`
		FirstParty             *bool     `json:"first_party"`
		RequireMFA             *bool     `json:"require_mfa"`
	}
	if !c.decode(&req) {
		return
	}
	cur, err := c.svc.GetClient(c.ctx, id)
	if err != nil {
		c.fail(err)
		return
	}
	if slices.Contains(cur.Scopes, adminScope) || (req.FirstParty != nil && *req.FirstParty && !cur.FirstParty) ||
		(req.RequireMFA != nil && !*req.RequireMFA && cur.RequireMFA) {
		c.cliOnly("Clients with scope idp:admin are changed with `idp client` or in the configuration file, and so are skipping consent (first_party) and dropping require_mfa.")
		return
	}
	s.clients.forget(id)
	defer s.clients.forget(id)
	cl, err := c.svc.UpdateClient(c.ctx, c.actor, id, manage.ClientChanges{Name: req.Name, RedirectURIs: req.RedirectURIs,
		PostLogoutRedirectURIs: req.PostLogoutRedirectURIs, FirstParty: req.FirstParty, RequireMFA: req.RequireMFA})
	if err != nil {
		c.fail(err)
		return
	}
	c.reply(http.StatusOK, manage.ViewClient(cl))
}

func (s *Server) adminDeleteClient(c *adminCall) {
	if !s.adminMayReplace(c) {
		return
	}
	defer s.clients.forget(c.clientID)
	if err := c.svc.RemoveClient(c.ctx, c.actor, c.clientID); err != nil {
		c.fail(err)
		return
	}
	if err := s.revokeClientTokens(c.ctx, c.clientID); err != nil {
		c.serverError(err)
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminRotateSecret(c *adminCall) {
	if !s.adminMayReplace(c) {
		return
	}
	defer s.clients.forget(c.clientID)
	cl, newSecret, err := c.svc.RotateClientSecret(c.ctx, c.actor, c.clientID)
	if err != nil {
		c.fail(err)
		return
	}
	// Tokens got with the old secret end with it.
	if err := s.revokeClientTokens(c.ctx, cl.ID); err != nil {
		c.serverError(err)
		return
	}
	c.reply(http.StatusOK, clientWithSecret{ClientView: manage.ViewClient(cl), ClientSecret: newSecret})
}

// adminMayReplace refuses deleting or re-keying a client with idp:admin
// through the API (the CLI and the configuration file can).
func (s *Server) adminMayReplace(c *adminCall) bool {
	cur, err := c.svc.GetClient(c.ctx, c.pathClient())
	if err != nil {
		c.fail(err)
		return false
	}
	if slices.Contains(cur.Scopes, adminScope) {
		c.cliOnly("Clients with scope idp:admin are deleted or given a new secret with `idp client` or in the configuration file.")
		return false
	}
	return true
}

// cliOnly refuses what only the CLI and the configuration file may do.
func (c *adminCall) cliOnly(detail string) {
	c.reason = "only through the CLI or configuration"
	c.problem(http.StatusForbidden, "urn:hostportal:idp:problem:cli-only", "Not through the API", detail, nil)
}
