package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostportal/idp/password"
)

func newRunCommand(c *cli) *cobra.Command {
	rc := runConfig{}
	var secretStdin bool
	var argon2Flag string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Measure the provider at --issuer (loopback only)",
		Long: `Measure the provider at --issuer, which must be on this machine, with
--concurrency virtual users for --duration or until --max operations have
started, whichever comes first, then print throughput, latency percentiles,
errors by kind, and a reference measured in this process after the load:

  login               the whole flow a portal causes, in a new browser (cookie
                      jar) each time: /authorize with PKCE, the password page,
                      the authentication code of the user's authenticator app,
                      consent if asked, the redirect with the code, the code
                      exchange; --refresh and --userinfo add those calls.
                      Reference: argon2id with the server's parameters
                      (password.argon2 of the configuration, or --argon2).
  refresh             refresh-token rotation after one login per virtual user.
                      Reference: raw RS256 signatures.
  client-credentials  the client_credentials grant. Target: 5000/s.
  discovery           the discovery document and the key set in turn.
                      Reference: a static file server with the same bytes.

Each virtual user logs in as its own bench users (seeded by 'idp-bench seed
--users N' with the same --seed): a user sends one code per 30 s time step,
so a virtual user that has used all of its users in a step waits for the
next (the report counts the waits). Users logged in by an earlier run in the
same step are refused as "code already used": leave 30 s between runs.
With --server-pid the server's CPU time is read from /proc/PID/stat.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.completeRunConfig(&rc, argon2Flag, secretStdin); err != nil {
				return err
			}
			rep, err := run(cmd.Context(), rc)
			if err != nil {
				return err
			}
			rep.print(c.stdout)
			if n := rep.Failed(); n > 0 {
				return fmt.Errorf("%d operations failed (see the errors above)", n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&rc.Issuer, "issuer", "", "the provider's issuer URL, on loopback (default: issuer of the configuration)")
	f.StringVar(&rc.Mode, "mode", modeLogin, "login, refresh, client-credentials or discovery")
	f.IntVar(&rc.Concurrency, "concurrency", 4, "virtual users")
	f.DurationVar(&rc.Duration, "duration", 30*time.Second, "how long to measure (at most 10m)")
	f.IntVar(&rc.Max, "max", defaultMax, "stop after starting this many operations")
	f.IntVar(&rc.Users, "users", 100, "bench users seeded (bench-0001 ..)")
	f.StringVar(&rc.Seed, "seed", defaultSeed, "the seed given to `idp-bench seed`")
	f.StringVar(&rc.ClientID, "client-id", defaultClientID, "the bench client's id")
	f.BoolVar(&secretStdin, "secret-stdin", false, "read the client secret from standard input (default: derived from --seed)")
	f.IntVar(&rc.ServerPID, "server-pid", 0, "the provider's process id, to report its CPU time per operation")
	f.BoolVar(&rc.Refresh, "refresh", false, "login mode: refresh the tokens after each login")
	f.BoolVar(&rc.Userinfo, "userinfo", false, "login mode: call userinfo after each login")
	f.StringVar(&argon2Flag, "argon2", "", "the server's argon2id parameters as m=KIB,t=N,p=N (default: password.argon2 of the configuration)")
	f.DurationVar(&rc.ReferenceDuration, "reference-duration", 5*time.Second, "how long the reference runs")
	return cmd
}

// completeRunConfig fills in what the flags left to the configuration
// (read only when needed) and the client secret.
func (c *cli) completeRunConfig(rc *runConfig, argon2Flag string, secretStdin bool) error {
	rc.Secret = defaultClientSecret(rc.Seed)
	if secretStdin {
		s, err := c.readSecret()
		if err != nil {
			return err
		}
		rc.Secret = s
	}
	if argon2Flag != "" {
		p, err := parseArgon2(argon2Flag)
		if err != nil {
			return err
		}
		rc.Argon2 = p
	}
	if rc.Issuer != "" && (argon2Flag != "" || rc.Mode != modeLogin) {
		return nil
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return fmt.Errorf("%w\n(give --issuer and --argon2 to run without the configuration)", err)
	}
	if rc.Issuer == "" {
		rc.Issuer = cfg.Issuer
	}
	if argon2Flag == "" {
		a := cfg.Password.Argon2
		rc.Argon2 = password.Params{MemoryKiB: a.MemoryKiB, Iterations: a.Iterations, Parallelism: a.Parallelism}
	}
	return nil
}

func parseArgon2(s string) (password.Params, error) {
	var p password.Params
	if _, err := fmt.Sscanf(s, "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil ||
		s != fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Iterations, p.Parallelism) {
		return p, fmt.Errorf("--argon2 %q: want m=KIB,t=ITERATIONS,p=PARALLELISM, such as m=19456,t=2,p=1", strings.TrimSpace(s))
	}
	return p, nil
}
