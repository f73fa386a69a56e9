// Command portal-demo is a sample Client Portal: the reference integration of a
// relying party with the provider.
//
// It logs a user in with the authorization code flow (PKCE S256, state and
// nonce), verifies the ID token, keeps the tokens in a server-side session,
// shows the ID token's claims, asks for a second factor (acr_values=mfa) or a
// fresh password (prompt=login), refreshes the tokens, and logs out at the
// provider (RP-initiated logout).
//
// Usage:
//
//	portal-demo [--listen ADDR] [--issuer URL] [--client-id ID]
//	            [--redirect-url URL] [--post-logout-url URL]
//
// Every flag falls back to an environment variable (PORTAL_LISTEN,
// PORTAL_ISSUER, PORTAL_CLIENT_ID, PORTAL_CLIENT_SECRET, PORTAL_REDIRECT_URL,
// PORTAL_POST_LOGOUT_URL). Pass the client secret in PORTAL_CLIENT_SECRET
// rather than --client-secret, which other users of the machine can read in
// the process list. Without a secret the portal is a public client and relies
// on PKCE alone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// discoveryWait is how long start-up keeps asking for the provider's
// discovery document: under `make run` the provider starts next to the
// portal and may not be listening yet.
const discoveryWait = 30 * time.Second

// config is what the flags and environment decide.
type config struct {
	Listen        string
	Issuer        string
	ClientID      string
	ClientSecret  string // never logged or printed
	RedirectURL   string
	PostLogoutURL string
}

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	err := run(ctx, os.Args[1:], os.Getenv, logger)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if errors.Is(err, context.Canceled) {
		logger.Info("stopped before the provider was found")
		return
	}
	if err != nil {
		logger.Error("portal-demo stopped", "err", err)
		stop()
		os.Exit(1)
	}
}

// run starts the portal and serves until ctx is cancelled, then shuts down
// gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger) error {
	cfg, err := parseConfig(args, getenv, os.Stderr)
	if err != nil {
		return err
	}
	logger.Info("starting portal-demo",
		"listen", cfg.Listen,
		"issuer", cfg.Issuer,
		"client_id", cfg.ClientID,
		"client_secret_set", cfg.ClientSecret != "",
		"redirect_url", cfg.RedirectURL,
		"post_logout_url", cfg.PostLogoutURL)

	// One client, with a timeout, for every call to the provider: discovery,
	// JWKS, token requests.
	client := &http.Client{Timeout: 10 * time.Second}
	provider, err := discover(oidc.ClientContext(ctx, client), cfg.Issuer, discoveryWait, time.Second, logger)
	if err != nil {
		return err
	}
	p, err := newPortal(cfg, provider, client, logger)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (set --listen or PORTAL_LISTEN): %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           p.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// Cookies are bound to the host name, so the portal must be opened on the
	// host of the redirect URL (localhost and 127.0.0.1 are different hosts).
	logger.Info("portal-demo ready: open it in a browser", "url", p.homeURL)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// parseConfig reads the flags; a flag that is not given takes its value from
// the environment, then from the default.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var cfg config
	fs := flag.NewFlagSet("portal-demo", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&cfg.Listen, "listen", envOr("PORTAL_LISTEN", "127.0.0.1:8081"), "address to listen on (env PORTAL_LISTEN)")
	fs.StringVar(&cfg.Issuer, "issuer", envOr("PORTAL_ISSUER", "http://localhost:8080"), "the provider's issuer URL (env PORTAL_ISSUER)")
	fs.StringVar(&cfg.ClientID, "client-id", envOr("PORTAL_CLIENT_ID", "portal-demo"), "client ID registered at the provider (env PORTAL_CLIENT_ID)")
	// The secret's default stays empty so that -h never prints it; the
	// environment is read after parsing.
	fs.StringVar(&cfg.ClientSecret, "client-secret", "", "client secret; prefer the environment variable PORTAL_CLIENT_SECRET (empty: public client)")
	fs.StringVar(&cfg.RedirectURL, "redirect-url", envOr("PORTAL_REDIRECT_URL", "http://localhost:8081/callback"), "redirect URI registered at the provider; its path serves the callback (env PORTAL_REDIRECT_URL)")
	fs.StringVar(&cfg.PostLogoutURL, "post-logout-url", envOr("PORTAL_POST_LOGOUT_URL", "http://localhost:8081/"), "post-logout redirect URI registered at the provider (env PORTAL_POST_LOGOUT_URL)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q: portal-demo takes only flags", fs.Arg(0))
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = getenv("PORTAL_CLIENT_SECRET")
	}

	var errs []error
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("--client-id (PORTAL_CLIENT_ID) must not be empty"))
	}
	for _, u := range []struct{ flag, value string }{
		{"--issuer (PORTAL_ISSUER)", cfg.Issuer},
		{"--redirect-url (PORTAL_REDIRECT_URL)", cfg.RedirectURL},
		{"--post-logout-url (PORTAL_POST_LOGOUT_URL)", cfg.PostLogoutURL},
	} {
		if err := checkAbsoluteURL(u.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.flag, err))
		}
	}
	if u, err := url.Parse(cfg.RedirectURL); err == nil && reservedPaths[u.Path] {
		errs = append(errs, fmt.Errorf("--redirect-url (PORTAL_REDIRECT_URL): path %q is taken by another page of the portal; use /callback", u.Path))
	}
	return cfg, errors.Join(errs...)
}

func checkAbsoluteURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http(s) URL", s)
	}
	return nil
}

// discover fetches the provider's discovery document, retrying for up to wait
// while the provider is unreachable or not ready.
func discover(ctx context.Context, issuer string, wait, retryEvery time.Duration, logger *slog.Logger) (*oidc.Provider, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for attempt := 1; ; attempt++ {
		provider, err := oidc.NewProvider(ctx, issuer)
		if err == nil {
			logger.Info("provider discovered", "issuer", issuer)
			return provider, nil
		}
		// A wrong issuer is a configuration mistake, not a slow start.
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("the provider at %s calls itself %s: set --issuer (PORTAL_ISSUER) to the provider's issuer: %w", issuer, mismatch.Discovered, err)
		}
		logger.Info("provider not ready yet, retrying", "issuer", issuer, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, ctx.Err() // stopped by a signal: not a failure to report
			}
			return nil, fmt.Errorf("no discovery document at %s/.well-known/openid-configuration within %s (is the provider running? set --issuer or PORTAL_ISSUER): %w", issuer, wait, err)
		case <-time.After(retryEvery):
		}
	}
}
