package manage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
)

// NewUser is what CreateUser needs. Password and Phone are optional: an
// empty Password means the user has none yet (they cannot log in until one
// is set); a Phone set here counts as verified.
type NewUser struct {
	Username string
	Email    string
	Name     string
	Phone    string
	Password string
}

// CreateUser validates u (a Phone must be one s.Phones allows; a Password
// one CheckPassword accepts for the new user), hashes its password and
// stores the user with a random id (never derived from the username). The
// e-mail counts as confirmed: an operator or a portal set it.
// Event: user.created.
func (s *Service) CreateUser(ctx context.Context, actor Actor, u NewUser) (*storage.User, error) {
	username, err := NormalizeUsername(u.Username)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	email := strings.TrimSpace(u.Email)
	if err := ValidateEmail(email); err != nil {
		errs = append(errs, err)
	}
	name := strings.TrimSpace(u.Name)
	if err := ValidateName(name); err != nil {
		errs = append(errs, err)
	}
	var phone string
	if u.Phone != "" {
		if phone, err = NormalizePhone(u.Phone); err != nil {
			errs = append(errs, err)
		} else if err := s.checkPhonePolicy(phone); err != nil {
			errs = append(errs, err)
		}
	}
	if u.Password != "" {
		who := &storage.User{Username: username, Email: email, Name: name}
		if who.Username == "" {
			who.Username = u.Username // invalid, but still not a password
		}
		if err := s.CheckPassword(u.Password, who); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Refuse a taken name before spending a password hash on it; the
	// store's unique index still decides a race.
	if _, err := s.Store.UserByUsername(ctx, username); err == nil {
		return nil, conflict("a user named %s already exists", username)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("looking up user %s: %w", username, err)
	}
	var hash string
	if u.Password != "" {
		if hash, err = s.hash(ctx, u.Password); err != nil {
			return nil, err
		}
	}
	now := s.now()
	user := &storage.User{
		ID:            secret.RandomToken(16),
		Username:      username,
		Email:         email,
		EmailVerified: true, // an operator's (or portal's) word, as for the phone
		Name:          name,
		Phone:         phone,
		PhoneVerified: phone != "",
		PasswordHash:  hash,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if err := s.Store.CreateUser(ctx, user); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, conflict("a user named %s already exists", username)
		}
		return nil, fmt.Errorf("creating user %s: %w", username, err)
	}
	details := map[string]string{"password_set": fmt.Sprint(hash != "")}
	if phone != "" {
		details["phone"] = maskPhone(phone)
	}
	err = s.audit(ctx, actor, storage.AuditEvent{Type: "user.created", UserID: user.ID, Username: user.Username, Details: details},
		"user "+username+" was created")
	return user, err
}

func (s *Service) hash(ctx context.Context, pw string) (string, error) {
	if s.Hasher == nil {
		return "", errors.New("manage: Service.Hasher is not set; it is needed to set a password")
	}
	h, err := s.Hasher.Hash(ctx, pw)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	return h, nil
}

// GetUser returns the user named username (case-insensitively).
func (s *Service) GetUser(ctx context.Context, username string) (*storage.User, error) {
	u, err := s.Store.UserByUsername(ctx, strings.ToLower(username))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, notFound("no user named %s", username)
	case err != nil:
		return nil, fmt.Errorf("looking up user %s: %w", username, err)
	}
	return u, nil
}

// ListUsers returns the users q selects, ordered by username.
func (s *Service) ListUsers(ctx context.Context, q storage.UserQuery) ([]*storage.User, error) {
	users, err := s.Store.ListUsers(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return users, nil
}

// SetPassword replaces the user's password, once CheckPassword accepts it
// for them. Event: user.password_changed.
func (s *Service) SetPassword(ctx context.Context, actor Actor, username, pw string) error {
	// The rules that need no user first: a bad password is the caller's
	// answer whether or not the user exists.
	if err := s.CheckPassword(pw, nil); err != nil {
		return err
	}
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return err
	}
	if err := checkNotFromUser(pw, u); err != nil {
		return err
	}
	hash, err := s.hash(ctx, pw)
	if err != nil {
		return err
	}
	if err := s.Store.SetPasswordHash(ctx, u.ID, hash, s.now()); err != nil {
		return fmt.Errorf("setting the password of %s: %w", u.Username, err)
	}
	// A new password ends every "Remember this device" and every refresh
	// token: whoever knew the old one must not go on with it.
	if _, err := s.Store.DeleteRememberedDevices(ctx, u.ID); err != nil {
		return fmt.Errorf("the password of %s was changed, but forgetting their remembered devices failed: %w", u.Username, err)
	}
	if err := s.Store.RevokeUserRefreshTokens(ctx, u.ID, "", s.now()); err != nil {
		return fmt.Errorf("the password of %s was changed, but revoking their refresh tokens failed: %w", u.Username, err)
	}
	return s.audit(ctx, actor, storage.AuditEvent{Type: "user.password_changed", UserID: u.ID, Username: u.Username},
		"the password of "+u.Username+" was changed")
}

// SetPhone sets the user's cell phone (any international format; stored as
// E.164). A number set by an operator or a portal counts as verified; one
// s.Phones does not allow is refused.
// Event: user.phone_changed.
func (s *Service) SetPhone(ctx context.Context, actor Actor, username, phone string) (*storage.User, error) {
	e164, err := NormalizePhone(phone)
	if err != nil {
		return nil, err
	}
	if err := s.checkPhonePolicy(e164); err != nil {
		return nil, err
	}
	return s.changePhone(ctx, actor, username, e164)
}

// ClearPhone removes the user's cell phone (SMS codes stop at once).
// Event: user.phone_changed.
func (s *Service) ClearPhone(ctx context.Context, actor Actor, username string) (*storage.User, error) {
	return s.changePhone(ctx, actor, username, "")
}

func (s *Service) changePhone(ctx context.Context, actor Actor, username, e164 string) (*storage.User, error) {
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	if u.Phone == e164 && u.PhoneVerified == (e164 != "") {
		return u, nil
	}
	before := u.Phone
	u.Phone, u.PhoneVerified, u.UpdatedAt = e164, e164 != "", s.now()
	if err := s.Store.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("changing the phone of %s: %w", u.Username, err)
	}
	details := map[string]string{"verified": fmt.Sprint(u.PhoneVerified)}
	if before != "" {
		details["old_phone"] = maskPhone(before)
	}
	if e164 != "" {
		details["phone"] = maskPhone(e164)
	} else {
		details["removed"] = "true"
	}
	return u, s.audit(ctx, actor, storage.AuditEvent{Type: "user.phone_changed", UserID: u.ID, Username: u.Username, Details: details},
		"the phone of "+u.Username+" was changed")
}

// Disable stops the user from logging in and revokes their refresh tokens.
// Disabling a disabled user changes nothing. Event: user.disabled.
func (s *Service) Disable(ctx context.Context, actor Actor, username string) (*storage.User, error) {
	return s.setDisabled(ctx, actor, username, true)
}

// Enable lets a disabled user log in again. Event: user.enabled.
func (s *Service) Enable(ctx context.Context, actor Actor, username string) (*storage.User, error) {
	return s.setDisabled(ctx, actor, username, false)
}

func (s *Service) setDisabled(ctx context.Context, actor Actor, username string, disabled bool) (*storage.User, error) {
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	if u.Disabled == disabled {
		return u, nil
	}
	now := s.now()
	u.Disabled, u.UpdatedAt = disabled, now
	if err := s.Store.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("updating user %s: %w", u.Username, err)
	}
	typ, done := "user.enabled", "user "+u.Username+" was enabled"
	if disabled {
		typ, done = "user.disabled", "user "+u.Username+" was disabled"
		// A disabled user keeps no way in: the token endpoint would refuse
		// them anyway, but revoking also ends what a portal holds.
		if err := s.Store.RevokeUserRefreshTokens(ctx, u.ID, "", now); err != nil {
			return nil, fmt.Errorf("%s, but revoking their refresh tokens failed: %w", done, err)
		}
	}
	return u, s.audit(ctx, actor, storage.AuditEvent{Type: typ, UserID: u.ID, Username: u.Username}, done)
}

// Unlock records that an operator lifted the user's brute-force delays
// (user.unlocked in the audit log). A running provider honours it within
// seconds when the user's next attempt would be refused, whichever store
// its counts are in; the caller also clears the counts in a shared pending
// store it can reach (regulation.Unlock).
func (s *Service) Unlock(ctx context.Context, actor Actor, username string) (*storage.User, error) {
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	return u, s.audit(ctx, actor, storage.AuditEvent{Type: "user.unlocked", UserID: u.ID, Username: u.Username},
		"user "+u.Username+" was unlocked")
}

// AuditQuery selects audit events for ListAudit.
type AuditQuery struct {
	Username string    // only this user's events when not empty
	Since    time.Time // only events at or after this time when not zero
	Limit    int       // at most this many; 0 means 100
}

// ListAudit returns audit events, newest first.
func (s *Service) ListAudit(ctx context.Context, q AuditQuery) ([]*storage.AuditEvent, error) {
	sq := storage.AuditQuery{Since: q.Since, Limit: q.Limit}
	if q.Username != "" {
		u, err := s.GetUser(ctx, q.Username)
		if err != nil {
			return nil, err
		}
		sq.UserID = u.ID
	}
	events, err := s.Store.ListAudit(ctx, sq)
	if err != nil {
		return nil, fmt.Errorf("listing audit events: %w", err)
	}
	return events, nil
}
