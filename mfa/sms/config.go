package sms

import (
	"fmt"
	"log/slog"

	"github.com/hostportal/idp/config"
)

// FromConfig returns the sender that sms.provider names, or nil for none
// (SMS is then offered nowhere).
func FromConfig(c config.SMSConfig, log *slog.Logger) (Sender, error) {
	switch c.Provider {
	case "", "none":
		return nil, nil
	case "console":
		return Console{Log: log}, nil
	case "twilio":
		t, err := NewTwilio(TwilioOptions{AccountSID: c.Twilio.AccountSID, AuthToken: c.Twilio.AuthToken,
			From: c.Twilio.From, APIURL: c.Twilio.APIURL, Timeout: c.Timeout})
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("sms.provider: unknown provider %q (use none, console or twilio)", c.Provider)
}
