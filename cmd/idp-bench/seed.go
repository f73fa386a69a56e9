package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
)

// The bench accounts. Their password is fixed and their TOTP secrets and
// the client secret derive from a seed anyone can read: `run` computes the
// codes without a file, and these accounts belong in a bench database only.
const (
	benchPassword    = "bench passphrase violet orbit"
	defaultSeed      = "idp-bench"
	defaultClientID  = "bench"
	benchRedirectURI = "http://127.0.0.1:1/cb" // never followed: the code is read from the Location header
)

// benchGrants are the bench client's grants: every mode of `run`.
var benchGrants = []string{"authorization_code", "refresh_token", "client_credentials"}

// benchUsername is the name of bench user i (from 1): bench-0001, ...
func benchUsername(i int) string { return fmt.Sprintf("bench-%04d", i) }

// totpSecret is the authenticator-app secret of a bench user: both `seed`
// and `run` compute it from the seed and the username.
func totpSecret(seed, username string) []byte {
	return derive(seed, "totp:"+username)[:mfa.TOTPSecretSize]
}

// defaultClientSecret is the bench client's secret unless one is given on
// standard input.
func defaultClientSecret(seed string) string {
	return "bench-" + base64.RawURLEncoding.EncodeToString(derive(seed, "client-secret"))
}

func derive(seed, purpose string) []byte {
	m := hmac.New(sha256.New, []byte("idp-bench v1:"+seed))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// seedPlan is what `seed` writes.
type seedPlan struct {
	Users        int // bench-0001 .. bench-<Users>
	Seed         string
	ClientID     string
	ClientSecret string
	// Workers create users at once (each costs a password hash); 0 means
	// GOMAXPROCS, what the hasher runs at once.
	Workers int
	// Progress, when set, is told every tenth of the users.
	Progress io.Writer
}

// seedResult counts what seed did and what was already there.
type seedResult struct {
	UsersCreated, UsersKept   int
	TOTPEnrolled, TOTPKept    int
	ClientCreated, ClientKept bool
}

// seed makes the bench users, each with a password and an enrolled
// authenticator app, and the bench client. It is idempotent: a user that
// exists keeps its password and, when its enrolment already holds the
// derived secret, its enrolment (and so its last used time step); a
// client that exists must already be what the plan describes. Users are
// created through svc as the operator (hashing, validation, audit), the
// enrolment is stored as the provider stores one: the secret sealed with
// keys under the user's id.
func seed(ctx context.Context, svc *manage.Service, keys *secret.Keys, plan seedPlan) (seedResult, error) {
	var res seedResult
	if plan.Users < 1 {
		return res, errors.New("--users must be at least 1")
	}
	if err := seedClient(ctx, svc, plan, &res); err != nil {
		return res, err
	}
	workers := plan.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		next                                     atomic.Int64
		created, kept, enrolled, enrolKept, done atomic.Int64
		mu                                       sync.Mutex
		errs                                     []error
		wg                                       sync.WaitGroup
	)
	for range min(workers, plan.Users) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > plan.Users || ctx.Err() != nil {
					return
				}
				name := benchUsername(i)
				u, isNew, err := ensureUser(ctx, svc, name)
				if err == nil {
					var fresh bool
					fresh, err = ensureTOTP(ctx, svc.Store, keys, u, totpSecret(plan.Seed, name), svc.Now)
					count(fresh, &enrolled, &enrolKept)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					next.Store(int64(plan.Users)) // stop the others: one reason is enough
					return
				}
				count(isNew, &created, &kept)
				if n := done.Add(1); plan.Progress != nil && plan.Users >= 20 && n%int64(plan.Users/10) == 0 {
					fmt.Fprintf(plan.Progress, "idp-bench: %d of %d users\n", n, plan.Users)
				}
			}
		}()
	}
	wg.Wait()
	res.UsersCreated, res.UsersKept = int(created.Load()), int(kept.Load())
	res.TOTPEnrolled, res.TOTPKept = int(enrolled.Load()), int(enrolKept.Load())
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

func count(yes bool, y, n *atomic.Int64) {
	if yes {
		y.Add(1)
	} else {
		n.Add(1)
	}
}

func ensureUser(ctx context.Context, svc *manage.Service, name string) (*storage.User, bool, error) {
	u, err := svc.Store.UserByUsername(ctx, name)
	if err == nil {
		return u, false, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, false, fmt.Errorf("looking up %s: %w", name, err)
	}
	u, err = svc.CreateUser(ctx, manage.Operator, manage.NewUser{
		Username: name, Email: name + "@example.com", Name: "Bench User " + name[len("bench-"):], Password: benchPassword})
	if err != nil {
		return nil, false, fmt.Errorf("creating %s: %w", name, err)
	}
	return u, true, nil
}

// totpAD is the associated data the provider seals a TOTP secret under
// (idp/factors.go): the row's identity.
func totpAD(userID string) []byte { return []byte("totp:" + userID) }

// ensureTOTP enrols secret for u unless its enrolment already holds it, and
// reports whether it wrote one.
func ensureTOTP(ctx context.Context, st storage.Store, keys *secret.Keys, u *storage.User, want []byte, now func() time.Time) (bool, error) {
	t, err := st.TOTPByUser(ctx, u.ID)
	switch {
	case err == nil:
		if got, err := keys.Open(t.Secret, totpAD(u.ID)); err == nil && bytes.Equal(got, want) {
			return false, nil
		}
	case !errors.Is(err, storage.ErrNotFound):
		return false, fmt.Errorf("reading the enrolment of %s: %w", u.Username, err)
	}
	if now == nil {
		now = time.Now
	}
	at := now().UTC()
	if err := st.SetTOTP(ctx, &storage.TOTP{UserID: u.ID, Secret: keys.Seal(want, totpAD(u.ID)), CreatedAt: at}); err != nil {
		return false, fmt.Errorf("enrolling an authenticator app for %s: %w", u.Username, err)
	}
	err = st.AppendAudit(ctx, &storage.AuditEvent{Time: at, Type: "mfa.totp_enabled", Actor: manage.Operator.Name,
		UserID: u.ID, Username: u.Username, Result: "success", Details: map[string]string{"via": "idp-bench seed"}})
	if err != nil {
		return false, fmt.Errorf("%s was enrolled, but writing the audit event failed: %w", u.Username, err)
	}
	return true, nil
}

func seedClient(ctx context.Context, svc *manage.Service, plan seedPlan, res *seedResult) error {
	_, _, err := svc.CreateClient(ctx, manage.Operator, manage.NewClient{
		ID: plan.ClientID, Name: "idp-bench", RedirectURIs: []string{benchRedirectURI},
		Secret: plan.ClientSecret, FirstParty: true, Grants: benchGrants,
	})
	if err == nil {
		res.ClientCreated = true
		return nil
	}
	if !errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("creating the client %s: %w", plan.ClientID, err)
	}
	c, err := svc.GetClient(ctx, plan.ClientID)
	if err != nil {
		return err
	}
	var problems []string
	if !secret.CheckClientSecret(c.SecretHash, plan.ClientSecret) {
		problems = append(problems, "another secret")
	}
	if !slices.Contains(c.RedirectURIs, benchRedirectURI) {
		problems = append(problems, "no redirect URI "+benchRedirectURI)
	}
	for _, g := range benchGrants {
		if !slices.Contains(c.GrantTypes, g) {
			problems = append(problems, "no "+g+" grant")
		}
	}
	if !c.FirstParty {
		problems = append(problems, "not first-party")
	}
	if len(problems) > 0 {
		return fmt.Errorf("a client %s already exists with %s; remove it (`idp client remove %s`) or choose another --client-id",
			plan.ClientID, joinAnd(problems), plan.ClientID)
	}
	res.ClientKept = true
	return nil
}

func joinAnd(l []string) string {
	if len(l) < 2 {
		return strings.Join(l, "")
	}
	return strings.Join(l[:len(l)-1], ", ") + " and " + l[len(l)-1]
}

func newSeedCommand(c *cli) *cobra.Command {
	plan := seedPlan{}
	var secretStdin bool
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Create the bench users and the bench client in the configured database",
		Long: `Create bench-0001 .. bench-N, each with the password "` + benchPassword + `" and an
authenticator app enrolled (its secret derived from --seed and the username,
sealed with the configured secret_key), and the first-party confidential
client --client-id with the redirect URI ` + benchRedirectURI + ` and the grants
authorization_code, refresh_token and client_credentials. The client secret
is derived from --seed unless --secret-stdin gives one. Running it again
changes nothing that is already there. For a bench database only: anyone
who knows the seed can log in as these users.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan.ClientSecret = defaultClientSecret(plan.Seed)
			if secretStdin {
				s, err := c.readSecret()
				if err != nil {
					return err
				}
				plan.ClientSecret = s
			}
			plan.Progress = c.stderr
			return c.seed(cmd.Context(), plan)
		},
	}
	f := cmd.Flags()
	f.IntVar(&plan.Users, "users", 100, "number of bench users")
	f.StringVar(&plan.ClientID, "client-id", defaultClientID, "the bench client's id")
	f.BoolVar(&secretStdin, "secret-stdin", false, "read the client secret from standard input (default: derived from --seed)")
	f.StringVar(&plan.Seed, "seed", defaultSeed, "what the TOTP secrets and the default client secret derive from (give `run` the same)")
	return cmd
}

func (c *cli) seed(ctx context.Context, plan seedPlan) (err error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	if err := loadOrCreateSecretKey(cfg); err != nil {
		return err
	}
	keys, err := secret.NewKeys(cfg.SecretKeyBytes())
	if err != nil {
		return err
	}
	a := cfg.Password.Argon2
	hasher, err := password.NewHasher(password.Params{MemoryKiB: a.MemoryKiB, Iterations: a.Iterations, Parallelism: a.Parallelism}, 0, 0)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the database: %w", cerr)
		}
	}()
	svc := &manage.Service{Store: st, Hasher: hasher, MinPasswordLength: cfg.Password.MinLength}
	start := time.Now()
	res, err := seed(ctx, svc, keys, plan)
	if err != nil {
		return err
	}
	client := "created"
	if res.ClientKept {
		client = "already there"
	}
	fmt.Fprintf(c.stdout, "users: %d (%d created, %d already there), password %q\n", plan.Users, res.UsersCreated, res.UsersKept, benchPassword)
	fmt.Fprintf(c.stdout, "authenticator apps: %d enrolled, %d already there (secrets derived from --seed %q)\n", res.TOTPEnrolled, res.TOTPKept, plan.Seed)
	fmt.Fprintf(c.stdout, "client %s: %s\n", plan.ClientID, client)
	fmt.Fprintf(c.stdout, "took %.1fs\n", time.Since(start).Seconds())
	return nil
}
