package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage/pending"
)

// Login steps, in order: password, then the second factor (or, when one
// is required and the user has none, enrolment and the recovery codes to
// keep), then consent, then done.
const (
	stepPassword     = "password"
	stepSecondFactor = "second_factor"
	stepEnrol        = "enrol"
	stepShowCodes    = "show_codes" // new recovery codes (after enrolment or a used recovery code)
	stepConsent      = "consent"
	stepDone         = "done"
)

// AuthRequest is a pending login: the authorization request as the portal
// sent it, and how far the user has come. It lives in the pending-login
// store under "ar:ID" and is updated with compare-and-swap so that two
// concurrent posts cannot both move it on.
type AuthRequest struct {
	ID                  string                   `json:"id"`
	CreatedAt           time.Time                `json:"created_at"`
	ExpiresAt           time.Time                `json:"expires_at"`
	ClientID            string                   `json:"client_id"`
	RedirectURI         string                   `json:"redirect_uri"`
	State               string                   `json:"state,omitempty"`
	Nonce               string                   `json:"nonce,omitempty"`
	Scopes              []string                 `json:"scopes"`
	ResponseType        oidc.ResponseType        `json:"response_type"`
	ResponseMode        oidc.ResponseMode        `json:"response_mode,omitempty"`
	CodeChallenge       string                   `json:"code_challenge,omitempty"`
	CodeChallengeMethod oidc.CodeChallengeMethod `json:"code_challenge_method,omitempty"`
	Prompt              []string                 `json:"prompt,omitempty"`
	MaxAge              *uint                    `json:"max_age,omitempty"`
	LoginHint           string                   `json:"login_hint,omitempty"`
	ACRValues           []string                 `json:"acr_values,omitempty"`

	// Browser is the hash of the browser id the login is bound to (set by
	// /authorize, which sets the browser cookie).
	Browser string `json:"browser,omitempty"`
	// HintSubject is the subject of a valid id_token_hint: a session of
	// another user does not stand in for the password.
	HintSubject string `json:"hint_subject,omitempty"`
	// Moved marks an id the login left for a new one (authRequests.rekey).
	Moved bool `json:"moved,omitempty"`
	// Step is the step the login is at.
	Step string `json:"step"`
	// UserID, AuthTime, AMR and ACR describe the authentication so far.
	UserID   string    `json:"user_id,omitempty"`
	Username string    `json:"username,omitempty"`
	AuthTime time.Time `json:"auth_time"`
	AMR      []string  `json:"amr,omitempty"`
	ACR      string    `json:"acr,omitempty"`
	// FreshAuth is set when a factor was checked in this login (rather than
	// taken from the session): the session is then renewed.
	FreshAuth bool `json:"fresh_auth,omitempty"`
	// EnrolSecret is the TOTP secret of an enrolment in progress, sealed;
	// nothing is saved for the user until a code proves it.
	EnrolSecret []byte `json:"enrol_secret,omitempty"`
	// Codes are recovery codes to show once (sealed JSON list); Replacement
	// says it is the one code that replaced a used one.
	Codes       []byte `json:"codes,omitempty"`
	Replacement bool   `json:"replacement,omitempty"`
	// ReturnTo is set for logins to the provider's own pages (the account
	// pages): when done, the browser goes there instead of to a portal.
	ReturnTo string `json:"return_to,omitempty"`
	// Reset marks a password reset: the user came from the e-mail link
	// (ResetToken is the link's hash); the steps ask only for the second
	// factor, start no session, and end at the new-password page.
	Reset      bool   `json:"reset,omitempty"`
	ResetToken string `json:"reset_token,omitempty"`
	// ResetReturn is the pending login the reset was asked for from: the
	// last page links back to it.
	ResetReturn string `json:"reset_return,omitempty"`
	// Notice is shown on the login page: why the password is asked for
	// again (a fresh login before a sensitive change).
	Notice string `json:"notice,omitempty"`
	// CodeIssued is set when the library asked for the code, so that the
	// callback cannot be replayed for a second code.
	CodeIssued bool `json:"code_issued,omitempty"`
}

func (a *AuthRequest) GetID() string                      { return a.ID }
func (a *AuthRequest) GetACR() string                     { return a.ACR }
func (a *AuthRequest) GetAMR() []string                   { return a.AMR }
func (a *AuthRequest) GetAudience() []string              { return []string{a.ClientID} }
func (a *AuthRequest) GetAuthTime() time.Time             { return a.AuthTime }
func (a *AuthRequest) GetClientID() string                { return a.ClientID }
func (a *AuthRequest) GetNonce() string                   { return a.Nonce }
func (a *AuthRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *AuthRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a *AuthRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a *AuthRequest) GetScopes() []string                { return a.Scopes }
func (a *AuthRequest) GetState() string                   { return a.State }
func (a *AuthRequest) GetSubject() string                 { return a.UserID }
func (a *AuthRequest) Done() bool                         { return a.Step == stepDone }
func (a *AuthRequest) hasPrompt(p string) bool            { return slices.Contains(a.Prompt, p) }

func (a *AuthRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: a.CodeChallengeMethod}
}

// LogValue keeps secrets (state, nonce, challenge) out of the library's logs.
func (a *AuthRequest) LogValue() slog.Value {
	id := a.ID
	if len(id) > 8 {
		id = id[:8] + "…"
	}
	return slog.GroupValue(slog.String("id", id), slog.String("client_id", a.ClientID), slog.String("step", a.Step))
}

var (
	_ op.AuthRequest    = (*AuthRequest)(nil)
	_ op.LogAuthRequest = (*AuthRequest)(nil)
)

func newAuthRequest(req *oidc.AuthRequest, now time.Time, ttl time.Duration) *AuthRequest {
	return &AuthRequest{
		ID:                  secret.RandomToken(32),
		CreatedAt:           now,
		ExpiresAt:           now.Add(ttl),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		State:               req.State,
		Nonce:               req.Nonce,
		Scopes:              req.Scopes,
		ResponseType:        req.ResponseType,
		ResponseMode:        req.ResponseMode,
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: req.CodeChallengeMethod,
		Prompt:              req.Prompt,
		MaxAge:              req.MaxAge,
		LoginHint:           req.LoginHint,
		ACRValues:           req.ACRValues,
		Step:                stepPassword,
	}
}

// errLoginExpired: the pending login does not exist (any more).
var errLoginExpired = errors.New("pending login expired or unknown")

// errLoginChanged: another request moved the login on first.
var errLoginChanged = errors.New("pending login changed concurrently")

// authRequests keeps pending logins in the pending-login store.
type authRequests struct {
	store pending.Store
	now   func() time.Time
}

func arKey(id string) string { return "ar:" + id }

// loaded is a pending login with the bytes it was read from, for compare-and-swap.
type loaded struct {
	*AuthRequest
	raw []byte
}

func (s authRequests) create(ctx context.Context, a *AuthRequest) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	ok, err := s.store.SetNX(ctx, arKey(a.ID), raw, a.ExpiresAt.Sub(s.now()))
	if err != nil {
		return fmt.Errorf("storing pending login: %w", err)
	}
	if !ok {
		return errors.New("pending login id collision")
	}
	return nil
}

func (s authRequests) get(ctx context.Context, id string) (*loaded, error) {
	if id == "" || len(id) > 128 {
		return nil, errLoginExpired
	}
	raw, err := s.store.Get(ctx, arKey(id))
	if errors.Is(err, pending.ErrNotFound) {
		return nil, errLoginExpired
	}
	if err != nil {
		return nil, fmt.Errorf("reading pending login: %w", err)
	}
	a := new(AuthRequest)
	if err := json.Unmarshal(raw, a); err != nil {
		return nil, fmt.Errorf("decoding pending login: %w", err)
	}
	if a.Moved {
		return nil, errLoginChanged
	}
	if !a.ExpiresAt.After(s.now()) {
		return nil, errLoginExpired
	}
	return &loaded{AuthRequest: a, raw: raw}, nil
}

// update writes l's new state if nobody changed the login since it was read.
func (s authRequests) update(ctx context.Context, l *loaded) error {
	raw, err := json.Marshal(l.AuthRequest)
	if err != nil {
		return err
	}
	ttl := l.ExpiresAt.Sub(s.now())
	if ttl <= 0 {
		return errLoginExpired
	}
	ok, err := s.store.CompareAndSwap(ctx, arKey(l.ID), l.raw, raw, ttl)
	if err != nil {
		return fmt.Errorf("updating pending login: %w", err)
	}
	if !ok {
		return errLoginChanged
	}
	l.raw = raw
	return nil
}

// rekey moves l to a new random id: after each step (a factor passed), an
// id seen before, in a URL, a log line or a Referer, no longer leads to
// the login. It writes l's new state under the new id and retires the old
// one only if nobody changed it since it was read (compare-and-swap, as
// update): of two concurrent posts one moves the login on, the other gets
// errLoginChanged. The old id then reads as moved on (errLoginChanged).
func (s authRequests) rekey(ctx context.Context, l *loaded) (oldID string, err error) {
	ttl := l.ExpiresAt.Sub(s.now())
	if ttl <= 0 {
		return "", errLoginExpired
	}
	oldID, oldRaw := l.ID, l.raw
	l.ID = secret.RandomToken(32)
	raw, err := json.Marshal(l.AuthRequest)
	if err != nil {
		l.ID = oldID
		return "", err
	}
	ok, err := s.store.SetNX(ctx, arKey(l.ID), raw, ttl)
	if err != nil || !ok {
		l.ID = oldID
		if err == nil {
			err = errors.New("pending login id collision")
		}
		return "", fmt.Errorf("storing pending login: %w", err)
	}
	// The old id is left as a marker, so that get tells a stale tab or a
	// second submit that the login moved on.
	ok, err = s.store.CompareAndSwap(ctx, arKey(oldID), oldRaw, []byte(`{"moved":true}`), ttl)
	if err != nil || !ok {
		_ = s.store.Delete(ctx, arKey(l.ID))
		l.ID = oldID
		if err != nil {
			return "", fmt.Errorf("updating pending login: %w", err)
		}
		return "", errLoginChanged
	}
	l.raw = raw
	return oldID, nil
}

func (s authRequests) delete(ctx context.Context, id string) error {
	return s.store.Delete(ctx, arKey(id))
}
