package mail

import (
	"context"
	"log/slog"
)

// Console is the development provider: it sends nothing and writes each
// message, links included, to the log. Never configure it in production.
type Console struct {
	Log  *slog.Logger // nil means slog.Default()
	From string       // email.from, logged with each message
}

var _ Sender = Console{}

// Send logs one line at Info with the attributes from, to, subject and
// text, and never fails.
func (c Console) Send(ctx context.Context, m Message) error {
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	log.InfoContext(ctx, "email (console provider, not sent)", slog.String("from", c.From),
		slog.String("to", m.To), slog.String("subject", m.Subject), slog.String("text", m.Text))
	return nil
}

// Check always succeeds: the log is always there.
func (c Console) Check(context.Context) error { return nil }
