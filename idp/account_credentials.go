package idp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hostportal/idp/mail"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/templates"
)

// The account pages' password and e-mail address: changing the password
// needs the current one and closes every other session; a new e-mail
// address waits for the link sent to it (24 hours) before it replaces the
// old one, which is told.

const emailChangeTTL = 24 * time.Hour

// invalidMessage is the page sentence of a validation error, "" for other errors.
func invalidMessage(err error) string {
	var inv *manage.InvalidError
	if errors.As(err, &inv) {
		return inv.Message
	}
	return ""
}

func (s *Server) showChangePassword(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, templates.NewPasswordPage{
		Base:    templates.Base{Title: "Change your password", CSRFToken: s.accountCSRF(w, r), Error: msg},
		Action:  "/account/password",
		Current: true, Rules: s.manage().PasswordRules(), CancelURL: "/account",
	})
}

func (s *Server) handleChangePasswordForm(w http.ResponseWriter, r *http.Request) {
	if u := s.accountUser(w, r, "/account/password"); u != nil {
		s.showChangePassword(w, r, http.StatusOK, "")
	}
}

// handleChangePassword changes the password from the account pages. This
// browser stays logged in (a new session); every other session, refresh
// token and remembered device ends.
func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	chk := s.regulate(w, r, u.Username, regulation.Password, s.waiver(w, r, u.Username), func(status int, msg string) { s.showChangePassword(w, r, status, msg) })
	if chk == nil {
		return
	}
	defer chk.Done(ctx)
	if _, ok, err := s.checkPassword(ctx, u.Username, r.PostForm.Get("current_password")); err != nil || !ok {
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if s.accountFailure(w, r, u, chk, "password", "/account/password") {
			s.showChangePassword(w, r, http.StatusUnauthorized, "Your current password is not right.")
		}
		return
	}
	if err := s.passed(ctx, chk); err != nil {
		s.serverError(w, r, err)
		return
	}
	if msg := s.newPasswordProblem(r, u); msg != "" {
		s.showChangePassword(w, r, http.StatusBadRequest, msg)
		return
	}
	hash, err := s.hasher.Hash(ctx, r.PostForm.Get("password"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	sess, err := s.currentSession(ctx, r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.passwordChanged(ctx, u, hash); err != nil {
		s.serverError(w, r, err)
		return
	}
	if sess != nil {
		if err := s.startSession(ctx, w, r, &Session{UserID: u.ID, AuthTime: s.now(), AMR: sess.AMR, ACR: sess.ACR}); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	s.clearCookie(w, s.cookies.device)
	s.audit(ctx, r, storage.AuditEvent{Type: "user.password_changed", UserID: u.ID, Username: u.Username, Result: "success"})
	http.Redirect(w, r, "/account?notice=password-changed", http.StatusSeeOther)
}

// emailChange is an address waiting for its link (see links.go).
type emailChange struct {
	UserID string `json:"-"` // the link's user
	Email  string `json:"e"`
	Hash   string `json:"-"` // the link's hash
}

// pendingEmail is the change of address the user asked for and has not
// confirmed, or nil.
func (s *Server) pendingEmail(ctx context.Context, userID string) (*emailChange, error) {
	var c emailChange
	hash, err := s.userLink(ctx, linkEmail, userID, &c)
	if err != nil || hash == "" {
		return nil, err
	}
	c.UserID, c.Hash = userID, hash
	return &c, nil
}

func (s *Server) showChangeEmail(w http.ResponseWriter, r *http.Request, u *storage.User, status int, msg, input string) {
	c, err := s.pendingEmail(r.Context(), u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	page := templates.ChangeEmailPage{
		Base:   templates.Base{Title: "Change your e-mail address", CSRFToken: s.accountCSRF(w, r), Error: msg},
		Action: "/account/email", Email: u.Email, Verified: u.EmailVerified, Input: input, CancelURL: "/account",
	}
	if c != nil {
		page.Pending = c.Email
	}
	s.render(w, r, status, page)
}

func (s *Server) handleChangeEmailForm(w http.ResponseWriter, r *http.Request) {
	u := s.accountUser(w, r, "/account/email")
	if u == nil {
		return
	}
	if !s.mailEnabled() {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	s.showChangeEmail(w, r, u, http.StatusOK, "", "")
}

// handleChangeEmail sends a confirmation link to the new address; the
// account keeps the old one until the link is opened.
func (s *Server) handleChangeEmail(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	if !s.mailEnabled() {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	email := strings.TrimSpace(r.PostForm.Get("email"))
	if err := manage.ValidateEmail(email); err != nil {
		s.showChangeEmail(w, r, u, http.StatusBadRequest, invalidMessage(err), truncate(email, 254))
		return
	}
	if strings.EqualFold(email, u.Email) && u.EmailVerified {
		s.showChangeEmail(w, r, u, http.StatusBadRequest, "That is already your e-mail address.", email)
		return
	}
	// Where reset links go is worth a recent login.
	if !s.freshLogin(w, r, "For your security, log in again to change your e-mail address.") {
		return
	}
	// A newer request voids the older link.
	token, _, err := s.issueLink(ctx, linkEmail, u.ID, emailChange{Email: email}, emailChangeTTL)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	m, err := renderMail(email, mail.ConfirmEmail{Issuer: s.cfg.TOTPIssuer(), Username: u.Username,
		Link: s.cfg.Issuer + "/account/email/confirm?token=" + url.QueryEscape(token), Expires: emailChangeTTL})
	if err == nil {
		err = s.mail.Send(ctx, m)
	}
	if err != nil {
		if derr := s.dropLink(ctx, linkEmail, u.ID); derr != nil {
			slog.ErrorContext(ctx, "voiding an unsent confirmation link failed", "error", derr)
		}
		slog.ErrorContext(ctx, "sending an e-mail confirmation failed", "user_id", u.ID, "error", err)
		s.showChangeEmail(w, r, u, http.StatusBadGateway, "We could not send the confirmation e-mail. Check the address, or try again in a few minutes.", email)
		return
	}
	e := storage.AuditEvent{Type: "user.email_change_requested", UserID: u.ID, Username: u.Username, Result: "success", Time: s.now(),
		IP: s.clientIP(r), UserAgent: r.UserAgent()}
	s.audit(ctx, r, e)
	// The current address hears of it while it can still be stopped.
	if u.Email != "" && u.EmailVerified && s.cfg.Email.Notifications {
		s.background("security notice", func(ctx context.Context) {
			s.sendNotice(ctx, u, u.Email, "A change of your e-mail address to "+email+" was asked for", e,
				"change your password now (Forgot Password? on the sign-in page): that cancels the change. Then contact support.")
		})
	}
	http.Redirect(w, r, "/account/email", http.StatusSeeOther)
}

// emailLink reads a confirmation link by its token: nil unless it is the
// user's newest and has not expired.
func (s *Server) emailLink(ctx context.Context, token string) (*emailChange, error) {
	if token == "" || len(token) > 128 {
		return nil, nil
	}
	var c emailChange
	hash := hashToken(token)
	user, err := s.readLink(ctx, linkEmail, hash, &c)
	if err != nil || user == "" {
		return nil, err
	}
	c.UserID, c.Hash = user, hash
	return &c, nil
}

func (s *Server) emailLinkGone(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusBadRequest, templates.ErrorPage{Base: templates.Base{Title: "This link no longer works"}, Status: http.StatusBadRequest,
		Heading: "This link no longer works", Message: "The link has expired, was replaced by a newer one, or was already used. Set your e-mail address again in your account.",
		LinkURL: "/account", LinkText: "Your account"})
}

// handleConfirmEmailForm is the link from the e-mail: a button, so that a
// scanner that follows links confirms nothing.
func (s *Server) handleConfirmEmailForm(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	c, err := s.emailLink(r.Context(), token)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if c == nil {
		s.emailLinkGone(w, r)
		return
	}
	u, err := s.store.UserByID(r.Context(), c.UserID)
	if err != nil {
		s.emailLinkGone(w, r)
		return
	}
	s.render(w, r, http.StatusOK, templates.ConfirmEmailPage{
		Base:   templates.Base{Title: "Confirm your e-mail address", CSRFToken: s.csrfToken(s.browserID(w, r, true), "confirm-email")},
		Action: "/account/email/confirm", Token: token, Email: c.Email, Username: u.Username,
	})
}

func (s *Server) handleConfirmEmail(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !s.checkCSRF(r, "confirm-email") {
		s.forbidden(w, r)
		return
	}
	ctx := r.Context()
	token := r.PostForm.Get("token")
	c, err := s.emailLink(ctx, token)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if c == nil {
		s.emailLinkGone(w, r)
		return
	}
	if spent, err := s.spendLink(ctx, linkEmail, c.Hash, c.UserID); err != nil {
		s.serverError(w, r, err)
		return
	} else if !spent {
		s.emailLinkGone(w, r) // used meanwhile
		return
	}
	u, err := s.store.UserByID(ctx, c.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	old, oldVerified := u.Email, u.EmailVerified
	u.Email, u.EmailVerified, u.UpdatedAt = c.Email, true, s.now()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.serverError(w, r, err)
		return
	}
	e := storage.AuditEvent{Type: "user.email_changed", UserID: u.ID, Username: u.Username, Result: "success", Time: s.now(),
		IP: s.clientIP(r), UserAgent: r.UserAgent()}
	s.audit(ctx, r, e)
	// The old address is told, in case this was not its owner's doing.
	if old != "" && oldVerified && !strings.EqualFold(old, c.Email) && s.cfg.Email.Notifications {
		s.background("security notice", func(ctx context.Context) {
			s.sendNotice(ctx, u, old, "Your e-mail address was changed to "+c.Email, e,
				"contact support at once: password reset links now go to the new address.")
		})
	}
	s.render(w, r, http.StatusOK, templates.MessagePage{Base: templates.Base{Title: "E-mail address confirmed"}, Heading: "E-mail address confirmed",
		Message: "Your account's e-mail address is now " + c.Email + ".", LinkURL: "/account", LinkText: "Your account"})
}
