package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/mail"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending/redisstore"
)

func newUserCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage users: add, set a password or phone, disable, list",
		Args:  groupArgs,
		RunE:  groupRun,
	}
	cmd.AddCommand(
		newUserAddCommand(c),
		newUserSetPasswordCommand(c),
		newUserSetPhoneCommand(c),
		newUserResetMFACommand(c),
		newUserDisableCommand(c, true),
		newUserDisableCommand(c, false),
		newUserUnlockCommand(c),
		newUserListCommand(c),
		newUserShowCommand(c),
	)
	return cmd
}

func newUserAddCommand(c *cli) *cobra.Command {
	var email, name, phone string
	cmd := &cobra.Command{
		Use:   "add USERNAME --email EMAIL [--name NAME] [--phone +E164]",
		Short: "Add a user; the password is read from standard input",
		Long: `Add a user. The password is the first line of standard input (at least
12 characters); with nothing on standard input the user is created without
a password and cannot log in until 'idp user set-password' gives one.
A phone set here counts as verified.

Example:
  printf '%s\n' "$PASSWORD" | idp user add alice --email alice@example.com --name "Alice Liddell"`,
		Args: exactArgs("USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("email") {
				return fmt.Errorf("user add: --email is required; usage: %s", usage(cmd))
			}
			pw, err := readSecretLine(c.stdin, c.stderr, fmt.Sprintf("Password for %s (end with Enter; leave empty for none; the input is not hidden): ", args[0]))
			if err != nil {
				return err
			}
			return c.withService(cmd.Context(), pw != "", func(svc *manage.Service, _ *config.Config) error {
				u, err := svc.CreateUser(cmd.Context(), manage.Operator, manage.NewUser{
					Username: args[0], Email: email, Name: name, Phone: phone, Password: pw,
				})
				if err != nil {
					return err
				}
				if pw == "" {
					fmt.Fprintf(c.stdout, "Created user %s (id %s) without a password: they cannot log in until you set one with `idp user set-password %s`.\n", u.Username, u.ID, u.Username)
				} else {
					fmt.Fprintf(c.stdout, "Created user %s (id %s) with the password from standard input.\n", u.Username, u.ID)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "the user's e-mail address (required)")
	cmd.Flags().StringVar(&name, "name", "", "the user's full name")
	cmd.Flags().StringVar(&phone, "phone", "", "cell phone for SMS codes, + and country code first, e.g. +14155550123 (counts as verified)")
	return cmd
}

func newUserSetPasswordCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "set-password USERNAME",
		Short: "Set a user's password, read from standard input",
		Long: `Set a user's password: the first line of standard input (at least 12 characters).

Example:
  printf '%s\n' "$PASSWORD" | idp user set-password alice`,
		Args: exactArgs("USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readSecretLine(c.stdin, c.stderr, fmt.Sprintf("New password for %s (end with Enter; the input is not hidden): ", args[0]))
			if err != nil {
				return err
			}
			if pw == "" {
				return fmt.Errorf("user set-password: no password on standard input; pipe it in, e.g. printf '%%s\\n' \"$PASSWORD\" | idp user set-password %s", args[0])
			}
			return c.withService(cmd.Context(), true, func(svc *manage.Service, _ *config.Config) error {
				if err := svc.SetPassword(cmd.Context(), manage.Operator, args[0], pw); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "Changed the password of %s.\n", args[0])
				return nil
			})
		},
	}
}

func newUserSetPhoneCommand(c *cli) *cobra.Command {
	var clear bool
	cmd := &cobra.Command{
		Use:   "set-phone USERNAME (+E164 | --clear)",
		Short: "Set or remove a user's cell phone (a phone set by an operator counts as verified)",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return fmt.Errorf("user set-phone: missing USERNAME; usage: %s", usage(cmd))
			case clear && len(args) > 1:
				return fmt.Errorf("user set-phone: give either a phone number or --clear, not both")
			case !clear && len(args) == 1:
				return fmt.Errorf("user set-phone: give the phone number (+ and country code first, e.g. +14155550123) or --clear to remove it")
			case len(args) > 2:
				return fmt.Errorf("user set-phone: unexpected argument %q; usage: %s", args[2], usage(cmd))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd.Context(), false, func(svc *manage.Service, _ *config.Config) error {
				if clear {
					u, err := svc.ClearPhone(cmd.Context(), manage.Operator, args[0])
					if err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "Removed the phone of %s; SMS codes are no longer sent to them.\n", u.Username)
					return nil
				}
				u, err := svc.SetPhone(cmd.Context(), manage.Operator, args[0], args[1])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "Set the phone of %s to %s (verified).\n", u.Username, u.Phone)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&clear, "clear", false, "remove the phone")
	return cmd
}

func newUserResetMFACommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "reset-mfa USERNAME",
		Short: "Support reset: remove every second factor, recovery code and remembered device of a user",
		Long: `Remove the user's authenticator app, security keys, recovery codes and
remembered devices, and mark their cell phone unverified, for example when
they have a new phone. They log in with their password alone (or enrol again
where a second factor is required) and can turn 2-Factor Auth on again in
their account. The reset is audited, and the user is told by e-mail when
e-mail is configured (email.provider, email.notifications).`,
		Args: exactArgs("USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd.Context(), false, func(svc *manage.Service, cfg *config.Config) error {
				u, err := svc.ResetMFA(cmd.Context(), manage.Operator, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "Every second factor of %s was removed; they can set up 2-Factor Auth again.\n", u.Username)
				if err := notifyReset(cmd.Context(), cfg, u); err != nil {
					fmt.Fprintf(c.stderr, "idp: warning: the e-mail telling %s about the reset could not be sent: %v\n", u.Username, err)
				}
				return nil
			})
		},
	}
}

func newUserDisableCommand(c *cli, disable bool) *cobra.Command {
	use, short := "enable USERNAME", "Let a disabled user log in again"
	if disable {
		use, short = "disable USERNAME", "Stop a user from logging in and revoke their refresh tokens"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs("USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd.Context(), false, func(svc *manage.Service, _ *config.Config) error {
				if disable {
					u, err := svc.Disable(cmd.Context(), manage.Operator, args[0])
					if err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "User %s is disabled: they cannot log in and their refresh tokens are revoked.\n", u.Username)
					return nil
				}
				u, err := svc.Enable(cmd.Context(), manage.Operator, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "User %s is enabled and can log in again.\n", u.Username)
				return nil
			})
		},
	}
}

func newUserUnlockCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock USERNAME",
		Short: "Lift a user's brute-force delays so that they can try again at once",
		Long: `Forget the user's failed attempts (password, authenticator code, SMS code,
recovery code, security key), so that the growing delay after repeated
failures ends at once. The unlock is audited (user.unlocked). With Redis
(redis.url) the counts are cleared there directly; with the in-process store
the running provider reads the unlock from the audit log at the user's next
attempt. Delays of a whole network stay: they end by themselves.`,
		Args: exactArgs("USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd.Context(), false, func(svc *manage.Service, cfg *config.Config) error {
				u, err := svc.Unlock(cmd.Context(), manage.Operator, args[0])
				if err != nil {
					return err
				}
				if cfg.Redis.URL != "" {
					rs, err := redisstore.Open(cfg.Redis.URL, cfg.Redis.KeyPrefix)
					if err != nil {
						return err
					}
					defer rs.Close()
					if err := regulation.Unlock(cmd.Context(), rs, u.Username); err != nil {
						return fmt.Errorf("the unlock of %s is recorded, and the provider will apply it at their next attempt, but clearing the counts in Redis failed: %w", u.Username, err)
					}
				}
				if cfg.Redis.URL != "" {
					fmt.Fprintf(c.stdout, "User %s is unlocked: their failed attempts are forgotten and they can try again now.\n", u.Username)
				} else {
					fmt.Fprintf(c.stdout, "User %s is unlocked: the running provider lifts any delay at their next attempt (within 10 seconds).\n", u.Username)
				}
				return nil
			})
		},
	}
}

func newUserListCommand(c *cli) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the users",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd.Context(), false, func(svc *manage.Service, _ *config.Config) error {
				var users []*storage.User
				const page = 500
				for q := (storage.UserQuery{Limit: page}); ; {
					batch, err := svc.ListUsers(cmd.Context(), q)
					if err != nil {
						return err
					}
					users = append(users, batch...)
					if len(batch) < page {
						break
					}
					q.After = batch[len(batch)-1].Username
				}
				if asJSON {
					views := make([]manage.UserView, 0, len(users))
					for _, u := range users {
						v, err := svc.ViewUserWithMFA(cmd.Context(), u)
						if err != nil {
							return err
						}
						views = append(views, v)
					}
					return printJSON(c.stdout, views)
				}
				if len(users) == 0 {
					fmt.Fprintln(c.stdout, "No users yet; add one with `idp user add USERNAME --email EMAIL`.")
					return nil
				}
				t := newTable(c.stdout, "USERNAME", "EMAIL", "NAME", "PHONE", "STATUS", "CREATED")
				for _, u := range users {
					t.row(u.Username, u.Email, u.Name, u.Phone, userStatus(u), formatTime(u.CreatedAt))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newUserShowCommand(c *cli) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show USERNAME [--json]",
		Short: "Show a user",
		Args:  exactArgs("USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withService(cmd.Context(), false, func(svc *manage.Service, _ *config.Config) error {
				u, err := svc.GetUser(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					v, err := svc.ViewUserWithMFA(cmd.Context(), u)
					if err != nil {
						return err
					}
					return printJSON(c.stdout, v)
				}
				st, err := svc.MFA(cmd.Context(), u.ID)
				if err != nil {
					return err
				}
				twoFactor := "off"
				if st.TOTP {
					twoFactor = fmt.Sprintf("on (authenticator app, %d recovery codes left, %d remembered devices)", st.RecoveryCodesLeft, st.RememberedDevices)
				}
				phone := u.Phone
				if phone != "" && u.PhoneVerified {
					phone += " (verified)"
				} else if phone != "" {
					phone += " (not verified)"
				}
				pw := "set"
				if u.PasswordHash == "" {
					pw = "not set (`idp user set-password " + u.Username + "`)"
				}
				t := newTable(c.stdout, "username:", u.Username)
				t.row("id:", u.ID)
				t.row("email:", u.Email)
				t.row("name:", u.Name)
				t.row("phone:", phone)
				t.row("password:", pw)
				t.row("2-factor auth:", twoFactor)
				t.row("status:", userStatus(u))
				t.row("created:", formatTime(u.CreatedAt))
				t.row("updated:", formatTime(u.UpdatedAt))
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func userStatus(u *storage.User) string {
	switch {
	case u.Disabled:
		return "disabled"
	case u.PasswordHash == "":
		return "no password"
	}
	return "active"
}

// notifyReset tells the user by e-mail that support reset their second
// factors (nothing to do without e-mail, notifications or a confirmed
// address).
func notifyReset(ctx context.Context, cfg *config.Config, u *storage.User) error {
	if !cfg.Email.Notifications || u.Email == "" || !u.EmailVerified {
		return nil
	}
	sender, err := mail.FromConfig(cfg.Email, nil)
	if err != nil || sender == nil {
		return err
	}
	subject, text, html, err := mail.Render(mail.Notice{Issuer: cfg.TOTPIssuer(), Username: u.Username,
		What: "Your second factors were reset by support", When: time.Now().UTC().Format("2 Jan 2006, 15:04 UTC"),
		AccountURL: cfg.Issuer + "/account"})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Email.SMTP.Timeout+5*time.Second)
	defer cancel()
	return sender.Send(ctx, mail.Message{To: u.Email, Subject: subject, Text: text, HTML: html})
}
