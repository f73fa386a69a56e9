package idp

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/storage"
)

// The admin API's users, addressed by username (see admin.go).

const (
	defaultPageSize   = 50
	maxPageSize       = 100
	maxSearchLength   = 256
	defaultEventLimit = 100
	maxEventLimit     = 1000
)

// userList is a page of users.
type userList struct {
	Users []manage.UserView `json:"users"`
	// NextPageToken continues the list; empty on the last page.
	NextPageToken string `json:"next_page_token"`
}

// createdUser is a new user, with the link to choose a password when it
// was created without one.
type createdUser struct {
	manage.UserView
	PasswordLink          string     `json:"password_link,omitempty"`
	PasswordLinkExpiresAt *time.Time `json:"password_link_expires_at,omitempty"`
}

type eventList struct {
	Events []manage.AuditEventView `json:"events"`
}

// withUser loads the user of the path ({username}) before h; an unknown
// user is 404.
func (s *Server) withUser(h func(*adminCall, *storage.User)) func(*adminCall) {
	return func(c *adminCall) {
		u, err := c.svc.GetUser(c.ctx, c.r.PathValue("username"))
		if err != nil {
			c.fail(err)
			return
		}
		c.user = u
		h(c, u)
	}
}

// replyUser answers with the user's view, second factors included.
func (c *adminCall) replyUser(u *storage.User) {
	v, err := c.svc.ViewUserWithMFA(c.ctx, u)
	if err != nil {
		c.serverError(err)
		return
	}
	c.reply(http.StatusOK, v)
}

// Page tokens are opaque to callers: today the last username of the page.
func encodePageToken(username string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("u:" + username))
}

func decodePageToken(token string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.HasPrefix(string(raw), "u:") {
		return "", false
	}
	username, err := manage.NormalizeUsername(string(raw[2:]))
	return username, err == nil && username == string(raw[2:])
}

// intParam reads a whole-number query parameter within [min, max].
func intParam(q url.Values, name string, def, min, max int, errs *[]problemField) int {
	v := q.Get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		*errs = append(*errs, problemField{Field: name, Message: fmt.Sprintf("%s must be a whole number from %d to %d.", name, min, max)})
		return def
	}
	return n
}

func (s *Server) adminListUsers(c *adminCall) {
	q := c.r.URL.Query()
	var errs []problemField
	size := intParam(q, "page_size", defaultPageSize, 1, maxPageSize, &errs)
	search := strings.TrimSpace(q.Get("q"))
	if len(search) > maxSearchLength {
		errs = append(errs, problemField{Field: "q", Message: fmt.Sprintf("q must be at most %d characters.", maxSearchLength)})
	}
	var after string
	if tok := q.Get("page_token"); tok != "" {
		var ok bool
		if after, ok = decodePageToken(tok); !ok {
			errs = append(errs, problemField{Field: "page_token", Message: "page_token is not one this API gave; list again without it."})
		}
	}
	if len(errs) > 0 {
		c.invalid(errs[0].Message, errs)
		return
	}
	users, err := c.svc.ListUsers(c.ctx, storage.UserQuery{Search: search, After: after, Limit: size + 1})
	if err != nil {
		c.serverError(err)
		return
	}
	out := userList{Users: make([]manage.UserView, 0, len(users))}
	if len(users) > size {
		users = users[:size]
		out.NextPageToken = encodePageToken(users[size-1].Username)
	}
	for _, u := range users {
		v, err := c.svc.ViewUserWithMFA(c.ctx, u)
		if err != nil {
			c.serverError(err)
			return
		}
		out.Users = append(out.Users, v)
	}
	c.reply(http.StatusOK, out)
}

func (s *Server) adminCreateUser(c *adminCall) {
	var req struct {
		Username string `json:"username"`
		Email    string `json:"email"`
		Name     string `json:"name"`
		Password string `json:"password"`
		Phone    string `json:"phone"`
	}
	if !c.decode(&req) {
		return
	}
	u, err := c.svc.CreateUser(c.ctx, c.actor, manage.NewUser{Username: req.Username, Email: req.Email, Name: req.Name,
		Password: req.Password, Phone: req.Phone})
	if u != nil {
		c.user = u
	}
	if err != nil {
		c.fail(err)
		return
	}
	v, err := c.svc.ViewUserWithMFA(c.ctx, u)
	if err != nil {
		c.serverError(err)
		return
	}
	out := createdUser{UserView: v}
	if req.Password == "" {
		link, _, err := s.IssuePasswordLink(c.ctx, u, "", adminPasswordLinkTTL)
		if err != nil {
			// Nothing half-done: without the link nobody could ever log
			// in as the new user, and a retry would find the name taken.
			if _, derr := c.svc.DeleteUser(c.ctx, c.actor, u.Username); derr != nil {
				err = fmt.Errorf("%w (and removing the new user failed: %w)", err, derr)
			}
			c.serverError(fmt.Errorf("issuing the password link of a new user: %w", err))
			return
		}
		exp := s.now().Add(adminPasswordLinkTTL).UTC()
		out.PasswordLink, out.PasswordLinkExpiresAt = link, &exp
	}
	c.w.Header().Set("Location", "/admin/v1/users/"+url.PathEscape(u.Username))
	c.reply(http.StatusCreated, out)
}

func (s *Server) adminGetUser(c *adminCall, u *storage.User) { c.replyUser(u) }

func (s *Server) adminUpdateUser(c *adminCall, u *storage.User) {
	var req struct {
		Email *string `json:"email"`
		Name  *string `json:"name"`
	}
	if !c.decode(&req) {
		return
	}
	old, oldVerified := u.Email, u.EmailVerified
	u, err := c.svc.UpdateUser(c.ctx, c.actor, u.Username, manage.UserChanges{Email: req.Email, Name: req.Name})
	if err != nil {
		c.fail(err)
		return
	}
	// The old address hears of it: reset links now go to the new one.
	if old != "" && oldVerified && !strings.EqualFold(old, u.Email) && s.mailEnabled() && s.cfg.Email.Notifications {
		e := storage.AuditEvent{Time: s.now()}
		user := *u
		s.background("security notice", func(ctx context.Context) {
			s.sendNotice(ctx, &user, old, "Your e-mail address was changed to "+user.Email+" by support", e,
				"contact support at once: password reset links now go to the new address.")
		})
	}
	if req.Email != nil {
		// The address an operator sets wins over a change the user asked
		// for and has not confirmed: its link must not replace it later.
		if err := s.dropLink(c.ctx, linkEmail, u.ID); err != nil {
			c.serverError(fmt.Errorf("the e-mail address of %s was set, but cancelling the change they asked for failed: %w", u.Username, err))
			return
		}
	}
	c.replyUser(u)
}

func (s *Server) adminDeleteUser(c *adminCall, u *storage.User) {
	if _, err := c.svc.DeleteUser(c.ctx, c.actor, u.Username); err != nil {
		c.fail(err)
		return
	}
	// The provider's sessions live in the pending-login store.
	if err := s.revokeSessions(c.ctx, u.ID); err != nil {
		c.serverError(fmt.Errorf("user %s was deleted, but ending their sessions failed: %w", u.Username, err))
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminSetPhone(c *adminCall, u *storage.User) {
	var req struct {
		Phone *string `json:"phone"`
	}
	if !c.decode(&req) {
		return
	}
	if req.Phone == nil {
		msg := "phone is required: the cell phone number with + and the country code, e.g. +14155550123 (DELETE removes the phone)."
		c.invalid(msg, []problemField{{Field: "phone", Message: msg}})
		return
	}
	before := u.Phone
	u, err := c.svc.SetPhone(c.ctx, c.actor, u.Username, *req.Phone)
	if err != nil {
		c.fail(err)
		return
	}
	if u.Phone != before {
		s.adminNotice(u, "Your cell phone number was changed by an administrator")
	}
	c.replyUser(u)
}

func (s *Server) adminClearPhone(c *adminCall, u *storage.User) {
	before := u.Phone
	u, err := c.svc.ClearPhone(c.ctx, c.actor, u.Username)
	if err != nil {
		c.fail(err)
		return
	}
	if before != "" {
		s.adminNotice(u, "Your cell phone was removed by an administrator")
	}
	c.replyUser(u)
}

func (s *Server) adminResetMFA(c *adminCall, u *storage.User) {
	u, err := c.svc.ResetMFA(c.ctx, c.actor, u.Username)
	if err != nil {
		c.fail(err)
		return
	}
	s.adminNotice(u, "Your second factors were reset by support")
	c.replyUser(u)
}

func (s *Server) adminDisable(c *adminCall, u *storage.User) {
	u, err := c.svc.Disable(c.ctx, c.actor, u.Username)
	if err != nil {
		c.fail(err)
		return
	}
	// Disable revokes the refresh tokens; the provider's own sessions end too.
	if err := s.revokeSessions(c.ctx, u.ID); err != nil {
		c.serverError(fmt.Errorf("user %s was disabled, but ending their sessions failed: %w", u.Username, err))
		return
	}
	c.replyUser(u)
}

func (s *Server) adminEnable(c *adminCall, u *storage.User) {
	u, err := c.svc.Enable(c.ctx, c.actor, u.Username)
	if err != nil {
		c.fail(err)
		return
	}
	c.replyUser(u)
}

func (s *Server) adminUnlock(c *adminCall, u *storage.User) {
	if err := s.unlockUser(c.ctx, u); err != nil {
		c.serverError(fmt.Errorf("unlocking user %s: %w", u.Username, err))
		return
	}
	s.audit(c.ctx, c.r, storage.AuditEvent{Type: "user.unlocked", Actor: c.actor.Name, UserID: u.ID, Username: u.Username, Result: "success"})
	c.replyUser(u)
}

func (s *Server) adminUserEvents(c *adminCall, u *storage.User) {
	q := c.r.URL.Query()
	var errs []problemField
	limit := intParam(q, "limit", defaultEventLimit, 1, maxEventLimit, &errs)
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, problemField{Field: "since", Message: "since must be a time in RFC 3339 form, e.g. 2025-03-01T12:00:00Z."})
		}
		since = t
	}
	if len(errs) > 0 {
		c.invalid(errs[0].Message, errs)
		return
	}
	evs, err := s.store.ListAudit(c.ctx, storage.AuditQuery{UserID: u.ID, Since: since, Limit: limit})
	if err != nil {
		c.serverError(err)
		return
	}
	out := eventList{Events: make([]manage.AuditEventView, 0, len(evs))}
	for _, e := range evs {
		out.Events = append(out.Events, manage.ViewAuditEvent(e))
	}
	c.reply(http.StatusOK, out)
}

// adminNotice tells the user by e-mail (email.notifications, to a
// confirmed address) about a change an administrator made to how they log
// in.
func (s *Server) adminNotice(u *storage.User, what string) {
	if !s.mailEnabled() || !s.cfg.Email.Notifications || u.Email == "" || !u.EmailVerified {
		return
	}
	e := storage.AuditEvent{Time: s.now()}
	s.background("security notice", func(ctx context.Context) { s.sendNotice(ctx, u, u.Email, what, e, "") })
}
