package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/storage"
)

func newClientCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Manage relying parties (clients): add, list, show, remove",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(newClientAddCommand(c), newClientListCommand(c), newClientShowCommand(c), newClientRemoveCommand(c))
	return cmd
}

func newClientAddCommand(c *cli) *cobra.Command {
	var (
		nc          manage.NewClient
		secretStdin bool
	)
	cmd := &cobra.Command{
		Use: "add CLIENT_ID --redirect-uri URI [--redirect-uri URI ...] [--post-logout-redirect-uri URI ...] [--name NAME] " +
			"[--public | --secret-stdin] [--first-party] [--require-mfa] [--grant GRANT ...] [--scope SCOPE ...]",
		Short: "Add a relying party (client)",
		Long: `Add a relying party (client).

A confidential client (the default) gets a generated secret, printed once,
unless --secret-stdin reads one (at least 32 characters) from standard input.
A --public client (a browser or native app) has no secret and must use PKCE.
Without --grant a client gets authorization_code and refresh_token; a client
with only client_credentials needs no redirect URI. --first-party clients skip
the consent page; --require-mfa clients never get a code for a login without
a second factor.

Examples:
  idp client add portal --name "Client Portal" --redirect-uri https://portal.example.com/callback --first-party
  idp client add spa --public --redirect-uri http://localhost:3000/callback
  idp client add team-sync --grant client_credentials --scope idp:admin`,
		Args: exactArgs("CLIENT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if nc.Public && secretStdin {
				return fmt.Errorf("client add: --public and --secret-stdin cannot be used together (a public client has no secret)")
			}
			if secretStdin {
				s, err := readSecretLine(c.stdin, c.stderr, "Client secret (end with Enter; the input is not hidden): ")
				if err != nil {
					return err
				}
				if s == "" {
					return fmt.Errorf("client add: --secret-stdin was given but standard input is empty; pipe the secret in, or leave out --secret-stdin to have one generated")
				}
				nc.Secret = s
			}
			nc.ID = args[0]
			nc.Source = storage.ClientSourceCLI
			return c.withService(cmd.Context(), false, func(svc *manage.Service, _ *config.Config) error {
				cl, generated, err := svc.CreateClient(cmd.Context(), manage.Operator, nc)
				if err != nil {
					return err
				}
				kind := "confidential"
				if cl.Public {
					kind = "public, PKCE required"
				}
				fmt.Fprintf(c.stdout, "Created client %s (%s; grants: %s).\n", cl.ID, kind, strings.Join(cl.GrantTypes, ", "))
				if generated != "" {
					fmt.Fprintln(c.stdout, "Its client secret is below. Store it now (e.g. in the portal's secret store): it is shown only this once and cannot be read back.")
					fmt.Fprintln(c.stdout, generated)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&nc.RedirectURIs, "redirect-uri", nil, "redirect URI (repeatable); https, or http on localhost")
	f.StringArrayVar(&nc.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "where RP-initiated logout may return to (repeatable)")
	f.StringVar(&nc.Name, "name", "", "name shown to users")
	f.BoolVar(&nc.Public, "public", false, "public client (browser or native app): no secret, PKCE required")
	f.BoolVar(&secretStdin, "secret-stdin", false, "read the client secret from standard input instead of generating one")
	f.BoolVar(&nc.FirstParty, "first-party", false, "skip the consent page")
	f.BoolVar(&nc.RequireMFA, "require-mfa", false, "never issue a code for a login without a second factor")
	f.StringArrayVar(&nc.Grants, "grant", nil, "grant type (repeatable): "+strings.Join(config.GrantTypes, ", ")+"; default authorization_code and refresh_token")
	f.StringArrayVar(&nc.Scopes, "scope", nil, "extra scope the client may ask for (repeatable), e.g. idp:admin")
	return cmd
}

func newClientListCommand(c *cli) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the relying parties (clients)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd.Context(), false, func(svc *manage.Service, _ *config.Config) error {
				clients, err := svc.ListClients(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					views := make([]manage.ClientView, 0, len(clients))
					for _, cl := range clients {
						views = append(views, manage.ViewClient(cl))
					}
					return printJSON(c.stdout, views)
				}
				if len(clients) == 0 {
					fmt.Fprintln(c.stdout, "No clients yet; add one with `idp client add CLIENT_ID --redirect-uri URI`.")
					return nil
				}
				t := newTable(c.stdout, "CLIENT ID", "NAME", "TYPE", "GRANTS", "FIRST PARTY", "REQUIRE MFA", "SOURCE", "CREATED")
				for _, cl := range clients {
					t.row(cl.ID, cl.Name, clientType(cl), strings.Join(cl.GrantTypes, ","), yesNo(cl.FirstParty), yesNo(cl.RequireMFA), cl.Source, formatTime(cl.CreatedAt))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newClientShowCommand(c *cli) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show CLIENT_ID [--json]",
		Short: "Show a relying party (client)",
		Args:  exactArgs("CLIENT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd.Context(), false, func(svc *manage.Service, _ *config.Config) error {
				cl, err := svc.GetClient(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(c.stdout, manage.ViewClient(cl))
				}
				t := newTable(c.stdout, "client id:", cl.ID)
				t.row("name:", cl.Name)
				t.row("type:", clientType(cl))
				t.row("redirect URIs:", strings.Join(cl.RedirectURIs, " "))
				t.row("post-logout redirect URIs:", strings.Join(cl.PostLogoutRedirectURIs, " "))
				t.row("grants:", strings.Join(cl.GrantTypes, " "))
				t.row("scopes:", strings.Join(cl.Scopes, " "))
				t.row("first party:", yesNo(cl.FirstParty))
				t.row("require MFA:", yesNo(cl.RequireMFA))
				t.row("source:", cl.Source)
				t.row("created:", formatTime(cl.CreatedAt))
				t.row("updated:", formatTime(cl.UpdatedAt))
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func newClientRemoveCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "remove CLIENT_ID",
		Short: "Remove a relying party (client) with its refresh tokens and consents",
		Args:  exactArgs("CLIENT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd.Context(), false, func(svc *manage.Service, _ *config.Config) error {
				if err := svc.RemoveClient(cmd.Context(), manage.Operator, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "Removed client %s with its refresh tokens and consents.\n", args[0])
				return nil
			})
		},
	}
}

func clientType(cl *storage.Client) string {
	if cl.Public {
		return "public"
	}
	return "confidential"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
