package idp

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/templates"
)

// The account page's Cell Phone: the user sets a number (Country Code and
// Cell Phone, Save), the provider texts a code to it, and only once the
// code comes back (Authentication Code, Update) is the number verified and
// used for login. A new number is unverified until its code comes back;
// the old one gets no more codes from the moment it is replaced. Changing
// or removing the phone of a user with a second factor needs a recent
// login.

const msgFreshLoginPhone = "For your security, log in again to change your cell phone."

// phoneNotice is the sentence shown in the Cell Phone section after a
// change (?notice=...), there rather than at the top of the page, which
// the #phone anchor scrolls out of view. A sent code needs none: the
// section itself says where it went.
func phoneNotice(key string, p templates.PhoneSection) string {
	switch key {
	case "phone-verified":
		switch {
		case p.SecondFactor:
			return "Your cell phone is verified. It is your second factor: you get a code by SMS when you log in."
		case p.AppOn:
			return "Your cell phone is verified. At login you can choose Send SMS Code instead of the app's code."
		default:
			return "Your cell phone is verified. Once you turn on 2-Factor Auth, you can also get login codes by SMS."
		}
	case "phone-removed":
		return "Your cell phone was removed. No more codes are sent to it."
	case "phone-unchanged":
		return "That number is already your cell phone."
	}
	return ""
}

// phoneSection builds the Cell Phone section of the account page.
func (s *Server) phoneSection(r *http.Request, u *storage.User, totp bool, v accountView) (templates.PhoneSection, error) {
	p := templates.PhoneSection{
		Available:    s.smsEnabled(),
		Verified:     u.PhoneVerified,
		AppOn:        totp,
		SecondFactor: !totp && s.cfg.MFA.SMSAsOnlyFactor && s.smsUsable(u),
		Input:        v.phoneInput,
		Error:        v.phoneError,
		ErrorAt:      v.phoneErrorAt,
		SaveAction:   "/account/phone",
		VerifyAction: "/account/phone/verify",
		ResendAction: "/account/phone/resend",
		RemoveAction: "/account/phone/remove",
	}
	if u.Phone != "" {
		p.Number = manage.DisplayPhone(u.Phone)
		if p.Input == "" && v.phoneError == "" {
			p.Input = manage.NationalPhone(u.Phone)
		}
	}
	p.Notice = phoneNotice(r.URL.Query().Get("notice"), p)
	if !p.Available {
		return p, nil
	}
	if u.Phone != "" && !u.PhoneVerified {
		sent, _, err := s.sentCode(r.Context(), smsVerifyScope(u.ID, u.Phone), u.Phone)
		if err != nil {
			return p, err
		}
		if sent != nil {
			p.CodeSentTo = nbsp(manage.MaskedPhone(u.Phone))
		}
	}
	region := v.phoneRegion
	if region == "" && u.Phone != "" {
		region = manage.PhoneRegion(u.Phone)
	}
	if region == "" {
		region = manage.RegionFromAcceptLanguage(r.Header.Get("Accept-Language"))
	}
	for _, c := range manage.Countries(s.phones) {
		p.Countries = append(p.Countries, templates.CountryOption{Region: c.Region,
			Label: c.Name + " (+" + strconv.Itoa(c.CallingCode) + ")", Selected: c.Region == region})
	}
	if len(s.cfg.SMS.AllowedCountries) > 0 {
		p.AllowedNotice = "Codes are sent only to the countries in the list."
	}
	return p, nil
}

// handlePhoneSave sets a new cell phone, unverified, and texts it a code.
func (s *Server) handlePhoneSave(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	if !s.smsEnabled() {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	region, number := r.PostForm.Get("country"), r.PostForm.Get("phone")
	if len(region) > 8 {
		region = ""
	}
	v := accountView{status: http.StatusBadRequest, phoneInput: truncate(number, 40), phoneRegion: region, phoneErrorAt: "save"}
	e164, err := manage.ParsePhone(region, number)
	if err != nil {
		var inv *manage.InvalidError
		if !errors.As(err, &inv) {
			s.serverError(w, r, err)
			return
		}
		v.phoneError = inv.Message
		s.showAccount(w, r, u, v)
		return
	}
	if !s.phones.Allows(e164) {
		v.phoneError = "Codes are not sent to numbers in that country. Choose a number in one of the countries in the list."
		s.showAccount(w, r, u, v)
		return
	}
	if e164 == u.Phone {
		if u.PhoneVerified {
			http.Redirect(w, r, "/account?notice=phone-unchanged#phone", http.StatusSeeOther)
			return
		}
		s.resendPhoneCode(w, r, u) // the same unverified number again: a new code
		return
	}
	if !s.phoneChangeAllowed(w, r, u) || !s.newNumberAllowed(w, r, u, v) {
		return
	}
	if err := s.setOwnPhone(r, u, e164); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.resendPhoneCode(w, r, u)
}

// setOwnPhone stores e164 (empty for none) as the user's phone,
// unverified, voids a verification code sent to the number it replaces,
// and audits the change.
func (s *Server) setOwnPhone(r *http.Request, u *storage.User, e164 string) error {
	ctx := r.Context()
	before := u.Phone
	u.Phone, u.PhoneVerified, u.UpdatedAt = e164, false, s.now()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return err
	}
	if err := s.pending.Delete(ctx, smsCodeKey(smsVerifyScope(u.ID, before))); err != nil {
		slog.ErrorContext(ctx, "voiding the old number's verification code failed", "error", err)
	}
	kind, details := "user.phone_removed", map[string]string{}
	if e164 != "" {
		kind, details = "user.phone_changed", map[string]string{"phone": manage.MaskedPhone(e164), "verified": "false"}
	}
	if before != "" {
		details["old_phone"] = manage.MaskedPhone(before)
	}
	s.audit(ctx, r, storage.AuditEvent{Type: kind, UserID: u.ID, Username: u.Username, Result: "success", Details: details})
	return nil
}

// phoneChangeAllowed asks for a recent login before the phone changes:
// a session left open must not let someone else put their phone on the
// account (as the only factor, or as a fallback once the app is on).
func (s *Server) phoneChangeAllowed(w http.ResponseWriter, r *http.Request, u *storage.User) bool {
	return s.freshLogin(w, r, msgFreshLoginPhone)
}

func numbersKey(userID string, day int64) string {
	return "sms:numbers:" + userID + ":" + strconv.FormatInt(day, 10)
}

// newNumberAllowed counts a new number for the user today and reports
// whether it is within sms.limits.numbers_per_user_day: every new number
// costs a verification text, and trying number after number is how a
// single account would pump messages. Past the cap it answers itself.
func (s *Server) newNumberAllowed(w http.ResponseWriter, r *http.Request, u *storage.User, v accountView) bool {
	ctx := r.Context()
	day := s.now().Unix() / 86400
	key := numbersKey(u.ID, day)
	limit := int64(s.cfg.SMS.Limits.NumbersPerUserDay)
	n, err := s.counter(ctx, key)
	if err == nil && n < limit {
		n, err = s.pending.Incr(ctx, key, 25*time.Hour)
		if err == nil && n <= limit {
			return true
		}
	}
	if err != nil {
		s.serverError(w, r, err)
		return false
	}
	next := time.Unix((day+1)*86400, 0)
	setRetryAfter(w, next.Sub(s.now()))
	s.audit(ctx, r, storage.AuditEvent{Type: "sms.refused", UserID: u.ID, Username: u.Username, Result: "failure",
		Details: map[string]string{"limit": "numbers_per_user_day"}})
	v.status = http.StatusTooManyRequests
	v.phoneError = "You changed your cell phone too many times today. You can set another number after " +
		next.UTC().Format("15:04 UTC, 2 Jan") + "."
	s.showAccount(w, r, u, v)
	return false
}

// resendPhoneCode texts a code to the user's unverified phone.
func (s *Server) resendPhoneCode(w http.ResponseWriter, r *http.Request, u *storage.User) {
	err := s.sendSMSCode(r.Context(), r, smsVerifyScope(u.ID, u.Phone), u, u.Phone)
	if err != nil {
		status, msg, ok := s.smsSendProblem(w, err)
		if !ok {
			s.serverError(w, r, err)
			return
		}
		s.showAccount(w, r, u, accountView{status: status, phoneError: msg, phoneErrorAt: "verify"})
		return
	}
	http.Redirect(w, r, "/account?notice=phone-code-sent#phone", http.StatusSeeOther)
}

func (s *Server) handlePhoneResend(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	if !s.smsEnabled() || u.Phone == "" || u.PhoneVerified {
		http.Redirect(w, r, "/account#phone", http.StatusSeeOther)
		return
	}
	s.resendPhoneCode(w, r, u)
}

// handlePhoneVerify checks the code texted to the new number.
func (s *Server) handlePhoneVerify(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	if !s.smsEnabled() || u.Phone == "" || u.PhoneVerified {
		http.Redirect(w, r, "/account#phone", http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	chk := s.regulate(w, r, u.Username, regulation.SMS, s.waiver(w, r, u.Username), func(status int, msg string) {
		s.showAccount(w, r, u, accountView{status: status, phoneError: msg, phoneErrorAt: "verify"})
	})
	if chk == nil {
		return
	}
	defer chk.Done(ctx)
	res, err := s.checkSMSCode(ctx, smsVerifyScope(u.ID, u.Phone), u.Phone, r.PostForm.Get("code"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if res != smsOK {
		if s.accountFailure(w, r, u, chk, "sms", "/account/phone/verify") {
			s.showAccount(w, r, u, accountView{status: http.StatusUnauthorized, phoneError: res.message(), phoneErrorAt: "verify"})
		}
		return
	}
	if err := s.passed(ctx, chk); err != nil {
		s.serverError(w, r, err)
		return
	}
	u.PhoneVerified, u.UpdatedAt = true, s.now()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "user.phone_verified", UserID: u.ID, Username: u.Username, Result: "success",
		Details: map[string]string{"phone": manage.MaskedPhone(u.Phone)}})

	// A phone that is the user's only second factor comes with recovery
	// codes, as the app does: a lost phone must not lock them out.
	has, err := s.hasSecondFactor(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	next := "/account?notice=phone-verified#phone"
	if s.cfg.MFA.SMSAsOnlyFactor && !has {
		s.firstFactorCodes(w, r, u, "phone is the only second factor", next)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// firstFactorCodes hands out recovery codes with a user's first second
// factor (a phone, a security key), as the app's enrolment does: losing
// that one factor must not lock them out. Users who have codes keep them;
// either way the browser ends at next.
func (s *Server) firstFactorCodes(w http.ResponseWriter, r *http.Request, u *storage.User, why, next string) {
	ctx := r.Context()
	left, err := s.store.CountRecoveryCodes(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if left > 0 {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	codes, err := s.newRecoveryCodes(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.recovery_codes_regenerated", UserID: u.ID, Username: u.Username, Result: "success",
		Details: map[string]string{"why": why}})
	s.showCodes(w, r, u, codes, next)
}

// handlePhoneRemove removes the cell phone: no more codes go to it.
func (s *Server) handlePhoneRemove(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	if u.Phone == "" {
		http.Redirect(w, r, "/account#phone", http.StatusSeeOther)
		return
	}
	if !s.phoneChangeAllowed(w, r, u) {
		return
	}
	if err := s.setOwnPhone(r, u, ""); err != nil {
		s.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?notice=phone-removed#phone", http.StatusSeeOther)
}

// nbsp keeps a masked number on one line ("+1 ••• ••• 0123").
func nbsp(s string) string { return strings.ReplaceAll(s, " ", "\u00a0") }

// truncate keeps at most n bytes of s, cutting at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
