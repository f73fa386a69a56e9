package manage

import (
	"context"
	"time"

	"github.com/hostportal/idp/storage"
)

// UserView is a user as `idp user show --json` and the admin API print it:
// never a password hash.
type UserView struct {
	ID            string    `json:"id"`
	Username      string    `json:"username"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	Phone         string    `json:"phone"`
	PhoneVerified bool      `json:"phone_verified"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at"`
	MFA           MFAView   `json:"mfa"`
}

// MFAView is the "mfa" object of a user (SPEC.md): which second factors
// they have.
type MFAView struct {
	TOTP              bool `json:"totp"`
	SecurityKeys      int  `json:"security_keys"`
	RecoveryCodesLeft int  `json:"recovery_codes_left"`
}

// ViewUserWithMFA is ViewUser with the user's second factors filled in.
func (s *Service) ViewUserWithMFA(ctx context.Context, u *storage.User) (UserView, error) {
	v := ViewUser(u)
	st, err := s.MFA(ctx, u.ID)
	if err != nil {
		return v, err
	}
	v.MFA = MFAView{TOTP: st.TOTP, SecurityKeys: st.SecurityKeys, RecoveryCodesLeft: st.RecoveryCodesLeft}
	return v, nil
}

// ViewUser returns u's public view (without the second factors; see ViewUserWithMFA).
func ViewUser(u *storage.User) UserView {
	return UserView{
		ID:            u.ID,
		Username:      u.Username,
		Email:         u.Email,
		Name:          u.Name,
		Phone:         u.Phone,
		PhoneVerified: u.PhoneVerified,
		Disabled:      u.Disabled,
		CreatedAt:     u.CreatedAt,
	}
}

// ClientView is a relying party as `idp client show --json` and the admin
// API print it: never a secret or its hash. Lists are [] rather than null.
type ClientView struct {
	ClientID               string    `json:"client_id"`
	Name                   string    `json:"name"`
	Public                 bool      `json:"public"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	Grants                 []string  `json:"grants"`
	Scopes                 []string  `json:"scopes"`
	FirstParty             bool      `json:"first_party"`
	RequireMFA             bool      `json:"require_mfa"`
	Source                 string    `json:"source"`
	CreatedAt              time.Time `json:"created_at"`
}

// ViewClient returns c's public view.
func ViewClient(c *storage.Client) ClientView {
	return ClientView{
		ClientID:               c.ID,
		Name:                   c.Name,
		Public:                 c.Public,
		RedirectURIs:           nonNil(c.RedirectURIs),
		PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		Grants:                 nonNil(c.GrantTypes),
		Scopes:                 nonNil(c.Scopes),
		FirstParty:             c.FirstParty,
		RequireMFA:             c.RequireMFA,
		Source:                 c.Source,
		CreatedAt:              c.CreatedAt,
	}
}

// AuditEventView is an audit event as `idp audit list --json` and the admin
// API print it.
type AuditEventView struct {
	ID        int64             `json:"id"`
	Time      time.Time         `json:"time"`
	Type      string            `json:"type"`
	Actor     string            `json:"actor"`
	UserID    string            `json:"user_id,omitempty"`
	Username  string            `json:"username,omitempty"`
	ClientID  string            `json:"client_id,omitempty"`
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	Result    string            `json:"result"`
	Details   map[string]string `json:"details,omitempty"`
}

// ViewAuditEvent returns e's view.
func ViewAuditEvent(e *storage.AuditEvent) AuditEventView {
	return AuditEventView{
		ID: e.ID, Time: e.Time, Type: e.Type, Actor: e.Actor, UserID: e.UserID, Username: e.Username,
		ClientID: e.ClientID, IP: e.IP, UserAgent: e.UserAgent, Result: e.Result, Details: e.Details,
	}
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
