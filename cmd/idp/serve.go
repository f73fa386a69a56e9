package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/idp"
	"github.com/hostportal/idp/mail"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa/sms"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/signing"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/storage/pending/redisstore"
	"github.com/hostportal/idp/templates"
)

// The demo that `make run` sets up (only with --demo).
const (
	demoUsername     = "demo"
	demoPassword     = "demo-password"
	demoClientID     = "portal-demo"
	demoClientSecret = "demo-portal-secret-for-local-use-only"
	demoPortalURL    = "http://localhost:8081"
)

func newServeCommand(c *cli) *cobra.Command {
	var demo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the identity provider",
		Long: `Run the identity provider. It migrates the database first, creates the
first signing key if there is none, and syncs the clients declared in the
configuration file. SIGTERM or SIGINT stops it gracefully.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error { return c.serve(cmd.Context(), demo) },
	}
	cmd.Flags().BoolVar(&demo, "demo", false, "create the demo user and the sample portal's client when missing (make run)")
	return cmd
}

func (c *cli) serve(ctx context.Context, demo bool) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(cfg, c.stderr)
	slog.SetDefault(log) // zitadel/oidc logs through the default logger
	tuneGC(c.getenv)

	generatedKey := len(cfg.SecretKeyBytes()) == 0
	keys, err := c.secretKeys(cfg)
	if err != nil {
		return err
	}
	st, _, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	var pend pending.Store
	if cfg.Redis.URL != "" {
		rs, err := redisstore.OpenWithTimeout(cfg.Redis.URL, cfg.Redis.KeyPrefix, cfg.Redis.Timeout)
		if err != nil {
			return fmt.Errorf("redis.url: %w", err)
		}
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = rs.Ping(pingCtx)
		cancel()
		if err != nil {
			rs.Close()
			return fmt.Errorf("cannot reach Redis at redis.url (IDP_REDIS_URL): %w", err)
		}
		pend = rs
	} else {
		pend = pending.NewMemory()
	}
	defer pend.Close()

	a := cfg.Password.Argon2
	hasher, err := password.NewHasher(password.Params{MemoryKiB: a.MemoryKiB, Iterations: a.Iterations, Parallelism: a.Parallelism}, 0, 0)
	if err != nil {
		return err
	}
	now := time.Now
	rot, err := signing.EnsureActive(ctx, st, keys, cfg.Keys.Algorithm, now(), retireFor(cfg))
	if err != nil {
		return fmt.Errorf("signing key of keys.algorithm %s: %w", cfg.Keys.Algorithm, err)
	}
	logRotation(log, rot, now().Add(retireFor(cfg)))
	keySet := &signing.Set{Store: st, Keys: keys, Now: now}
	if err := keySet.Load(ctx); err != nil {
		return err
	}

	phones, err := manage.NewPhonePolicy(cfg.SMS.AllowedCountries)
	if err != nil {
		return fmt.Errorf("sms.allowed_countries: %w", err)
	}
	svc := &manage.Service{Store: st, Hasher: hasher, Phones: phones, MinPasswordLength: cfg.Password.MinLength, Now: now, Log: log}
	if err := svc.SyncConfigClients(ctx, cfg.Clients); err != nil {
		return fmt.Errorf("clients in the configuration file: %w", err)
	}
	if demo {
		if err := seedDemo(ctx, svc, c.getenv("PORTAL_CLIENT_SECRET")); err != nil {
			return err
		}
	}

	pages, err := templates.Load()
	if err != nil {
		return fmt.Errorf("the binary's page templates are broken: %w", err)
	}
	sender, err := sms.FromConfig(cfg.SMS, log)
	if err != nil {
		return err
	}
	opts := idp.Options{Config: cfg, Store: st, Pending: pend, Keys: keys, Signing: keySet, Hasher: hasher, Pages: pages}
	if sender != nil {
		opts.SMS = sender
	}
	if err := mail.Load(); err != nil {
		return fmt.Errorf("the binary's e-mail templates are broken: %w", err)
	}
	mailer, err := mail.FromConfig(cfg.Email, log)
	if err != nil {
		return err
	}
	if mailer != nil {
		opts.Mail = mailer
	}
	srv, err := idp.New(opts)
	if err != nil {
		return err
	}

	warnInsecure(log, cfg, generatedKey)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (listen, IDP_LISTEN): %w", cfg.Listen, err)
	}
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go keySet.Run(runCtx, cfg.Keys.ReloadInterval)
	go cleanup(runCtx, st, now, cfg.Audit.Retention)

	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	log.Info("identity provider started", "issuer", cfg.Issuer, "listen", ln.Addr().String(),
		"database", databaseKind(cfg.Database.URL), "pending_logins", pendingKind(cfg))
	if demo {
		fmt.Fprintf(c.stdout, "\n  Identity provider: %s\n  Sample portal:     %s\n  Log in as %q with the password %q.\n\n",
			cfg.Issuer, demoPortalURL, demoUsername, demoPassword)
	}

	select {
	case err := <-served:
		return fmt.Errorf("the HTTP server stopped: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	srv.Wait() // e-mails still being sent
	return nil
}

func newLogger(cfg *config.Config, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func warnInsecure(log *slog.Logger, cfg *config.Config, generatedKey bool) {
	if strings.HasPrefix(cfg.Issuer, "http://") {
		log.Warn("the issuer uses plain http: fine on localhost, never in production (issuer)")
	}
	if generatedKey {
		log.Warn("secret_key is not configured: using the key in " + cfg.DataDir + "/secret.key; back it up, and set secret_key (IDP_SECRET_KEY) on every instance")
	}
	if cfg.Email.Provider == "console" {
		log.Warn("e-mails (password reset links) are written to this log (email.provider: console): for development only")
	}
	if cfg.SMS.Provider == "console" {
		log.Warn("SMS codes are written to this log (sms.provider: console): for development only")
	}
	if cfg.Redis.URL == "" {
		log.Warn("pending logins are kept in this process (redis.url is empty): run a single instance only")
	}
}

// cleanup removes expired refresh tokens, revocations and retired keys,
// and audit events older than auditRetention (0: kept forever), every hour.
func cleanup(ctx context.Context, st storage.Store, now func() time.Time, auditRetention time.Duration) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cleanupOnce(ctx, st, now(), auditRetention)
	}
}

// cleanupOnce is one round of cleanup: each kind on its own, so that one
// failing does not stop the others. Every instance runs it; the deletions
// are idempotent.
func cleanupOnce(ctx context.Context, st storage.Store, now time.Time, auditRetention time.Duration) {
	type task struct {
		what   string
		run    func(context.Context, time.Time) (int64, error)
		before time.Time // what ended (or happened) before this goes
		always bool      // log the count even when nothing was deleted
	}
	tasks := []task{
		{what: "refresh tokens", run: st.DeleteExpiredRefreshTokens, before: now},
		{what: "access token revocations", run: st.DeleteExpiredRevocations, before: now},
		{what: "signing keys", run: st.DeleteExpiredKeys, before: now},
	}
	if auditRetention > 0 {
		// Logged every hour, so that operators see the retention at work.
		tasks = append(tasks, task{what: "audit events", run: st.DeleteAuditBefore, before: now.Add(-auditRetention), always: true})
	}
	for _, tk := range tasks {
		n, err := tk.run(ctx, tk.before)
		switch {
		case err != nil:
			slog.ErrorContext(ctx, "cleanup failed", "what", tk.what, "error", err)
		case n > 0 || tk.always:
			slog.InfoContext(ctx, "cleanup", "what", tk.what, "deleted", n, "before", tk.before.UTC().Format(time.RFC3339))
		}
	}
}

// seedDemo creates the demo user and the sample portal's client when they
// do not exist yet.
func seedDemo(ctx context.Context, svc *manage.Service, clientSecret string) error {
	if clientSecret == "" {
		clientSecret = demoClientSecret
	}
	_, err := svc.CreateUser(ctx, manage.System, manage.NewUser{
		Username: demoUsername, Email: "demo@example.com", Name: "Demo User", Password: demoPassword,
	})
	if err != nil && !errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("creating the demo user: %w", err)
	}
	_, _, err = svc.CreateClient(ctx, manage.System, manage.NewClient{
		ID:                     demoClientID,
		Name:                   "Demo Client Portal",
		RedirectURIs:           []string{demoPortalURL + "/callback"},
		PostLogoutRedirectURIs: []string{demoPortalURL + "/"},
		Secret:                 clientSecret,
		Grants:                 []string{"authorization_code", "refresh_token"},
	})
	if err != nil && !errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("creating the demo client: %w", err)
	}
	return nil
}

func databaseKind(url string) string {
	if strings.HasPrefix(url, "sqlite://") {
		return "sqlite"
	}
	return "postgres"
}

func pendingKind(cfg *config.Config) string {
	if cfg.Redis.URL != "" {
		return "redis"
	}
	return "in-process"
}
