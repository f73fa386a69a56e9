package idp

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage"
)

// accessTokenData is what an opaque access token carries. The library makes
// the token as Encrypt(tokenID + ":" + subject); the tokenID we hand it is
// this record, encoded, so the token is self-contained: nothing is stored
// per access token, and revocation is a deny-list of IDs.
type accessTokenData struct {
	ID       string   `json:"i"`
	ClientID string   `json:"c"`
	Scopes   []string `json:"s,omitempty"`
	Exp      int64    `json:"e"`
	Family   string   `json:"f,omitempty"` // the login's refresh-token family
	Grant    string   `json:"g,omitempty"` // authorization_code, refresh_token or client_credentials
	Issued   int64    `json:"t,omitempty"` // when it was made (Unix ns): a later password change voids it
}

// familyRevocationID is the deny-list entry that revokes every access
// token of a refresh-token family.
func familyRevocationID(family string) string {
	if family == "" {
		return ""
	}
	return "family:" + family
}

func (d *accessTokenData) encode() string {
	raw, err := json.Marshal(d)
	if err != nil {
		panic(err) // only plain strings and numbers
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeAccessTokenID(tokenID string) (*accessTokenData, bool) {
	if len(tokenID) > 4096 || strings.ContainsAny(tokenID, ":.") {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(tokenID)
	if err != nil {
		return nil, false
	}
	d := new(accessTokenData)
	if err := json.Unmarshal(raw, d); err != nil || d.ID == "" || d.ClientID == "" {
		return nil, false
	}
	return d, true
}

func (d *accessTokenData) expired(now time.Time) bool { return now.Unix() >= d.Exp }

// accessTokenCrypto seals access tokens with AES-256-GCM under secret_key
// (the library's default is unauthenticated AES-CFB).
type accessTokenCrypto struct{ keys *secret.Keys }

var _ op.Crypto = accessTokenCrypto{}

var accessTokenAD = []byte("access-token v1")

func (c accessTokenCrypto) Encrypt(s string) (string, error) {
	return base64.RawURLEncoding.EncodeToString(c.keys.Seal([]byte(s), accessTokenAD)), nil
}

func (c accessTokenCrypto) Decrypt(s string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", errors.New("not an access token")
	}
	out, err := c.keys.Open(raw, accessTokenAD)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// hashToken is how refresh tokens and codes are keyed: the token itself is
// never stored.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// RefreshTokenRequest is a refresh token presented at the token endpoint.
type RefreshTokenRequest struct {
	rec    *storage.RefreshToken
	scopes []string
}

var _ op.RefreshTokenRequest = (*RefreshTokenRequest)(nil)

func (r *RefreshTokenRequest) GetAMR() []string            { return r.rec.AMR }
func (r *RefreshTokenRequest) GetACR() string              { return r.rec.ACR }
func (r *RefreshTokenRequest) GetAudience() []string       { return []string{r.rec.ClientID} }
func (r *RefreshTokenRequest) GetAuthTime() time.Time      { return r.rec.AuthTime }
func (r *RefreshTokenRequest) GetClientID() string         { return r.rec.ClientID }
func (r *RefreshTokenRequest) GetScopes() []string         { return r.scopes }
func (r *RefreshTokenRequest) GetSubject() string          { return r.rec.UserID }
func (r *RefreshTokenRequest) SetCurrentScopes(s []string) { r.scopes = s }

// clientCredentialsRequest is a client_credentials grant: the client is the subject.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return []string{r.clientID} }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }
