// Package storage owns the durable store's contracts: the records the provider
// keeps for good (users, relying parties, signing keys, refresh tokens,
// consents, revoked access tokens, audit events, second factors) and the
// small interfaces a backend implements for each. Backends live in
// sub-packages (sqlstore for SQLite and PostgreSQL); storage/conformance
// holds the one test suite they all pass.
package storage

import (
	"context"
	"errors"
	"time"
)

// Errors every backend returns (wrapped or not); test them with errors.Is.
var (
	// ErrNotFound: no record has that key.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a record with that unique key (username, client id, key id) exists.
	ErrConflict = errors.New("storage: already exists")
	// ErrTokenUsed: the refresh token was already rotated or revoked.
	ErrTokenUsed = errors.New("storage: refresh token already used or revoked")
	// ErrUnavailable: the database could not be reached, or the connection
	// to it broke. Nothing the caller did is wrong: the same call may work
	// in a moment (the provider answers 503).
	ErrUnavailable = errors.New("storage: database unavailable")
)

// User is an account that can log in. ID is the stable, opaque OIDC subject;
// Username is unique, compared case-insensitively and stored in lower case.
type User struct {
	ID            string
	Username      string
	Email         string
	EmailVerified bool
	Name          string
	Phone         string // E.164, or empty
	PhoneVerified bool
	PasswordHash  string // PHC string (argon2id); empty when no password is set
	Disabled      bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// UserQuery selects users for ListUsers, ordered by username.
type UserQuery struct {
	Search string // case-insensitive substring of username, e-mail or name; empty for all
	After  string // return users whose username sorts after this one (paging cursor)
	Limit  int    // at most this many; 0 means 100
}

// Users stores accounts.
type Users interface {
	// CreateUser stores u; ErrConflict when the username is taken. Username is
	// lower-cased by the store.
	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByUsername finds a user by username, case-insensitively.
	UserByUsername(ctx context.Context, username string) (*User, error)
	ListUsers(ctx context.Context, q UserQuery) ([]*User, error)
	// UpdateUser writes Email, EmailVerified, Name, Phone, PhoneVerified,
	// Disabled and UpdatedAt of the user with u.ID; ErrNotFound if missing.
	UpdateUser(ctx context.Context, u *User) error
	// SetPasswordHash replaces the password hash (and UpdatedAt).
	SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) error
	// DeleteUser removes the user with their refresh tokens, consents and
	// second factors (TOTP, recovery codes, remembered devices, security
	// keys and WebAuthn handle).
	DeleteUser(ctx context.Context, userID string) error
}

// Client sources: who declared a relying party.
const (
	ClientSourceCLI    = "cli"
	ClientSourceConfig = "config"
	ClientSourceAPI    = "api"
)

// Client is a relying party (a "Client Portal").
type Client struct {
	ID                     string
	Name                   string
	SecretHash             string // see the secret package; empty for public clients
	Public                 bool   // no secret; PKCE required
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string // authorization_code, refresh_token, client_credentials
	Scopes                 []string // scopes beyond the standard OIDC ones this client may ask for (e.g. idp:admin)
	FirstParty             bool     // skips the consent page
	RequireMFA             bool     // never gets a code for a login without a second factor
	Source                 string   // ClientSource*
	CreatedAt              time.Time
	UpdatedAt              time.Time
}

// Clients stores relying parties.
type Clients interface {
	CreateClient(ctx context.Context, c *Client) error // ErrConflict when the id is taken
	ClientByID(ctx context.Context, id string) (*Client, error)
	ListClients(ctx context.Context) ([]*Client, error) // ordered by id
	// UpdateClient replaces every field but ID and CreatedAt; ErrNotFound if missing.
	UpdateClient(ctx context.Context, c *Client) error
	DeleteClient(ctx context.Context, id string) error // also its refresh tokens and consents
}

// Signing key states.
const (
	KeyActive  = "active"  // signs new tokens; exactly one is active
	KeyRetired = "retired" // published in JWKS until ExpiresAt, signs nothing
)

// SigningKey is a token signing key. The store keeps PrivateKey as given
// (it is sealed by the caller) and never interprets it.
type SigningKey struct {
	ID         string // kid
	Algorithm  string // RS256, ES256, ...
	PrivateKey []byte // sealed with secret_key by the caller
	PublicKey  []byte // PKIX DER
	State      string // KeyActive or KeyRetired
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero while active; for a retired key, when it leaves JWKS
}

// Keys stores signing keys.
type Keys interface {
	// ListKeys returns every key, newest first.
	ListKeys(ctx context.Context) ([]*SigningKey, error)
	// ActivateKey, in one transaction, retires every active key (ExpiresAt =
	// retireUntil) and stores k as the active key.
	ActivateKey(ctx context.Context, k *SigningKey, retireUntil time.Time) error
	// DeleteExpiredKeys removes retired keys whose ExpiresAt is before now.
	DeleteExpiredKeys(ctx context.Context, now time.Time) (int64, error)
}

// RefreshToken is a refresh token's record. The token itself is never stored,
// only its SHA-256 (hex) in TokenHash. Tokens of one login share FamilyID so
// that a reused (already rotated) token revokes the whole family.
type RefreshToken struct {
	TokenHash string
	FamilyID  string
	UserID    string
	ClientID  string
	Scopes    []string
	Audience  []string
	AMR       []string
	ACR       string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until rotated
	RevokedAt time.Time // zero unless revoked
}

// RefreshTokens stores refresh tokens.
type RefreshTokens interface {
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	RefreshTokenByHash(ctx context.Context, hash string) (*RefreshToken, error)
	// RotateRefreshToken atomically marks the token oldHash used (UsedAt = now)
	// and stores next. If oldHash was already used or revoked it stores
	// nothing and returns ErrTokenUsed; ErrNotFound if it does not exist. Of
	// two concurrent rotations of one token exactly one succeeds.
	RotateRefreshToken(ctx context.Context, oldHash string, next *RefreshToken, now time.Time) error
	// RevokeRefreshTokenFamily revokes every token of the family.
	RevokeRefreshTokenFamily(ctx context.Context, familyID string, now time.Time) error
	// RevokeUserRefreshTokens revokes the user's tokens; for one client only
	// when clientID is not empty.
	RevokeUserRefreshTokens(ctx context.Context, userID, clientID string, now time.Time) error
	// DeleteExpiredRefreshTokens removes tokens that expired before now.
	DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int64, error)
}

// Consents records which scopes a user allowed a (third-party) client.
type Consents interface {
	// ConsentedScopes returns the scopes the user granted the client (nil if none).
	ConsentedScopes(ctx context.Context, userID, clientID string) ([]string, error)
	// GrantConsent replaces the scopes the user granted the client.
	GrantConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) error
	RevokeConsent(ctx context.Context, userID, clientID string) error
}

// RevokedAccessTokens is the deny-list of self-contained (JWT) access tokens
// revoked before they expire.
type RevokedAccessTokens interface {
	RevokeAccessToken(ctx context.Context, tokenID string, expiresAt time.Time) error
	IsAccessTokenRevoked(ctx context.Context, tokenID string) (bool, error)
	DeleteExpiredRevocations(ctx context.Context, now time.Time) (int64, error)
}

// AuditEvent is one security event. It never holds a secret.
type AuditEvent struct {
	ID        int64 // set by the store
	Time      time.Time
	Type      string // e.g. login.succeeded, login.failed, user.created
	Actor     string // who did it: "user", "operator" (CLI), "client:ID" (admin API), "system"
	UserID    string
	Username  string
	ClientID  string
	IP        string
	UserAgent string
	Result    string            // "success" or "failure"
	Details   map[string]string // free-form, never secrets
}

// AuditQuery selects audit events, newest first.
type AuditQuery struct {
	UserID string    // only this user's events when not empty
	Type   string    // only events of this type when not empty
	Since  time.Time // only events at or after this time when not zero
	Limit  int       // at most this many; 0 means 100
}

// Audit is the append-only security log. Events are never changed; the
// only removal is by age (audit.retention).
type Audit interface {
	AppendAudit(ctx context.Context, e *AuditEvent) error // sets e.ID
	ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEvent, error)
	// DeleteAuditBefore removes every event (of every user) whose Time is
	// before before, at the store's millisecond precision (an event at
	// before itself stays), and returns how many it removed.
	DeleteAuditBefore(ctx context.Context, before time.Time) (int64, error)
}

// TOTP is a user's authenticator-app enrolment. Secret is sealed by the
// caller (with the user id as associated data); the store never reads it.
type TOTP struct {
	UserID    string
	Secret    []byte
	LastStep  int64 // the last accepted time step: a code is never accepted twice
	CreatedAt time.Time
}

// TOTPs stores authenticator-app enrolments (at most one per user).
type TOTPs interface {
	// SetTOTP stores t, replacing the user's enrolment if any (LastStep as given).
	SetTOTP(ctx context.Context, t *TOTP) error
	TOTPByUser(ctx context.Context, userID string) (*TOTP, error) // ErrNotFound if none
	// AdvanceTOTPStep sets LastStep to step only if step is greater than the
	// stored one, atomically, and reports whether it did: of two concurrent
	// uses of one code exactly one gets true. ErrNotFound if no enrolment.
	AdvanceTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	DeleteTOTP(ctx context.Context, userID string) error // no error if none
}

// RecoveryCodes stores the hashes of a user's one-time recovery codes.
type RecoveryCodes interface {
	// ReplaceRecoveryCodes deletes every code of the user and stores the new
	// hashes, in one transaction.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, now time.Time) error
	// ConsumeRecoveryCode, in one transaction, deletes the user's unused code
	// with that hash and stores replacementHash in its place. ErrNotFound when
	// the user has no such code; of concurrent consumers of one code exactly
	// one succeeds.
	ConsumeRecoveryCode(ctx context.Context, userID, hash, replacementHash string, now time.Time) error
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)
	DeleteRecoveryCodes(ctx context.Context, userID string) error
}

// RememberedDevice is a browser that may skip the second factor for a user
// until ExpiresAt. The device's token is stored only as its SHA-256 (hex).
type RememberedDevice struct {
	ID          string
	UserID      string
	TokenHash   string
	Description string // e.g. "Chrome on Linux", from the user agent
	CreatedAt   time.Time
	LastUsedAt  time.Time
	ExpiresAt   time.Time
}

// RememberedDevices stores remembered devices.
type RememberedDevices interface {
	CreateRememberedDevice(ctx context.Context, d *RememberedDevice) error
	RememberedDeviceByHash(ctx context.Context, tokenHash string) (*RememberedDevice, error) // ErrNotFound
	TouchRememberedDevice(ctx context.Context, id string, now time.Time) error               // sets LastUsedAt
	ListRememberedDevices(ctx context.Context, userID string) ([]*RememberedDevice, error)   // newest first
	// DeleteRememberedDevices forgets every device of the user.
	DeleteRememberedDevices(ctx context.Context, userID string) (int64, error)
	DeleteExpiredRememberedDevices(ctx context.Context, now time.Time) (int64, error)
}

// SecurityKey is a WebAuthn credential of a user: a security key, or a passkey. The store keeps
// Credential as given (the mfa package's encoding of the public key, flags, transports and
// attachment) and never interprets it.
type SecurityKey struct {
	ID           string // random id for URLs and audit (never the credential id)
	UserID       string
	CredentialID []byte // the authenticator's credential id; unique across users
	Name         string // what the user called it: "YubiKey", "Laptop"
	Credential   []byte
	SignCount    uint32 // the signature counter last seen (copy of the one inside Credential)
	CreatedAt    time.Time
	LastUsedAt   time.Time // zero until first used
}

// SecurityKeys stores WebAuthn credentials and each user's WebAuthn user handle.
type SecurityKeys interface {
	// WebAuthnHandle returns the user's WebAuthn user handle (random bytes, never derived from the
	// username), storing candidate as it when the user has none yet. Of concurrent first calls with
	// different candidates all get the same stored handle. ErrNotFound if the user does not exist.
	// The handle outlives the user's keys (DeleteSecurityKeys keeps it) but not the user.
	WebAuthnHandle(ctx context.Context, userID string, candidate []byte) ([]byte, error)
	// UserIDByWebAuthnHandle finds whose handle it is (passkey login); ErrNotFound.
	UserIDByWebAuthnHandle(ctx context.Context, handle []byte) (string, error)
	// CreateSecurityKey stores k; ErrConflict when the credential id is already stored.
	CreateSecurityKey(ctx context.Context, k *SecurityKey) error
	ListSecurityKeys(ctx context.Context, userID string) ([]*SecurityKey, error) // oldest first
	CountSecurityKeys(ctx context.Context, userID string) (int, error)
	SecurityKeyByCredentialID(ctx context.Context, credentialID []byte) (*SecurityKey, error) // ErrNotFound
	// UseSecurityKey records a successful use: it sets Credential, SignCount and LastUsedAt of key id
	// only if the stored SignCount still equals oldSignCount, atomically, and reports whether it did
	// (of two concurrent uses with the same counter exactly one gets true; counters that stay 0, as
	// passkeys' do, compare equal). ErrNotFound if no such key.
	//
	// When newSignCount equals oldSignCount (a counter that stays 0) the stored counter cannot tell
	// concurrent uses apart and each of them gets true: what stops a replayed assertion then is the
	// single-use challenge, not the counter.
	UseSecurityKey(ctx context.Context, id string, oldSignCount, newSignCount uint32, credential []byte, now time.Time) (bool, error)
	// DeleteSecurityKey removes the user's key id; ErrNotFound when the user has no key with that id.
	DeleteSecurityKey(ctx context.Context, userID, id string) error
	// DeleteSecurityKeys removes every key of the user (the user's handle stays) and returns how many.
	DeleteSecurityKeys(ctx context.Context, userID string) (int64, error)
}

// Store is a whole durable store.
type Store interface {
	Users
	Clients
	Keys
	RefreshTokens
	Consents
	RevokedAccessTokens
	Audit
	TOTPs
	RecoveryCodes
	RememberedDevices
	SecurityKeys
	// Ping checks that the database answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
