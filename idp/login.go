package idp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/templates"
)

// maxParamLength bounds each authorization request parameter (they are
// kept in the pending login for its lifetime).
const maxParamLength = 2048

// browserContextKey carries the browser binding from handleAuthorize to
// CreateAuthRequest.
type browserContextKey struct{}

// handleAuthorize checks what the library would otherwise answer with a
// plain-text error or a redirect: an unknown client or an unregistered
// redirect URI gets the provider's 400 page (never a redirect), every
// parameter appears once and is bounded, PKCE is S256 only and required
// for public clients, and only the query response mode is offered. The new
// pending login is bound to this browser from the start. Then the library
// takes over.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		s.errorPage(w, r, http.StatusMethodNotAllowed, "Invalid request", "The sign-in request could not be read. Go back to your portal and try again.", nil)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Invalid request", "The sign-in request could not be read. Go back to your portal and try again.", err)
		return
	}
	for name, values := range r.Form {
		if len(values) > 1 || len(values[0]) > maxParamLength {
			s.errorPage(w, r, http.StatusBadRequest, "Invalid request", "The sign-in request could not be read. Go back to your portal and try again.",
				fmt.Errorf("parameter %.40q repeated or too long", name))
			return
		}
	}
	c, err := s.clientByID(r.Context(), r.Form.Get("client_id"))
	if errors.Is(err, storage.ErrNotFound) {
		s.errorPage(w, r, http.StatusBadRequest, "Unknown application",
			"The application that sent you here is not registered with this sign-in service. Contact the application's support.", err)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	redirectURI := r.Form.Get("redirect_uri")
	if !slices.Contains(c.c.RedirectURIs, redirectURI) {
		s.errorPage(w, r, http.StatusBadRequest, "Invalid return address",
			"The application asked to send you back to an address it has not registered. For your safety you were not sent there. Contact the application's support.",
			errors.New("unregistered redirect_uri"))
		return
	}
	if reqErr := checkAuthorizeParams(r, c); reqErr != nil {
		op.AuthRequestError(w, r, &oidc.AuthRequest{
			RedirectURI:  redirectURI,
			State:        r.Form.Get("state"),
			ResponseType: oidc.ResponseType(r.Form.Get("response_type")),
		}, reqErr, s.provider)
		return
	}
	browser := browserBinding(s.browserID(w, r, true))
	s.provider.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), browserContextKey{}, browser)))
}

// checkAuthorizeParams refuses, with an error for the portal, what the
// provider does not offer.
func checkAuthorizeParams(r *http.Request, c *client) *oidc.Error {
	challenge, method := r.Form.Get("code_challenge"), r.Form.Get("code_challenge_method")
	switch {
	case challenge != "" && method != string(oidc.CodeChallengeMethodS256):
		return oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case challenge == "" && c.c.Public:
		return oidc.ErrInvalidRequest().WithDescription("PKCE with S256 is required for public clients")
	}
	if rm := r.Form.Get("response_mode"); rm != "" && rm != string(oidc.ResponseModeQuery) {
		return oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	}
	if ma := r.Form.Get("max_age"); ma != "" {
		if _, err := strconv.ParseUint(ma, 10, 32); err != nil {
			return oidc.ErrInvalidRequest().WithDescription("max_age must be a number of seconds")
		}
	}
	if r.Form.Get("request") != "" || r.Form.Get("request_uri") != "" {
		return oidc.ErrRequestNotSupported()
	}
	return nil
}

// handleCallback issues the code, only for a finished login and only to
// the browser it is bound to. It does not hand the request to the library's
// callback handler, which would read the login id from the request again
// (a POST body could name another login than the one checked here).
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ids := r.URL.Query()["id"]
	if len(ids) != 1 {
		s.loginFailed(w, r, "", errLoginExpired)
		return
	}
	l, err := s.authRequests.get(r.Context(), ids[0])
	if err != nil {
		s.loginFailed(w, r, "", err)
		return
	}
	if l.Browser == "" || l.Browser != browserBinding(s.browserID(w, r, false)) {
		s.wrongBrowser(w, r, l)
		return
	}
	if !l.Done() || l.ReturnTo != "" {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
		return
	}
	op.AuthResponse(l.AuthRequest, s.provider, w, r)
}

// handleLogin is the dispatcher: it binds the login to this browser and
// shows the page of the step the login is at, moving it on where no input
// is needed (an existing session, a remembered device, consent already
// given).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l, err := s.authRequests.get(ctx, r.URL.Query().Get("id"))
	if err != nil {
		s.loginFailed(w, r, r.URL.Query().Get("client_id"), err)
		return
	}
	browser := s.browserID(w, r, true)
	if l.Browser == "" {
		l.Browser = browserBinding(browser)
		if err := s.authRequests.update(ctx, l); err != nil {
			s.loginFailed(w, r, l.ClientID, err)
			return
		}
	} else if l.Browser != browserBinding(browser) {
		s.wrongBrowser(w, r, l)
		return
	}
	c, err := s.loginClient(ctx, l)
	if err != nil {
		s.loginFailed(w, r, "", err)
		return
	}
	interactive := func() bool {
		if l.hasPrompt(oidc.PromptNone) {
			s.abort(w, r, l, oidc.ErrInteractionRequired())
			return false
		}
		return true
	}

	switch l.Step {
	case stepPassword:
		sess, err := s.currentSession(ctx, r)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if u := s.sessionUser(ctx, sess, l); u != nil {
			l.UserID, l.Username, l.AuthTime, l.AMR, l.ACR = u.ID, u.Username, sess.AuthTime, sess.AMR, sess.ACR
			if s.advance(w, r, l, c) {
				http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
			}
			return
		}
		if l.hasPrompt(oidc.PromptNone) {
			s.abort(w, r, l, oidc.ErrLoginRequired())
			return
		}
		s.showLogin(w, r, l, c, browser, http.StatusOK, "", l.LoginHint)
	case stepSecondFactor:
		if interactive() {
			s.showSecondFactor(w, r, l, c, browser, http.StatusOK, "")
		}
	case stepEnrol:
		if interactive() {
			s.showLoginEnrolment(w, r, l, browser, http.StatusOK, "")
		}
	case stepShowCodes:
		s.showLoginCodes(w, r, l, browser)
	case stepConsent:
		if l.hasPrompt(oidc.PromptNone) {
			s.abort(w, r, l, errConsentRequired())
			return
		}
		s.showConsent(w, r, l, c, browser)
	case stepDone:
		if l.Reset {
			// The new-password page needs the login, under its current id.
			http.Redirect(w, r, "/password/new?id="+url.QueryEscape(l.ID), http.StatusSeeOther)
			return
		}
		if l.ReturnTo != "" {
			// A login to the provider's own pages: the session is all it needed.
			if err := s.authRequests.delete(ctx, l.ID); err != nil {
				slog.ErrorContext(ctx, "deleting pending login failed", "error", err)
			}
			http.Redirect(w, r, l.ReturnTo, http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, s.cfg.Issuer+"/authorize/callback?id="+url.QueryEscape(l.ID), http.StatusSeeOther)
	default:
		s.loginFailed(w, r, l.ClientID, errors.New("unknown login step "+l.Step))
	}
}

func loginURL(id string) string { return "/login?id=" + url.QueryEscape(id) }

// loginClient is the relying party of a login; nil for a login to the
// provider's own pages.
func (s *Server) loginClient(ctx context.Context, l *loaded) (*client, error) {
	if l.ReturnTo != "" && l.ClientID == "" {
		return nil, nil
	}
	return s.clientByID(ctx, l.ClientID)
}

// sessionUser returns the session's user when the session may stand in
// for the password in this login: not past max_age (prompt=login arrives as
// max_age=0), matching login_hint, and the user still enabled.
func (s *Server) sessionUser(ctx context.Context, sess *Session, l *loaded) *storage.User {
	if sess == nil {
		return nil
	}
	if l.MaxAge != nil && (*l.MaxAge == 0 || s.now().Sub(sess.AuthTime) > time.Duration(*l.MaxAge)*time.Second) {
		return nil
	}
	u, err := s.store.UserByID(ctx, sess.UserID)
	if err != nil || u.Disabled {
		return nil
	}
	if l.LoginHint != "" && !strings.EqualFold(l.LoginHint, u.Username) && !strings.EqualFold(l.LoginHint, u.Email) {
		return nil
	}
	if l.HintSubject != "" && l.HintSubject != u.ID {
		return nil
	}
	return u
}

// mfaRequired: the configuration, the client or the request (acr_values=mfa,
// step-up) demands a second factor for this login.
func (s *Server) mfaRequired(l *loaded, c *client) bool {
	return s.cfg.MFA.Required || (c != nil && c.c.RequireMFA) || slices.Contains(l.ACRValues, acrMFA)
}

// nextStep decides where an identified user's login goes from here: the
// second factor when they have one and have not passed it (a remembered
// device passes it), enrolment when one is required and they have none,
// then consent, then done. It may record a remembered device's use on l.
func (s *Server) nextStep(w http.ResponseWriter, r *http.Request, l *loaded, c *client) (string, error) {
	ctx := r.Context()
	if l.Reset {
		// A password reset never bypasses the second factor: no remembered
		// device, no enrolment, no consent; just the factor the user has.
		if l.ACR == acrMFA {
			return stepDone, nil
		}
		f, err := s.factorsOf(ctx, l.UserID)
		if err != nil {
			return "", err
		}
		if f.required(s.cfg.MFA.SMSAsOnlyFactor) {
			return stepSecondFactor, nil
		}
		return stepDone, nil
	}
	if l.ACR != acrMFA {
		f, err := s.factorsOf(ctx, l.UserID)
		if err != nil {
			return "", err
		}
		has := f.required(s.cfg.MFA.SMSAsOnlyFactor)
		switch {
		case has && s.rememberedDevice(w, r, l):
		case has:
			return stepSecondFactor, nil
		case s.mfaRequired(l, c):
			return stepEnrol, nil
		}
	}
	if c != nil && !c.c.FirstParty {
		granted, err := s.store.ConsentedScopes(ctx, l.UserID, l.ClientID)
		if err != nil {
			return "", err
		}
		if l.hasPrompt(oidc.PromptConsent) || !allIn(l.Scopes, granted) {
			return stepConsent, nil
		}
	}
	return stepDone, nil
}

// advance moves an identified login to its next step and stores it; when
// the user is now authenticated by factors checked in this login, their
// session is renewed. It reports false when it has answered the request
// itself.
func (s *Server) advance(w http.ResponseWriter, r *http.Request, l *loaded, c *client) bool {
	ctx := r.Context()
	next, err := s.nextStep(w, r, l, c)
	if err != nil {
		s.serverError(w, r, err)
		return false
	}
	l.Step = next
	authenticated := next == stepConsent || next == stepDone
	if authenticated && l.FreshAuth && !l.Reset {
		if err := s.startSession(ctx, w, r, &Session{UserID: l.UserID, AuthTime: l.AuthTime, AMR: l.AMR, ACR: l.ACR}); err != nil {
			s.serverError(w, r, err)
			return false
		}
		l.FreshAuth = false
	}
	if err := s.moveOn(ctx, l); err != nil {
		s.loginFailed(w, r, l.ClientID, err)
		return false
	}
	if next == stepDone && !l.Reset {
		s.loginSucceeded(ctx, r, l)
	}
	return true
}

// moveOn writes a login that went on to its next step under a new id
// (see authRequests.rekey); the failures counted in it so far move along.
func (s *Server) moveOn(ctx context.Context, l *loaded) error {
	oldID, err := s.authRequests.rekey(ctx, l)
	if err != nil {
		return err
	}
	if n, err := s.pending.Get(ctx, failuresKey(oldID)); err == nil {
		if err := s.pending.Set(ctx, failuresKey(l.ID), n, s.cfg.Session.LoginTimeout); err != nil {
			return err
		}
	} else if !errors.Is(err, pending.ErrNotFound) {
		return err
	}
	return nil
}

func (s *Server) loginSucceeded(ctx context.Context, r *http.Request, l *loaded) {
	// This browser is now known to the account: failures from elsewhere
	// will not delay it (regulation.Attempt.Waive).
	if err := s.regulator.Know(ctx, l.Username, l.Browser); err != nil {
		slog.ErrorContext(ctx, "recording a known browser failed", "error", err)
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "login.succeeded", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
		Result: "success", Details: map[string]string{"amr": strings.Join(l.AMR, " "), "acr": l.ACR}})
}

func allIn(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// abort ends the login and sends the error back to the portal.
func (s *Server) abort(w http.ResponseWriter, r *http.Request, l *loaded, e *oidc.Error) {
	if err := s.authRequests.delete(r.Context(), l.ID); err != nil {
		slog.ErrorContext(r.Context(), "deleting pending login failed", "error", err)
	}
	op.AuthRequestError(w, r, l.AuthRequest, e, s.provider)
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, l *loaded, c *client, browser string, status int, msg, username string) {
	page := templates.LoginPage{
		Base:          templates.Base{Title: "Log in", CSRFToken: s.csrfToken(browser, "login:"+l.ID), Error: msg, Notice: l.Notice},
		Action:        "/login/password",
		AuthRequestID: l.ID,
		ClientName:    c.name(),
		Username:      username,
	}
	if s.passkeysOffered() {
		page.PasskeyAction, page.PasskeyBeginURL = "/login/passkey", "/login/passkey/begin"
	}
	if s.mailEnabled() {
		page.ForgotPasswordURL = "/password/forgot?login=" + url.QueryEscape(l.ID)
	}
	s.render(w, r, status, page)
}

var scopeDescriptions = map[string]string{
	oidc.ScopeOpenID:        "Know who you are (your account identifier)",
	oidc.ScopeProfile:       "See your name and username",
	oidc.ScopeEmail:         "See your e-mail address",
	oidc.ScopePhone:         "See your cell phone number",
	oidc.ScopeOfflineAccess: "Stay signed in to your account when you are away",
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, l *loaded, c *client, browser string) {
	var scopes []templates.Scope
	for _, sc := range l.Scopes {
		d, ok := scopeDescriptions[sc]
		if !ok {
			d = "Use the permission “" + sc + "”"
		}
		scopes = append(scopes, templates.Scope{Name: sc, Description: d})
	}
	s.render(w, r, http.StatusOK, templates.ConsentPage{
		Base:          templates.Base{Title: "Allow access", CSRFToken: s.csrfToken(browser, "login:"+l.ID)},
		Action:        "/login/consent",
		AuthRequestID: l.ID,
		ClientName:    c.name(),
		Username:      l.Username,
		Scopes:        scopes,
	})
}

// stepForm loads the login a step's form posts to and checks that it is
// this browser's, that the CSRF token is right and that the login is at
// step. It answers the request itself when it returns nil.
func (s *Server) stepForm(w http.ResponseWriter, r *http.Request, step string) (*loaded, *client) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Invalid request", "The form could not be read. Go back and try again.", err)
		return nil, nil
	}
	id := r.PostForm.Get("id")
	if !s.checkCSRF(r, "login:"+id) {
		s.forbidden(w, r)
		return nil, nil
	}
	l, err := s.authRequests.get(r.Context(), id)
	if err != nil {
		s.loginFailed(w, r, "", err)
		return nil, nil
	}
	if l.Browser != browserBinding(s.browserID(w, r, false)) {
		s.wrongBrowser(w, r, l)
		return nil, nil
	}
	if l.Step != step {
		// A stale tab or a replayed form: show the step the login is at.
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
		return nil, nil
	}
	c, err := s.loginClient(r.Context(), l)
	if err != nil {
		s.loginFailed(w, r, "", err)
		return nil, nil
	}
	return l, c
}

// The one message for an unknown username and a wrong password.
const msgBadCredentials = "The username or password is incorrect."

func (s *Server) handlePassword(w http.ResponseWriter, r *http.Request) {
	l, c := s.stepForm(w, r, stepPassword)
	if l == nil {
		return
	}
	ctx := r.Context()
	browser := s.browserID(w, r, false)
	username := strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	pw := r.PostForm.Get("password")
	if len(username) > 256 {
		username = username[:256] // no account has such a name; bounded in pages and logs
	}
	if username == "" || pw == "" {
		s.showLogin(w, r, l, c, browser, http.StatusBadRequest, "Enter your username and password.", username)
		return
	}
	show := func(status int, msg string) { s.showLogin(w, r, l, c, browser, status, msg, username) }
	chk := s.regulateLogin(w, r, l, username, regulation.Password, show)
	if chk == nil {
		return
	}
	defer chk.Done(ctx)
	u, ok, err := s.checkPassword(ctx, username, pw)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !ok {
		// The username is recorded only when it names a user: people type
		// their password into the wrong field.
		ev := storage.AuditEvent{Type: "login.failed", ClientID: l.ClientID, Result: "failure",
			Details: map[string]string{"factor": "password", "reason": "wrong password"}}
		if u != nil {
			ev.UserID, ev.Username = u.ID, u.Username
		} else {
			ev.Details["reason"] = "unknown username"
		}
		if s.failed(w, r, l, chk, ev) {
			show(http.StatusUnauthorized, msgBadCredentials)
		}
		return
	}
	if err := s.passed(ctx, chk); err != nil {
		s.serverError(w, r, err)
		return
	}
	l.UserID, l.Username, l.AuthTime = u.ID, u.Username, s.now()
	l.AMR, l.ACR, l.FreshAuth = []string{"pwd"}, acrPassword, true
	if s.advance(w, r, l, c) {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
	}
}

// checkPassword verifies a username and password at the same cost whether
// or not the user exists; a disabled user fails like a wrong password. It
// returns the user when one exists, and upgrades an old hash.
func (s *Server) checkPassword(ctx context.Context, username, pw string) (*storage.User, bool, error) {
	if len(pw) > 1024 {
		pw = pw[:1024] // bounded cost; such a password cannot match (see manage)
	}
	u, err := s.store.UserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, s.hasher.VerifyUnknownUser(ctx, pw)
	}
	if err != nil {
		return nil, false, err
	}
	ok, rehash, err := s.hasher.Verify(ctx, u.PasswordHash, pw)
	if err != nil {
		return u, false, err
	}
	if !ok || u.Disabled {
		return u, false, nil
	}
	if rehash {
		if h, err := s.hasher.Hash(ctx, pw); err == nil {
			if err := s.store.SetPasswordHash(ctx, u.ID, h, s.now()); err != nil {
				slog.ErrorContext(ctx, "upgrading a password hash failed", "user_id", u.ID, "error", err)
			}
		}
	}
	return u, true, nil
}

// failed is the one place where a failed check of any factor in a login is
// counted: it audits it, reports it to the regulator (chk, from
// s.regulate: the account's and the network's delays) and, past
// maxFailuresPerLogin, ends the login. The counts are atomic in the
// pending-login store, so concurrent guesses are all counted. It reports
// whether the caller should show its form again.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, l *loaded, chk *regulation.Check, ev storage.AuditEvent) bool {
	ctx := r.Context()
	s.audit(ctx, r, ev)
	if _, err := s.rejected(ctx, r, chk, ev.UserID, ev.Username); err != nil {
		s.serverError(w, r, err)
		return false
	}
	n, err := s.pending.Incr(ctx, failuresKey(l.ID), s.cfg.Session.LoginTimeout)
	if err != nil {
		s.serverError(w, r, err)
		return false
	}
	if n >= maxFailuresPerLogin {
		if err := s.authRequests.delete(ctx, l.ID); err != nil {
			slog.ErrorContext(ctx, "deleting pending login failed", "error", err)
		}
		s.startOver(w, r, l.ClientID, http.StatusTooManyRequests, "Too many attempts",
			"There were too many failed attempts in this login.")
		return false
	}
	return true
}

func failuresKey(loginID string) string { return "ar-failures:" + loginID }

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	l, c := s.stepForm(w, r, stepConsent)
	if l == nil {
		return
	}
	ctx := r.Context()
	switch r.PostForm.Get("decision") {
	case "allow":
		granted, err := s.store.ConsentedScopes(ctx, l.UserID, l.ClientID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		for _, sc := range l.Scopes {
			if !slices.Contains(granted, sc) {
				granted = append(granted, sc)
			}
		}
		if err := s.store.GrantConsent(ctx, l.UserID, l.ClientID, granted, s.now()); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.audit(ctx, r, storage.AuditEvent{Type: "consent.granted", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
			Result: "success", Details: map[string]string{"scopes": strings.Join(l.Scopes, " ")}})
		l.Step = stepDone
		if err := s.authRequests.update(ctx, l); err != nil {
			s.loginFailed(w, r, l.ClientID, err)
			return
		}
		s.loginSucceeded(ctx, r, l)
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
	case "deny":
		s.audit(ctx, r, storage.AuditEvent{Type: "consent.denied", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID, Result: "failure"})
		s.abort(w, r, l, oidc.ErrAccessDenied().WithDescription("the user denied access"))
	default:
		s.showConsent(w, r, l, c, s.browserID(w, r, false))
	}
}

// loginFailed answers for a login that cannot go on: expired, unknown, or
// changed under our feet.
func (s *Server) loginFailed(w http.ResponseWriter, r *http.Request, clientID string, err error) {
	switch {
	case errors.Is(err, errLoginExpired):
		s.startOver(w, r, clientID, http.StatusBadRequest, "Your login took too long",
			"Your login took too long and has expired.")
	case errors.Is(err, errLoginChanged):
		s.startOver(w, r, clientID, http.StatusConflict, "This login moved on",
			"This login was continued in another window.")
	case errors.Is(err, storage.ErrNotFound):
		s.errorPage(w, r, http.StatusBadRequest, "Unknown application",
			"The application that sent you here is no longer registered with this sign-in service.", err)
	default:
		s.serverError(w, r, err)
	}
}

// startOver shows why the login ended and leads back to the portal.
func (s *Server) startOver(w http.ResponseWriter, r *http.Request, clientID string, status int, heading, why string) {
	page := templates.ErrorPage{Base: templates.Base{Title: heading}, Status: status, Heading: heading,
		Message: why + " Go back to your portal and log in again."}
	if clientID != "" {
		if c, err := s.store.ClientByID(r.Context(), clientID); err == nil {
			if link := portalLink(c); link != "" {
				page.LinkURL, page.LinkText = link, "Back to "+clientName(c)
			}
		}
	}
	s.render(w, r, status, page)
}

func (s *Server) wrongBrowser(w http.ResponseWriter, r *http.Request, l *loaded) {
	slog.InfoContext(r.Context(), "pending login used from another browser", "client_id", l.ClientID)
	s.startOver(w, r, l.ClientID, http.StatusBadRequest, "Start again from your portal",
		"This login was started in another browser or window.")
}

// errConsentRequired is OIDC's consent_required, which the library lacks.
func errConsentRequired() *oidc.Error {
	return &oidc.Error{ErrorType: "consent_required", Description: "the user has not consented to this client"}
}
