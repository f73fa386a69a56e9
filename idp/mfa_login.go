package idp

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/templates"
)

// The second-factor steps of a login: the authenticator code (or a
// recovery code, or a remembered device), enrolment when a second factor is
// required and the user has none, and the recovery codes shown once.

// showSecondFactor shows the second-factor step: the authenticator app's
// code (with "Send SMS Code" when the user can get one), or, for a user
// whose only factor is the phone, the SMS page.
func (s *Server) showSecondFactor(w http.ResponseWriter, r *http.Request, l *loaded, c *client, browser string, status int, msg string) {
	f, err := s.factorsOf(r.Context(), l.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	last := s.lastMethod(r)
	switch {
	case f.KeysUsable() && (last == "security_key" || (!f.TOTP && !(f.SMS && last == "sms"))):
		s.showKeyLogin(w, r, l, c, browser, status, msg)
		return
	case f.SMS && (!f.TOTP || last == "sms"):
		s.showSMSLogin(w, r, l, c, browser, status, msg)
		return
	case !f.TOTP:
		// The only factors cannot be used here now (SMS off, WebAuthn off).
		if msg == "" {
			msg = "Your second factor cannot be used at the moment. Use one of your recovery codes, or contact support."
		}
		s.showRecovery(w, r, l, c, browser, status, msg)
		return
	}
	page := templates.SecondFactorPage{
		Base:          templates.Base{Title: "2-Factor Authentication", CSRFToken: s.csrfToken(browser, "login:"+l.ID), Error: msg, Notice: resetNotice(l)},
		Action:        "/login/mfa",
		AuthRequestID: l.ID,
		ClientName:    c.name(),
		RememberDays:  s.rememberDaysFor(l),
		MethodsURL:    "/login/methods?id=" + url.QueryEscape(l.ID),
	}
	if f.SMS {
		page.SendSMSAction = "/login/sms/send"
	}
	s.render(w, r, status, page)
}

// handleSecondFactor checks the authenticator app's code.
func (s *Server) handleSecondFactor(w http.ResponseWriter, r *http.Request) {
	l, c := s.stepForm(w, r, stepSecondFactor)
	if l == nil {
		return
	}
	ctx := r.Context()
	show := func(status int, msg string) { s.showSecondFactor(w, r, l, c, s.browserID(w, r, false), status, msg) }
	chk := s.regulateLogin(w, r, l, l.Username, regulation.TOTP, show)
	if chk == nil {
		return
	}
	defer chk.Done(ctx)
	res, err := s.checkTOTP(ctx, l.UserID, r.PostForm.Get("code"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if res != codeOK {
		reason := map[codeCheck]string{codeWrong: "wrong code", codeReused: "code already used", codeClockOff: "phone clock off"}[res]
		if s.failed(w, r, l, chk, storage.AuditEvent{Type: "mfa.failed", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
			Result: "failure", Details: map[string]string{"method": "totp", "reason": reason}}) {
			show(http.StatusUnauthorized, res.message())
		}
		return
	}
	if err := s.passed(ctx, chk); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.secondFactorPassed(w, r, l, c, "totp", "otp")
}

// secondFactorPassed records a passed second factor (method for the audit
// log, amr its RFC 8176 value), remembers the device when asked, and moves
// the login on.
func (s *Server) secondFactorPassed(w http.ResponseWriter, r *http.Request, l *loaded, c *client, method, amr string) {
	ctx := r.Context()
	l.AMR, l.ACR, l.AuthTime, l.FreshAuth = addAMR(l.AMR, amr, "mfa"), acrMFA, s.now(), true
	s.setLastMethod(w, method)
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.passed", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
		Result: "success", Details: map[string]string{"method": method}})
	if r.PostForm.Get("remember") == "on" && !l.Reset {
		if err := s.rememberDevice(ctx, w, r, l.UserID); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	if s.advance(w, r, l, c) {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
	}
}

// loginAt loads a login for a GET page of a step: bound to this browser
// and at step, or the browser goes back to the dispatcher.
func (s *Server) loginAt(w http.ResponseWriter, r *http.Request, step string) (*loaded, *client, string) {
	id := r.URL.Query().Get("id")
	l, err := s.authRequests.get(r.Context(), id)
	if err != nil {
		s.loginFailed(w, r, "", err)
		return nil, nil, ""
	}
	browser := s.browserID(w, r, false)
	if l.Browser != browserBinding(browser) {
		s.wrongBrowser(w, r, l)
		return nil, nil, ""
	}
	if l.Step != step {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
		return nil, nil, ""
	}
	c, err := s.loginClient(r.Context(), l)
	if err != nil {
		s.loginFailed(w, r, "", err)
		return nil, nil, ""
	}
	return l, c, browser
}

// handleMethods lists the second-factor methods the user has.
func (s *Server) handleMethods(w http.ResponseWriter, r *http.Request) {
	l, _, _ := s.loginAt(w, r, stepSecondFactor)
	if l == nil {
		return
	}
	ctx := r.Context()
	f, err := s.factorsOf(ctx, l.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	left, err := s.store.CountRecoveryCodes(ctx, l.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	id := url.QueryEscape(l.ID)
	var methods []templates.Method
	key := templates.Method{Label: "Security key",
		Description: "Use your security key, or the passkey on this device.", URL: "/login/key?id=" + id}
	if f.KeysUsable() && s.lastMethod(r) == "security_key" {
		methods = append(methods, key) // first: the one this browser used last
	}
	if f.TOTP {
		methods = append(methods, templates.Method{Label: "Authenticator app",
			Description: "Enter the six-digit code from your authenticator app.", URL: loginURL(l.ID)})
	}
	if f.SMS {
		methods = append(methods, templates.Method{Label: "SMS code",
			Description: "Get a code by text message to " + nbsp(manage.MaskedPhone(f.user.Phone)) + ".", URL: "/login/sms?id=" + id})
	}
	if f.KeysUsable() && s.lastMethod(r) != "security_key" {
		methods = append(methods, key)
	}
	if f.TOTP || left > 0 {
		methods = append(methods, templates.Method{Label: "Recovery code",
			Description: "Use one of the recovery codes you saved when you set up your second factor.", URL: "/login/recovery?id=" + id})
	}
	s.render(w, r, http.StatusOK, templates.MethodsPage{
		Base:    templates.Base{Title: "Try another method"},
		Methods: methods,
		BackURL: loginURL(l.ID),
	})
}

func (s *Server) showRecovery(w http.ResponseWriter, r *http.Request, l *loaded, c *client, browser string, status int, msg string) {
	s.render(w, r, status, templates.RecoveryLoginPage{
		Base:          templates.Base{Title: "Use a recovery code", CSRFToken: s.csrfToken(browser, "login:"+l.ID), Error: msg},
		Action:        "/login/recovery",
		AuthRequestID: l.ID,
		ClientName:    c.name(),
		MethodsURL:    "/login/methods?id=" + url.QueryEscape(l.ID),
	})
}

func (s *Server) handleRecoveryForm(w http.ResponseWriter, r *http.Request) {
	l, c, browser := s.loginAt(w, r, stepSecondFactor)
	if l == nil {
		return
	}
	s.showRecovery(w, r, l, c, browser, http.StatusOK, "")
}

// handleRecovery spends a recovery code; the code that replaces it is
// shown before the login goes on.
func (s *Server) handleRecovery(w http.ResponseWriter, r *http.Request) {
	l, c := s.stepForm(w, r, stepSecondFactor)
	if l == nil {
		return
	}
	ctx := r.Context()
	show := func(status int, msg string) { s.showRecovery(w, r, l, c, s.browserID(w, r, false), status, msg) }
	chk := s.regulateLogin(w, r, l, l.Username, regulation.Recovery, show)
	if chk == nil {
		return
	}
	defer chk.Done(ctx)
	replacement, ok, err := s.useRecoveryCode(ctx, l.UserID, r.PostForm.Get("recovery_code"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !ok {
		if s.failed(w, r, l, chk, storage.AuditEvent{Type: "mfa.failed", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
			Result: "failure", Details: map[string]string{"method": "recovery_code"}}) {
			show(http.StatusUnauthorized, "That recovery code is not right, or it was already used.")
		}
		return
	}
	if err := s.passed(ctx, chk); err != nil {
		s.serverError(w, r, err)
		return
	}
	left, err := s.store.CountRecoveryCodes(ctx, l.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.recovery_code_used", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
		Result: "success", Details: map[string]string{"codes_left": strconv.Itoa(left)}})
	// RFC 8176 has no value for a recovery code; "otp" would claim an
	// authenticator app, so the login carries "mfa" alone with "pwd".
	l.AMR, l.ACR, l.AuthTime, l.FreshAuth = addAMR(l.AMR, "mfa"), acrMFA, s.now(), true
	s.showCodesNext(w, r, l, []string{replacement}, true)
}

// showCodesNext moves the login to the step that shows codes once; they
// wait in the pending login, sealed.
func (s *Server) showCodesNext(w http.ResponseWriter, r *http.Request, l *loaded, codes []string, replacement bool) {
	// A factor passed (a recovery code, or the first code of a set-up):
	// the login moves to a new id, which the sealed codes are bound to.
	if err := s.moveOn(r.Context(), l); err != nil {
		s.loginFailed(w, r, l.ClientID, err)
		return
	}
	sealed, err := s.sealJSON(codes, "codes:"+l.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	l.Codes, l.Replacement, l.Step = sealed, replacement, stepShowCodes
	if err := s.authRequests.update(r.Context(), l); err != nil {
		s.loginFailed(w, r, l.ClientID, err)
		return
	}
	http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
}

// showLoginCodes shows the recovery codes of the login once: a new set
// after enrolment, or the one code that replaced a used one.
func (s *Server) showLoginCodes(w http.ResponseWriter, r *http.Request, l *loaded, browser string) {
	var codes []string
	if err := s.openJSON(l.Codes, "codes:"+l.ID, &codes); err != nil || len(codes) == 0 {
		s.serverError(w, r, cmp.Or(err, errors.New("the login holds no recovery codes to show")))
		return
	}
	csrf := s.csrfToken(browser, "login:"+l.ID)
	if l.Replacement {
		left, err := s.store.CountRecoveryCodes(r.Context(), l.UserID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, templates.ReplacementCodePage{
			Base:   templates.Base{Title: "Your new recovery code", CSRFToken: csrf},
			Action: "/login/continue", AuthRequestID: l.ID, Code: codes[0], CodesLeft: left,
		})
		return
	}
	s.render(w, r, http.StatusOK, templates.RecoveryCodesPage{
		Base:           templates.Base{Title: "Save your recovery codes", CSRFToken: csrf},
		Codes:          codes,
		DownloadName:   "recovery-codes-" + l.Username + ".txt",
		ContinueAction: "/login/continue",
		AuthRequestID:  l.ID,
	})
}

// handleContinue goes on after the codes were shown.
func (s *Server) handleContinue(w http.ResponseWriter, r *http.Request) {
	l, c := s.stepForm(w, r, stepShowCodes)
	if l == nil {
		return
	}
	l.Codes, l.Replacement = nil, false
	if s.advance(w, r, l, c) {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
	}
}

// showLoginEnrolment shows the authenticator set-up inside a login that
// requires a second factor the user does not have yet.
func (s *Server) showLoginEnrolment(w http.ResponseWriter, r *http.Request, l *loaded, browser string, status int, msg string) {
	if l.EnrolSecret == nil {
		l.EnrolSecret = s.keys.Seal(mfa.NewTOTPSecret(), []byte("enrol:"+l.ID))
		if err := s.authRequests.update(r.Context(), l); err != nil {
			s.loginFailed(w, r, l.ClientID, err)
			return
		}
	}
	secret, err := s.keys.Open(l.EnrolSecret, []byte("enrol:"+l.ID))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	page, err := s.enrolmentPage(secret, l.Username)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	page.Base = templates.Base{Title: "Set up 2-Factor Auth", CSRFToken: s.csrfToken(browser, "login:"+l.ID), Error: msg,
		Notice: "This sign-in needs 2-Factor Auth. Set up your authenticator app to continue."}
	page.Action, page.AuthRequestID = "/login/enrol", l.ID
	s.render(w, r, status, page)
}

// enrolmentPage is the set-up page for secret, without its form fields.
func (s *Server) enrolmentPage(secret []byte, username string) (templates.EnrolTOTPPage, error) {
	issuer := s.cfg.TOTPIssuer()
	u := mfa.TOTPURL(issuer, username, secret)
	png, err := mfa.TOTPQRCode(u, 240)
	if err != nil {
		return templates.EnrolTOTPPage{}, err
	}
	return templates.EnrolTOTPPage{QRCodePNG: png, SetupKey: mfa.FormatSetupKey(secret), OTPAuthURL: u, Issuer: issuer, Account: username}, nil
}

// handleLoginEnrol confirms the enrolment of a login with its first code.
func (s *Server) handleLoginEnrol(w http.ResponseWriter, r *http.Request) {
	l, _ := s.stepForm(w, r, stepEnrol)
	if l == nil {
		return
	}
	ctx := r.Context()
	secret, err := s.keys.Open(l.EnrolSecret, []byte("enrol:"+l.ID))
	if err != nil {
		s.loginFailed(w, r, l.ClientID, errLoginExpired)
		return
	}
	show := func(status int, msg string) { s.showLoginEnrolment(w, r, l, s.browserID(w, r, false), status, msg) }
	chk := s.regulateLogin(w, r, l, l.Username, regulation.TOTP, show)
	if chk == nil {
		return
	}
	defer chk.Done(ctx)
	step, res := s.checkTOTPSecret(secret, r.PostForm.Get("code"))
	if res != codeOK {
		if s.failed(w, r, l, chk, storage.AuditEvent{Type: "mfa.enrolment_failed", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
			Result: "failure", Details: map[string]string{"method": "totp"}}) {
			show(http.StatusUnauthorized, res.message())
		}
		return
	}
	if err := s.passed(ctx, chk); err != nil {
		s.serverError(w, r, err)
		return
	}
	codes, err := s.enableTOTP(ctx, l.UserID, secret, step)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.totp_enabled", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID, Result: "success"})
	l.AMR, l.ACR, l.AuthTime, l.FreshAuth = addAMR(l.AMR, "otp", "mfa"), acrMFA, s.now(), true
	l.EnrolSecret = nil
	s.showCodesNext(w, r, l, codes, false)
}
