package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage/pending"
)

// cookieNames: with https the __Host- prefix pins cookies to this host,
// Secure and path /.
type cookieNames struct {
	browser string // binds pending logins and CSRF tokens to this browser
	session string // the provider's own login session
	device  string // a remembered device's token
	method  string // the second-factor method last used in this browser
	secure  bool
}

func newCookieNames(https bool) cookieNames {
	if https {
		return cookieNames{browser: "__Host-idp_browser", session: "__Host-idp_session", device: "__Host-idp_device",
			method: "__Host-idp_method", secure: true}
	}
	return cookieNames{browser: "idp_browser", session: "idp_session", device: "idp_device", method: "idp_method"}
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     name,
		Value:    s.keys.SignCookie(name, value),
		Path:     "/",
		HttpOnly: true,
		Secure:   s.cookies.secure,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(w, c)
}

func (s *Server) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.cookies.secure, SameSite: http.SameSiteLaxMode})
}

// readCookie returns a signed cookie's value; a missing or tampered cookie
// reads as empty.
func (s *Server) readCookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	v, ok := s.keys.VerifyCookie(name, c.Value)
	if !ok {
		return ""
	}
	return v
}

// browserID returns this browser's id, creating it (and its cookie) when
// create is true and the browser has none.
func (s *Server) browserID(w http.ResponseWriter, r *http.Request, create bool) string {
	if id := s.readCookie(r, s.cookies.browser); id != "" {
		return id
	}
	if !create {
		return ""
	}
	id := secret.RandomToken(24)
	s.setCookie(w, s.cookies.browser, id, 0)
	return id
}

// browserBinding is what a pending login stores of the browser id.
func browserBinding(browserID string) string { return hashToken("browser:" + browserID) }

// csrfToken is the token of the form for purpose in this browser.
func (s *Server) csrfToken(browserID, purpose string) string {
	return s.keys.CSRFToken(browserID, purpose)
}

// checkCSRF reports whether the posted csrf_token belongs to this browser
// and form.
func (s *Server) checkCSRF(r *http.Request, purpose string) bool {
	return s.keys.CheckCSRFToken(s.readCookie(r, s.cookies.browser), purpose, r.PostFormValue("csrf_token"))
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusForbidden, "This form has expired",
		"The form could not be accepted because it was not sent from this page in this browser. Go back, reload the page and try again.",
		errors.New("missing or invalid CSRF token"))
}

// Session is the provider's own login session: who is logged in in this
// browser, and how. It lets a second portal (or the same one later) skip
// the password within session.lifetime.
type Session struct {
	UserID    string    `json:"user_id"`
	AuthTime  time.Time `json:"auth_time"`
	AMR       []string  `json:"amr"`
	ACR       string    `json:"acr"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Generation is the user's session generation when it started (see
	// revokeSessions).
	Generation int64 `json:"gen,omitempty"`
}

func sessionKey(id string) string { return "sess:" + hashToken(id) }

// currentSession returns the browser's valid session, or nil.
func (s *Server) currentSession(ctx context.Context, r *http.Request) (*Session, error) {
	id := s.readCookie(r, s.cookies.session)
	if id == "" {
		return nil, nil
	}
	raw, err := s.pending.Get(ctx, sessionKey(id))
	if errors.Is(err, pending.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading session: %w", err)
	}
	sess := new(Session)
	if err := json.Unmarshal(raw, sess); err != nil {
		return nil, fmt.Errorf("decoding session: %w", err)
	}
	if !sess.ExpiresAt.After(s.now()) {
		return nil, nil
	}
	// A session of an earlier generation of the user's sessions (before a
	// new password) is over, wherever it lives.
	gen, err := s.counter(ctx, sessionGenKey(sess.UserID))
	if err != nil {
		return nil, fmt.Errorf("reading the session generation: %w", err)
	}
	if sess.Generation != gen {
		return nil, nil
	}
	return sess, nil
}

func sessionGenKey(userID string) string { return "sess-gen:" + userID }

// revokeSessions ends every provider session of the user, in every
// browser, by starting a new generation of their sessions. Each new
// generation keeps the number a session lifetime (and an hour) longer, so
// a number is never handed out again while a session of it may live:
// when it lapses, every session of it has expired (or, created later,
// ends early with it: the safe direction). Two revocations at once both
// end every earlier session.
func (s *Server) revokeSessions(ctx context.Context, userID string) error {
	gen, err := s.counter(ctx, sessionGenKey(userID))
	if err != nil {
		return err
	}
	return s.pending.Set(ctx, sessionGenKey(userID), []byte(strconv.FormatInt(gen+1, 10)), s.cfg.Session.Lifetime+time.Hour)
}

// startSession replaces the browser's session with a new one under a new
// id, so that an id known before the login is worth nothing after it.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *Session) error {
	if old := s.readCookie(r, s.cookies.session); old != "" {
		if err := s.pending.Delete(ctx, sessionKey(old)); err != nil {
			return err
		}
	}
	now := s.now()
	sess.CreatedAt = now
	sess.ExpiresAt = now.Add(s.cfg.Session.Lifetime)
	gen, err := s.counter(ctx, sessionGenKey(sess.UserID))
	if err != nil {
		return err
	}
	sess.Generation = gen
	raw, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	id := secret.RandomToken(32)
	if err := s.pending.Set(ctx, sessionKey(id), raw, s.cfg.Session.Lifetime); err != nil {
		return fmt.Errorf("storing session: %w", err)
	}
	s.setCookie(w, s.cookies.session, id, 0)
	return nil
}

// endBrowserSession logs this browser out of the provider.
func (s *Server) endBrowserSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if id := s.readCookie(r, s.cookies.session); id != "" {
		if err := s.pending.Delete(ctx, sessionKey(id)); err != nil {
			return err
		}
	}
	s.clearCookie(w, s.cookies.session)
	return nil
}
