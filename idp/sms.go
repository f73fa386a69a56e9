package idp

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/mfa/sms"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending"
)

// Codes sent by SMS, and the limits on sending them. Sending costs money
// and can be abused to make the provider text premium numbers (SMS
// pumping), so every message passes the limits of sms.limits.*: one
// message per resend interval for what it is sent for (a pending login, a
// phone verification), and caps per user, per number and per client IP an
// hour and a day. The counters live in the pending-login store, so with
// Redis every instance sees the same counts.

// SMSSender sends one text message; sms.Sender implements it.
type SMSSender interface {
	Send(ctx context.Context, to, body string) error
}

const (
	smsCodeTTL  = 5 * time.Minute // how long a sent code is good for
	smsMaxTries = 5               // wrong entries of one code before it is void
)

// smsCode is a sent code waiting to be entered: only its keyed hash is kept.
type smsCode struct {
	Hash   string    `json:"h"`
	Phone  string    `json:"p"` // the number it was sent to (E.164)
	Nonce  string    `json:"n"` // names this code's try counter: a new code starts at zero tries
	SentAt time.Time `json:"t"`
}

func smsCodeKey(scope string) string   { return "sms:code:" + scope }
func smsTriesKey(nonce string) string  { return "sms:tries:" + nonce }
func smsResendKey(scope string) string { return "sms:resend:" + scope }

// Scopes: what a code is for. A code of one scope never passes another.
func smsLoginScope(loginID string) string { return "login:" + loginID }

// smsVerifyScope is per number too: a corrected typo gets its own code at once.
func smsVerifyScope(userID, phone string) string { return "verify:" + userID + ":" + phone }

// smsEnabled reports whether SMS codes can be sent at all (sms.provider is not none).
func (s *Server) smsEnabled() bool { return s.sms != nil }

// smsUsable reports whether u can receive login codes: SMS is configured,
// the phone is verified, and its country is (still) allowed.
func (s *Server) smsUsable(u *storage.User) bool {
	return s.smsEnabled() && u.Phone != "" && u.PhoneVerified && s.phones.Allows(u.Phone)
}

// errSMSThrottled: a limit refused the message; nothing was sent.
type errSMSThrottled struct {
	retryAt time.Time
	limit   string // which limit, for the audit log
}

func (e *errSMSThrottled) Error() string { return "sms: throttled by " + e.limit }

// errSMSNotSent: the provider refused the message; nothing was sent.
var errSMSNotSent = errors.New("sms: the provider could not send the message")

// errSMSUncertain: the provider did not answer in time or failed on its
// side; the message may still arrive, and its code is kept.
var errSMSUncertain = errors.New("sms: the provider did not confirm the message")

// smsLimit is one counter and its cap.
type smsLimit struct {
	name  string
	key   string
	max   int
	until time.Time // end of the counter's window
}

// smsLimits are the caps one message to phone for userID from r counts against.
func (s *Server) smsLimits(r *http.Request, userID, phone string) []smsLimit {
	l := s.cfg.SMS.Limits
	now := s.now()
	window := func(name, who string, max int, length time.Duration) smsLimit {
		n := now.Unix() / int64(length/time.Second)
		return smsLimit{name: name, max: max, key: "sms:count:" + name + ":" + who + ":" + strconv.FormatInt(n, 10),
			until: time.Unix((n+1)*int64(length/time.Second), 0)}
	}
	ip := s.clientNetwork(r)
	return []smsLimit{
		window("user_hour", userID, l.PerUserHour, time.Hour),
		window("user_day", userID, l.PerUserDay, 24*time.Hour),
		window("number_hour", phone, l.PerNumberHour, time.Hour),
		window("number_day", phone, l.PerNumberDay, 24*time.Hour),
		window("ip_hour", ip, l.PerIPHour, time.Hour),
		window("ip_day", ip, l.PerIPDay, 24*time.Hour),
		// A ceiling on the whole deployment's spending, whoever asks.
		window("total_hour", "all", l.TotalHour, time.Hour),
		window("total_day", "all", l.TotalDay, 24*time.Hour),
	}
}

// sendSMSCode sends a new code for scope to phone, voiding the scope's
// previous code. It returns *errSMSThrottled when a limit refuses (nothing
// is sent, and a refused attempt does not use up the caps), errSMSNotSent
// when the provider failed, or another error when the stores failed.
func (s *Server) sendSMSCode(ctx context.Context, r *http.Request, scope string, u *storage.User, phone string) error {
	if !s.smsEnabled() {
		return errSMSNotSent
	}
	now := s.now()
	interval := s.cfg.SMS.Limits.ResendInterval
	// The resend gap is claimed atomically first: a double click sends one message.
	if retryAt, err := s.claimResendGap(ctx, scope, now, interval); err != nil {
		return err
	} else if !retryAt.IsZero() {
		return s.smsRefused(ctx, r, u, phone, &errSMSThrottled{retryAt: retryAt, limit: "resend_interval"})
	}
	release := func() {
		if err := s.pending.Delete(ctx, smsResendKey(scope)); err != nil {
			slog.ErrorContext(ctx, "releasing the SMS resend gap failed", "error", err)
		}
	}

	limits := s.smsLimits(r, u.ID, phone)
	// Read every counter first, so that a refused attempt counts against
	// none; then count. Two concurrent sends may both pass the reads; the
	// counts after incrementing catch that. A refusal names the limit that
	// ends last, so that its time to try again is true.
	var over *errSMSThrottled
	exceeded := func(lim smsLimit) {
		if over == nil || lim.until.After(over.retryAt) {
			over = &errSMSThrottled{retryAt: lim.until, limit: lim.name}
		}
	}
	for _, lim := range limits {
		n, err := s.counter(ctx, lim.key)
		if err != nil {
			release()
			return err
		}
		if n >= int64(lim.max) {
			exceeded(lim)
		}
	}
	if over == nil {
		for _, lim := range limits {
			n, err := s.pending.Incr(ctx, lim.key, lim.until.Sub(now)+time.Minute)
			if err != nil {
				release()
				return err
			}
			if n > int64(lim.max) {
				exceeded(lim)
			}
		}
	}
	if over != nil {
		release()
		return s.smsRefused(ctx, r, u, phone, over)
	}

	code := mfa.NewSMSCode()
	rec, err := json.Marshal(smsCode{Hash: mfa.HashSMSCode(s.keys, scope, phone, code), Phone: phone,
		Nonce: secret.RandomToken(12), SentAt: now})
	if err != nil {
		return err
	}
	// Set replaces the scope's previous code: only the newest one works.
	if err := s.pending.Set(ctx, smsCodeKey(scope), rec, smsCodeTTL); err != nil {
		return err
	}
	body := mfa.SMSMessage(s.cfg.SMS.Message, code, s.cfg.TOTPIssuer(), s.cfg.IssuerHost(), strconv.Itoa(int(smsCodeTTL/time.Minute)))
	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.SMS.Timeout)
	defer cancel()
	if err := s.sms.Send(sendCtx, phone, body); err != nil {
		// A refusal delivered nothing: the code goes. After a timeout or a
		// 5xx the message may still arrive, so its code stays valid. The
		// counts stay either way (a failing provider is no way around the caps).
		var se *sms.Error
		maybeSent := errors.As(err, &se) && se.Temporary
		if !maybeSent {
			if derr := s.pending.Delete(ctx, smsCodeKey(scope)); derr != nil {
				slog.ErrorContext(ctx, "deleting an unsent SMS code failed", "error", derr)
			}
		}
		// Twilio's messages quote the number: the log shows it masked.
		why := strings.ReplaceAll(err.Error(), phone, manage.MaskedPhone(phone))
		slog.ErrorContext(ctx, "sending an SMS code failed", "provider", s.cfg.SMS.Provider, "user_id", u.ID,
			"phone", manage.MaskedPhone(phone), "error", why)
		s.audit(ctx, r, storage.AuditEvent{Type: "sms.failed", UserID: u.ID, Username: u.Username, Result: "failure",
			Details: map[string]string{"phone": manage.MaskedPhone(phone), "error": why}})
		if maybeSent {
			return errSMSUncertain
		}
		return errSMSNotSent
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "sms.sent", UserID: u.ID, Username: u.Username, Result: "success",
		Details: map[string]string{"phone": manage.MaskedPhone(phone), "purpose": scopeKind(scope)}})
	return nil
}

// claimResendGap claims the resend interval of scope from now on; it
// returns the zero time when claimed, or when the scope may send again.
// The gap is decided by the time stored in it, not only by the store's
// expiry, so that it follows the server's clock.
func (s *Server) claimResendGap(ctx context.Context, scope string, now time.Time, interval time.Duration) (time.Time, error) {
	key, val := smsResendKey(scope), []byte(strconv.FormatInt(now.UnixNano(), 10))
	for range 3 {
		claimed, err := s.pending.SetNX(ctx, key, val, interval)
		if err != nil || claimed {
			return time.Time{}, err
		}
		raw, err := s.pending.Get(ctx, key)
		if errors.Is(err, pending.ErrNotFound) {
			continue // expired in between: claim again
		}
		if err != nil {
			return time.Time{}, err
		}
		ns, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SMS resend gap %s holds %q", key, raw)
		}
		if retryAt := time.Unix(0, ns).Add(interval); retryAt.After(now) {
			return retryAt, nil
		}
		swapped, err := s.pending.CompareAndSwap(ctx, key, raw, val, interval)
		if err != nil || swapped {
			return time.Time{}, err
		}
	}
	return now.Add(interval), nil // claimed by others meanwhile
}

// scopeKind is what a scope is for: "login", "verify", "confirm".
func scopeKind(scope string) string {
	kind, _, _ := strings.Cut(scope, ":")
	return kind
}

// smsRefused audits a refusal by a limit and returns it.
func (s *Server) smsRefused(ctx context.Context, r *http.Request, u *storage.User, phone string, e *errSMSThrottled) error {
	s.audit(ctx, r, storage.AuditEvent{Type: "sms.refused", UserID: u.ID, Username: u.Username, Result: "failure",
		Details: map[string]string{"limit": e.limit, "phone": manage.MaskedPhone(phone), "retry_at": e.retryAt.UTC().Format(time.RFC3339)}})
	return e
}

// counter reads a counter made by Incr; a missing one is zero.
func (s *Server) counter(ctx context.Context, key string) (int64, error) {
	raw, err := s.pending.Get(ctx, key)
	if errors.Is(err, pending.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("counter %s holds %q", key, raw)
	}
	return n, nil
}

// smsCheck is the outcome of checking a code typed in.
type smsCheck int

const (
	smsOK      smsCheck = iota
	smsWrong            // not the code; tries are left
	smsSpent            // not the code, and that was the last try: the code is void
	smsMissing          // no code waits (expired, never sent, used, or sent to another number)
)

func (c smsCheck) message() string {
	switch c {
	case smsSpent:
		return "That code is not right, and it was the last try for it. Send a new code."
	case smsMissing:
		return "That code has expired or was replaced by a newer one. Send a new code."
	default:
		return "That code is not right. Enter the six-digit code from the text message."
	}
}

// sentCode returns the code waiting for scope, if any and if it went to phone.
func (s *Server) sentCode(ctx context.Context, scope, phone string) (*smsCode, []byte, error) {
	raw, err := s.pending.Get(ctx, smsCodeKey(scope))
	if errors.Is(err, pending.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var c smsCode
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, nil, fmt.Errorf("decoding a sent SMS code: %w", err)
	}
	if c.Phone != phone || !c.SentAt.Add(smsCodeTTL).After(s.now()) {
		return nil, nil, nil
	}
	return &c, raw, nil
}

// checkSMSCode checks code against the one sent for scope to phone. A
// right code is spent (of two concurrent uses one wins); a wrong one uses
// up one of the code's tries.
func (s *Server) checkSMSCode(ctx context.Context, scope, phone, code string) (smsCheck, error) {
	c, raw, err := s.sentCode(ctx, scope, phone)
	if err != nil || c == nil {
		return smsMissing, err
	}
	// The try is counted before the comparison, so that concurrent
	// guesses get smsMaxTries comparisons in all, not one each.
	n, err := s.pending.Incr(ctx, smsTriesKey(c.Nonce), smsCodeTTL)
	if err != nil {
		return smsWrong, err
	}
	if n > smsMaxTries {
		return smsSpent, s.pending.Delete(ctx, smsCodeKey(scope))
	}
	typed, ok := mfa.NormalizeSMSCode(code)
	if ok && hmac.Equal([]byte(mfa.HashSMSCode(s.keys, scope, phone, typed)), []byte(c.Hash)) {
		got, err := s.pending.GetDel(ctx, smsCodeKey(scope))
		if errors.Is(err, pending.ErrNotFound) || (err == nil && string(got) != string(raw)) {
			return smsMissing, nil // used or replaced in the meantime
		}
		if err != nil {
			return smsMissing, err
		}
		return smsOK, nil
	}
	if n == smsMaxTries {
		return smsSpent, s.pending.Delete(ctx, smsCodeKey(scope))
	}
	return smsWrong, nil
}

// smsThrottledMessage says when a refused sender may try again.
func smsThrottledMessage(e *errSMSThrottled, now time.Time) string {
	wait := e.retryAt.Sub(now)
	seconds := max(1, int(wait.Round(time.Second)/time.Second))
	switch {
	case e.limit == "resend_interval":
		return fmt.Sprintf("A code was sent a moment ago. You can ask for a new one in %d seconds.", seconds)
	case wait < 2*time.Minute:
		return fmt.Sprintf("Too many codes were sent. You can ask for a new one in %d seconds; until then use the code you have, or another method.", seconds)
	case wait < time.Hour+time.Minute:
		return fmt.Sprintf("Too many codes were sent. You can ask for a new one in %d minutes; until then use the code you have, or another method.",
			int((wait+time.Minute-1)/time.Minute))
	default:
		return "Too many codes were sent. You can ask for a new one after " + e.retryAt.UTC().Format("15:04 UTC, 2 Jan") +
			"; until then use another method."
	}
}

// smsSendProblem turns a sendSMSCode error into the status and sentence
// for the page, or reports false for an error the caller must treat as a
// server error.
func (s *Server) smsSendProblem(w http.ResponseWriter, err error) (int, string, bool) {
	var th *errSMSThrottled
	switch {
	case errors.As(err, &th):
		setRetryAfter(w, th.retryAt.Sub(s.now()))
		return http.StatusTooManyRequests, smsThrottledMessage(th, s.now()), true
	case errors.Is(err, errSMSNotSent):
		return http.StatusBadGateway, "We could not send the code. Try another method, or try again in a few minutes.", true
	case errors.Is(err, errSMSUncertain):
		return http.StatusBadGateway, "We could not confirm that the code was sent. If a text arrives, enter its code; otherwise try another method, or try again in a few minutes.", true
	}
	return 0, "", false
}

// clientNetwork is what per-IP limits count: the client's IPv4 address,
// or the /64 network of an IPv6 address (one subscriber gets a whole /64).
func (s *Server) clientNetwork(r *http.Request) string {
	addr := s.clientIP(r)
	ip := net.ParseIP(addr)
	if ip == nil {
		return addr
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}
