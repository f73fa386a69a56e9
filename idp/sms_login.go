package idp

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/templates"
)

// The second factor by SMS at login: "Send SMS Code" sends a code for this
// pending login (never on a page view: only a click costs a message), the
// page then says where it went, and the code typed in passes the step with
// amr "sms".

// smsLoginUser is the login's user when they can get codes by SMS; the
// caller has answered otherwise.
func (s *Server) smsLoginUser(w http.ResponseWriter, r *http.Request, l *loaded) *storage.User {
	u, err := s.store.UserByID(r.Context(), l.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return nil
	}
	if !s.smsUsable(u) {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
		return nil
	}
	return u
}

func (s *Server) showSMSLogin(w http.ResponseWriter, r *http.Request, l *loaded, c *client, browser string, status int, msg string) {
	u := s.smsLoginUser(w, r, l)
	if u == nil {
		return
	}
	sent, _, err := s.sentCode(r.Context(), smsLoginScope(l.ID), u.Phone)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, status, templates.SMSCodePage{
		Base:          templates.Base{Title: "2-Factor Authentication", CSRFToken: s.csrfToken(browser, "login:"+l.ID), Error: msg, Notice: resetNotice(l)},
		Action:        "/login/sms",
		SendAction:    "/login/sms/send",
		AuthRequestID: l.ID,
		ClientName:    c.name(),
		MaskedPhone:   nbsp(manage.MaskedPhone(u.Phone)),
		Sent:          sent != nil,
		RememberDays:  s.rememberDaysFor(l),
		MethodsURL:    "/login/methods?id=" + url.QueryEscape(l.ID),
	})
}

// handleSMSLoginForm is "SMS code" under "Try another method".
func (s *Server) handleSMSLoginForm(w http.ResponseWriter, r *http.Request) {
	l, c, browser := s.loginAt(w, r, stepSecondFactor)
	if l == nil {
		return
	}
	s.showSMSLogin(w, r, l, c, browser, http.StatusOK, "")
}

// handleSMSSend is the "Send SMS Code" button.
func (s *Server) handleSMSSend(w http.ResponseWriter, r *http.Request) {
	l, c := s.stepForm(w, r, stepSecondFactor)
	if l == nil {
		return
	}
	u := s.smsLoginUser(w, r, l)
	if u == nil {
		return
	}
	err := s.sendSMSCode(r.Context(), r, smsLoginScope(l.ID), u, u.Phone)
	if err != nil {
		status, msg, ok := s.smsSendProblem(w, err)
		if !ok {
			s.serverError(w, r, err)
			return
		}
		s.showSMSLogin(w, r, l, c, s.browserID(w, r, false), status, msg)
		return
	}
	http.Redirect(w, r, "/login/sms?id="+url.QueryEscape(l.ID), http.StatusSeeOther)
}

// handleSMSLogin checks the code typed in.
func (s *Server) handleSMSLogin(w http.ResponseWriter, r *http.Request) {
	l, c := s.stepForm(w, r, stepSecondFactor)
	if l == nil {
		return
	}
	u := s.smsLoginUser(w, r, l)
	if u == nil {
		return
	}
	ctx := r.Context()
	show := func(status int, msg string) { s.showSMSLogin(w, r, l, c, s.browserID(w, r, false), status, msg) }
	chk := s.regulateLogin(w, r, l, l.Username, regulation.SMS, show)
	if chk == nil {
		return
	}
	defer chk.Done(ctx)
	res, err := s.checkSMSCode(ctx, smsLoginScope(l.ID), u.Phone, r.PostForm.Get("code"))
	if err != nil && !errors.Is(err, errSMSNotSent) {
		s.serverError(w, r, err)
		return
	}
	if res != smsOK {
		reason := map[smsCheck]string{smsWrong: "wrong code", smsSpent: "wrong code, last try", smsMissing: "no valid code"}[res]
		if s.failed(w, r, l, chk, storage.AuditEvent{Type: "mfa.failed", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
			Result: "failure", Details: map[string]string{"method": "sms", "reason": reason}}) {
			show(http.StatusUnauthorized, res.message())
		}
		return
	}
	if err := s.passed(ctx, chk); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.secondFactorPassed(w, r, l, c, "sms", "sms")
}
