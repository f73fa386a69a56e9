package idp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hostportal/idp/mail"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/templates"
)

// Forgot Password?: the login page's link asks for a username or e-mail
// and always gives the same answer in the same time; the work (finding the
// account, making the link, sending it) happens in the background. The
// link is a random token kept hashed in the pending-login store for 30
// minutes; a newer request voids older links. Opening it starts a pending
// login for that user that asks for their second factor (any method they
// have), never waived by a remembered device, before the new password is
// accepted; the token is spent only when the password changes. Then every
// session, refresh token and remembered device of the user is revoked.

const (
	resetTTL           = 30 * time.Minute
	resetPerAccountHr  = 3  // reset e-mails per account an hour
	resetPerNetworkHr  = 10 // reset requests per client IP (IPv6 /64) an hour
	maxForgotNameInput = 256
)

// resetRecord is what a reset link stands for (see links.go).
type resetRecord struct {
	UserID  string `json:"-"`           // the link's user
	LoginID string `json:"l,omitempty"` // the pending login the user came from, to go back to
}

func (s *Server) showForgot(w http.ResponseWriter, r *http.Request, status int, page templates.ForgotPasswordPage) {
	page.Base.Title = "Forgot your password?"
	page.Base.CSRFToken = s.csrfToken(s.browserID(w, r, true), "forgot")
	page.Action = "/password/forgot"
	if page.LoginID != "" {
		page.BackURL = loginURL(page.LoginID)
	}
	s.render(w, r, status, page)
}

// loginID is a pending login id from a form or query, bounded; "" if not one.
func loginID(v string) string {
	if v == "" || len(v) > 128 {
		return ""
	}
	return v
}

func (s *Server) handleForgotForm(w http.ResponseWriter, r *http.Request) {
	if !s.mailEnabled() {
		http.NotFound(w, r)
		return
	}
	s.showForgot(w, r, http.StatusOK, templates.ForgotPasswordPage{LoginID: loginID(r.URL.Query().Get("login"))})
}

// handleForgot answers every request alike: the account's existence never
// shows in the page or its timing.
func (s *Server) handleForgot(w http.ResponseWriter, r *http.Request) {
	if !s.mailEnabled() {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Invalid request", "The form could not be read. Go back and try again.", err)
		return
	}
	if !s.checkCSRF(r, "forgot") {
		s.forbidden(w, r)
		return
	}
	ctx := r.Context()
	name := strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	page := templates.ForgotPasswordPage{LoginID: loginID(r.PostForm.Get("login")), Username: truncate(name, maxForgotNameInput)}
	if name == "" || len(name) > maxForgotNameInput {
		page.Error = "Enter your username or e-mail address."
		s.showForgot(w, r, http.StatusBadRequest, page)
		return
	}
	// The per-network cap is the same for every name, so it tells nothing.
	n, err := s.pending.Incr(ctx, "reset:net:"+s.clientNetwork(r)+":"+strconv.FormatInt(s.now().Unix()/3600, 10), time.Hour+time.Minute)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if n > resetPerNetworkHr {
		w.Header().Set("Retry-After", "3600")
		page.Error = "Too many password resets were asked for from your network. Try again in an hour."
		s.showForgot(w, r, http.StatusTooManyRequests, page)
		return
	}
	if !s.mailUp(ctx) {
		w.Header().Set("Retry-After", "300")
		page.Error = "We cannot send e-mail at the moment. Try again in a few minutes."
		s.showForgot(w, r, http.StatusServiceUnavailable, page)
		return
	}
	ip, ua := s.clientIP(r), r.UserAgent()
	s.background("password reset", func(ctx context.Context) { s.sendResetLinks(ctx, name, page.LoginID, ip, ua) })
	page.Sent = true
	s.showForgot(w, r, http.StatusOK, page)
}

// resetAccounts are the accounts name may mean: the user with that
// username, else every user whose confirmed e-mail it is.
func (s *Server) resetAccounts(ctx context.Context, name string) ([]*storage.User, error) {
	u, err := s.store.UserByUsername(ctx, name)
	if err == nil {
		return []*storage.User{u}, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if !strings.Contains(name, "@") {
		return nil, nil
	}
	users, err := s.store.ListUsers(ctx, storage.UserQuery{Search: name, Limit: 50})
	if err != nil {
		return nil, err
	}
	var out []*storage.User
	for _, u := range users {
		if strings.EqualFold(u.Email, name) {
			out = append(out, u)
		}
	}
	return out, nil
}

// sendResetLinks is the background half of a reset request.
func (s *Server) sendResetLinks(ctx context.Context, name, login, ip, ua string) {
	users, err := s.resetAccounts(ctx, name)
	if err != nil {
		slog.ErrorContext(ctx, "looking up a password reset's account failed", "error", err)
		return
	}
	for _, u := range users {
		if u.Disabled || u.Email == "" || !u.EmailVerified {
			s.auditAt(ctx, ip, ua, storage.AuditEvent{Type: "password.reset_refused", UserID: u.ID, Username: u.Username, Result: "failure",
				Details: map[string]string{"reason": "disabled or no confirmed e-mail"}})
			continue
		}
		n, err := s.pending.Incr(ctx, "reset:acct:"+u.ID+":"+strconv.FormatInt(s.now().Unix()/3600, 10), time.Hour+time.Minute)
		if err != nil {
			slog.ErrorContext(ctx, "counting password resets failed", "error", err)
			return
		}
		if n > resetPerAccountHr {
			s.auditAt(ctx, ip, ua, storage.AuditEvent{Type: "password.reset_refused", UserID: u.ID, Username: u.Username, Result: "failure",
				Details: map[string]string{"reason": "more than 3 an hour"}})
			continue
		}
		s.sendResetLink(ctx, u, login, ip, ua)
	}
}

// IssuePasswordLink makes a single-use link with which the user chooses a
// new password (after their second factor, if they have one), valid for
// ttl; it voids the user's earlier links. login is a pending login to go
// back to at the end, or "". The password reset mails it; the admin API
// hands it to an operator for a new user without a password.
func (s *Server) IssuePasswordLink(ctx context.Context, u *storage.User, login string, ttl time.Duration) (link, hash string, err error) {
	token, hash, err := s.issueLink(ctx, linkReset, u.ID, resetRecord{LoginID: login}, ttl)
	if err != nil {
		return "", "", err
	}
	return s.cfg.Issuer + "/password/reset?token=" + url.QueryEscape(token), hash, nil
}

func (s *Server) sendResetLink(ctx context.Context, u *storage.User, login, ip, ua string) {
	link, _, err := s.IssuePasswordLink(ctx, u, login, resetTTL)
	var m mail.Message
	if err == nil {
		m, err = renderMail(u.Email, mail.ResetLink{Issuer: s.cfg.TOTPIssuer(), Username: u.Username, Link: link, Expires: resetTTL})
	}
	if err == nil {
		err = s.mail.Send(ctx, m)
	}
	if err != nil {
		// Nothing half-done: a link that did not go out does not work.
		if derr := s.dropLink(ctx, linkReset, u.ID); derr != nil {
			slog.ErrorContext(ctx, "voiding an unsent reset link failed", "error", derr)
		}
		slog.ErrorContext(ctx, "sending a password reset link failed", "user_id", u.ID, "error", err)
		s.auditAt(ctx, ip, ua, storage.AuditEvent{Type: "password.reset_mail_failed", UserID: u.ID, Username: u.Username, Result: "failure"})
		return
	}
	s.auditAt(ctx, ip, ua, storage.AuditEvent{Type: "password.reset_requested", UserID: u.ID, Username: u.Username, Result: "success"})
}

// resetLink reads a reset link by its hash: nil unless it is the user's
// newest and has not expired.
func (s *Server) resetLink(ctx context.Context, hash string) (*resetRecord, error) {
	var rec resetRecord
	user, err := s.readLink(ctx, linkReset, hash, &rec)
	if err != nil || user == "" {
		return nil, err
	}
	rec.UserID = user
	return &rec, nil
}

func (s *Server) resetLinkGone(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusBadRequest, templates.ErrorPage{Base: templates.Base{Title: "This link no longer works"}, Status: http.StatusBadRequest,
		Heading: "This link no longer works", Message: "The link has expired, was replaced by a newer one, or was already used. Ask for a new one.",
		LinkURL: "/password/forgot", LinkText: "Forgot Password?"})
}

// handleResetLink is the link from the e-mail: it starts the reset's
// pending login, which asks for the second factor first.
func (s *Server) handleResetLink(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > 128 {
		s.resetLinkGone(w, r)
		return
	}
	h := hashToken(token)
	rec, err := s.resetLink(ctx, h)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if rec == nil {
		s.resetLinkGone(w, r)
		return
	}
	u, err := s.store.UserByID(ctx, rec.UserID)
	if err != nil || u.Disabled {
		s.resetLinkGone(w, r)
		return
	}
	// Someone else's session in this browser ends: the reset is for u.
	if sess, err := s.currentSession(ctx, r); err == nil && sess != nil && sess.UserID != u.ID {
		if err := s.endBrowserSession(ctx, w, r); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	now := s.now()
	a := &AuthRequest{ID: secret.RandomToken(32), CreatedAt: now, ExpiresAt: now.Add(s.cfg.Session.LoginTimeout),
		Reset: true, ResetToken: h, UserID: u.ID, Username: u.Username, Browser: browserBinding(s.browserID(w, r, true))}
	a.ReturnTo = "/password/new" // the id is added when the login gets there (it changes at each step)
	a.ResetReturn = rec.LoginID
	l := &loaded{AuthRequest: a}
	if a.Step, err = s.nextStep(w, r, l, nil); err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.authRequests.create(ctx, a); err != nil {
		s.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, loginURL(a.ID), http.StatusSeeOther)
}

// resetLogin is the reset's pending login for the new-password page.
func (s *Server) resetLogin(w http.ResponseWriter, r *http.Request, l *loaded) (*storage.User, bool) {
	if !l.Reset {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
		return nil, false
	}
	rec, err := s.resetLink(r.Context(), l.ResetToken)
	if err != nil {
		s.serverError(w, r, err)
		return nil, false
	}
	if rec == nil || rec.UserID != l.UserID {
		s.resetLinkGone(w, r)
		return nil, false
	}
	u, err := s.store.UserByID(r.Context(), l.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return nil, false
	}
	return u, true
}

func (s *Server) showNewPassword(w http.ResponseWriter, r *http.Request, l *loaded, u *storage.User, browser string, status int, msg string) {
	s.render(w, r, status, templates.NewPasswordPage{
		Base:          templates.Base{Title: "Choose a new password", CSRFToken: s.csrfToken(browser, "login:"+l.ID), Error: msg},
		Action:        "/password/new",
		AuthRequestID: l.ID,
		Username:      u.Username,
		Rules:         s.manage().PasswordRules(),
		CancelURL:     "/account",
	})
}

func (s *Server) handleNewPasswordForm(w http.ResponseWriter, r *http.Request) {
	l, _, browser := s.loginAt(w, r, stepDone)
	if l == nil {
		return
	}
	u, ok := s.resetLogin(w, r, l)
	if !ok {
		return
	}
	s.showNewPassword(w, r, l, u, browser, http.StatusOK, "")
}

// newPasswordProblem checks the two typed passwords; "" when they pass.
func (s *Server) newPasswordProblem(r *http.Request, u *storage.User) string {
	pw, again := r.PostForm.Get("password"), r.PostForm.Get("password2")
	if pw != again {
		return "The two passwords are not the same. Type the new password twice."
	}
	if err := s.manage().CheckPassword(pw, u); err != nil {
		if msg := invalidMessage(err); msg != "" {
			return msg
		}
		return "That password cannot be used. Choose another."
	}
	return ""
}

// handleNewPassword sets the new password of a reset: after the second
// factor, the token is spent, and everything that the old password opened
// is closed.
func (s *Server) handleNewPassword(w http.ResponseWriter, r *http.Request) {
	l, _ := s.stepForm(w, r, stepDone)
	if l == nil {
		return
	}
	u, ok := s.resetLogin(w, r, l)
	if !ok {
		return
	}
	ctx := r.Context()
	if msg := s.newPasswordProblem(r, u); msg != "" {
		s.showNewPassword(w, r, l, u, s.browserID(w, r, false), http.StatusBadRequest, msg)
		return
	}
	hash, err := s.hasher.Hash(ctx, r.PostForm.Get("password"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	// The link is spent here, once: of two posts, one changes the password.
	if spent, err := s.spendLink(ctx, linkReset, l.ResetToken, u.ID); err != nil {
		s.serverError(w, r, err)
		return
	} else if !spent {
		s.resetLinkGone(w, r)
		return
	}
	if err := s.passwordChanged(ctx, u, hash); err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.authRequests.delete(ctx, l.ID); err != nil {
		slog.ErrorContext(ctx, "deleting a finished reset failed", "error", err)
	}
	s.clearCookie(w, s.cookies.device)
	s.audit(ctx, r, storage.AuditEvent{Type: "password.reset", UserID: u.ID, Username: u.Username, Result: "success",
		Details: map[string]string{"second_factor": strings.Join(l.AMR, " ")}})
	page := templates.MessagePage{Base: templates.Base{Title: "Password changed"}, Heading: "Your password was changed",
		Message: "Log in with your new password. Every session of your account was logged out.", LinkURL: "/account", LinkText: "Log in"}
	if back := loginID(l.ResetReturn); back != "" {
		if _, err := s.authRequests.get(ctx, back); err == nil {
			page.LinkURL = loginURL(back)
		}
	}
	s.render(w, r, http.StatusOK, page)
}

// passwordChanged stores a new password hash and closes what the old
// password opened: every refresh token, every session, every remembered
// device.
func (s *Server) passwordChanged(ctx context.Context, u *storage.User, hash string) error {
	if err := s.store.SetPasswordHash(ctx, u.ID, hash, s.now()); err != nil {
		return err
	}
	// An e-mail change asked for before (perhaps by whoever knew the old
	// password) is cancelled: its link must not move the reset channel.
	if err := s.dropLink(ctx, linkEmail, u.ID); err != nil {
		return err
	}
	// Codes and access tokens of logins before now stop working too.
	if err := s.pending.Set(ctx, tokensRevokedKey(u.ID), []byte(strconv.FormatInt(s.now().UnixNano(), 10)),
		max(s.cfg.Tokens.AccessTokenLifetime, s.cfg.Session.LoginTimeout)+time.Minute); err != nil {
		return err
	}
	if _, err := s.store.DeleteRememberedDevices(ctx, u.ID); err != nil {
		return err
	}
	if err := s.store.RevokeUserRefreshTokens(ctx, u.ID, "", s.now()); err != nil {
		return err
	}
	// Wrong guesses at the old password no longer delay the new one.
	if err := s.regulator.Reset(ctx, u.Username, regulation.Password); err != nil {
		return err
	}
	return s.revokeSessions(ctx, u.ID)
}

func tokensRevokedKey(userID string) string { return "tokens-revoked:" + userID }

// revokeClientTokens ends every access token the client got so far (its
// secret changed, or it was deleted: a client of the same id made later
// does not inherit them).
func (s *Server) revokeClientTokens(ctx context.Context, clientID string) error {
	return s.pending.Set(ctx, tokensRevokedKey("client:"+clientID), []byte(strconv.FormatInt(s.now().UnixNano(), 10)),
		s.cfg.Tokens.AccessTokenLifetime+time.Minute)
}

// tokensRevokedAfter reports whether the user's credentials changed after
// t: a code or access token from a login at t no longer counts.
func (s *Server) tokensRevokedAfter(ctx context.Context, userID string, t time.Time) (bool, error) {
	raw, err := s.pending.Get(ctx, tokensRevokedKey(userID))
	if errors.Is(err, pending.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ns, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return false, err
	}
	return t.Before(time.Unix(0, ns)), nil
}

// auditAt is audit for work outside a request (the client's address and
// user agent captured before).
func (s *Server) auditAt(ctx context.Context, ip, ua string, e storage.AuditEvent) {
	e.IP, e.UserAgent = ip, ua
	s.audit(ctx, nil, e)
}
