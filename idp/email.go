package idp

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hostportal/idp/mail"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/storage"
)

// E-mail: password reset links, address confirmations and security
// notifications. Messages that must not tell a visitor whether an account
// exists are prepared and sent in the background, so that the answer takes
// the same time either way; the number of sends in flight is bounded.

// MailSender sends one e-mail; mail.Sender implements it.
type MailSender interface {
	Send(ctx context.Context, m mail.Message) error
}

// mailChecker is a sender that can tell whether its server answers now
// (mail.SMTP): a form can then say "no e-mail now" before queueing work.
type mailChecker interface {
	Check(ctx context.Context) error
}

const (
	mailInFlight = 16               // background sends at once; more are dropped (and logged)
	mailTimeout  = 30 * time.Second // one background job
	mailUpFor    = 15 * time.Second // how long a good Check is believed
)

func (s *Server) mailEnabled() bool { return s.mail != nil }

// mailHealth caches the last good Check.
type mailHealth struct {
	mu sync.Mutex
	ok time.Time
}

// mailUp reports whether mail can be sent now: a sender that cannot check
// is believed; a good check is believed for mailUpFor.
func (s *Server) mailUp(ctx context.Context) bool {
	c, ok := s.mail.(mailChecker)
	if !ok {
		return true
	}
	s.mailHealth.mu.Lock()
	fresh := !s.mailHealth.ok.IsZero() && s.now().Sub(s.mailHealth.ok) < mailUpFor
	s.mailHealth.mu.Unlock()
	if fresh {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		slog.ErrorContext(ctx, "the mail server does not answer", "error", err)
		return false
	}
	s.mailHealth.mu.Lock()
	s.mailHealth.ok = s.now()
	s.mailHealth.mu.Unlock()
	return true
}

// background runs job outside the request, bounded by mailInFlight and
// mailTimeout. It reports false when too many jobs are running (the job
// did not run).
func (s *Server) background(what string, job func(ctx context.Context)) bool {
	select {
	case s.mailSlots <- struct{}{}:
	default:
		slog.Error("too many e-mails in flight: one was dropped", "what", what)
		return false
	}
	s.jobs.Add(1)
	go func() {
		defer func() {
			<-s.mailSlots
			s.jobs.Done()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), mailTimeout)
		defer cancel()
		job(ctx)
	}()
	return true
}

// Wait waits for the background jobs (e-mails) to finish, for a clean
// shutdown and for tests.
func (s *Server) Wait() { s.jobs.Wait() }

// render makes the message of content for to.
func renderMail(to string, content mail.Content) (mail.Message, error) {
	subject, text, html, err := mail.Render(content)
	if err != nil {
		return mail.Message{}, err
	}
	return mail.Message{To: to, Subject: subject, Text: text, HTML: html}, nil
}

// noticeEvents are the audit events a user is told about by e-mail
// (email.notifications), with what the message says happened.
var noticeEvents = map[string]string{
	"mfa.totp_enabled":               "2-Factor Auth was turned on",
	"mfa.totp_disabled":              "2-Factor Auth was turned off",
	"mfa.recovery_code_used":         "A recovery code was used to log in",
	"mfa.recovery_codes_regenerated": "New recovery codes were made",
	"mfa.security_key_added":         "A security key was added",
	"mfa.security_key_removed":       "A security key was removed",
	"mfa.security_key_clone_warning": "A security key was refused and removed because it may have been copied",
	"user.phone_verified":            "A cell phone was added",
	"user.phone_removed":             "Your cell phone was removed",
	"user.password_changed":          "Your password was changed",
	"password.reset":                 "Your password was reset",
}

// notify tells the user about e by e-mail, in the background, when it is
// one of noticeEvents and notifications are on. Only a confirmed address
// gets it.
func (s *Server) notify(e storage.AuditEvent) {
	what, ok := noticeEvents[e.Type]
	if !ok || !s.mailEnabled() || !s.cfg.Email.Notifications || e.UserID == "" || e.Result != "success" && e.Type != "mfa.security_key_clone_warning" {
		return
	}
	s.background("security notice", func(ctx context.Context) {
		u, err := s.store.UserByID(ctx, e.UserID)
		if err != nil || u.Email == "" || !u.EmailVerified {
			return
		}
		s.sendNotice(ctx, u, u.Email, what, e, "")
	})
}

// sendNotice sends one security notice about e to address to; advice,
// when set, replaces the default "if this wasn't you" steps.
func (s *Server) sendNotice(ctx context.Context, u *storage.User, to, what string, e storage.AuditEvent, advice string) {
	m, err := renderMail(to, mail.Notice{Issuer: s.cfg.TOTPIssuer(), Username: u.Username, What: what,
		When: formatDate(e.Time), IP: e.IP, Device: mfa.DescribeUserAgent(e.UserAgent), AccountURL: s.cfg.Issuer + "/account", Advice: advice})
	if err == nil {
		err = s.mail.Send(ctx, m)
	}
	if err != nil {
		slog.ErrorContext(ctx, "sending a security notice failed", "user_id", u.ID, "event", e.Type, "error", err)
	}
}
