package mail

import (
	"fmt"
	"log/slog"

	"github.com/hostportal/idp/config"
)

// FromConfig returns the sender that email.provider names, or nil for none
// (nothing that needs e-mail is then offered).
func FromConfig(c config.EmailConfig, log *slog.Logger) (Sender, error) {
	switch c.Provider {
	case "", "none":
		return nil, nil
	case "console":
		return Console{Log: log, From: c.From}, nil
	case "smtp":
		s, err := NewSMTP(SMTPOptions{Host: c.SMTP.Host, Port: c.SMTP.Port, Username: c.SMTP.Username,
			Password: c.SMTP.Password, TLS: c.SMTP.TLS, From: c.From, Timeout: c.SMTP.Timeout})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("email.provider: unknown provider %q (use none, console or smtp)", c.Provider)
}
