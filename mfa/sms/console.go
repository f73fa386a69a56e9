package sms

import (
	"context"
	"log/slog"
)

// Console is the development provider: it sends nothing and writes each
// message, code included, to the log. Never configure it in production.
type Console struct {
	Log *slog.Logger // nil means slog.Default()
}

var _ Sender = Console{}

// Send logs one line at Info with the attributes to and body, and never fails.
func (c Console) Send(ctx context.Context, to, body string) error {
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	log.InfoContext(ctx, "sms (console provider, not sent)", slog.String("to", to), slog.String("body", body))
	return nil
}
