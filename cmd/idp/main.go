// Command idp is the identity provider's one binary: `idp serve` runs the
// OpenID Connect provider, and the other commands are what operators and
// their scripts use to manage users, relying parties, signing keys and the
// audit log (SPEC.md, "Operator commands"). Every command reads the same
// configuration as `idp serve`: --config FILE (or IDP_CONFIG), then IDP_*
// environment variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/storage/sqlstore"
)

// version is set when building a release:
//
//	go build -ldflags "-X main.version=1.2.0" ./cmd/idp
var version = "dev"

// cli is what every command reads and writes: the global flags and the
// process's streams and environment (buffers and a made-up environment in
// tests).
type cli struct {
	configFile string
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	environ    []string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}
	err := newRootCommand(c).ExecuteContext(ctx)
	stop()
	if err != nil {
		printError(c.stderr, err)
		os.Exit(1)
	}
}

// printError writes err as `idp: <sentence>`, one line per problem.
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(w, "idp: %s\n", line)
	}
}

func newRootCommand(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "idp",
		Short: "OpenID Connect identity provider with multi-factor authentication",
		Long: `idp is an OpenID Connect identity provider with multi-factor authentication.

'idp serve' runs the provider; the other commands manage its users, relying
parties (clients), signing keys and audit log in the configured database.
Configuration: --config FILE (or IDP_CONFIG), then IDP_* environment variables.
Passwords and client secrets are read from standard input, never from arguments.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args:              groupArgs,
		RunE:              groupRun,
	}
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.PersistentFlags().StringVar(&c.configFile, "config", "", "configuration file (YAML); default: $IDP_CONFIG, else built-in defaults and IDP_* variables")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s: %v; see `%s --help`", commandName(cmd), err, cmd.CommandPath())
	})
	root.AddCommand(
		newServeCommand(c),
		newMigrateCommand(c),
		newUserCommand(c),
		newClientCommand(c),
		newKeysCommand(c),
		newAuditCommand(c),
		newVersionCommand(c),
	)
	return root
}

// groupArgs and groupRun make a command that only holds subcommands refuse
// an unknown subcommand (cobra would show the help and succeed) and show
// its help when run alone.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q; run `%s --help` to see the commands", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return nil
}

func groupRun(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// commandName is the command's path without "idp ", for error messages
// ("user add: ...").
func commandName(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name()
	}
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// exactArgs wants the positional arguments names, in order, and says which
// is missing or extra.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return fmt.Errorf("%s: missing %s; usage: %s", commandName(cmd), strings.Join(names[len(args):], " "), usage(cmd))
		case len(args) > len(names):
			return fmt.Errorf("%s: unexpected argument %q; usage: %s", commandName(cmd), args[len(names)], usage(cmd))
		}
		return nil
	}
}

func usage(cmd *cobra.Command) string {
	return strings.TrimSuffix(cmd.UseLine(), " [flags]")
}

// getenv looks name up in c.environ (not the process's environment, so
// tests stay isolated).
func (c *cli) getenv(name string) string {
	for _, kv := range c.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// loadConfig reads the configuration as `idp serve` does.
func (c *cli) loadConfig() (*config.Config, error) {
	file := c.configFile
	if file == "" {
		file = c.getenv("IDP_CONFIG")
	}
	cfg, err := config.Load(config.Source{File: file, Environ: c.environ})
	if err != nil {
		if strings.Contains(err.Error(), "\n") {
			return nil, fmt.Errorf("the configuration is invalid; fix these keys (in the file or their IDP_ variables):\n%w", err)
		}
		return nil, err
	}
	return cfg, nil
}

// openStore loads the configuration and opens and migrates the durable
// store (creating the directory of an SQLite file). The caller closes it.
func (c *cli) openStore(ctx context.Context) (*sqlstore.Store, *config.Config, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	if path, ok := strings.CutPrefix(cfg.Database.URL, "sqlite://"); ok && path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, nil, fmt.Errorf("cannot create the directory of the SQLite database (database.url): %w", err)
		}
	}
	st, err := sqlstore.Open(ctx, cfg.Database.URL)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open the database; check database.url (IDP_DATABASE_URL): %w", err)
	}
	st.SetMaxConnections(cfg.Database.MaxConnections)
	if err := st.Migrate(ctx); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("cannot migrate the database: %w", err), st.Close())
	}
	return st, cfg, nil
}

// withStore runs fn on the opened store and closes it after.
func (c *cli) withStore(ctx context.Context, fn func(st *sqlstore.Store, cfg *config.Config) error) (err error) {
	st, cfg, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the database: %w", cerr)
		}
	}()
	return fn(st, cfg)
}

// withService runs fn with a manage.Service acting as the operator. The
// password hasher (which costs a hash to build) is made only when asked.
func (c *cli) withService(ctx context.Context, hasher bool, fn func(svc *manage.Service, cfg *config.Config) error) error {
	return c.withStore(ctx, func(st *sqlstore.Store, cfg *config.Config) error {
		phones, err := manage.NewPhonePolicy(cfg.SMS.AllowedCountries)
		if err != nil {
			return fmt.Errorf("sms.allowed_countries: %w", err)
		}
		svc := &manage.Service{Store: st, Phones: phones, MinPasswordLength: cfg.Password.MinLength}
		if hasher {
			a := cfg.Password.Argon2
			h, err := password.NewHasher(password.Params{MemoryKiB: a.MemoryKiB, Iterations: a.Iterations, Parallelism: a.Parallelism}, 1, 0)
			if err != nil {
				return err
			}
			svc.Hasher = h
		}
		return fn(svc, cfg)
	})
}
