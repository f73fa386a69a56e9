package mfa

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// WebAuthn is the provider's side of security keys and passkeys
// (github.com/go-webauthn/webauthn): the relying party, and each ceremony
// as bytes in and bytes out, so that the HTTP layer keeps the options for
// the page, the session data in the pending-login store and the
// credential in the durable store without knowing the library's types.
type WebAuthn struct {
	w        *webauthn.WebAuthn
	passkeys bool
}

// WebAuthnHandleLength is the size of a user handle: random bytes, never
// the username or e-mail (the authenticator may show or keep it).
const WebAuthnHandleLength = 32

// ErrWebAuthnClone: the signature counter went backwards, so the
// credential's key may have been copied; the login is refused.
var ErrWebAuthnClone = errors.New("mfa: the security key's signature counter went backwards (possible clone)")

// NewWebAuthn makes the relying party rpID (a domain: WebAuthn refuses IP
// addresses) for pages on origin, named displayName in browser prompts.
// With passkeys, registration asks for a discoverable credential with user
// verification, so that the key can later stand for both factors.
func NewWebAuthn(rpID, displayName, origin string, passkeys bool) (*WebAuthn, error) {
	if err := protocol.ValidateRPID(rpID); err != nil {
		return nil, fmt.Errorf("webauthn.rp_id %q cannot be a WebAuthn relying party id (it must be a domain name, not an IP address): %w", rpID, err)
	}
	w, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: displayName,
		RPOrigins:     []string{origin},
		// Attestation is not asked for: any key the user owns is welcome,
		// and "none" keeps their make and model private.
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: WebAuthnTimeout, TimeoutUVD: WebAuthnTimeout},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: WebAuthnTimeout, TimeoutUVD: WebAuthnTimeout},
		},
	})
	if err != nil {
		return nil, err
	}
	return &WebAuthn{w: w, passkeys: passkeys}, nil
}

// WebAuthnTimeout is how long a ceremony may take, in the browser and on
// the server.
const WebAuthnTimeout = 5 * time.Minute

// NewWebAuthnHandle returns a new random user handle.
func NewWebAuthnHandle() []byte {
	b := make([]byte, WebAuthnHandleLength)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b
}

// KeyUser is a user as a ceremony sees them: the handle, the names the
// authenticator may show, and their credentials (DecodeCredential).
type KeyUser struct {
	Handle      []byte
	Name        string // the username
	DisplayName string
	Credentials []webauthn.Credential
}

func (u *KeyUser) WebAuthnID() []byte                         { return u.Handle }
func (u *KeyUser) WebAuthnName() string                       { return u.Name }
func (u *KeyUser) WebAuthnDisplayName() string                { return u.DisplayName }
func (u *KeyUser) WebAuthnCredentials() []webauthn.Credential { return u.Credentials }

var _ webauthn.User = (*KeyUser)(nil)

// storedKey is what the durable store keeps of a key: the credential and
// whether it was registered as a passkey.
type storedKey struct {
	Credential webauthn.Credential `json:"credential"`
	Passkey    bool                `json:"passkey,omitempty"`
}

// EncodeCredential is what the durable store keeps of a credential.
// passkey says the key may sign in alone (see PasskeyCredential).
func EncodeCredential(c *webauthn.Credential, passkey bool) ([]byte, error) {
	return json.Marshal(storedKey{Credential: *c, Passkey: passkey})
}

// DecodeCredential reads what EncodeCredential wrote.
func DecodeCredential(b []byte) (webauthn.Credential, bool, error) {
	var k storedKey
	err := json.Unmarshal(b, &k)
	return k.Credential, k.Passkey, err
}

// RegisteredAsPasskey reports whether a key just registered may later sign
// in without the password: passkeys were offered at registration (so the
// user chose it knowing) and the authenticator verified the user (PIN or
// biometric). A key added as a second factor never becomes a password
// replacement by an option turned on later.
func (w *WebAuthn) RegisteredAsPasskey(c *webauthn.Credential) bool {
	return w.passkeys && c.Flags.UserVerified
}

// PlatformCredential reports whether c lives in the device itself (a
// laptop's or phone's authenticator) rather than on a separate key: amr
// "swk" rather than "hwk".
func PlatformCredential(c *webauthn.Credential) bool {
	return c.Authenticator.Attachment == protocol.Platform
}

// Ceremony is the start of a ceremony: Options go to the page as JSON (the
// argument of navigator.credentials.create/get, under "publicKey"), and
// Session is kept by the server until the answer comes, once.
type Ceremony struct {
	Options []byte
	Session []byte
}

func ceremony(options any, session *webauthn.SessionData) (*Ceremony, error) {
	o, err := json.Marshal(options)
	if err != nil {
		return nil, err
	}
	s, err := json.Marshal(session)
	if err != nil {
		return nil, err
	}
	return &Ceremony{Options: o, Session: s}, nil
}

func session(b []byte) (webauthn.SessionData, error) {
	var s webauthn.SessionData
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("mfa: reading WebAuthn session data: %w", err)
	}
	return s, nil
}

// BeginRegistration starts adding a key for u; the keys u has are
// excluded, so the same key cannot be added twice.
func (w *WebAuthn) BeginRegistration(u *KeyUser) (*Ceremony, error) {
	exclude := make([]protocol.CredentialDescriptor, 0, len(u.Credentials))
	for i := range u.Credentials {
		exclude = append(exclude, u.Credentials[i].Descriptor())
	}
	sel := protocol.AuthenticatorSelection{
		ResidentKey:      protocol.ResidentKeyRequirementDiscouraged,
		UserVerification: protocol.VerificationDiscouraged, // the password is the other factor
	}
	if w.passkeys {
		sel.ResidentKey = protocol.ResidentKeyRequirementPreferred
		sel.RequireResidentKey = protocol.ResidentKeyNotRequired()
		sel.UserVerification = protocol.VerificationPreferred
	}
	opts, sess, err := w.w.BeginRegistration(u, webauthn.WithExclusions(exclude), webauthn.WithAuthenticatorSelection(sel))
	if err != nil {
		return nil, err
	}
	return ceremony(opts, sess)
}

// FinishRegistration checks the browser's answer (the JSON of
// PublicKeyCredential.toJSON()) against the session and returns the new
// credential.
func (w *WebAuthn) FinishRegistration(u *KeyUser, sessionData, response []byte) (*webauthn.Credential, error) {
	s, err := session(sessionData)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, err
	}
	return w.w.CreateCredential(u, s, parsed)
}

// BeginLogin starts a second-factor check with one of u's keys. User
// verification is not asked for: the password was the other factor.
func (w *WebAuthn) BeginLogin(u *KeyUser) (*Ceremony, error) {
	opts, sess, err := w.w.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationDiscouraged))
	if err != nil {
		return nil, err
	}
	return ceremony(opts, sess)
}

// FinishLogin checks an assertion by one of u's keys and returns the
// credential as it is now (new sign count and flags, to be stored). A
// counter that went backwards gives ErrWebAuthnClone.
func (w *WebAuthn) FinishLogin(u *KeyUser, sessionData, response []byte) (*webauthn.Credential, error) {
	s, err := session(sessionData)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, err
	}
	c, err := w.w.ValidateLogin(u, s, parsed)
	if err != nil {
		return nil, err
	}
	if c.Authenticator.CloneWarning {
		return c, ErrWebAuthnClone
	}
	return c, nil
}

// BeginPasskeyLogin starts a login without a username: any discoverable
// credential of this relying party, with user verification required, so
// that the key (something you have) and its PIN or biometric (something
// you are or know) stand for both factors.
func (w *WebAuthn) BeginPasskeyLogin() (*Ceremony, error) {
	opts, sess, err := w.w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, err
	}
	return ceremony(opts, sess)
}

// FinishPasskeyLogin checks a passkey assertion; lookup finds the user of
// the user handle the authenticator returned (an unknown handle is an
// error). It returns the user and the credential as it is now.
func (w *WebAuthn) FinishPasskeyLogin(lookup func(handle []byte) (*KeyUser, error), sessionData, response []byte) (*KeyUser, *webauthn.Credential, error) {
	s, err := session(sessionData)
	if err != nil {
		return nil, nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, nil, err
	}
	var found *KeyUser
	user, c, err := w.w.ValidatePasskeyLogin(func(_, handle []byte) (webauthn.User, error) {
		u, err := lookup(handle)
		found = u
		return u, err
	}, s, parsed)
	if err != nil {
		return nil, nil, err
	}
	if user == nil || found == nil {
		return nil, nil, errors.New("mfa: passkey of no user")
	}
	if c.Authenticator.CloneWarning {
		return found, c, ErrWebAuthnClone
	}
	return found, c, nil
}
