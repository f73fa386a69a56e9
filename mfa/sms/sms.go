package sms

import (
	"context"
	"strconv"
	"strings"
)

// Sender sends one text message. to is E.164 (+14155550123).
//
// A nil error means the provider accepted the message, not that it was
// delivered. Any other error is an *Error.
type Sender interface {
	Send(ctx context.Context, to, body string) error
}

// Error is a provider's refusal or failure, with what the operator needs in
// the log. It never holds the message body or a credential, so it can be
// logged as it is; it is not meant for users' eyes.
type Error struct {
	Provider string // "twilio"
	Status   int    // HTTP status, 0 when no answer came
	Code     int    // the provider's error code (Twilio's, e.g. 21211), 0 if none
	Message  string // the provider's message (never contains the SMS body)
	// Temporary reports a timeout, network error or 5xx/429: trying again
	// later may work. A timeout does not prove the message was not sent: the
	// provider may have accepted it before the answer was lost.
	Temporary bool
	Err       error // underlying error
}

// Error reads like "twilio: status 400, error 21211: The 'To' number ... is
// not a valid phone number", or "twilio: <underlying error>" when no
// answer came.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Provider != "" {
		b.WriteString(e.Provider)
	} else {
		b.WriteString("sms")
	}
	b.WriteString(":")
	sep := " "
	if e.Status != 0 {
		b.WriteString(" status " + strconv.Itoa(e.Status))
		sep = ", "
	}
	if e.Code != 0 {
		b.WriteString(sep + "error " + strconv.Itoa(e.Code))
	}
	detail := e.Message
	if detail == "" && e.Err != nil {
		detail = e.Err.Error()
	}
	if detail != "" {
		if e.Status != 0 || e.Code != 0 {
			b.WriteString(":")
		}
		b.WriteString(" " + detail)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As the underlying error, e.g.
// context.DeadlineExceeded or twilio-go's *client.TwilioRestError.
func (e *Error) Unwrap() error { return e.Err }

// temporaryStatus reports the HTTP statuses after which the same request
// may succeed later: the provider's own failures and rate limiting.
func temporaryStatus(status int) bool {
	return status >= 500 || status == 429
}
