package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/signing"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/templates"
)

// Options are the server's dependencies.
type Options struct {
	Config  *config.Config
	Store   storage.Store
	Pending pending.Store
	Keys    *secret.Keys
	Signing *signing.Set
	Hasher  *password.Hasher
	Pages   *templates.Pages
	// SMS sends text messages; nil when sms.provider is none (SMS is then
	// offered nowhere).
	SMS SMSSender
	// Mail sends e-mail; nil when email.provider is none (no password
	// reset, no e-mail change, no notifications).
	Mail MailSender
	// Now is the clock; time.Now when nil. Tests inject their own.
	Now func() time.Time
}

// Server is the provider's HTTP handler.
type Server struct {
	cfg     *config.Config
	store   storage.Store
	pending pending.Store
	keys    *secret.Keys
	signing *signing.Set
	hasher  *password.Hasher
	pages   *templates.Pages
	sms     SMSSender
	phones  *manage.PhonePolicy
	proxies []*net.IPNet // trusted_proxies
	// proxyWarned: the warning that a proxy is missing from
	// trusted_proxies was logged (once per process).
	proxyWarned  atomic.Bool
	regulator    *regulation.Regulator
	clients      clientCache
	webauthn     *mfa.WebAuthn // nil when the relying party id is not a domain
	mail         MailSender
	mailSlots    chan struct{}
	mailHealth   mailHealth
	jobs         sync.WaitGroup
	now          func() time.Time
	authRequests authRequests
	provider     *op.Provider
	handler      http.Handler
	keyDocuments *keyDocuments // the JWKS and discovery, marshalled
	cors         *cors.Cors    // the library's CORS policy, for the routes taken from it (/keys)
	metrics      *metrics
	cookies      cookieNames
	origins      originCache
}

// maxFailuresPerLogin ends a pending login after this many failed checks
// of any factor; the user starts over from the portal.
const maxFailuresPerLogin = 5

// New builds the server.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Store == nil || o.Pending == nil || o.Keys == nil || o.Signing == nil || o.Hasher == nil || o.Pages == nil {
		return nil, errors.New("idp: every dependency in Options must be set")
	}
	s := &Server{
		cfg: o.Config, store: o.Store, pending: o.Pending, keys: o.Keys, signing: o.Signing,
		hasher: o.Hasher, pages: o.Pages, sms: o.SMS, mail: o.Mail, now: o.Now,
		mailSlots: make(chan struct{}, mailInFlight),
	}
	phones, err := manage.NewPhonePolicy(o.Config.SMS.AllowedCountries)
	if err != nil {
		return nil, fmt.Errorf("sms.allowed_countries: %w", err)
	}
	s.phones = phones
	if wa, err := newWebAuthn(o.Config); err != nil {
		slog.Warn("security keys and passkeys are off: "+err.Error(), "webauthn.rp_id", o.Config.RPID())
	} else {
		s.webauthn = wa
	}
	for _, p := range o.Config.TrustedProxies {
		n, err := config.ParseProxy(p)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		s.proxies = append(s.proxies, n)
	}
	if s.now == nil {
		s.now = time.Now
	}
	reg, err := regulation.New(s.pending, regulationConfig(o.Config), s.now)
	if err != nil {
		return nil, fmt.Errorf("regulation: %w", err)
	}
	reg.UnlockedSince = s.unlockedSince
	s.regulator = reg
	s.authRequests = authRequests{store: s.pending, now: s.now}
	s.cookies = newCookieNames(strings.HasPrefix(s.cfg.Issuer, "https://"))
	s.origins = originCache{store: s.store, now: s.now}

	// The library's default CORS policy reflects any origin with
	// credentials; only registered portals' origins are allowed here.
	corsOptions := cors.Options{
		AllowOriginFunc:  s.origins.allowed,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Accept"},
		AllowCredentials: false,
	}
	s.cors = cors.New(corsOptions)
	opts := []op.Option{
		op.WithCrypto(accessTokenCrypto{keys: s.keys}),
		op.WithCORSOptions(&corsOptions),
		// An id_token_hint (authorize, end_session) is signed by one of our
		// keys, of any keys.algorithm; the library's default leaves EdDSA out.
		op.WithIDTokenHintVerifierOpts(op.WithSupportedIDTokenHintSigningAlgorithms(config.SigningAlgorithms...)),
	}
	if !strings.HasPrefix(s.cfg.Issuer, "https://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	provider, err := op.NewProvider(&op.Config{
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		DefaultLogoutRedirectURI: "/logged-out",
		SupportedUILocales:       []language.Tag{language.English},
		SupportedScopes:          standardScopes,
	}, oidcStorage{s}, op.StaticIssuer(s.cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("idp: creating the OpenID provider: %w", err)
	}
	s.provider = provider
	s.keyDocuments = &keyDocuments{keys: s.signing, build: s.buildKeyDocuments}
	if _, err := s.keyDocuments.get(); err != nil {
		return nil, err
	}

	s.metrics = newMetrics(provider)
	mux := http.NewServeMux()
	s.Mount(mux)
	mux.Handle("/", s.outageAware(provider))
	s.handler = securityHeaders(strings.HasPrefix(s.cfg.Issuer, "https://"),
		op.NewIssuerInterceptor(provider.IssuerFromRequest).Handler(s.metrics.instrument(mux)))
	return s, nil
}

// Mount registers the provider's own routes; the library serves the rest
// (token, userinfo, keys, introspection, revocation).
func (s *Server) Mount(mux *http.ServeMux) {
	// No method in these patterns: every method must meet our checks, not
	// fall through to the library's handlers.
	mux.HandleFunc("/authorize", s.handleAuthorize)
	mux.HandleFunc("/authorize/callback", s.handleCallback)
	mux.HandleFunc("/end_session", s.handleEndSession)
	mux.HandleFunc("/.well-known/openid-configuration", s.handleDiscovery)
	mux.Handle(s.provider.KeysEndpoint().Relative(), s.cors.Handler(http.HandlerFunc(s.handleJWKS)))
	mux.HandleFunc("/device_authorization", http.NotFound)
	mux.HandleFunc("GET /login", s.handleLogin)
	mux.HandleFunc("POST /login/password", s.handlePassword)
	mux.HandleFunc("POST /login/consent", s.handleConsent)
	mux.HandleFunc("POST /login/mfa", s.handleSecondFactor)
	mux.HandleFunc("GET /login/methods", s.handleMethods)
	mux.HandleFunc("GET /login/sms", s.handleSMSLoginForm)
	mux.HandleFunc("POST /login/sms", s.handleSMSLogin)
	mux.HandleFunc("POST /login/sms/send", s.handleSMSSend)
	mux.HandleFunc("GET /login/key", s.handleKeyLoginForm)
	mux.HandleFunc("POST /login/key/begin", s.handleKeyLoginBegin)
	mux.HandleFunc("POST /login/key", s.handleKeyLogin)
	mux.HandleFunc("POST /login/passkey/begin", s.handlePasskeyBegin)
	mux.HandleFunc("POST /login/passkey", s.handlePasskey)
	mux.HandleFunc("GET /password/forgot", s.handleForgotForm)
	mux.HandleFunc("POST /password/forgot", s.handleForgot)
	mux.HandleFunc("GET /password/reset", s.handleResetLink)
	mux.HandleFunc("GET /password/new", s.handleNewPasswordForm)
	mux.HandleFunc("POST /password/new", s.handleNewPassword)
	mux.HandleFunc("GET /login/recovery", s.handleRecoveryForm)
	mux.HandleFunc("POST /login/recovery", s.handleRecovery)
	mux.HandleFunc("POST /login/enrol", s.handleLoginEnrol)
	mux.HandleFunc("POST /login/continue", s.handleContinue)
	mux.HandleFunc("GET /account", s.handleAccount)
	mux.HandleFunc("POST /account/2fa/enable", s.handleEnable)
	mux.HandleFunc("GET /account/2fa/setup", s.handleSetup)
	mux.HandleFunc("POST /account/2fa/setup", s.handleSetupConfirm)
	mux.HandleFunc("GET /account/2fa/disable", s.handleConfirmForm("/account/2fa/disable"))
	mux.HandleFunc("POST /account/2fa/disable", s.handleDisable)
	mux.HandleFunc("GET /account/recovery-codes", s.handleConfirmForm("/account/recovery-codes"))
	mux.HandleFunc("POST /account/recovery-codes", s.handleRegenerate)
	mux.HandleFunc("POST /account/confirm/sms", s.handleConfirmSMS)
	mux.HandleFunc("POST /account/devices/forget", s.handleForgetDevices)
	mux.HandleFunc("GET /account/keys/add", s.handleAddKeyForm)
	mux.HandleFunc("POST /account/keys/add/begin", s.handleAddKeyBegin)
	mux.HandleFunc("POST /account/keys/add", s.handleAddKey)
	mux.HandleFunc("GET /account/keys/remove", s.handleRemoveKeyForm)
	mux.HandleFunc("POST /account/keys/remove", s.handleRemoveKey)
	mux.HandleFunc("GET /account/password", s.handleChangePasswordForm)
	mux.HandleFunc("POST /account/password", s.handleChangePassword)
	mux.HandleFunc("GET /account/email", s.handleChangeEmailForm)
	mux.HandleFunc("POST /account/email", s.handleChangeEmail)
	mux.HandleFunc("GET /account/email/confirm", s.handleConfirmEmailForm)
	mux.HandleFunc("POST /account/email/confirm", s.handleConfirmEmail)
	mux.HandleFunc("POST /account/phone", s.handlePhoneSave)
	mux.HandleFunc("POST /account/phone/verify", s.handlePhoneVerify)
	mux.HandleFunc("POST /account/phone/resend", s.handlePhoneResend)
	mux.HandleFunc("POST /account/phone/remove", s.handlePhoneRemove)
	mux.HandleFunc("POST /account/logout", s.handleAccountLogout)
	mux.HandleFunc("POST /logout", s.handleLogout)
	mux.HandleFunc("GET /logged-out", s.handleLoggedOut)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.Handle("GET /static/", http.StripPrefix("/static/", templates.Static()))
	mux.HandleFunc("GET /{$}", s.handleHome)
	s.mountAdmin(mux)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// maxBodyBytes bounds request bodies.
const maxBodyBytes = 64 << 10

// securityHeaders sets the headers every response carries. No page has
// inline script or style, so the policy can be strict.
func securityHeaders(https bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// Tokens, codes and forms must not be cached; discovery and static
		// files set their own policy.
		h.Set("Cache-Control", "no-store")
		// Every request body here is a small form or token request.
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		if https {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// buildDiscovery marshals the discovery document; algs gives its
// id_token_signing_alg_values_supported.
func (s *Server) buildDiscovery(algs op.DiscoverStorage) ([]byte, error) {
	ctx := op.ContextWithIssuer(context.Background(), s.cfg.Issuer)
	d := op.CreateDiscoveryConfig(ctx, s.provider, algs)
	// Only what is really offered: the code flow, refresh and client
	// credentials; no implicit flow, no JWT-profile grant.
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	d.ACRValuesSupported = []string{acrPassword, acrMFA}
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.RequestParameterSupported = false
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery)}
	d.DeviceAuthorizationEndpoint = ""
	return json.Marshal(d)
}

// acr values (SPEC.md): password only, or a second factor too.
const (
	acrPassword = "pwd"
	acrMFA      = "mfa"
)

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	docs := s.keyDocument(w, r, "the discovery document")
	if docs == nil {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Write(docs.discovery)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (s *Server) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := s.pending.Ping(ctx); err != nil {
		return fmt.Errorf("pending-login store: %w", err)
	}
	return nil
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.ready(r.Context()); err != nil {
		slog.WarnContext(r.Context(), "not ready", "error", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"status": "unavailable"})
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}

// handleHome sends people who open the provider itself to their account.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// manage is the shared user operations, acting as the user themself.
func (s *Server) manage() *manage.Service {
	return &manage.Service{Store: s.store, Hasher: s.hasher, Phones: s.phones, MinPasswordLength: s.cfg.Password.MinLength, Now: s.now}
}

// newWebAuthn is the WebAuthn relying party of cfg: its id is
// webauthn.rp_id (default the issuer's host), its origin the issuer's.
func newWebAuthn(cfg *config.Config) (*mfa.WebAuthn, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	return mfa.NewWebAuthn(cfg.RPID(), cfg.TOTPIssuer(), u.Scheme+"://"+u.Host, cfg.WebAuthn.Passkeys)
}

// clientByID loads a relying party.
func (s *Server) clientByID(ctx context.Context, id string) (*client, error) {
	if id == "" || len(id) > 256 {
		return nil, fmt.Errorf("client %q: %w", id, storage.ErrNotFound)
	}
	now := s.now()
	if c, ok := s.clients.get(id, now); ok {
		return c, nil
	}
	c, err := s.store.ClientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	cl := newClient(c, s.cfg.Issuer+"/login", s.cfg.Tokens.IDTokenLifetime)
	s.clients.put(id, cl, now)
	return cl, nil
}

// render writes a page; a template failure is logged (the page was not
// written, so a plain error can still be).
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page templates.Page) {
	if err := s.pages.Render(w, status, page); err != nil {
		slog.ErrorContext(r.Context(), "rendering page failed", "error", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
	}
}

// errorPage shows a fixed, user-safe sentence; details go to the log only.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, message string, cause error) {
	if cause != nil {
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		slog.Log(r.Context(), level, "request failed", "path", r.URL.Path, "status", status, "error", cause)
	}
	s.render(w, r, status, templates.ErrorPage{
		Base:    templates.Base{Title: heading},
		Status:  status,
		Heading: heading,
		Message: message,
	})
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.metrics.serverError(err)
	switch {
	case errors.Is(err, password.ErrBusy):
		w.Header().Set("Retry-After", "5")
		s.errorPage(w, r, http.StatusServiceUnavailable, "Too busy", "The service is very busy right now. Please try again in a few seconds.", err)
	case unavailable(err):
		w.Header().Set("Retry-After", retryAfterUnavailable)
		s.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", msgUnavailable, err)
	default:
		s.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Something went wrong on our side. Please try again in a moment.", err)
	}
}

// What a request that found a store unavailable is told: the page's
// sentence and Retry-After (seconds).
const (
	msgUnavailable        = "The service is temporarily unavailable. Try again in a minute."
	retryAfterUnavailable = "60"
)

// unavailable reports whether err says a store could not be reached: the
// database, or the pending-login store (Redis), down, cut off or too slow.
// The same request may work in a minute, so it gets 503, not 500.
func unavailable(err error) bool {
	return errors.Is(err, storage.ErrUnavailable) || errors.Is(err, pending.ErrUnavailable)
}

// portalLink is where "back to the portal" goes: the origin of the
// client's first redirect URI.
func portalLink(c *storage.Client) string {
	if c == nil || len(c.RedirectURIs) == 0 {
		return ""
	}
	u, err := url.Parse(c.RedirectURIs[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/"
}

func clientName(c *storage.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// clientIP is the caller's address: the peer of the connection, or, when
// the peer is one of trusted_proxies, the right-most address in
// X-Forwarded-For that is not a trusted proxy (the left part of the
// header is whatever the client wrote, and is never believed).
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer := net.ParseIP(host)
	if peer == nil || !s.trustedProxy(peer) {
		// A forwarded request from a private address is most likely a
		// proxy that trusted_proxies does not list: every client behind it
		// then counts as one network for the brute-force and SMS limits.
		if peer != nil && (peer.IsPrivate() || peer.IsLoopback()) && r.Header.Get("X-Forwarded-For") != "" &&
			s.proxyWarned.CompareAndSwap(false, true) {
			slog.Warn("a request forwarded (X-Forwarded-For) by a proxy that trusted_proxies does not list: "+
				"every client behind it counts as one network for the brute-force and SMS limits; list the proxy in trusted_proxies",
				"proxy", host)
		}
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip := net.ParseIP(strings.TrimSpace(hops[i]))
		if ip == nil {
			return host // a hop the proxies did not write: believe no further
		}
		if !s.trustedProxy(ip) {
			return ip.String()
		}
	}
	return host
}

func (s *Server) trustedProxy(ip net.IP) bool {
	for _, n := range s.proxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// audit writes a security event to the audit log and to the log. Failing
// to write it is logged, not fatal for the user's request.
func (s *Server) audit(ctx context.Context, r *http.Request, e storage.AuditEvent) {
	e.Time = s.now()
	if e.Actor == "" {
		e.Actor = "user"
	}
	if r != nil {
		e.IP = s.clientIP(r)
		e.UserAgent = r.UserAgent()
	}
	if err := s.store.AppendAudit(ctx, &e); err != nil {
		slog.ErrorContext(ctx, "writing audit event failed", "type", e.Type, "error", err)
	}
	slog.InfoContext(ctx, "audit", "type", e.Type, "result", e.Result, "user_id", e.UserID, "username", e.Username,
		"client_id", e.ClientID, "ip", e.IP, "details", e.Details)
	s.metrics.observe(e)
	s.notify(e)
}

// revokeFamily revokes a login's refresh tokens and the access tokens made
// with them.
func (s *Server) revokeFamily(ctx context.Context, familyID string) error {
	if err := s.store.RevokeRefreshTokenFamily(ctx, familyID, s.now()); err != nil {
		return err
	}
	return s.store.RevokeAccessToken(ctx, familyRevocationID(familyID), s.now().Add(s.cfg.Tokens.AccessTokenLifetime+time.Minute))
}

func (s *Server) refreshTokenReused(ctx context.Context, familyID, userID, clientID string) {
	if err := s.revokeFamily(ctx, familyID); err != nil {
		slog.ErrorContext(ctx, "revoking a reused refresh token's family failed", "error", err)
	}
	s.audit(ctx, nil, storage.AuditEvent{Type: "token.refresh_reused", Actor: "system", UserID: userID, ClientID: clientID,
		Result: "failure", Details: map[string]string{"action": "revoked every refresh token of this login"}})
}

// originCache answers CORS checks from the registered redirect URIs'
// origins, reread at most every 30 seconds.
type originCache struct {
	store storage.Clients
	now   func() time.Time

	mu      sync.Mutex
	origins []string
	loaded  time.Time
}

func (c *originCache) allowed(origin string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now().Sub(c.loaded) > 30*time.Second {
		clients, err := c.store.ListClients(context.Background())
		if err != nil {
			slog.Error("loading client origins for CORS failed", "error", err)
			return slices.Contains(c.origins, origin)
		}
		var origins []string
		for _, cl := range clients {
			for _, raw := range cl.RedirectURIs {
				if u, err := url.Parse(raw); err == nil && u.Host != "" {
					origins = append(origins, u.Scheme+"://"+u.Host)
				}
			}
		}
		c.origins, c.loaded = origins, c.now()
	}
	return slices.Contains(c.origins, origin)
}
