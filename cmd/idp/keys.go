package main

import (
	"fmt"
	"log/slog"
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

// logRotation says what signing.EnsureActive did at start: a first key, or
// a new key because keys.algorithm is not the active key's algorithm (said
// once: the next starts find a key of that algorithm).
func logRotation(log *slog.Logger, rot *signing.Rotation, publishedUntil time.Time) {
	switch {
	case rot == nil:
	case rot.Replaced == nil:
		log.Info("made the first signing key", "key_id", rot.Key.ID, "algorithm", rot.Key.Algorithm)
	default:
		log.Warn("keys.algorithm is not the active signing key's algorithm: a new key signs from now on",
			"keys.algorithm", rot.Key.Algorithm, "key_id", rot.Key.ID,
			"previous_key_id", rot.Replaced.ID, "previous_algorithm", rot.Replaced.Algorithm,
			"previous_published_until", publishedUntil.UTC().Format(time.RFC3339),
			"note", "portals that read the discovery document before this start may refuse the new tokens until they restart")
	}
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
			return c.withStore(cmd.Context(), func(st *sqlstore.Store, cfg *config.Config) error {
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
				var activeAlg string
				for _, k := range keys {
					state, until := k.State, "-"
					switch {
					case k.State == storage.KeyActive:
						until = "while active"
						if activeAlg == "" {
							activeAlg = k.Algorithm // newest first: the one that signs
						}
					case k.ExpiresAt.Before(now):
						state, until = "expired", formatTime(k.ExpiresAt)
					default:
						until = formatTime(k.ExpiresAt)
					}
					t.row(k.ID, state, k.Algorithm, formatTime(k.CreatedAt), until)
				}
				if err := t.flush(); err != nil {
					return err
				}
				if activeAlg != "" && activeAlg != cfg.Keys.Algorithm {
					fmt.Fprintf(c.stdout, "\nkeys.algorithm is %s but the active key is %s: `idp serve` makes a %s key at its next start (or run `idp keys rotate`).\n",
						cfg.Keys.Algorithm, activeAlg, cfg.Keys.Algorithm)
				}
				return nil
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
				k, err := signing.Rotate(cmd.Context(), st, sk, cfg.Keys.Algorithm, now, retireFor(cfg))
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
