package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/manage"
)

func newAuditCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit log",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newAuditListCommand(c))
	return cmd
}

func newAuditListCommand(c *cli) *cobra.Command {
	var (
		username, since string
		limit           int
		asJSON          bool
	)
	cmd := &cobra.Command{
		Use:   "list [--user USERNAME] [--since DURATION|TIME] [--limit N] [--json]",
		Short: "List security events, newest first",
		Long: `List security events, newest first.

--since takes a duration back from now (90m, 24h, or days such as 7d) or an
RFC 3339 time (2026-03-01T00:00:00Z). --limit is at most ` + strconv.Itoa(maxAuditLimit) + `; the
events kept depend on audit.retention (default one year).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := manage.AuditQuery{Username: username, Limit: limit}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				q.Since = t
			}
			if limit < 1 || limit > maxAuditLimit {
				return fmt.Errorf("audit list: --limit must be from 1 to %d, got %d", maxAuditLimit, limit)
			}
			return c.withService(cmd.Context(), false, func(svc *manage.Service, _ *config.Config) error {
				events, err := svc.ListAudit(cmd.Context(), q)
				if err != nil {
					return err
				}
				if asJSON {
					views := make([]manage.AuditEventView, 0, len(events))
					for _, e := range events {
						views = append(views, manage.ViewAuditEvent(e))
					}
					return printJSON(c.stdout, views)
				}
				if len(events) == 0 {
					fmt.Fprintln(c.stdout, "No events match.")
					return nil
				}
				t := newTable(c.stdout, "TIME", "TYPE", "RESULT", "ACTOR", "USER", "CLIENT", "IP", "DETAILS")
				for _, e := range events {
					var details []string
					for _, k := range slices.Sorted(maps.Keys(e.Details)) {
						if e.Details[k] != "" {
							details = append(details, k+"="+e.Details[k])
						}
					}
					t.row(formatTime(e.Time), e.Type, e.Result, e.Actor, e.Username, e.ClientID, e.IP, strings.Join(details, " "))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&username, "user", "", "only the events of this user")
	cmd.Flags().StringVar(&since, "since", "", "only events this recent (24h, 7d) or from this RFC 3339 time on")
	cmd.Flags().IntVar(&limit, "limit", defaultAuditLimit, "at most this many events (up to "+strconv.Itoa(maxAuditLimit)+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

// The number of events `idp audit list` prints by default and at most.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 10000
)

// parseSince reads --since: a Go duration back from now ("24h"), a number
// of days ("7d"), or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	bad := fmt.Errorf("audit list: invalid --since %q: give a duration back from now such as 90m, 24h or 7d, or an RFC 3339 time such as 2026-03-01T00:00:00Z", s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return time.Time{}, bad
		}
		return now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, bad
	}
	return now.Add(-d), nil
}
