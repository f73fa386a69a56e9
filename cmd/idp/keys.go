package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/signing"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

func newKeysCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List or rotate the token signing keys",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newKeysListCommand(c), newKeysRotateCommand(c))
	return cmd
}

// retireFor is how long a replaced key stays published: every token it
// signed has expired by then (with a margin for clock skew).
func retireFor(cfg *config.Config) time.Duration {
	return max(cfg.Tokens.AccessTokenLifetime, cfg.Tokens.IDTokenLifetime) + 5*time.Minute
}

func newKeysListCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the signing keys with their state",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(cmd.Context(), func(st *sqlstore.Store, _ *config.Config) error {
				keys, err := st.ListKeys(cmd.Context())
				if err != nil {
					return fmt.Errorf("listing signing keys: %w", err)
				}
				if len(keys) == 0 {
					fmt.Fprintln(c.stdout, "No signing keys yet: `idp serve` makes the first one when it starts, or run `idp keys rotate`.")
					return nil
				}
				now := time.Now()
				t := newTable(c.stdout, "KEY ID", "STATE", "ALGORITHM", "CREATED", "PUBLISHED UNTIL")
				for _, k := range keys {
					state, until := k.State, "-"
					switch {
					case k.State == storage.KeyActive:
						until = "while active"
					case k.ExpiresAt.Before(now):
						state, until = "expired", formatTime(k.ExpiresAt)
					default:
						until = formatTime(k.ExpiresAt)
					}
					t.row(k.ID, state, k.Algorithm, formatTime(k.CreatedAt), until)
				}
				return t.flush()
			})
		},
	}
}

func newKeysRotateCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key active; the old one stays published until its tokens expire",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(cmd.Context(), func(st *sqlstore.Store, cfg *config.Config) error {
				sk, err := c.secretKeys(cfg)
				if err != nil {
					return err
				}
				before, err := st.ListKeys(cmd.Context())
				if err != nil {
					return fmt.Errorf("listing signing keys: %w", err)
				}
				now := time.Now().UTC()
				k, err := signing.Rotate(cmd.Context(), st, sk, signing.DefaultAlgorithm, now, retireFor(cfg))
				if err != nil {
					return fmt.Errorf("rotating the signing key: %w", err)
				}
				fmt.Fprintf(c.stdout, "New signing key %s (%s) is active; running servers pick it up within a minute.\n", k.ID, k.Algorithm)
				for _, old := range before {
					if old.State == storage.KeyActive {
						fmt.Fprintf(c.stdout, "The previous key %s stays published until %s, so the tokens it signed still verify.\n",
							old.ID, formatTime(now.Add(retireFor(cfg))))
					}
				}
				return nil
			})
		},
	}
}
