package idp

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/templates"
)

// A security key at login: the second factor after the password ("Use
// security key"), and, with webauthn.passkeys, a passkey standing for both
// factors on the login page ("Sign in with a passkey"). The assertion's
// session data is bound to the pending login (itself bound to the
// browser), consumed once; sign counts are written back after every use,
// and a counter that went backwards refuses the login.

// The browser's last method: which second factor the login shows first.
// It names a method, nothing secret, and only changes which page comes
// first.
const lastMethodMaxAge = 365 * 24 * 60 * 60 // seconds

func (s *Server) lastMethod(r *http.Request) string { return s.readCookie(r, s.cookies.method) }

func (s *Server) setLastMethod(w http.ResponseWriter, method string) {
	c := &http.Cookie{Name: s.cookies.method, Value: s.keys.SignCookie(s.cookies.method, method), Path: "/",
		MaxAge: lastMethodMaxAge, HttpOnly: true, Secure: s.cookies.secure, SameSite: http.SameSiteLaxMode}
	http.SetCookie(w, c)
}

func (s *Server) showKeyLogin(w http.ResponseWriter, r *http.Request, l *loaded, c *client, browser string, status int, msg string) {
	s.render(w, r, status, templates.SecurityKeyPage{
		Base:          templates.Base{Title: "2-Factor Authentication", CSRFToken: s.csrfToken(browser, "login:"+l.ID), Error: msg, Notice: resetNotice(l)},
		Action:        "/login/key",
		BeginURL:      "/login/key/begin",
		AuthRequestID: l.ID,
		ClientName:    c.name(),
		RememberDays:  s.rememberDaysFor(l),
		MethodsURL:    "/login/methods?id=" + url.QueryEscape(l.ID),
	})
}

// keyLoginUser is the login's user when they have usable keys; the
// caller has answered otherwise.
func (s *Server) keyLoginUser(w http.ResponseWriter, r *http.Request, l *loaded) *storage.User {
	f, err := s.factorsOf(r.Context(), l.UserID)
	if err != nil {
		s.serverError(w, r, err)
		return nil
	}
	if !f.KeysUsable() {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
		return nil
	}
	return f.user
}

// handleKeyLoginForm is "Security key" under "Try another method".
func (s *Server) handleKeyLoginForm(w http.ResponseWriter, r *http.Request) {
	l, c, browser := s.loginAt(w, r, stepSecondFactor)
	if l == nil || s.keyLoginUser(w, r, l) == nil {
		return
	}
	s.showKeyLogin(w, r, l, c, browser, http.StatusOK, "")
}

// handleKeyLoginBegin answers the page's script with the request options.
func (s *Server) handleKeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	l, _ := s.stepForm(w, r, stepSecondFactor)
	if l == nil {
		return
	}
	u := s.keyLoginUser(w, r, l)
	if u == nil {
		return
	}
	ku, _, err := s.keyUser(r.Context(), u)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	cer, err := s.webauthn.BeginLogin(ku)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.startCeremony(w, r, webauthnKey("login", l.ID), cer)
}

// handleKeyLogin checks the assertion.
func (s *Server) handleKeyLogin(w http.ResponseWriter, r *http.Request) {
	l, c := s.stepForm(w, r, stepSecondFactor)
	if l == nil {
		return
	}
	u := s.keyLoginUser(w, r, l)
	if u == nil {
		return
	}
	ctx := r.Context()
	show := func(status int, msg string) { s.showKeyLogin(w, r, l, c, s.browserID(w, r, false), status, msg) }
	chk := s.regulateLogin(w, r, l, l.Username, regulation.SecurityKey, show)
	if chk == nil {
		return
	}
	defer chk.Done(ctx)
	fail := func(reason, msg string, cause error) {
		if cause != nil {
			slog.InfoContext(ctx, "security key assertion refused", "user_id", u.ID, "reason", reason, "error", cause)
		}
		if s.failed(w, r, l, chk, storage.AuditEvent{Type: "mfa.failed", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
			Result: "failure", Details: map[string]string{"method": "security_key", "reason": reason}}) {
			show(http.StatusUnauthorized, msg)
		}
	}
	sess, err := s.ceremonySession(ctx, webauthnKey("login", l.ID))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	response := credentialField(r)
	if sess == nil || response == nil {
		fail("no ceremony", "That took too long, or the page was sent twice. Click Use security key again.", nil)
		return
	}
	ku, keys, err := s.keyUser(ctx, u)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	cred, err := s.webauthn.FinishLogin(ku, sess, response)
	if errors.Is(err, mfa.ErrWebAuthnClone) {
		s.keyCloned(r, u, l.ClientID, keyByCredential(keys, cred), cred)
		fail("clone warning", msgKeyCloned, err)
		return
	}
	if err != nil {
		fail("not verified", "That security key was not accepted. Try again, or use another method.", err)
		return
	}
	k := keyByCredential(keys, cred)
	if k == nil {
		fail("unknown key", "That security key was not accepted. Try again, or use another method.", nil)
		return
	}
	if ok, err := s.useKey(ctx, k, cred); err != nil || !ok {
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		fail("used concurrently", "That security key was not accepted. Try again, or use another method.", nil)
		return
	}
	if err := s.passed(ctx, chk); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.secondFactorPassed(w, r, l, c, "security_key", keyAMR(cred))
}

const msgKeyCloned = "This security key was refused and removed from your account because it may have been copied. Use another method, add your key again, and contact support."

// keyCloned handles a clone warning: the key's counter went backwards, so
// two copies of its private key may be in use. Refusing only the copy
// that is behind would let a clone that runs its counter ahead go on, so
// the key is removed from the account (the owner adds it again after
// logging in another way) and the event is audited.
func (s *Server) keyCloned(r *http.Request, u *storage.User, clientID string, k *storage.SecurityKey, cred *webauthn.Credential) {
	ctx := r.Context()
	d := map[string]string{"action": "key removed"}
	if cred != nil {
		d["sign_count"] = strconv.FormatUint(uint64(cred.Authenticator.SignCount), 10)
	}
	if k != nil {
		d["key"], d["name"], d["stored_sign_count"] = k.ID, k.Name, strconv.FormatUint(uint64(k.SignCount), 10)
		if err := s.store.DeleteSecurityKey(ctx, u.ID, k.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			slog.ErrorContext(ctx, "removing a cloned security key failed", "user_id", u.ID, "error", err)
		}
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.security_key_clone_warning", UserID: u.ID, Username: u.Username,
		ClientID: clientID, Result: "failure", Details: d})
}

// keyAMR is RFC 8176's value for the key: hwk for a separate security
// key, swk for the device's own (platform) authenticator.
func keyAMR(c *webauthn.Credential) string {
	if mfa.PlatformCredential(c) {
		return "swk"
	}
	return "hwk"
}

func keyByCredential(keys []*storage.SecurityKey, c *webauthn.Credential) *storage.SecurityKey {
	for _, k := range keys {
		if string(k.CredentialID) == string(c.ID) {
			return k
		}
	}
	return nil
}

// handlePasskeyBegin answers the login page's script with options for a
// discoverable credential.
func (s *Server) handlePasskeyBegin(w http.ResponseWriter, r *http.Request) {
	l, _ := s.stepForm(w, r, stepPassword)
	if l == nil {
		return
	}
	if !s.passkeysOffered() {
		http.NotFound(w, r)
		return
	}
	cer, err := s.webauthn.BeginPasskeyLogin()
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.startCeremony(w, r, webauthnKey("passkey", l.ID), cer)
}

func (s *Server) passkeysOffered() bool { return s.keysUsable() && s.cfg.WebAuthn.Passkeys }

// handlePasskey checks a passkey assertion: it identifies the user and
// stands for both factors.
func (s *Server) handlePasskey(w http.ResponseWriter, r *http.Request) {
	l, c := s.stepForm(w, r, stepPassword)
	if l == nil {
		return
	}
	if !s.passkeysOffered() {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	show := func(status int, msg string) { s.showLogin(w, r, l, c, s.browserID(w, r, false), status, msg, "") }
	// No account is known before the assertion: the network's count.
	chk := s.regulateLogin(w, r, l, "", regulation.SecurityKey, show)
	if chk == nil {
		return
	}
	defer chk.Done(ctx)
	var user *storage.User
	var keys []*storage.SecurityKey
	fail := func(reason string, cause error) {
		if cause != nil {
			slog.InfoContext(ctx, "passkey assertion refused", "reason", reason, "error", cause)
		}
		ev := storage.AuditEvent{Type: "login.failed", ClientID: l.ClientID, Result: "failure",
			Details: map[string]string{"factor": "passkey", "reason": reason}}
		if user != nil {
			ev.UserID, ev.Username = user.ID, user.Username
		}
		if s.failed(w, r, l, chk, ev) {
			show(http.StatusUnauthorized, "That passkey was not accepted. Try again, or log in with your username and password.")
		}
	}
	sess, err := s.ceremonySession(ctx, webauthnKey("passkey", l.ID))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	response := credentialField(r)
	if sess == nil || response == nil {
		fail("no ceremony", nil)
		return
	}
	found, cred, err := s.webauthn.FinishPasskeyLogin(func(handle []byte) (*mfa.KeyUser, error) {
		id, err := s.store.UserIDByWebAuthnHandle(ctx, handle)
		if err != nil {
			return nil, err
		}
		u, err := s.store.UserByID(ctx, id)
		if err != nil {
			return nil, err
		}
		ku, ks, err := s.keyUser(ctx, u)
		if err != nil {
			return nil, err
		}
		user, keys = u, ks
		return ku, nil
	}, sess, response)
	if errors.Is(err, mfa.ErrWebAuthnClone) && user != nil {
		s.keyCloned(r, user, l.ClientID, keyByCredential(keys, cred), cred)
		fail("clone warning", err)
		return
	}
	if err != nil || found == nil || user == nil {
		fail("not verified", err)
		return
	}
	if user.Disabled || (l.HintSubject != "" && l.HintSubject != user.ID) ||
		(l.LoginHint != "" && !strings.EqualFold(l.LoginHint, user.Username) && !strings.EqualFold(l.LoginHint, user.Email)) {
		fail("disabled or another user", nil)
		return
	}
	k := keyByCredential(keys, cred)
	if k == nil || !isPasskey(k) {
		// A key added as a second factor does not replace the password.
		fail("not a passkey", nil)
		return
	}
	if ok, err := s.useKey(ctx, k, cred); err != nil || !ok {
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		fail("used concurrently", nil)
		return
	}
	l.UserID, l.Username, l.AuthTime = user.ID, user.Username, s.now()
	l.AMR, l.ACR, l.FreshAuth = []string{keyAMR(cred), "mfa"}, acrMFA, true
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.passed", UserID: user.ID, Username: user.Username, ClientID: l.ClientID,
		Result: "success", Details: map[string]string{"method": "passkey", "key": k.ID}})
	s.setLastMethod(w, "security_key")
	if s.advance(w, r, l, c) {
		http.Redirect(w, r, loginURL(l.ID), http.StatusSeeOther)
	}
}
