package idp

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/templates"
)

// The account pages: the user's own 2-Factor Auth, recovery codes and
// remembered devices. They need the provider's session; without one the
// user logs in through the same hosted login (and its second factor).

// enrolmentTTL is how long an enrolment waits for its first code.
const enrolmentTTL = 10 * time.Minute

var accountNotices = map[string]string{
	"2fa-off":           "2-Factor Auth is off. Your authenticator app, recovery codes and remembered devices were removed.",
	"devices-forgotten": "Every remembered device was forgotten. Each browser asks for a code at its next login.",
	"password-changed":  "Your password was changed. Every other session of your account was logged out.",
	"key-added":         "Your security key was added. Use it at your next login.",
	"key-removed":       "The security key was removed. It no longer works for your account.",
	"app-off":           "Your authenticator app was removed. Your other second factors still protect your login.",
	"enrol-expired":     "Setting up 2-Factor Auth took too long. Turn it on again to start over.",
}

// accountUser returns the logged-in user, or starts a login that comes
// back to returnTo and returns nil.
func (s *Server) accountUser(w http.ResponseWriter, r *http.Request, returnTo string) *storage.User {
	ctx := r.Context()
	sess, err := s.currentSession(ctx, r)
	if err != nil {
		s.serverError(w, r, err)
		return nil
	}
	if sess != nil {
		u, err := s.store.UserByID(ctx, sess.UserID)
		if err == nil && !u.Disabled {
			return u
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.serverError(w, r, err)
			return nil
		}
		if err := s.endBrowserSession(ctx, w, r); err != nil {
			s.serverError(w, r, err)
			return nil
		}
	}
	if r.Method != http.MethodGet {
		// A form posted after the session ended: start from the account page.
		returnTo = "/account"
	}
	s.startAccountLogin(w, r, returnTo, "")
	return nil
}

// startAccountLogin sends the browser through the hosted login, back to
// returnTo. With a notice the password is asked for again even within the
// session (max_age=0), and the login page says why.
func (s *Server) startAccountLogin(w http.ResponseWriter, r *http.Request, returnTo, notice string) {
	now := s.now()
	a := &AuthRequest{ID: secret.RandomToken(32), CreatedAt: now, ExpiresAt: now.Add(s.cfg.Session.LoginTimeout),
		Step: stepPassword, ReturnTo: returnTo, Browser: browserBinding(s.browserID(w, r, true)), Notice: notice}
	if notice != "" {
		fresh := uint(0)
		a.MaxAge = &fresh
	}
	if err := s.authRequests.create(r.Context(), a); err != nil {
		s.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, loginURL(a.ID), http.StatusSeeOther)
}

// recentAuthWindow: a change to a user's second factors needs a login
// this recent, so that a session left open (or stolen) cannot add the
// attacker's phone.
const recentAuthWindow = 15 * time.Minute

// freshLogin reports whether this browser's session logged in within
// recentAuthWindow. When it did not, it starts a new login back to
// /account, saying why, and answers the request itself.
func (s *Server) freshLogin(w http.ResponseWriter, r *http.Request, why string) bool {
	sess, err := s.currentSession(r.Context(), r)
	if err != nil {
		s.serverError(w, r, err)
		return false
	}
	if sess != nil && s.now().Sub(sess.AuthTime) <= recentAuthWindow {
		return true
	}
	s.startAccountLogin(w, r, "/account", why)
	return false
}

// accountForm is accountUser for a form post: it also checks the CSRF token.
func (s *Server) accountForm(w http.ResponseWriter, r *http.Request) *storage.User {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Invalid request", "The form could not be read. Go back and try again.", err)
		return nil
	}
	if !s.checkCSRF(r, "account") {
		s.forbidden(w, r)
		return nil
	}
	return s.accountUser(w, r, "/account")
}

func (s *Server) accountCSRF(w http.ResponseWriter, r *http.Request) string {
	return s.csrfToken(s.browserID(w, r, true), "account")
}

func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	u := s.accountUser(w, r, "/account")
	if u == nil {
		return
	}
	s.showAccount(w, r, u, accountView{status: http.StatusOK})
}

// accountView is what one answer adds to the account page: its status and
// the outcome of a form posted to it.
type accountView struct {
	status       int
	phoneError   string
	phoneErrorAt string // "save" or "verify": the form the error is about
	phoneInput   string
	phoneRegion  string
}

func (s *Server) showAccount(w http.ResponseWriter, r *http.Request, u *storage.User, v accountView) {
	ctx := r.Context()
	has, err := s.hasSecondFactor(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	left, err := s.store.CountRecoveryCodes(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	devices, err := s.store.ListRememberedDevices(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	phone, err := s.phoneSection(r, u, has, v)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	keys, err := s.keysSection(ctx, u)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	activity, err := s.recentActivity(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	on := has || phone.SecondFactor || len(keys.Items) > 0
	other := ""
	switch {
	case has:
	case len(keys.Items) > 0:
		other = "security key"
	case phone.SecondFactor:
		other = "cell phone"
	}
	page := templates.AccountPage{
		Base:                templates.Base{Title: "Your account", CSRFToken: s.accountCSRF(w, r), Notice: accountNotices[r.URL.Query().Get("notice")]},
		Username:            u.Username,
		Name:                u.Name,
		Email:               u.Email,
		EmailVerified:       u.EmailVerified,
		ChangePasswordURL:   "/account/password",
		TOTPEnabled:         has,
		OtherFactor:         other,
		EnableTOTPAction:    "/account/2fa/enable",
		DisableTOTPURL:      "/account/2fa/disable",
		RecoveryCodesLeft:   left,
		RecoveryCodesLow:    on && left <= 3,
		RegenerateCodesURL:  "/account/recovery-codes",
		ForgetDevicesAction: "/account/devices/forget",
		LogoutAction:        "/account/logout",
		Phone:               phone,
		Keys:                keys,
		Activity:            activity,
	}
	if s.mailEnabled() {
		page.ChangeEmailURL = "/account/email"
	}
	now := s.now()
	for _, d := range devices {
		if !d.ExpiresAt.After(now) {
			continue
		}
		page.Devices = append(page.Devices, templates.DeviceItem{
			Description: d.Description, Created: formatDate(d.CreatedAt), LastUsed: formatDate(d.LastUsedAt), Expires: formatDate(d.ExpiresAt),
		})
	}
	s.render(w, r, v.status, page)
}

// formatDate is a date for the pages; empty (shown as "Never") for a zero time.
func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

func enrolKey(userID string) string { return "enrol:" + userID }

// handleEnable starts an enrolment: the secret waits, sealed, in the
// pending-login store until a code proves the app has it.
func (s *Server) handleEnable(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	if has, err := s.hasSecondFactor(ctx, u.ID); err != nil || has {
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	// A session left open must not let someone else enrol their own app.
	if !s.freshLogin(w, r, "For your security, log in again to turn on 2-Factor Auth.") {
		return
	}
	sealed := s.keys.Seal(mfa.NewTOTPSecret(), []byte(enrolKey(u.ID)))
	if err := s.pending.Set(ctx, enrolKey(u.ID), sealed, enrolmentTTL); err != nil {
		s.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account/2fa/setup", http.StatusSeeOther)
}

// enrolment returns the secret of the user's enrolment in progress.
func (s *Server) enrolment(w http.ResponseWriter, r *http.Request, u *storage.User) []byte {
	sealed, err := s.pending.Get(r.Context(), enrolKey(u.ID))
	if err == nil {
		if secret, err := s.keys.Open(sealed, []byte(enrolKey(u.ID))); err == nil {
			return secret
		}
	}
	http.Redirect(w, r, "/account?notice=enrol-expired", http.StatusSeeOther)
	return nil
}

func (s *Server) showAccountEnrolment(w http.ResponseWriter, r *http.Request, u *storage.User, secret []byte, status int, msg string) {
	page, err := s.enrolmentPage(secret, u.Username)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	page.Base = templates.Base{Title: "Set up 2-Factor Auth", CSRFToken: s.accountCSRF(w, r), Error: msg}
	page.Action, page.CancelURL = "/account/2fa/setup", "/account"
	s.render(w, r, status, page)
}

func (s *Server) handleSetup(w http.ResponseWriter, r *http.Request) {
	u := s.accountUser(w, r, "/account")
	if u == nil {
		return
	}
	if secret := s.enrolment(w, r, u); secret != nil {
		s.showAccountEnrolment(w, r, u, secret, http.StatusOK, "")
	}
}

// handleSetupConfirm checks the first code; only then is anything saved.
func (s *Server) handleSetupConfirm(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	secret := s.enrolment(w, r, u)
	if secret == nil {
		return
	}
	step, res := s.checkTOTPSecret(secret, r.PostForm.Get("code"))
	if res != codeOK {
		s.showAccountEnrolment(w, r, u, secret, http.StatusUnauthorized, res.message())
		return
	}
	codes, err := s.enableTOTP(ctx, u.ID, secret, step)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.pending.Delete(ctx, enrolKey(u.ID)); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.totp_enabled", UserID: u.ID, Username: u.Username, Result: "success"})
	s.showCodes(w, r, u, codes, "/account")
}

// showCodes shows new recovery codes once; Continue goes to next.
func (s *Server) showCodes(w http.ResponseWriter, r *http.Request, u *storage.User, codes []string, next string) {
	s.render(w, r, http.StatusOK, templates.RecoveryCodesPage{
		Base:         templates.Base{Title: "Save your recovery codes"},
		Codes:        codes,
		DownloadName: "recovery-codes-" + u.Username + ".txt",
		ContinueURL:  next,
	})
}

func smsConfirmScope(userID string) string { return "confirm:" + userID }

// confirmActions are the changes confirmed with a current second factor.
const (
	confirmDisable    = "/account/2fa/disable"
	confirmRegenerate = "/account/recovery-codes"
)

// confirmMethods is how u can confirm action: with the app's code, with
// an SMS code; ok is false when the action does not apply to u (no app to
// turn off, no second factor at all).
func (s *Server) confirmMethods(r *http.Request, u *storage.User, action string) (app, sms, ok bool, err error) {
	app, err = s.hasSecondFactor(r.Context(), u.ID)
	if err != nil {
		return false, false, false, err
	}
	sms = s.smsUsable(u)
	switch action {
	case confirmDisable:
		ok = app
	case confirmRegenerate:
		// A user with security keys only confirms with a recovery code.
		keys, err := s.store.CountSecurityKeys(r.Context(), u.ID)
		if err != nil {
			return false, false, false, err
		}
		ok = app || keys > 0 || (sms && s.cfg.MFA.SMSAsOnlyFactor)
	}
	return app, sms, ok, nil
}

// confirmPage asks for a code before a sensitive change.
func (s *Server) confirmPage(w http.ResponseWriter, r *http.Request, u *storage.User, status int, msg, action string) {
	app, sms, _, err := s.confirmMethods(r, u, action)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	page := templates.ConfirmFactorPage{
		Base:         templates.Base{CSRFToken: s.accountCSRF(w, r), Error: msg},
		Action:       action,
		CancelURL:    "/account",
		AppCode:      app,
		RecoveryOnly: !app && !sms,
	}
	if sms {
		page.SendSMSAction = "/account/confirm/sms"
		sent, _, err := s.sentCode(r.Context(), smsConfirmScope(u.ID), u.Phone)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if sent != nil {
			page.SMSSentTo = nbsp(manage.MaskedPhone(u.Phone))
		}
	}
	switch action {
	case confirmDisable:
		page.Title, page.Heading = "Turn off 2-Factor Auth", "Turn off 2-Factor Auth"
		page.Message = "Enter a code from your authenticator app (or a recovery code) to turn it off. When no other second factor protects your login, your recovery codes and remembered devices are removed too."
		page.SubmitLabel, page.Danger = "Turn off 2-Factor Auth", true
	default:
		page.Title, page.Heading = "New recovery codes", "Generate new recovery codes"
		page.Message = "Enter a current code (or a recovery code). Your current recovery codes stop working and ten new ones are shown once."
		if !app && !sms {
			page.Message = "Enter one of your recovery codes. All of your current recovery codes then stop working and ten new ones are shown once."
		}
		page.SubmitLabel = "Generate new recovery codes"
	}
	s.render(w, r, status, page)
}

func (s *Server) handleConfirmForm(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := s.accountUser(w, r, action)
		if u == nil {
			return
		}
		if _, _, ok, err := s.confirmMethods(r, u, action); err != nil || !ok {
			if err != nil {
				s.serverError(w, r, err)
				return
			}
			http.Redirect(w, r, "/account", http.StatusSeeOther)
			return
		}
		s.confirmPage(w, r, u, http.StatusOK, "", action)
	}
}

// handleConfirmSMS is "Send SMS Code" on a confirmation page.
func (s *Server) handleConfirmSMS(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	action := r.PostForm.Get("action")
	if action != confirmDisable && action != confirmRegenerate {
		action = confirmRegenerate
	}
	if _, sms, ok, err := s.confirmMethods(r, u, action); err != nil || !ok || !sms {
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	if err := s.sendSMSCode(r.Context(), r, smsConfirmScope(u.ID), u, u.Phone); err != nil {
		status, msg, ok := s.smsSendProblem(w, err)
		if !ok {
			s.serverError(w, r, err)
			return
		}
		s.confirmPage(w, r, u, status, msg, action)
		return
	}
	http.Redirect(w, r, action, http.StatusSeeOther)
}

var sixDigits = regexp.MustCompile(`^[0-9 ]{6,8}$`)

// confirmFactor checks a code from the authenticator app, a text message
// or a recovery code in the account pages; wrong codes count, and too many
// end the session.
func (s *Server) confirmFactor(w http.ResponseWriter, r *http.Request, u *storage.User, action string) bool {
	ctx := r.Context()
	app, sms, ok, err := s.confirmMethods(r, u, action)
	if err != nil {
		s.serverError(w, r, err)
		return false
	}
	if !ok {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return false
	}
	code := r.PostForm.Get("code")
	res, method := codeWrong, "totp"
	msg := ""
	factor := regulation.Recovery
	if sixDigits.MatchString(code) {
		factor = regulation.TOTP
		if !app {
			factor = regulation.SMS
		}
	}
	chk := s.regulate(w, r, u.Username, factor, s.waiver(w, r, u.Username), func(status int, msg string) { s.confirmPage(w, r, u, status, msg, action) })
	if chk == nil {
		return false
	}
	defer chk.Done(ctx)
	if sixDigits.MatchString(code) {
		msg = "Enter one of your recovery codes (xxxx-xxxx-xxxx), not a six-digit code."
		if app {
			if res, err = s.checkTOTP(ctx, u.ID, code); err != nil {
				s.serverError(w, r, err)
				return false
			}
			msg = res.message()
		}
		if res != codeOK && sms {
			sent, err := s.checkSMSCode(ctx, smsConfirmScope(u.ID), u.Phone, code)
			if err != nil {
				s.serverError(w, r, err)
				return false
			}
			if sent == smsOK {
				res, method = codeOK, "sms"
			} else if !app {
				method, msg = "sms", sent.message()
			}
		}
	} else {
		method = "recovery_code"
		_, ok, err := s.useRecoveryCode(ctx, u.ID, code)
		if err != nil {
			s.serverError(w, r, err)
			return false
		}
		if ok {
			res = codeOK
		}
		msg = "That code is not right. Enter a current six-digit code, or an unused recovery code."
	}
	if res == codeOK {
		if err := s.passed(ctx, chk); err != nil {
			s.serverError(w, r, err)
			return false
		}
		return true
	}
	if !s.accountFailure(w, r, u, chk, method, action) {
		return false
	}
	s.confirmPage(w, r, u, http.StatusUnauthorized, msg, action)
	return false
}

// accountFailure audits a wrong answer in the account pages and reports
// it to the regulator (chk, from s.regulate). When that imposes a delay on
// the account the session ends, since whoever holds it is guessing, and it
// answers the request itself (false); otherwise the caller shows its form
// again.
func (s *Server) accountFailure(w http.ResponseWriter, r *http.Request, u *storage.User, chk *regulation.Check, method, where string) bool {
	ctx := r.Context()
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.failed", UserID: u.ID, Username: u.Username, Result: "failure",
		Details: map[string]string{"method": method, "where": where}})
	bans, err := s.rejected(ctx, r, chk, u.ID, u.Username)
	if err != nil {
		s.serverError(w, r, err)
		return false
	}
	for _, b := range bans {
		if b.Subject != regulation.SubjectAccount {
			continue
		}
		if err := s.endBrowserSession(ctx, w, r); err != nil {
			s.serverError(w, r, err)
			return false
		}
		setRetryAfter(w, b.Delay)
		s.errorPage(w, r, http.StatusTooManyRequests, "Too many attempts",
			"There were too many wrong answers, so you were logged out. Log in again to continue; the method you were using can be tried again in "+humanWait(b.Delay)+".", nil)
		return false
	}
	return true
}

func (s *Server) handleDisable(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil || !s.confirmFactor(w, r, u, confirmDisable) {
		return
	}
	ctx := r.Context()
	if err := s.store.DeleteTOTP(ctx, u.ID); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.totp_disabled", UserID: u.ID, Username: u.Username, Result: "success"})
	// Security keys (or a phone that is the only factor) still protect the
	// login: they keep the recovery codes and remembered devices.
	f, err := s.factorsOf(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if f.required(s.cfg.MFA.SMSAsOnlyFactor) {
		http.Redirect(w, r, "/account?notice=app-off", http.StatusSeeOther)
		return
	}
	if err := s.manage().RemoveSecondFactors(ctx, u.ID); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.clearCookie(w, s.cookies.device)
	http.Redirect(w, r, "/account?notice=2fa-off", http.StatusSeeOther)
}

func (s *Server) handleRegenerate(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil || !s.confirmFactor(w, r, u, confirmRegenerate) {
		return
	}
	ctx := r.Context()
	codes, err := s.newRecoveryCodes(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.recovery_codes_regenerated", UserID: u.ID, Username: u.Username, Result: "success"})
	s.showCodes(w, r, u, codes, "/account")
}

func (s *Server) handleForgetDevices(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	n, err := s.store.DeleteRememberedDevices(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.clearCookie(w, s.cookies.device)
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.devices_forgotten", UserID: u.ID, Username: u.Username, Result: "success",
		Details: map[string]string{"devices": strconv.FormatInt(n, 10)}})
	http.Redirect(w, r, "/account?notice=devices-forgotten", http.StatusSeeOther)
}

func (s *Server) handleAccountLogout(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !s.checkCSRF(r, "account") {
		s.forbidden(w, r)
		return
	}
	ctx := r.Context()
	sess, err := s.currentSession(ctx, r)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.endBrowserSession(ctx, w, r); err != nil {
		s.serverError(w, r, err)
		return
	}
	if sess != nil {
		s.audit(ctx, r, storage.AuditEvent{Type: "logout", UserID: sess.UserID, Result: "success"})
	}
	http.Redirect(w, r, "/logged-out", http.StatusSeeOther)
}
