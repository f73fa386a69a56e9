package manage

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/storage"
)

// Actor is who performs an operation, as the audit log records it.
type Actor struct {
	// Name is "operator" for the idp commands, "client:ID" for the admin
	// API, "system" for the server itself.
	Name      string
	IP        string // optional
	UserAgent string // optional
}

// Actors the provider itself uses.
var (
	Operator = Actor{Name: "operator"}
	System   = Actor{Name: "system"}
)

// ClientActor is the actor of an admin API call authorised by the client's token.
func ClientActor(clientID, ip, userAgent string) Actor {
	return Actor{Name: "client:" + clientID, IP: ip, UserAgent: userAgent}
}

// Service performs the operations on users and clients. Store is required;
// Hasher only for operations that set a password (which CheckPassword
// checks first); Now defaults to time.Now;
// Log, when set, also receives every audit event (the store always does).
type Service struct {
	Store  storage.Store
	Hasher *password.Hasher
	Now    func() time.Time
	Log    *slog.Logger
	// MinPasswordLength is the fewest characters a new password may have
	// (password.min_length); 0 means MinPasswordLength, 12. Values below
	// MinPasswordLengthFloor count as the floor. See CheckPassword.
	MinPasswordLength int
	// Phones is where SMS codes may go (sms.allowed_countries): CreateUser
	// and SetPhone refuse a number it does not allow, so that an operator
	// or a portal cannot set one the login would never text. Nil allows
	// every country.
	Phones *PhonePolicy
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// audit appends one successful event by actor. done says what was already
// written, for the message when the event itself cannot be stored.
func (s *Service) audit(ctx context.Context, actor Actor, e storage.AuditEvent, done string) error {
	e.Time = s.now()
	e.Actor = actor.Name
	if e.Actor == "" {
		e.Actor = System.Name
	}
	e.IP, e.UserAgent = actor.IP, actor.UserAgent
	if e.Result == "" {
		e.Result = "success"
	}
	if s.Log != nil {
		attrs := []any{"type", e.Type, "actor", e.Actor, "result", e.Result}
		for _, kv := range [][2]string{{"user_id", e.UserID}, {"username", e.Username}, {"client_id", e.ClientID}, {"ip", e.IP}} {
			if kv[1] != "" {
				attrs = append(attrs, kv[0], kv[1])
			}
		}
		for k, v := range e.Details {
			attrs = append(attrs, k, v)
		}
		s.Log.InfoContext(ctx, "audit", attrs...)
	}
	if err := s.Store.AppendAudit(ctx, &e); err != nil {
		return fmt.Errorf("%s, but writing the audit event %s failed: %w", done, e.Type, err)
	}
	return nil
}
