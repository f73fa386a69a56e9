package idp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
)

// regulationConfig is the regulation.* configuration.
func regulationConfig(cfg *config.Config) regulation.Config {
	rg := cfg.Regulation
	return regulation.Config{AccountFailures: rg.AccountFailures, AccountTotalFailures: rg.AccountTotalFailures, NetworkFailures: rg.NetworkFailures,
		BaseDelay: rg.BaseDelay, MaxDelay: rg.MaxDelay, ForgetAfter: rg.ForgetAfter}
}

// regulate asks the regulator, before a factor is checked, whether the
// check may run now. It returns the check to report the answer to (Fail
// through s.failed or s.accountFailure, or Succeed), or nil when it
// answered the request itself: a throttled attempt gets 429, Retry-After
// and show's form saying when to try again, and is not checked at all.
//
// waive, when not nil, is asked only when the account's delay from all
// networks would refuse the attempt: a browser that proves an earlier full
// login to the account is let through it, so that failures from elsewhere
// cannot keep the account's owner out (see s.waiver).
func (s *Server) regulate(w http.ResponseWriter, r *http.Request, account string, f regulation.Factor,
	waive func() bool, show func(status int, msg string)) *regulation.Check {
	ctx := r.Context()
	a := regulation.Attempt{Account: account, Factor: f, Network: s.clientNetwork(r)}
	chk, err := s.regulator.Begin(ctx, a)
	var th *regulation.Throttled
	if errors.As(err, &th) && th.Subject == regulation.SubjectAccountEverywhere && waive != nil && waive() {
		a.Waive = true
		chk, err = s.regulator.Begin(ctx, a)
	}
	if errors.As(err, &th) {
		wait := th.RetryAfter(s.now())
		setRetryAfter(w, wait)
		s.metrics.throttled(string(f), th.Subject)
		show(http.StatusTooManyRequests, throttledMessage(wait))
		return nil
	}
	if err != nil {
		s.serverError(w, r, err)
		return nil
	}
	return chk
}

// regulateLogin is regulate for a step of login l, for account (the name
// typed, or the one the login is for; empty for a passkey) with its
// waiver: it also answers, and counts nothing, when the login moved on
// while this request waited for the check's lock. The caller defers Done
// on the check it returns.
func (s *Server) regulateLogin(w http.ResponseWriter, r *http.Request, l *loaded, account string, f regulation.Factor, show func(status int, msg string)) *regulation.Check {
	var waive func() bool
	if account != "" {
		waive = s.waiver(w, r, account)
	}
	chk := s.regulate(w, r, account, f, waive, show)
	if chk == nil {
		return nil
	}
	if !s.unchanged(w, r, l) {
		chk.Done(r.Context())
		return nil
	}
	return chk
}

// unchanged reports whether the login is still as l was read. A second
// submit of the same form may have moved it on while this one waited for
// the check's lock: that one is answered as a login continued elsewhere,
// and nothing is checked or counted.
func (s *Server) unchanged(w http.ResponseWriter, r *http.Request, l *loaded) bool {
	cur, err := s.authRequests.get(r.Context(), l.ID)
	if err == nil && !bytes.Equal(cur.raw, l.raw) {
		err = errLoginChanged
	}
	if err != nil {
		s.loginFailed(w, r, l.ClientID, err)
		return false
	}
	return true
}

// setRetryAfter sets Retry-After for a wait: whole seconds rounded up, at
// least one, so that a client that obeys it is not refused again.
func setRetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second))))
}

// throttledMessage says when to try again, in the largest whole unit.
func throttledMessage(wait time.Duration) string {
	return "Too many failed attempts. Try again in " + humanWait(wait) + "."
}

func humanWait(d time.Duration) string {
	switch s := int((d + time.Second - 1) / time.Second); {
	case s <= 1:
		return "1 second"
	case s < 60:
		return strconv.Itoa(s) + " seconds"
	case s < 120:
		return "1 minute"
	default:
		return strconv.Itoa((s+59)/60) + " minutes"
	}
}

// rejected reports a failed check to the regulator and audits every delay
// it imposed (regulation.ban). userID and username name the account when
// it exists; a typed name that is no account is not recorded.
func (s *Server) rejected(ctx context.Context, r *http.Request, chk *regulation.Check, userID, username string) ([]regulation.Ban, error) {
	bans, err := chk.Fail(ctx)
	for _, b := range bans {
		ev := storage.AuditEvent{Type: "regulation.ban", Actor: "system", Result: "failure", Details: map[string]string{
			"subject": b.Subject, "factor": string(b.Factor), "failures": strconv.Itoa(b.Failures),
			"delay": b.Delay.String(), "until": b.Until.UTC().Format(time.RFC3339),
		}}
		if b.Subject != regulation.SubjectNetwork {
			ev.UserID, ev.Username = userID, username
		}
		if b.Network != "" {
			ev.Details["network"] = b.Network
		}
		s.audit(ctx, r, ev)
	}
	if err != nil {
		return bans, fmt.Errorf("counting a failed check: %w", err)
	}
	return bans, nil
}

// passed reports a correct answer: the account's count for that factor
// starts again (the others stay).
func (s *Server) passed(ctx context.Context, chk *regulation.Check) error {
	if err := chk.Succeed(ctx); err != nil {
		return fmt.Errorf("resetting the failure count: %w", err)
	}
	return nil
}

// waiver is the Waive of an attempt for username: this browser completed
// a login to the account before, or holds its remembered device.
func (s *Server) waiver(w http.ResponseWriter, r *http.Request, username string) func() bool {
	return func() bool {
		return s.regulator.Known(r.Context(), username, browserBinding(s.browserID(w, r, false))) || s.deviceRemembers(r, username)
	}
}

// deviceRemembers reports whether this browser's remembered-device token
// belongs to the user called username.
func (s *Server) deviceRemembers(r *http.Request, username string) bool {
	token := s.readCookie(r, s.cookies.device)
	if token == "" || s.cfg.MFA.RememberDevice <= 0 {
		return false
	}
	ctx := r.Context()
	d, err := s.store.RememberedDeviceByHash(ctx, mfa.HashDeviceToken(token))
	if err != nil || !d.ExpiresAt.After(s.now()) {
		return false
	}
	u, err := s.store.UserByUsername(ctx, username)
	return err == nil && u.ID == d.UserID
}

// unlockedSince answers the regulator from the audit log: an operator's
// unlock (the CLI's, which cannot reach an in-process pending store, or
// another instance's) after since ends the account's delays.
func (s *Server) unlockedSince(ctx context.Context, account string, since time.Time) (bool, error) {
	u, err := s.store.UserByUsername(ctx, account)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	evs, err := s.store.ListAudit(ctx, storage.AuditQuery{UserID: u.ID, Type: "user.unlocked", Since: since, Limit: 1})
	if err != nil {
		return false, err
	}
	return len(evs) > 0, nil
}

// unlockUser forgets the user's failure counts, so that they may try
// again at once (the admin API; the CLI goes through the audit log).
func (s *Server) unlockUser(ctx context.Context, u *storage.User) error {
	return s.regulator.Unlock(ctx, u.Username)
}
