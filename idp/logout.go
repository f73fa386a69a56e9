package idp

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/templates"
)

// logoutRequest is an RP-initiated logout request (OpenID Connect
// RP-Initiated Logout 1.0) after validation.
type logoutRequest struct {
	client   *storage.Client
	hint     *oidc.IDTokenClaims // a verified id_token_hint (expired ones count)
	target   string              // registered post_logout_redirect_uri with state; empty if none
	clientID string
	redirect string // the post_logout_redirect_uri as asked (kept for the confirmation form)
	state    string
}

// parseLogout validates the request: the hint must be signed by us, and
// the post-logout URI is only ever followed when it is registered, exactly,
// for the client the hint (or client_id) names.
func (s *Server) parseLogout(r *http.Request) *logoutRequest {
	ctx := r.Context()
	lr := &logoutRequest{
		clientID: r.Form.Get("client_id"),
		redirect: r.Form.Get("post_logout_redirect_uri"),
		state:    r.Form.Get("state"),
	}
	if hint := r.Form.Get("id_token_hint"); hint != "" {
		claims, err := op.VerifyIDTokenHint[*oidc.IDTokenClaims](ctx, hint, s.provider.IDTokenHintVerifier(ctx))
		if err == nil || errors.As(err, &op.IDTokenHintExpiredError{}) {
			azp := claims.AuthorizedParty
			if azp == "" && len(claims.Audience) == 1 {
				azp = claims.Audience[0]
			}
			if lr.clientID == "" || lr.clientID == azp {
				lr.hint, lr.clientID = claims, azp
			}
		}
	}
	if lr.clientID != "" {
		if c, err := s.store.ClientByID(ctx, lr.clientID); err == nil {
			lr.client = c
		}
	}
	if lr.client != nil && lr.redirect != "" && slices.Contains(lr.client.PostLogoutRedirectURIs, lr.redirect) {
		lr.target = lr.redirect
		if lr.state != "" {
			if u, err := url.Parse(lr.redirect); err == nil {
				q := u.Query()
				q.Set("state", lr.state)
				u.RawQuery = q.Encode()
				lr.target = u.String()
			}
		}
	}
	return lr
}

// handleEndSession is the end_session endpoint. With a valid id_token_hint
// and a registered post_logout_redirect_uri it logs out and redirects at
// once; otherwise it asks first.
func (s *Server) handleEndSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Invalid request", "The logout request could not be read.", err)
		return
	}
	lr := s.parseLogout(r)
	if lr.hint != nil && lr.target != "" {
		if !s.logout(w, r, lr) {
			return
		}
		http.Redirect(w, r, lr.target, http.StatusFound)
		return
	}
	browser := s.browserID(w, r, true)
	page := templates.LogoutPage{
		Base:   templates.Base{Title: "Log out", CSRFToken: s.csrfToken(browser, "logout")},
		Action: "/logout",
	}
	if lr.client != nil {
		page.ClientName = clientName(lr.client)
		page.Hidden = append(page.Hidden, templates.Hidden{Name: "client_id", Value: lr.client.ID})
		if lr.target != "" {
			page.Hidden = append(page.Hidden,
				templates.Hidden{Name: "post_logout_redirect_uri", Value: lr.redirect},
				templates.Hidden{Name: "state", Value: lr.state})
		}
	}
	s.render(w, r, http.StatusOK, page)
}

// handleLogout is the confirmation form's target.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Invalid request", "The form could not be read.", err)
		return
	}
	if !s.checkCSRF(r, "logout") {
		s.forbidden(w, r)
		return
	}
	lr := s.parseLogout(r)
	if !s.logout(w, r, lr) {
		return
	}
	if lr.target != "" {
		http.Redirect(w, r, lr.target, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/logged-out", http.StatusSeeOther)
}

// logout ends this browser's session with the provider. With a hint for
// another user than the session's, the session is left alone.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, lr *logoutRequest) bool {
	ctx := r.Context()
	sess, err := s.currentSession(ctx, r)
	if err != nil {
		s.serverError(w, r, err)
		return false
	}
	if sess == nil || (lr.hint != nil && lr.hint.Subject != sess.UserID) {
		return true
	}
	if err := s.endBrowserSession(ctx, w, r); err != nil {
		s.serverError(w, r, err)
		return false
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "logout", UserID: sess.UserID, ClientID: lr.clientID, Result: "success"})
	return true
}

func (s *Server) handleLoggedOut(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, templates.MessagePage{
		Base:    templates.Base{Title: "Logged out"},
		Heading: "You are logged out",
		Message: "You have been logged out of the sign-in service. You can close this window.",
	})
}
