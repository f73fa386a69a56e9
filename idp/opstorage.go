package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/signing"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending"
)

// codeTTL is how long an authorization code can be redeemed.
const codeTTL = time.Minute

// oidcStorage is the library's view of the provider's state.
type oidcStorage struct{ s *Server }

var (
	_ op.Storage                        = oidcStorage{}
	_ op.ClientCredentialsStorage       = oidcStorage{}
	_ op.CanSetUserinfoFromRequest      = oidcStorage{}
	_ op.CanGetPrivateClaimsFromRequest = oidcStorage{}
)

// CreateAuthRequest stores a new pending login. PKCE is checked here too,
// since every way into the library's authorize endpoint ends here.
func (o oidcStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	c, err := o.s.clientByID(ctx, req.ClientID)
	if err != nil {
		return nil, forPortal(err)
	}
	switch {
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge == "" && c.c.Public:
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with S256 is required for public clients")
	}
	a := newAuthRequest(req, o.s.now(), o.s.cfg.Session.LoginTimeout)
	a.HintSubject = hintSubject
	a.Browser, _ = ctx.Value(browserContextKey{}).(string)
	if err := o.s.authRequests.create(ctx, a); err != nil {
		return nil, forPortal(err)
	}
	return a, nil
}

// forPortal is what the library sends back to the portal, in the redirect,
// for err: a store outage is temporarily_unavailable (RFC 6749, 4.1.2.1:
// the 503 of a redirect), with none of our error's text; other errors are
// left as they are.
func forPortal(err error) error {
	if !unavailable(err) {
		return err
	}
	return (&oidc.Error{ErrorType: "temporarily_unavailable", Description: "the service is temporarily unavailable; try again in a minute"}).WithParent(err)
}

func (o oidcStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	l, err := o.s.authRequests.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return l.AuthRequest, nil
}

// SaveAuthCode stores the finished login under the code's hash. A login
// gets one code only: the callback cannot be replayed for a second one.
func (o oidcStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	l, err := o.s.authRequests.get(ctx, id)
	if err != nil {
		return forPortal(err)
	}
	if !l.Done() || l.CodeIssued {
		return oidc.ErrInvalidRequest().WithDescription("this login has already been completed")
	}
	// The user may have been disabled while the login was on its way, or
	// changed their password since it checked the old one.
	u, err := o.s.store.UserByID(ctx, l.UserID)
	if unavailable(err) {
		return forPortal(err)
	}
	if err != nil || u.Disabled {
		return oidc.ErrAccessDenied().WithDescription("the account is disabled")
	}
	stale, err := o.s.tokensRevokedAfter(ctx, u.ID, l.AuthTime)
	if unavailable(err) {
		return forPortal(err)
	}
	if err != nil || stale {
		return oidc.ErrAccessDenied().WithDescription("the password changed during this login")
	}
	l.CodeIssued = true
	if err := o.s.authRequests.update(ctx, l); err != nil {
		return forPortal(err)
	}
	raw, err := json.Marshal(l.AuthRequest)
	if err != nil {
		return err
	}
	return forPortal(o.s.pending.Set(ctx, "code:"+hashToken(code), raw, codeTTL))
}

// AuthRequestByCode consumes the code: of two concurrent redemptions only
// one gets the login.
func (o oidcStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	raw, err := o.s.pending.GetDel(ctx, "code:"+hashToken(code))
	if errors.Is(err, pending.ErrNotFound) {
		return nil, errors.New("code unknown, expired or already used")
	}
	if err != nil {
		return nil, err
	}
	a := new(AuthRequest)
	if err := json.Unmarshal(raw, a); err != nil {
		return nil, err
	}
	if stale, err := o.s.tokensRevokedAfter(ctx, a.UserID, a.AuthTime); err != nil || stale {
		return nil, errors.New("the password changed after this code was issued")
	}
	return a, nil
}

func (o oidcStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	return o.s.authRequests.delete(ctx, id)
}

// newAccessToken makes the content of an access token. family ties it to
// its login's refresh tokens (revoking them revokes it); grant records how
// it was obtained.
func (o oidcStorage) newAccessToken(clientID string, scopes []string, family, grant string) (string, time.Time) {
	exp := o.s.now().Add(o.s.cfg.Tokens.AccessTokenLifetime)
	d := &accessTokenData{ID: secret.RandomToken(12), ClientID: clientID, Scopes: scopes, Exp: exp.Unix(), Family: family, Grant: grant,
		Issued: o.s.now().UnixNano()}
	o.s.metrics.tokenIssued(grant)
	return d.encode(), exp
}

func (o oidcStorage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	var clientID, family, grant string
	switch r := req.(type) {
	case *AuthRequest:
		clientID, grant = r.ClientID, string(oidc.GrantTypeCode)
	case *RefreshTokenRequest:
		clientID, family, grant = r.GetClientID(), r.rec.FamilyID, string(oidc.GrantTypeRefreshToken)
	case *clientCredentialsRequest:
		clientID, grant = r.clientID, string(oidc.GrantTypeClientCredentials)
	default:
		return "", time.Time{}, fmt.Errorf("unexpected token request %T", req)
	}
	id, exp := o.newAccessToken(clientID, req.GetScopes(), family, grant)
	return id, exp, nil
}

// CreateAccessAndRefreshTokens makes the first refresh token of a login, or
// rotates one: the presented token is marked used and a new one of the same
// family replaces it. A token presented again after rotation is a reuse:
// the whole family is revoked.
func (o oidcStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := o.s.now()
	token := secret.RandomToken(32)
	next := &storage.RefreshToken{
		TokenHash: hashToken(token),
		CreatedAt: now,
		ExpiresAt: now.Add(o.s.cfg.Tokens.RefreshTokenLifetime),
		Scopes:    req.GetScopes(),
	}
	switch r := req.(type) {
	case *AuthRequest:
		next.FamilyID = secret.RandomToken(16)
		next.UserID, next.ClientID = r.UserID, r.ClientID
		next.Audience, next.AMR, next.ACR, next.AuthTime = r.GetAudience(), r.AMR, r.ACR, r.AuthTime
	case *RefreshTokenRequest:
		next.FamilyID = r.rec.FamilyID
		next.UserID, next.ClientID = r.rec.UserID, r.rec.ClientID
		next.Audience, next.AMR, next.ACR, next.AuthTime = r.rec.Audience, r.rec.AMR, r.rec.ACR, r.rec.AuthTime
	default:
		return "", "", time.Time{}, fmt.Errorf("unexpected token request %T", req)
	}
	if current == "" {
		if err := o.s.store.CreateRefreshToken(ctx, next); err != nil {
			return "", "", time.Time{}, err
		}
	} else {
		err := o.s.store.RotateRefreshToken(ctx, hashToken(current), next, now)
		if errors.Is(err, storage.ErrTokenUsed) {
			o.s.refreshTokenReused(ctx, next.FamilyID, next.UserID, next.ClientID)
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
		}
		if errors.Is(err, storage.ErrNotFound) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token invalid")
		}
		if err != nil {
			return "", "", time.Time{}, err
		}
	}
	grant := string(oidc.GrantTypeCode)
	if current != "" {
		grant = string(oidc.GrantTypeRefreshToken)
	}
	id, exp := o.newAccessToken(next.ClientID, next.Scopes, next.FamilyID, grant)
	return id, token, exp, nil
}

func (o oidcStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	rec, err := o.s.store.RefreshTokenByHash(ctx, hashToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, op.ErrInvalidRefreshToken
	}
	if err != nil {
		return nil, err
	}
	now := o.s.now()
	switch {
	case !rec.RevokedAt.IsZero(), !rec.ExpiresAt.After(now):
		return nil, op.ErrInvalidRefreshToken
	case !rec.UsedAt.IsZero():
		o.s.refreshTokenReused(ctx, rec.FamilyID, rec.UserID, rec.ClientID)
		return nil, op.ErrInvalidRefreshToken
	}
	u, err := o.s.store.UserByID(ctx, rec.UserID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) {
		return nil, op.ErrInvalidRefreshToken
	}
	if err != nil {
		return nil, err
	}
	return &RefreshTokenRequest{rec: rec, scopes: rec.Scopes}, nil
}

// TerminateSession is not reached: the provider serves end_session itself
// (see logout.go) to ask before logging out and to clear its own session.
func (o oidcStorage) TerminateSession(context.Context, string, string) error { return nil }

// RevokeToken revokes an access token (deny-list until it expires) or a
// refresh token (its whole family). Unknown tokens are not an error (RFC 7009).
func (o oidcStorage) RevokeToken(ctx context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	if d, ok := decodeAccessTokenID(tokenOrID); ok {
		if d.ClientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
		}
		if err := o.s.store.RevokeAccessToken(ctx, d.ID, time.Unix(d.Exp, 0)); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	rec, err := o.s.store.RefreshTokenByHash(ctx, tokenOrID)
	if errors.Is(err, storage.ErrNotFound) {
		rec, err = o.s.store.RefreshTokenByHash(ctx, hashToken(tokenOrID))
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if rec.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
	}
	if err := o.s.revokeFamily(ctx, rec.FamilyID); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

func (o oidcStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	rec, err := o.s.store.RefreshTokenByHash(ctx, hashToken(token))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && rec.ClientID != clientID) {
		return "", "", op.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	return rec.UserID, rec.TokenHash, nil
}

// signingKey and publicKey adapt signing.Key to the library.
type signingKey struct{ k *signing.Key }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.k.Algorithm)
}
func (k signingKey) Key() any   { return k.k.Private }
func (k signingKey) ID() string { return k.k.ID }

type publicKey struct{ k *signing.Key }

func (k publicKey) ID() string                         { return k.k.ID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.k.Algorithm) }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k.Public }

func (o oidcStorage) SigningKey(context.Context) (op.SigningKey, error) {
	k, err := o.s.signing.Active()
	if err != nil {
		return nil, err
	}
	return signingKey{k}, nil
}

// SignatureAlgorithms are the published keys' algorithms, as in the
// discovery document the server keeps (keyDocuments).
func (o oidcStorage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	return keyAlgorithms(o.s.signing.Published()).SignatureAlgorithms(ctx)
}

func (o oidcStorage) KeySet(context.Context) ([]op.Key, error) {
	published := o.s.signing.Published()
	out := make([]op.Key, 0, len(published))
	for _, k := range published {
		out = append(out, publicKey{k})
	}
	return out, nil
}

func (o oidcStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := o.s.clientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (o oidcStorage) AuthorizeClientIDSecret(ctx context.Context, id, clientSecret string) error {
	_, err := o.ClientCredentials(ctx, id, clientSecret)
	return err
}

// errBadClientCredentials is deliberately the same for an unknown client and a wrong secret.
var errBadClientCredentials = errors.New("client authentication failed")

func (o oidcStorage) ClientCredentials(ctx context.Context, id, clientSecret string) (op.Client, error) {
	c, err := o.s.clientByID(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		// Spend the time a check would, so that unknown ids are not told apart.
		secret.CheckClientSecret(dummyClientSecretHash, clientSecret)
		return nil, errBadClientCredentials
	}
	if err != nil {
		return nil, err
	}
	if c.c.Public || !secret.CheckClientSecret(c.c.SecretHash, clientSecret) {
		return nil, errBadClientCredentials
	}
	return c, nil
}

var dummyClientSecretHash = secret.HashClientSecret("dummy")

func (o oidcStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, err := o.s.clientByID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	for _, sc := range scopes {
		if !slices.Contains(c.c.Scopes, sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %s is not granted to this client", sc)
		}
	}
	return &clientCredentialsRequest{clientID: clientID, scopes: scopes}, nil
}

func (o oidcStorage) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, _ string, scopes []string) error {
	u, err := o.s.store.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	setUserinfo(ui, u, scopes)
	return nil
}

// SetUserinfoFromRequest keeps acr in ID tokens made at refresh: the library
// only sets it for authorization requests.
func (o oidcStorage) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	if r, ok := req.(*RefreshTokenRequest); ok && r.GetACR() != "" {
		ui.AppendClaims("acr", r.GetACR())
	}
	return nil
}

// accessToken decodes a token id of subject and checks expiry, the
// deny-list, and that the subject's password did not change since.
func (o oidcStorage) accessToken(ctx context.Context, tokenID, subject string) (*accessTokenData, error) {
	d, ok := decodeAccessTokenID(tokenID)
	if !ok || d.expired(o.s.now()) {
		return nil, errors.New("access token invalid or expired")
	}
	for _, id := range []string{d.ID, familyRevocationID(d.Family)} {
		if id == "" {
			continue
		}
		revoked, err := o.s.store.IsAccessTokenRevoked(ctx, id)
		if err != nil {
			return nil, err
		}
		if revoked {
			return nil, errors.New("access token revoked")
		}
	}
	if d.Issued != 0 {
		issued := time.Unix(0, d.Issued)
		if subject != "" {
			if stale, err := o.s.tokensRevokedAfter(ctx, subject, issued); err != nil || stale {
				return nil, errors.New("access token from before a password change")
			}
		}
		if stale, err := o.s.tokensRevokedAfter(ctx, "client:"+d.ClientID, issued); err != nil || stale {
			return nil, errors.New("access token from before the client's secret changed")
		}
	}
	return d, nil
}

func (o oidcStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	d, err := o.accessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if !slices.Contains(d.Scopes, oidc.ScopeOpenID) {
		return errors.New("the access token was not issued with scope openid")
	}
	u, err := o.s.store.UserByID(ctx, subject)
	if err != nil {
		return errors.New("no user for this access token")
	}
	if u.Disabled {
		return errors.New("the user is disabled")
	}
	setUserinfo(ui, u, d.Scopes)
	return nil
}

// SetIntrospectionFromToken answers for tokens issued to the asking
// client. Any error makes the library answer {"active": false}.
func (o oidcStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	d, err := o.accessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if d.ClientID != clientID {
		return errors.New("the token was issued to another client")
	}
	if d.ClientID != subject {
		u, err := o.s.store.UserByID(ctx, subject)
		if err != nil {
			return err
		}
		if u.Disabled {
			return errors.New("the user is disabled")
		}
		ui := new(oidc.UserInfo)
		setUserinfo(ui, u, d.Scopes)
		resp.SetUserInfo(ui)
	}
	resp.Subject = subject
	resp.ClientID = d.ClientID
	resp.Scope = d.Scopes
	resp.Audience = []string{d.ClientID}
	resp.Expiration = oidc.FromTime(time.Unix(d.Exp, 0))
	resp.TokenType = oidc.BearerToken
	return nil
}

func (o oidcStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (o oidcStorage) GetPrivateClaimsFromRequest(context.Context, op.TokenRequest, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID refuses every key: the JWT-profile grant, which the
// library always enables, is not offered.
func (o oidcStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (o oidcStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (o oidcStorage) Health(ctx context.Context) error { return o.s.ready(ctx) }

func setUserinfo(ui *oidc.UserInfo, u *storage.User, scopes []string) {
	ui.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			ui.Name = u.Name
			ui.PreferredUsername = u.Username
			ui.UpdatedAt = oidc.FromTime(u.UpdatedAt)
		case oidc.ScopeEmail:
			ui.Email = u.Email
			ui.EmailVerified = oidc.Bool(u.EmailVerified)
		case oidc.ScopePhone:
			if u.Phone != "" {
				ui.PhoneNumber = u.Phone
				ui.PhoneNumberVerified = oidc.Bool(u.PhoneVerified)
			}
		}
	}
}
