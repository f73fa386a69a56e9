package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	// sessionCookie holds the id of the server-side session: never a token.
	sessionCookie = "portal_session"
	// loginCookie holds the id of the login in progress (state, nonce and
	// PKCE verifier, kept server-side) between /login and the callback.
	loginCookie = "portal_login"
	// logoutCookie holds the state sent to the provider's end_session
	// endpoint, to recognise the provider's redirect back.
	logoutCookie = "portal_logout"

	sessionTTL = 8 * time.Hour
	// loginTTL bounds the time a user may spend at the provider's pages.
	loginTTL = 10 * time.Minute
	// clockSkew is how far the provider's clock may be behind the portal's
	// when the portal checks auth_time after prompt=login.
	clockSkew = time.Minute
)

// scopes asks for the standard claims and a refresh token.
var scopes = []string{oidc.ScopeOpenID, "profile", "email", "phone", oidc.ScopeOfflineAccess}

// reservedPaths are the portal's own pages, which the callback path must not
// shadow.
var reservedPaths = map[string]bool{"": true, "/": true, "/login": true, "/logout": true, "/refresh": true, "/static/style.css": true}

// portal is the relying party: it sends users to the provider to log in and
// keeps what comes back in server-side sessions.
type portal struct {
	issuer        string
	oauth         *oauth2.Config
	verifier      *oidc.IDTokenVerifier
	endSession    string // the provider's end_session_endpoint; empty if it has none
	postLogoutURL string
	callbackPath  string
	homeURL       string // the portal's home on the redirect URL's host
	canonicalHost string // host of the redirect URL: where the cookies live
	secureCookies bool   // set when the portal is served over https
	csp           string

	client   *http.Client // for token requests to the provider
	sessions *store[session]
	logins   *store[pendingLogin]
	pages    *pages
	log      *slog.Logger
	now      func() time.Time
}

// session is what the portal keeps about a logged-in user.
type session struct {
	token      *oauth2.Token   // access and refresh tokens; never sent to the browser
	rawIDToken string          // kept for id_token_hint at logout
	claims     json.RawMessage // the verified ID token's payload
	subject    string
	nonce      string // of the login, to check refreshed ID tokens
	csrf       string // token every form that changes state must carry
	notice     string // shown once on the next page
}

// pendingLogin is a login in progress: what the callback must find again.
type pendingLogin struct {
	state     string
	nonce     string
	verifier  string // PKCE code verifier
	acrValues string // "mfa" when the user asked for a second factor
	prompt    string // "login" when the user asked for a fresh password
	started   time.Time
}

// idClaims are the ID token claims the portal acts on; the page shows all
// of them.
type idClaims struct {
	Subject           string   `json:"sub"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email"`
	AuthTime          int64    `json:"auth_time"`
	AMR               []string `json:"amr"`
	ACR               string   `json:"acr"`
}

// newPortal builds the portal for a discovered provider.
func newPortal(cfg config, provider *oidc.Provider, client *http.Client, logger *slog.Logger) (*portal, error) {
	var meta struct {
		Issuer             string `json:"issuer"`
		EndSessionEndpoint string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read the provider's discovery document: %w", err)
	}
	if meta.EndSessionEndpoint == "" {
		logger.Warn("the provider publishes no end_session_endpoint: logout will end the portal's session only")
	}
	redirect, err := url.Parse(cfg.RedirectURL)
	if err != nil {
		return nil, fmt.Errorf("--redirect-url: %w", err)
	}
	pg, err := loadPages()
	if err != nil {
		return nil, err
	}

	oauthCfg := &oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     provider.Endpoint(),
		RedirectURL:  cfg.RedirectURL,
		Scopes:       scopes,
	}
	if cfg.ClientSecret == "" {
		// A public client authenticates with client_id in the body; PKCE
		// binds the code to this browser's login.
		oauthCfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}

	now := time.Now
	return &portal{
		issuer:   meta.Issuer,
		oauth:    oauthCfg,
		verifier: provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: now}),
		// The end_session_endpoint is not part of go-oidc's API: it comes
		// from the discovery document, as OpenID Connect RP-Initiated
		// Logout 1.0 defines.
		endSession:    meta.EndSessionEndpoint,
		postLogoutURL: cfg.PostLogoutURL,
		callbackPath:  redirect.Path,
		homeURL:       (&url.URL{Scheme: redirect.Scheme, Host: redirect.Host, Path: "/"}).String(),
		canonicalHost: redirect.Host,
		secureCookies: redirect.Scheme == "https",
		csp:           contentSecurityPolicy(oauthCfg.Endpoint.AuthURL, meta.EndSessionEndpoint),
		client:        client,
		sessions:      newStore[session](sessionTTL, now),
		logins:        newStore[pendingLogin](loginTTL, now),
		pages:         pg,
		log:           logger,
		now:           now,
	}, nil
}

// contentSecurityPolicy allows the portal's own stylesheet and nothing
// else: no script, no inline style. Forms may lead to the provider, since
// /login and /logout redirect there.
func contentSecurityPolicy(providerURLs ...string) string {
	formAction := []string{"'self'"}
	for _, s := range providerURLs {
		if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
			if origin := u.Scheme + "://" + u.Host; !slices.Contains(formAction, origin) {
				formAction = append(formAction, origin)
			}
		}
	}
	return "default-src 'none'; style-src 'self'; img-src 'self'; form-action " +
		strings.Join(formAction, " ") + "; frame-ancestors 'none'; base-uri 'none'"
}

// routes returns the portal's HTTP handler.
func (p *portal) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.handleHome)
	mux.HandleFunc("GET /login", p.handleLogin)
	mux.HandleFunc("GET "+p.callbackPath, p.handleCallback)
	mux.HandleFunc("POST /logout", p.handleLogout)
	mux.HandleFunc("POST /refresh", p.handleRefresh)
	mux.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, assets, "static/style.css")
	})
	return p.securityHeaders(mux)
}

func (p *portal) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", p.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		// The callback's URL carries the authorization code: never send it
		// on as a Referer.
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			// Pages show a user's claims: keep them out of shared caches and
			// the back-button cache after logout.
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// handleHome shows the login button, or the logged-in user's claims.
func (p *portal) handleHome(w http.ResponseWriter, r *http.Request) {
	data := homePage{}
	if state := r.URL.Query().Get("state"); state != "" {
		// The provider sends the user back here after logout, with the
		// state the portal gave it.
		if c, err := r.Cookie(logoutCookie); err == nil && equal(c.Value, state) {
			data.Notice = "You are logged out of the portal and of the provider."
		}
		p.clearCookie(w, logoutCookie, "/")
	}

	id, s, ok := p.currentSession(r)
	if !ok {
		p.pages.render(w, r, http.StatusOK, "home", data, p.log)
		return
	}
	if s.notice != "" {
		data.Notice = s.notice
		s.notice = ""
		p.sessions.replace(id, s)
	}
	data.LoggedIn = true
	data.CSRF = s.csrf
	data.AccountURL = strings.TrimRight(p.issuer, "/") + "/account"
	data.HasRefreshToken = s.token.RefreshToken != ""
	data.AccessTokenExpiry = s.token.Expiry
	if err := fillClaims(&data, s.claims); err != nil {
		p.log.Error("show claims", "err", err)
		p.showError(w, r, http.StatusInternalServerError, errorPage{
			Title:   "Something went wrong",
			Message: "The portal could not show your details.",
		})
		return
	}
	p.pages.render(w, r, http.StatusOK, "home", data, p.log)
}

// handleLogin starts a login at the provider. It takes two optional
// parameters that a portal uses to ask for a stronger login:
// acr_values=mfa (a second factor) and prompt=login (a fresh password).
func (p *portal) handleLogin(w http.ResponseWriter, r *http.Request) {
	// The login cookie must be set on the host the provider redirects back
	// to, or the callback would not find it.
	if r.Host != p.canonicalHost {
		u := url.URL{Scheme: "http", Host: p.canonicalHost, Path: "/login", RawQuery: r.URL.RawQuery}
		if p.secureCookies {
			u.Scheme = "https"
		}
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	}

	q := r.URL.Query()
	login := pendingLogin{
		state:     rand.Text(),
		nonce:     rand.Text(),
		verifier:  oauth2.GenerateVerifier(),
		acrValues: q.Get("acr_values"),
		prompt:    q.Get("prompt"),
		started:   p.now(),
	}
	// Only what the portal's buttons send: anything else is a mistake.
	if (login.acrValues != "" && login.acrValues != "mfa") || (login.prompt != "" && login.prompt != "login") {
		p.showError(w, r, http.StatusBadRequest, errorPage{
			Title:    "Unsupported login request",
			Message:  "The portal asks the provider only for acr_values=mfa or prompt=login.",
			RetryURL: "/login",
		})
		return
	}

	opts := []oauth2.AuthCodeOption{
		oidc.Nonce(login.nonce),
		oauth2.S256ChallengeOption(login.verifier),
	}
	if login.acrValues != "" {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", login.acrValues))
	}
	if login.prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", login.prompt))
	}

	id := p.logins.add(login)
	p.setCookie(w, loginCookie, id, p.callbackPath, loginTTL)
	http.Redirect(w, r, p.oauth.AuthCodeURL(login.state, opts...), http.StatusFound)
}

// handleCallback completes a login: the provider sends the user back here
// with a code, or with an error.
func (p *portal) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()

	// The login in progress is used once, whatever the outcome.
	var login pendingLogin
	found := false
	if c, err := r.Cookie(loginCookie); err == nil {
		login, found = p.logins.take(c.Value)
	}
	p.clearCookie(w, loginCookie, p.callbackPath)

	// state ties this response to a login that this browser started here:
	// without it an attacker could log the user in to the attacker's account.
	if !found || !equal(q.Get("state"), login.state) {
		p.log.Warn("login rejected: unknown or expired state", "login_found", found)
		p.showError(w, r, http.StatusBadRequest, errorPage{
			Title:    "This login has expired",
			Message:  "The portal does not recognise this login. It may have taken too long, or been started in another browser or tab.",
			RetryURL: "/login",
		})
		return
	}
	// RFC 9207: a provider that names itself must be the one the portal uses.
	if iss := q.Get("iss"); iss != "" && iss != p.issuer {
		p.log.Warn("login rejected: response from another issuer", "iss", iss)
		p.showError(w, r, http.StatusBadRequest, errorPage{
			Title:    "Login failed",
			Message:  "The response did not come from the portal's identity provider.",
			RetryURL: "/login",
		})
		return
	}

	if code := q.Get("error"); code != "" {
		p.log.Info("the provider returned an error", "error", code, "error_description", q.Get("error_description"))
		p.showError(w, r, http.StatusForbidden, providerErrorPage(code))
		return
	}

	ctx := oidc.ClientContext(r.Context(), p.client)
	tok, err := p.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(login.verifier))
	if err != nil {
		p.log.Error("exchange the authorization code", "err", describeTokenError(err))
		p.showError(w, r, http.StatusBadGateway, errorPage{
			Title:    "Login failed",
			Message:  "The portal could not complete the login with the identity provider.",
			RetryURL: "/login",
		})
		return
	}
	idToken, err := p.verifyIDToken(ctx, tok)
	if err == nil && !equal(idToken.token.Nonce, login.nonce) {
		// The nonce binds the ID token to this login: a token replayed from
		// another login does not carry it.
		err = errors.New("the ID token's nonce does not match the login's")
	}
	if err != nil {
		p.log.Error("verify the ID token", "err", err)
		p.showError(w, r, http.StatusBadGateway, errorPage{
			Title:    "Login failed",
			Message:  "The portal could not verify the identity provider's answer.",
			RetryURL: "/login",
		})
		return
	}
	claims := idToken.claims
	if page, ok := p.checkAuthentication(login, claims); !ok {
		p.showError(w, r, http.StatusForbidden, page)
		return
	}

	// A new session id at every login: an id planted before the login
	// (session fixation) is worth nothing after it.
	if c, err := r.Cookie(sessionCookie); err == nil {
		p.sessions.delete(c.Value)
	}
	id := p.sessions.add(session{
		token:      tok,
		rawIDToken: idToken.raw,
		claims:     idToken.all,
		subject:    claims.Subject,
		nonce:      login.nonce,
		csrf:       rand.Text(),
		notice:     loginNotice(login),
	})
	p.setCookie(w, sessionCookie, id, "/", 0)
	p.log.Info("user logged in", "sub", claims.Subject, "amr", claims.AMR, "acr", claims.ACR,
		"asked_acr", login.acrValues, "asked_prompt", login.prompt)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// verifiedIDToken is an ID token that passed every check.
type verifiedIDToken struct {
	raw    string // the compact JWT, kept for id_token_hint
	token  *oidc.IDToken
	claims idClaims
	all    json.RawMessage // every claim, for the page
}

// verifyIDToken checks the ID token that came with tok: signature, issuer,
// audience, expiry, and at_hash when the provider sets it. The caller checks
// the nonce, which differs between a login and a refresh.
func (p *portal) verifyIDToken(ctx context.Context, tok *oauth2.Token) (verifiedIDToken, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return verifiedIDToken{}, errors.New("the token response has no id_token")
	}
	t, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return verifiedIDToken{}, err
	}
	if t.AccessTokenHash != "" {
		if err := t.VerifyAccessToken(tok.AccessToken); err != nil {
			return verifiedIDToken{}, err
		}
	}
	v := verifiedIDToken{raw: raw, token: t}
	if err := t.Claims(&v.claims); err != nil {
		return verifiedIDToken{}, fmt.Errorf("read the ID token's claims: %w", err)
	}
	if err := t.Claims(&v.all); err != nil {
		return verifiedIDToken{}, fmt.Errorf("read the ID token's claims: %w", err)
	}
	return v, nil
}

// checkAuthentication holds the provider to what the portal asked for. The
// provider may treat acr_values as a wish (OpenID Connect Core calls it
// voluntary) and an existing session may satisfy a request without a new
// password, so a portal that needs a second factor or a fresh login checks
// the ID token itself.
func (p *portal) checkAuthentication(login pendingLogin, c idClaims) (errorPage, bool) {
	if login.acrValues == "mfa" && c.ACR != "mfa" {
		p.log.Warn("login rejected: second factor asked for but not used", "sub", c.Subject, "acr", c.ACR, "amr", c.AMR)
		return errorPage{
			Title:    "Second factor not confirmed",
			Message:  "The identity provider did not confirm a second factor for this login, so the portal did not accept it. Your earlier session, if any, is unchanged.",
			RetryURL: "/login?acr_values=mfa",
		}, false
	}
	if login.prompt == "login" && (c.AuthTime == 0 || time.Unix(c.AuthTime, 0).Before(login.started.Add(-clockSkew))) {
		p.log.Warn("login rejected: fresh login asked for but auth_time is older", "sub", c.Subject, "auth_time", c.AuthTime)
		return errorPage{
			Title:    "Fresh login not confirmed",
			Message:  "The identity provider did not confirm that you entered your password again, so the portal did not accept this login. Your earlier session, if any, is unchanged.",
			RetryURL: "/login?prompt=login",
		}, false
	}
	return errorPage{}, true
}

func loginNotice(login pendingLogin) string {
	switch {
	case login.acrValues == "mfa":
		return "Second factor confirmed: the provider says acr=mfa."
	case login.prompt == "login":
		return "You logged in again: auth_time is new."
	}
	return ""
}

// handleLogout ends the portal's session and sends the user to the
// provider's end_session_endpoint to end the session there too.
func (p *portal) handleLogout(w http.ResponseWriter, r *http.Request) {
	id, s, ok := p.currentSession(r)
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !p.checkCSRF(w, r, s) {
		return
	}
	p.sessions.delete(id)
	p.clearCookie(w, sessionCookie, "/")
	p.log.Info("user logged out", "sub", s.subject)

	if p.endSession == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		p.log.Error("parse end_session_endpoint", "err", err)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	state := rand.Text()
	v := u.Query()
	// id_token_hint tells the provider whose session to end, and lets it
	// redirect back without asking; the post-logout URI must be registered
	// for the client.
	v.Set("id_token_hint", s.rawIDToken)
	v.Set("post_logout_redirect_uri", p.postLogoutURL)
	v.Set("client_id", p.oauth.ClientID)
	v.Set("state", state)
	u.RawQuery = v.Encode()
	p.setCookie(w, logoutCookie, state, "/", loginTTL)
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// handleRefresh uses the refresh token (refresh_token grant) and shows the
// new ID token's claims.
func (p *portal) handleRefresh(w http.ResponseWriter, r *http.Request) {
	id, s, ok := p.currentSession(r)
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !p.checkCSRF(w, r, s) {
		return
	}
	if s.token.RefreshToken == "" {
		s.notice = "The provider issued no refresh token (the offline_access scope was not granted)."
		p.sessions.replace(id, s)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}

	ctx := oidc.ClientContext(r.Context(), p.client)
	// A token without an access token counts as expired, so the token
	// source goes straight to the refresh_token grant.
	tok, err := p.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: s.token.RefreshToken}).Token()
	if err != nil {
		p.log.Warn("refresh tokens", "sub", s.subject, "err", describeTokenError(err))
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			// The provider no longer honours the refresh token (expired,
			// revoked, or reused): the login behind it is over.
			p.sessions.delete(id)
			p.clearCookie(w, sessionCookie, "/")
			p.showError(w, r, http.StatusUnauthorized, errorPage{
				Title:    "Your session has ended",
				Message:  "The identity provider no longer accepts this session. Log in again.",
				RetryURL: "/login",
			})
			return
		}
		s.notice = "The portal could not refresh the tokens. Try again later."
		p.sessions.replace(id, s)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}

	s.token = tok
	s.notice = "Tokens refreshed. The provider sent no new ID token, so the claims below are unchanged."
	if _, ok := tok.Extra("id_token").(string); ok {
		idToken, err := p.verifyIDToken(ctx, tok)
		if err == nil {
			err = checkRefreshedIDToken(s, idToken.token)
		}
		if err != nil {
			p.log.Error("verify the refreshed ID token", "sub", s.subject, "err", err)
			p.sessions.delete(id)
			p.clearCookie(w, sessionCookie, "/")
			p.showError(w, r, http.StatusBadGateway, errorPage{
				Title:    "Refresh failed",
				Message:  "The portal could not verify the identity provider's answer, and has logged you out.",
				RetryURL: "/login",
			})
			return
		}
		s.rawIDToken = idToken.raw
		s.claims = idToken.all
		s.notice = "Tokens refreshed. The claims below are from the new ID token."
	}
	if !p.sessions.replace(id, s) {
		// The session ended (logout in another tab) during the refresh.
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	p.log.Info("tokens refreshed", "sub", s.subject)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// checkRefreshedIDToken applies OpenID Connect Core 12.2: an ID token from a
// refresh is about the same user, and carries the login's nonce if any.
func checkRefreshedIDToken(s session, t *oidc.IDToken) error {
	if t.Subject != s.subject {
		return errors.New("the refreshed ID token names another subject")
	}
	if t.Nonce != "" && !equal(t.Nonce, s.nonce) {
		return errors.New("the refreshed ID token carries another nonce")
	}
	return nil
}

// currentSession returns the session named by the request's cookie.
func (p *portal) currentSession(r *http.Request) (string, session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", session{}, false
	}
	s, ok := p.sessions.get(c.Value)
	return c.Value, s, ok
}

// checkCSRF reports whether the form carries the session's CSRF token, and
// answers 403 when it does not. SameSite=Lax cookies already stop most
// cross-site posts; the token also covers old browsers and sibling sites.
func (p *portal) checkCSRF(w http.ResponseWriter, r *http.Request, s session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if equal(r.PostFormValue("csrf"), s.csrf) {
		return true
	}
	p.log.Warn("form rejected: missing or wrong CSRF token", "path", r.URL.Path)
	p.showError(w, r, http.StatusForbidden, errorPage{
		Title:   "Request refused",
		Message: "This form has expired. Go back to the portal and try again.",
	})
	return false
}

func (p *portal) setCookie(w http.ResponseWriter, name, value, path string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     path,
		MaxAge:   int(maxAge.Seconds()), // 0: until the browser closes
		HttpOnly: true,
		Secure:   p.secureCookies,
		// Lax, not Strict: the provider's redirect back to the callback is
		// a cross-site navigation that must carry the login cookie.
		SameSite: http.SameSiteLaxMode,
	})
}

func (p *portal) clearCookie(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Path: path, MaxAge: -1,
		HttpOnly: true, Secure: p.secureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (p *portal) showError(w http.ResponseWriter, r *http.Request, status int, page errorPage) {
	p.pages.render(w, r, status, "error", page, p.log)
}

// providerErrorPage explains an error the provider sent back (RFC 6749
// 4.1.2.1, OpenID Connect Core 3.1.2.6) in words for the user.
func providerErrorPage(code string) errorPage {
	page := errorPage{Title: "Login failed", RetryURL: "/login", ErrorCode: code}
	switch code {
	case "access_denied":
		page.Title = "You are not logged in"
		page.Message = "The login was cancelled or access was denied, so the portal did not receive your details. You can try again whenever you like."
	case "login_required", "interaction_required", "consent_required", "account_selection_required":
		page.Message = "The identity provider needs you to log in again."
	case "temporarily_unavailable", "server_error":
		page.Message = "The identity provider could not log you in just now. Try again in a moment."
	default:
		page.Message = "The identity provider could not log you in."
	}
	return page
}

// describeTokenError keeps a token endpoint error short for the log: the
// error code and description, not the response body.
func describeTokenError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := ""
		if re.Response != nil {
			status = re.Response.Status
		}
		return fmt.Sprintf("token endpoint answered %s: error=%q error_description=%q", status, re.ErrorCode, re.ErrorDescription)
	}
	return err.Error()
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
