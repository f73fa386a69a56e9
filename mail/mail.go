package mail

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
)

// Message is one e-mail. Text is required; HTML, when set, is sent as its
// alternative (multipart/alternative).
type Message struct {
	To      string // one bare address, such as alice@example.com
	Subject string // one line
	Text    string
	HTML    string
}

// Sender sends one message. A nil error means the server accepted the
// message, not that it was delivered.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// check refuses a message that could not be sent as it is, above all one
// whose To or Subject would inject header lines.
func (m Message) check() error {
	addr, err := mail.ParseAddress(m.To)
	switch {
	case err != nil:
		return fmt.Errorf("recipient %q is not an e-mail address", m.To)
	case addr.Name != "" || addr.Address != m.To:
		return fmt.Errorf("recipient %q is not one bare address such as alice@example.com", m.To)
	case strings.TrimSpace(m.Subject) == "":
		return errors.New("empty subject")
	case strings.IndexFunc(m.Subject, unicode.IsControl) >= 0:
		return fmt.Errorf("subject %q holds a line break or another control character", m.Subject)
	case m.Text == "":
		return errors.New("empty text body")
	}
	return nil
}
