// Command idp-bench measures a provider running on this machine.
//
// `idp-bench seed` writes bench users (bench-0001, ...) with a known
// password and an enrolled authenticator app, and a first-party bench
// client, into the database the configuration names (the same --config,
// IDP_CONFIG and IDP_* variables as `idp`). `idp-bench run` then drives the
// provider's HTTP endpoints with concurrent virtual users for a fixed time
// and at most a fixed count, and sets what it measured against a reference
// measured in the same process on the same cores: argon2id hashes with the
// server's parameters (logins), raw RS256 signatures (refresh), and a
// static file server holding the same bytes (discovery and JWKS). It only
// talks to loopback addresses.
//
// With the provider's configuration in the environment (or --config):
//
//	idp-bench seed --users 2000
//	idp serve &
//	idp-bench run --mode login --concurrency 4 --duration 30s --users 2000 --server-pid $!
//	idp-bench run --mode client-credentials --concurrency 16 --server-pid $!
//
// The seeded accounts have a published password and TOTP secrets derived
// from a published seed: seed a bench database only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// cli is what the commands read and write: the global flags and the
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
		for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
			fmt.Fprintf(c.stderr, "idp-bench: %s\n", line)
		}
		os.Exit(1)
	}
}

func newRootCommand(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "idp-bench",
		Short: "Load test for an identity provider running on this machine",
		Long: `idp-bench seeds bench users and a bench client into the provider's database
('seed'), then measures the running provider over loopback ('run').
Configuration: --config FILE (or IDP_CONFIG), then IDP_* environment
variables, as for 'idp'.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q; run `idp-bench --help` to see the commands", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.PersistentFlags().StringVar(&c.configFile, "config", "", "configuration file (YAML) of the provider; default: $IDP_CONFIG, else built-in defaults and IDP_* variables")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%v; see `%s --help`", err, cmd.CommandPath())
	})
	root.AddCommand(newSeedCommand(c), newRunCommand(c))
	return root
}

// noArgs refuses positional arguments, naming the first.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q; usage: %s", args[0], strings.TrimSuffix(cmd.UseLine(), " [flags]"))
	}
	return nil
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

// readSecret reads a client secret from standard input (one line).
func (c *cli) readSecret() (string, error) {
	b, err := io.ReadAll(io.LimitReader(c.stdin, 4096))
	if err != nil {
		return "", fmt.Errorf("reading the client secret from standard input: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", errors.New("--secret-stdin: standard input is empty; pipe the client secret in")
	}
	return s, nil
}
