package idp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending"
	"github.com/hostportal/idp/templates"
)

// Security keys in the account pages: "Add security key" runs the
// browser's registration (go-webauthn through mfa.WebAuthn), names the key
// and lists it; "Remove" asks first. Both need a recent login. The
// ceremony's session data waits in the pending-login store for
// mfa.WebAuthnTimeout and is consumed once.

const msgFreshLoginKeys = "For your security, log in again to change your security keys."

func webauthnKey(purpose, id string) string { return "webauthn:" + purpose + ":" + id }

// registerKey names a registration's session data: this user in this
// browser, so that another browser of the same user cannot finish it.
func (s *Server) registerKey(w http.ResponseWriter, r *http.Request, u *storage.User) string {
	return webauthnKey("register", u.ID+":"+browserBinding(s.browserID(w, r, false)))
}

// keysUsable reports whether WebAuthn works here (the relying party id is
// a domain name).
func (s *Server) keysUsable() bool { return s.webauthn != nil }

// keyUser is u with their WebAuthn handle and credentials, for a ceremony.
// The handle is made on first use.
func (s *Server) keyUser(ctx context.Context, u *storage.User) (*mfa.KeyUser, []*storage.SecurityKey, error) {
	handle, err := s.store.WebAuthnHandle(ctx, u.ID, mfa.NewWebAuthnHandle())
	if err != nil {
		return nil, nil, err
	}
	keys, err := s.store.ListSecurityKeys(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	ku := &mfa.KeyUser{Handle: handle, Name: u.Username, DisplayName: u.Name}
	if ku.DisplayName == "" {
		ku.DisplayName = u.Username
	}
	for _, k := range keys {
		c, _, err := mfa.DecodeCredential(k.Credential)
		if err != nil {
			return nil, nil, err
		}
		ku.Credentials = append(ku.Credentials, c)
	}
	return ku, keys, nil
}

// isPasskey reports whether k was registered as a passkey.
func isPasskey(k *storage.SecurityKey) bool {
	_, passkey, err := mfa.DecodeCredential(k.Credential)
	return err == nil && passkey
}

// startCeremony keeps the ceremony's session data under key and writes
// its options for the page.
func (s *Server) startCeremony(w http.ResponseWriter, r *http.Request, key string, c *mfa.Ceremony) {
	if err := s.pending.Set(r.Context(), key, c.Session, mfa.WebAuthnTimeout); err != nil {
		s.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(c.Options)
}

// ceremonySession takes the session data of a ceremony, once.
func (s *Server) ceremonySession(ctx context.Context, key string) ([]byte, error) {
	b, err := s.pending.GetDel(ctx, key)
	if errors.Is(err, pending.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// credentialField is the browser's answer posted by webauthn.js, bounded.
func credentialField(r *http.Request) []byte {
	v := r.PostForm.Get("credential")
	if v == "" || len(v) > 16<<10 || !json.Valid([]byte(v)) {
		return nil
	}
	return []byte(v)
}

// keyName checks a key's name: 1 to 64 characters, no control characters.
func keyName(raw string) (string, string) {
	name := strings.TrimSpace(raw)
	switch {
	case name == "":
		return "", "Give the key a name, such as “YubiKey” or “Laptop”."
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0:
		return "", "The name may not contain line breaks or other control characters."
	case utf8.RuneCountInString(name) > 64:
		return "", "The name is too long: use at most 64 characters."
	}
	return name, ""
}

func (s *Server) showAddKey(w http.ResponseWriter, r *http.Request, status int, msg, name string) {
	s.render(w, r, status, templates.AddKeyPage{
		Base:     templates.Base{Title: "Add a security key", CSRFToken: s.accountCSRF(w, r), Error: msg},
		Action:   "/account/keys/add",
		BeginURL: "/account/keys/add/begin",
		Name:     name, CancelURL: "/account",
	})
}

func (s *Server) handleAddKeyForm(w http.ResponseWriter, r *http.Request) {
	u := s.accountUser(w, r, "/account/keys/add")
	if u == nil {
		return
	}
	if !s.keysUsable() {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	if !s.freshLogin(w, r, msgFreshLoginKeys) {
		return
	}
	s.showAddKey(w, r, http.StatusOK, "", "")
}

// handleAddKeyBegin answers the page's script with the creation options.
func (s *Server) handleAddKeyBegin(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	if !s.keysUsable() {
		http.NotFound(w, r)
		return
	}
	if !s.freshLogin(w, r, msgFreshLoginKeys) {
		return
	}
	ku, _, err := s.keyUser(r.Context(), u)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	c, err := s.webauthn.BeginRegistration(ku)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.startCeremony(w, r, s.registerKey(w, r, u), c)
}

// handleAddKey checks the browser's answer and stores the new key.
func (s *Server) handleAddKey(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	if !s.keysUsable() {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	if !s.freshLogin(w, r, msgFreshLoginKeys) {
		return
	}
	ctx := r.Context()
	name, problem := keyName(r.PostForm.Get("name"))
	if problem != "" {
		s.showAddKey(w, r, http.StatusBadRequest, problem, truncate(r.PostForm.Get("name"), 64))
		return
	}
	sess, err := s.ceremonySession(ctx, s.registerKey(w, r, u))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	response := credentialField(r)
	failed := func(reason, msg string, cause error) {
		slog.InfoContext(ctx, "adding a security key failed", "user_id", u.ID, "reason", reason, "error", cause)
		s.audit(ctx, r, storage.AuditEvent{Type: "mfa.security_key_add_failed", UserID: u.ID, Username: u.Username, Result: "failure",
			Details: map[string]string{"reason": reason}})
		s.showAddKey(w, r, http.StatusBadRequest, msg, name)
	}
	if sess == nil || response == nil {
		failed("no ceremony", "Adding the key took too long, or the page was sent twice. Click Add security key again.", nil)
		return
	}
	ku, _, err := s.keyUser(ctx, u)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	cred, err := s.webauthn.FinishRegistration(ku, sess, response)
	if err != nil {
		failed("not verified", "That security key could not be added. Try again, or try another key.", err)
		return
	}
	enc, err := mfa.EncodeCredential(cred, s.webauthn.RegisteredAsPasskey(cred))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	// Whether the user had a second factor before this key: the first one
	// comes with recovery codes, as the app does.
	f, err := s.factorsOf(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	hadFactor := f.required(s.cfg.MFA.SMSAsOnlyFactor)
	k := &storage.SecurityKey{ID: secret.RandomToken(12), UserID: u.ID, CredentialID: cred.ID, Name: name,
		Credential: enc, SignCount: cred.Authenticator.SignCount, CreatedAt: s.now()}
	if err := s.store.CreateSecurityKey(ctx, k); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			failed("already registered", "That security key could not be added. Try another key.", err)
			return
		}
		s.serverError(w, r, err)
		return
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.security_key_added", UserID: u.ID, Username: u.Username, Result: "success",
		Details: map[string]string{"key": k.ID, "name": name, "platform": strconv.FormatBool(mfa.PlatformCredential(cred))}})
	next := "/account?notice=key-added#security-keys"
	if !hadFactor {
		s.firstFactorCodes(w, r, u, "first security key", next)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// userKey is the user's key with that id, or nil.
func (s *Server) userKey(ctx context.Context, userID, id string) (*storage.SecurityKey, error) {
	keys, err := s.store.ListSecurityKeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.ID == id {
			return k, nil
		}
	}
	return nil, nil
}

// handleRemoveKeyForm asks before a key is removed.
func (s *Server) handleRemoveKeyForm(w http.ResponseWriter, r *http.Request) {
	u := s.accountUser(w, r, "/account")
	if u == nil {
		return
	}
	k, err := s.userKey(r.Context(), u.ID, r.URL.Query().Get("key"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if k == nil {
		http.Redirect(w, r, "/account#security-keys", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, templates.RemoveKeyPage{
		Base:   templates.Base{Title: "Remove security key", CSRFToken: s.accountCSRF(w, r)},
		Action: "/account/keys/remove", KeyID: k.ID, Name: k.Name, CancelURL: "/account#security-keys",
	})
}

func (s *Server) handleRemoveKey(w http.ResponseWriter, r *http.Request) {
	u := s.accountForm(w, r)
	if u == nil {
		return
	}
	if !s.freshLogin(w, r, msgFreshLoginKeys) {
		return
	}
	ctx := r.Context()
	k, err := s.userKey(ctx, u.ID, r.PostForm.Get("key"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if k == nil {
		http.Redirect(w, r, "/account#security-keys", http.StatusSeeOther)
		return
	}
	if err := s.store.DeleteSecurityKey(ctx, u.ID, k.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.serverError(w, r, err)
		return
	}
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.security_key_removed", UserID: u.ID, Username: u.Username, Result: "success",
		Details: map[string]string{"key": k.ID, "name": k.Name}})
	// With no second factor left, its recovery codes and remembered
	// devices go too, as when the app is turned off.
	f, err := s.factorsOf(ctx, u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !f.required(s.cfg.MFA.SMSAsOnlyFactor) {
		if err := s.manage().RemoveSecondFactors(ctx, u.ID); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.clearCookie(w, s.cookies.device)
	}
	http.Redirect(w, r, "/account?notice=key-removed#security-keys", http.StatusSeeOther)
}

// keysSection is the account page's Security keys.
func (s *Server) keysSection(ctx context.Context, u *storage.User) (templates.KeysSection, error) {
	sec := templates.KeysSection{Available: s.keysUsable(), AddURL: "/account/keys/add"}
	keys, err := s.store.ListSecurityKeys(ctx, u.ID)
	if err != nil {
		return sec, err
	}
	for _, k := range keys {
		sec.Items = append(sec.Items, templates.KeyItem{Name: k.Name, Added: formatDate(k.CreatedAt), LastUsed: formatDate(k.LastUsedAt),
			RemoveURL: "/account/keys/remove?key=" + k.ID})
	}
	return sec, nil
}

// useKey records a checked assertion of key k: the new sign count and
// flags, only if nobody used the key since it was read (a replayed or
// concurrent assertion loses, and so does a key removed meanwhile).
func (s *Server) useKey(ctx context.Context, k *storage.SecurityKey, cred *webauthn.Credential) (bool, error) {
	enc, err := mfa.EncodeCredential(cred, isPasskey(k))
	if err != nil {
		return false, err
	}
	ok, err := s.store.UseSecurityKey(ctx, k.ID, k.SignCount, cred.Authenticator.SignCount, enc, s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return ok, err
}
