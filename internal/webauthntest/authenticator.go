// Package webauthntest is a software WebAuthn authenticator for tests of the
// server's ceremony handlers. It plays the browser and the authenticator at
// once: it takes the options JSON a relying party sends to the page (what
// webauthn.BeginRegistration, BeginLogin and BeginDiscoverableLogin return,
// marshalled with encoding/json as {"publicKey":{...}}) and returns the JSON
// the page would post back, the output of PublicKeyCredential.toJSON(), which
// protocol.ParseCredentialCreationResponseBytes and
// ParseCredentialRequestResponseBytes accept.
//
// Keys are ES256 (ECDSA P-256), attestation is "none" (or packed self
// attestation), and the AAGUID is zero. Like a browser, the authenticator
// refuses what a browser would refuse (an RP id that does not fit the origin,
// an IP address as the origin's host, a credential in excludeCredentials, user
// verification it cannot do), so a handler that only works against a lenient
// client fails here too. Tamper lets a negative test go past those refusals
// and send the server what a broken or hostile client would.
package webauthntest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
)

// The errors Register and Assert wrap when they refuse, named after the
// DOMException a browser would reject navigator.credentials.create() or get()
// with. Malformed options give other errors.
var (
	// ErrSecurity: the origin is not one a browser runs WebAuthn on (not a
	// secure context, or an IP address), or the RP id is neither the
	// origin's host nor a registrable suffix of it.
	ErrSecurity = errors.New("webauthntest: SecurityError")
	// ErrNotAllowed: the authenticator holds no usable credential, or the
	// options ask for something it cannot do (user verification, another
	// attachment).
	ErrNotAllowed = errors.New("webauthntest: NotAllowedError")
	// ErrInvalidState: excludeCredentials lists a credential the
	// authenticator holds for that RP id.
	ErrInvalidState = errors.New("webauthntest: InvalidStateError")
	// ErrNotSupported: pubKeyCredParams does not offer ES256.
	ErrNotSupported = errors.New("webauthntest: NotSupportedError")
)

// Attachments, as reported in authenticatorAttachment.
const (
	CrossPlatform = "cross-platform"
	Platform      = "platform"
)

// COSE and WebAuthn constants used on the wire.
const (
	algES256           = -7
	flagUserPresent    = 0x01
	flagUserVerified   = 0x04
	flagBackupEligible = 0x08
	flagBackupState    = 0x10
	flagAttestedData   = 0x40
	minCredentialIDLen = 16
	maxCredentialIDLen = 32
	maxUserHandleLen   = 64
)

// Authenticator is a software authenticator with ES256 (P-256) keys.
//
// Its methods are safe for concurrent use. The exported fields are settings
// read by each ceremony: set them before the ceremonies that should see them,
// not while another goroutine is in Register or Assert.
type Authenticator struct {
	// Origin is the page's origin written into clientDataJSON, e.g.
	// "http://localhost:34567". It also decides which RP ids are acceptable.
	Origin string

	// UserVerified sets the UV flag. It is also whether the authenticator
	// can verify the user at all: without it, options whose
	// userVerification is "required" are refused.
	UserVerified bool

	// Attachment is CrossPlatform (the default, a security key; transports
	// ["usb"]) or Platform (transports ["internal"]). Options that ask for
	// the other attachment are refused, as the browser would not offer this
	// authenticator.
	Attachment string

	// InitialCounter is the signature counter of new credentials, reported
	// in the registration's authenticator data.
	InitialCounter uint32

	// BackupEligible makes new credentials backup eligible and backed up
	// (flags BE and BS), as synced passkeys are. The flags stay with the
	// credential for its lifetime.
	BackupEligible bool

	// SelfAttestation answers registrations with a "packed" self
	// attestation (signed by the new credential's own key) instead of
	// "none".
	SelfAttestation bool

	// PreferCredential picks the credential when several would answer an
	// assertion: the account the user would choose in the browser's picker.
	// It is ignored when it is not among them. Otherwise Assert takes the
	// first held credential of allowCredentials or, for a discoverable
	// login, the most recently registered discoverable one.
	PreferCredential []byte

	// Tamper makes the next ceremonies misbehave; its zero value is an
	// honest client.
	Tamper Tamper

	mu           sync.Mutex
	credentials  []*credential // registration order
	zeroCounters bool
}

// Tamper makes an Authenticator send what a broken or hostile client would,
// so negative tests reach the server's checks instead of stopping at the
// authenticator. Each non-zero field applies to every ceremony until reset.
type Tamper struct {
	// Challenge replaces the options' challenge in clientDataJSON, as a
	// response made for another session would carry.
	Challenge []byte

	// Origin replaces Origin in clientDataJSON only; the RP id checks still
	// use Origin. A page on another site posting the response.
	Origin string

	// Type replaces "webauthn.create" or "webauthn.get" in clientDataJSON.
	Type string

	// RPID is hashed into the authenticator data instead of the RP id the
	// credential is scoped to: a response minted for another relying party.
	RPID string

	// Credential is the id of a held credential that Assert signs with
	// whatever allowCredentials and the RP id say, e.g. one registered for
	// another RP id. Its authenticator data then hashes that credential's
	// own RP id (unless RPID is set), as its authenticator would.
	Credential []byte

	// IgnoreUserVerification answers options whose userVerification is
	// "required" without the UV flag instead of refusing them.
	IgnoreUserVerification bool

	// NoUserPresence clears the UP flag.
	NoUserPresence bool

	// BadSignature makes the assertion signature (and a packed
	// self-attestation signature) a well-formed signature over other data.
	BadSignature bool
}

// credential is one public key credential source the authenticator holds.
type credential struct {
	id         []byte
	rpID       string
	key        *ecdsa.PrivateKey
	userHandle []byte // remembered only for discoverable credentials
	counter    uint32
	attachment string
	backup     bool
}

// New returns an authenticator without credentials, a security key used from
// a page at origin.
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin, Attachment: CrossPlatform}
}

// creationOptions is the part of the JSON of protocol.CredentialCreation
// (PublicKeyCredentialCreationOptionsJSON under "publicKey") that an
// authenticator and browser act on.
type creationOptions struct {
	PublicKey *struct {
		RP struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Challenge              string                 `json:"challenge"`
		PubKeyCredParams       []credentialParameter  `json:"pubKeyCredParams"`
		ExcludeCredentials     []credentialDescriptor `json:"excludeCredentials"`
		AuthenticatorSelection struct {
			AuthenticatorAttachment string `json:"authenticatorAttachment"`
			RequireResidentKey      bool   `json:"requireResidentKey"`
			ResidentKey             string `json:"residentKey"`
			UserVerification        string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		Extensions struct {
			CredProps bool `json:"credProps"`
		} `json:"extensions"`
	} `json:"publicKey"`
}

// requestOptions is the part of the JSON of protocol.CredentialAssertion
// (PublicKeyCredentialRequestOptionsJSON under "publicKey") that an
// authenticator and browser act on.
type requestOptions struct {
	PublicKey *struct {
		Challenge        string                 `json:"challenge"`
		RPID             string                 `json:"rpId"`
		AllowCredentials []credentialDescriptor `json:"allowCredentials"`
		UserVerification string                 `json:"userVerification"`
	} `json:"publicKey"`
}

type credentialParameter struct {
	Type string `json:"type"`
	Alg  int    `json:"alg"`
}

type credentialDescriptor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// clientData is CollectedClientData with its members in the order browsers
// serialise them.
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// registrationResponse is RegistrationResponseJSON.
type registrationResponse struct {
	ID                      string `json:"id"`
	RawID                   string `json:"rawId"`
	Type                    string `json:"type"`
	AuthenticatorAttachment string `json:"authenticatorAttachment"`
	Response                struct {
		ClientDataJSON     string   `json:"clientDataJSON"`
		AuthenticatorData  string   `json:"authenticatorData"`
		Transports         []string `json:"transports"`
		PublicKey          string   `json:"publicKey"`
		PublicKeyAlgorithm int      `json:"publicKeyAlgorithm"`
		AttestationObject  string   `json:"attestationObject"`
	} `json:"response"`
	ClientExtensionResults extensionResults `json:"clientExtensionResults"`
}

// authenticationResponse is AuthenticationResponseJSON.
type authenticationResponse struct {
	ID                      string `json:"id"`
	RawID                   string `json:"rawId"`
	Type                    string `json:"type"`
	AuthenticatorAttachment string `json:"authenticatorAttachment"`
	Response                struct {
		ClientDataJSON    string `json:"clientDataJSON"`
		AuthenticatorData string `json:"authenticatorData"`
		Signature         string `json:"signature"`
		UserHandle        string `json:"userHandle,omitempty"`
	} `json:"response"`
	ClientExtensionResults extensionResults `json:"clientExtensionResults"`
}

// extensionResults holds the outputs of the only extension the browser part
// implements; a server rejects outputs it did not ask for, so the others are
// left out as a browser without them would.
type extensionResults struct {
	CredProps *struct {
		RK bool `json:"rk"`
	} `json:"credProps,omitempty"`
}

// Register answers creation options (the JSON of protocol.CredentialCreation)
// with a new credential, as navigator.credentials.create() followed by
// toJSON() would.
//
// The attestation is "none" (fmt "none", empty attStmt) unless
// SelfAttestation is set. The authenticator data has the flags UP, UV when
// UserVerified, AT (and BE|BS when BackupEligible), the signature counter
// InitialCounter (0 when ZeroCounters is on), rpIdHash = SHA-256(rp.id), a
// zero AAGUID, a random credential id of 16 to 32 bytes and the COSE EC2 key.
// When residentKey is "required" or "preferred" (or requireResidentKey is
// true) the credential is discoverable and remembers user.id as its user
// handle, replacing an older discoverable credential for the same RP id and
// user handle, as authenticators do.
//
// It refuses, wrapping the Err values above, when the origin is not a secure
// context or is an IP address, when rp.id is neither the origin's host nor a
// registrable suffix of it, when excludeCredentials lists a credential it
// holds, when userVerification is "required" and UserVerified is false, when
// authenticatorAttachment asks for the other attachment, and when
// pubKeyCredParams does not offer ES256.
func (a *Authenticator) Register(optionsJSON []byte) (responseJSON []byte, err error) {
	var options creationOptions
	if err := json.Unmarshal(optionsJSON, &options); err != nil {
		return nil, fmt.Errorf("webauthntest: creation options: %w", err)
	}
	o := options.PublicKey
	if o == nil {
		return nil, errors.New(`webauthntest: creation options: no "publicKey" member (pass the whole protocol.CredentialCreation)`)
	}
	tamper := a.Tamper

	host, err := effectiveDomain(a.Origin)
	if err != nil {
		return nil, err
	}
	rpID := o.RP.ID
	if rpID == "" {
		rpID = host
	}
	if !rpIDFits(rpID, host) {
		return nil, fmt.Errorf("%w: rp.id %q is neither the origin's host %q nor a registrable suffix of it", ErrSecurity, rpID, host)
	}
	attachment, err := a.attachment()
	if err != nil {
		return nil, err
	}
	if want := o.AuthenticatorSelection.AuthenticatorAttachment; want != "" && want != attachment {
		return nil, fmt.Errorf("%w: the options ask for a %s authenticator, this one is %s", ErrNotAllowed, want, attachment)
	}
	if err := a.checkUserVerification(o.AuthenticatorSelection.UserVerification, tamper); err != nil {
		return nil, err
	}
	if !offersES256(o.PubKeyCredParams) {
		return nil, fmt.Errorf("%w: pubKeyCredParams does not offer ES256 (alg -7)", ErrNotSupported)
	}
	challenge, err := decodeBase64URL(o.Challenge)
	if err != nil || len(challenge) == 0 {
		return nil, fmt.Errorf("webauthntest: creation options: challenge %q is not non-empty base64url", o.Challenge)
	}
	userHandle, err := decodeBase64URL(o.User.ID)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: creation options: user.id %q is not base64url, as toJSON-style options require (is EncodeUserIDAsString set?)", o.User.ID)
	}
	if len(userHandle) == 0 || len(userHandle) > maxUserHandleLen {
		return nil, fmt.Errorf("webauthntest: creation options: user.id is %d bytes, not 1 to %d", len(userHandle), maxUserHandleLen)
	}
	excluded := make([][]byte, 0, len(o.ExcludeCredentials))
	for _, d := range o.ExcludeCredentials {
		id, err := decodeBase64URL(d.ID)
		if err != nil {
			return nil, fmt.Errorf("webauthntest: creation options: excludeCredentials id %q is not base64url", d.ID)
		}
		excluded = append(excluded, id)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: generating the credential key: %w", err)
	}
	id, err := newCredentialID()
	if err != nil {
		return nil, err
	}
	cred := &credential{
		id:         id,
		rpID:       rpID,
		key:        key,
		attachment: attachment,
		backup:     a.BackupEligible,
	}
	sel := o.AuthenticatorSelection
	discoverable := sel.ResidentKey == "required" || sel.ResidentKey == "preferred" || (sel.ResidentKey == "" && sel.RequireResidentKey)
	if discoverable {
		cred.userHandle = userHandle
	}
	coseKey, err := coseEC2Key(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: encoding the public key: %w", err)
	}
	clientDataJSON, err := a.clientDataJSON("webauthn.create", challenge, tamper)
	if err != nil {
		return nil, err
	}

	// The exclusion check and the insertion happen under one lock. What can
	// still fail after it (signing) fails only if crypto/rand does.
	a.mu.Lock()
	for _, ex := range excluded {
		if held := a.find(ex); held != nil && held.rpID == rpID {
			a.mu.Unlock()
			return nil, fmt.Errorf("%w: excludeCredentials lists credential %s, which this authenticator holds", ErrInvalidState, encode(ex))
		}
	}
	cred.counter = a.InitialCounter
	if a.zeroCounters {
		cred.counter = 0
	}
	if discoverable {
		a.forgetDiscoverable(rpID, userHandle)
	}
	a.credentials = append(a.credentials, cred)
	counter := cred.counter
	a.mu.Unlock()

	flags := byte(flagAttestedData)
	flags |= a.presenceFlags(cred, tamper)
	hashedRPID := rpID
	if tamper.RPID != "" {
		hashedRPID = tamper.RPID
	}
	authData := authenticatorData(hashedRPID, flags, counter)
	authData = append(authData, make([]byte, 16)...) // AAGUID: zero, as "none" attestation conveys it
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id)))
	authData = append(authData, id...)
	authData = append(authData, coseKey...)

	var attestationObject []byte
	if a.SelfAttestation {
		clientDataHash := sha256.Sum256(clientDataJSON)
		sig, err := sign(key, append(bytes.Clone(authData), clientDataHash[:]...), tamper.BadSignature)
		if err != nil {
			return nil, err
		}
		attestationObject = packedSelfAttestation(authData, sig)
	} else {
		attestationObject = noneAttestation(authData)
	}

	var resp registrationResponse
	resp.ID = encode(id)
	resp.RawID = encode(id)
	resp.Type = "public-key"
	resp.AuthenticatorAttachment = attachment
	resp.Response.ClientDataJSON = encode(clientDataJSON)
	resp.Response.AuthenticatorData = encode(authData)
	resp.Response.Transports = transports(attachment)
	resp.Response.PublicKey = encode(spki)
	resp.Response.PublicKeyAlgorithm = algES256
	resp.Response.AttestationObject = encode(attestationObject)
	if o.Extensions.CredProps {
		resp.ClientExtensionResults.CredProps = &struct {
			RK bool `json:"rk"`
		}{RK: discoverable}
	}
	return json.Marshal(resp)
}

// Assert answers request options (the JSON of protocol.CredentialAssertion)
// with an assertion, as navigator.credentials.get() followed by toJSON()
// would.
//
// It signs with a held credential for the options' rpId (the origin's host
// when rpId is absent) that allowCredentials lists, or, when the list is
// empty, with a discoverable one (see PreferCredential). The signature is
// ECDSA over authenticatorData || SHA-256(clientDataJSON), ASN.1 DER encoded.
// The credential's counter goes up by one and is reported, unless
// ZeroCounters is on (then 0 is reported). The flags are UP, UV when
// UserVerified, and BE|BS for a backup-eligible credential; userHandle is
// included for discoverable credentials.
//
// It refuses, wrapping the Err values above, when the origin or rpId would
// make a browser refuse, when userVerification is "required" and
// UserVerified is false, and when it holds no matching credential.
func (a *Authenticator) Assert(optionsJSON []byte) (responseJSON []byte, err error) {
	var options requestOptions
	if err := json.Unmarshal(optionsJSON, &options); err != nil {
		return nil, fmt.Errorf("webauthntest: request options: %w", err)
	}
	o := options.PublicKey
	if o == nil {
		return nil, errors.New(`webauthntest: request options: no "publicKey" member (pass the whole protocol.CredentialAssertion)`)
	}
	tamper := a.Tamper

	host, err := effectiveDomain(a.Origin)
	if err != nil {
		return nil, err
	}
	rpID := o.RPID
	if rpID == "" {
		rpID = host
	}
	if !rpIDFits(rpID, host) {
		return nil, fmt.Errorf("%w: rpId %q is neither the origin's host %q nor a registrable suffix of it", ErrSecurity, rpID, host)
	}
	if err := a.checkUserVerification(o.UserVerification, tamper); err != nil {
		return nil, err
	}
	challenge, err := decodeBase64URL(o.Challenge)
	if err != nil || len(challenge) == 0 {
		return nil, fmt.Errorf("webauthntest: request options: challenge %q is not non-empty base64url", o.Challenge)
	}
	allowed := make([][]byte, 0, len(o.AllowCredentials))
	for _, d := range o.AllowCredentials {
		id, err := decodeBase64URL(d.ID)
		if err != nil {
			return nil, fmt.Errorf("webauthntest: request options: allowCredentials id %q is not base64url", d.ID)
		}
		allowed = append(allowed, id)
	}

	a.mu.Lock()
	cred, err := a.choose(rpID, allowed, tamper.Credential)
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	if !a.zeroCounters {
		cred.counter++
	}
	counter := cred.counter
	if a.zeroCounters {
		counter = 0
	}
	// A credential's id, key, RP id, user handle, attachment and backup flag
	// never change after registration, so they can be read unlocked.
	a.mu.Unlock()

	hashedRPID := cred.rpID
	if tamper.RPID != "" {
		hashedRPID = tamper.RPID
	}
	authData := authenticatorData(hashedRPID, a.presenceFlags(cred, tamper), counter)
	clientDataJSON, err := a.clientDataJSON("webauthn.get", challenge, tamper)
	if err != nil {
		return nil, err
	}
	clientDataHash := sha256.Sum256(clientDataJSON)
	sig, err := sign(cred.key, append(bytes.Clone(authData), clientDataHash[:]...), tamper.BadSignature)
	if err != nil {
		return nil, err
	}

	var resp authenticationResponse
	resp.ID = encode(cred.id)
	resp.RawID = encode(cred.id)
	resp.Type = "public-key"
	resp.AuthenticatorAttachment = cred.attachment
	resp.Response.ClientDataJSON = encode(clientDataJSON)
	resp.Response.AuthenticatorData = encode(authData)
	resp.Response.Signature = encode(sig)
	if cred.userHandle != nil {
		resp.Response.UserHandle = encode(cred.userHandle)
	}
	return json.Marshal(resp)
}

// Credentials returns the ids of the credentials held, in registration order.
func (a *Authenticator) Credentials() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([][]byte, len(a.credentials))
	for i, c := range a.credentials {
		ids[i] = bytes.Clone(c.id)
	}
	return ids
}

// Counter returns the signature counter a held credential keeps: what its
// last ceremony reported, unless ZeroCounters was on. The next assertion
// reports it plus one (or 0 while ZeroCounters is on).
func (a *Authenticator) Counter(credID []byte) (n uint32, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.find(credID)
	if c == nil {
		return 0, false
	}
	return c.counter, true
}

// SetCounter sets the signature counter of a held credential; the next
// assertion reports n+1. Setting it below what the server stored makes the
// counter go backwards, as a cloned authenticator's would. It panics when the
// credential is not held, as that is a mistake in the test.
func (a *Authenticator) SetCounter(credID []byte, n uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.find(credID)
	if c == nil {
		panic(fmt.Sprintf("webauthntest: SetCounter: credential %s is not held", encode(credID)))
	}
	c.counter = n
}

// ZeroCounters makes every ceremony report a signature counter of 0, as
// passkey providers do, while on. A server that stored a non-zero counter
// sees 0 as the counter going backwards.
func (a *Authenticator) ZeroCounters(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.zeroCounters = on
}

// find returns the held credential with id, or nil. a.mu must be held.
func (a *Authenticator) find(id []byte) *credential {
	for _, c := range a.credentials {
		if bytes.Equal(c.id, id) {
			return c
		}
	}
	return nil
}

// forgetDiscoverable drops the discoverable credential for rpID and
// userHandle, which a new one replaces. a.mu must be held.
func (a *Authenticator) forgetDiscoverable(rpID string, userHandle []byte) {
	kept := a.credentials[:0]
	for _, c := range a.credentials {
		if c.userHandle == nil || c.rpID != rpID || !bytes.Equal(c.userHandle, userHandle) {
			kept = append(kept, c)
		}
	}
	clear(a.credentials[len(kept):])
	a.credentials = kept
}

// choose picks the credential for an assertion. a.mu must be held.
func (a *Authenticator) choose(rpID string, allowed [][]byte, forced []byte) (*credential, error) {
	if forced != nil {
		if c := a.find(forced); c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("%w: Tamper.Credential %s is not held", ErrNotAllowed, encode(forced))
	}
	var candidates []*credential
	if len(allowed) > 0 {
		for _, id := range allowed {
			if c := a.find(id); c != nil && c.rpID == rpID {
				candidates = append(candidates, c)
			}
		}
	} else {
		for i := len(a.credentials) - 1; i >= 0; i-- {
			if c := a.credentials[i]; c.userHandle != nil && c.rpID == rpID {
				candidates = append(candidates, c)
			}
		}
	}
	if len(candidates) == 0 {
		if len(allowed) > 0 {
			return nil, fmt.Errorf("%w: none of the %d credentials in allowCredentials is held for RP id %q", ErrNotAllowed, len(allowed), rpID)
		}
		return nil, fmt.Errorf("%w: no discoverable credential is held for RP id %q", ErrNotAllowed, rpID)
	}
	for _, c := range candidates {
		if a.PreferCredential != nil && bytes.Equal(c.id, a.PreferCredential) {
			return c, nil
		}
	}
	return candidates[0], nil
}

func (a *Authenticator) attachment() (string, error) {
	switch a.Attachment {
	case "", CrossPlatform:
		return CrossPlatform, nil
	case Platform:
		return Platform, nil
	default:
		return "", fmt.Errorf("webauthntest: Attachment %q is neither %q nor %q", a.Attachment, CrossPlatform, Platform)
	}
}

func (a *Authenticator) checkUserVerification(requirement string, tamper Tamper) error {
	if requirement == "required" && !a.UserVerified && !tamper.IgnoreUserVerification {
		return fmt.Errorf(`%w: userVerification is "required" and this authenticator cannot verify the user (UserVerified is false)`, ErrNotAllowed)
	}
	return nil
}

// presenceFlags returns the UP, UV, BE and BS flags of a ceremony with cred.
func (a *Authenticator) presenceFlags(cred *credential, tamper Tamper) byte {
	var flags byte
	if !tamper.NoUserPresence {
		flags |= flagUserPresent
	}
	if a.UserVerified {
		flags |= flagUserVerified
	}
	if cred.backup {
		flags |= flagBackupEligible | flagBackupState
	}
	return flags
}

func (a *Authenticator) clientDataJSON(ceremony string, challenge []byte, tamper Tamper) ([]byte, error) {
	cd := clientData{Type: ceremony, Challenge: encode(challenge), Origin: a.Origin}
	if tamper.Type != "" {
		cd.Type = tamper.Type
	}
	if tamper.Challenge != nil {
		cd.Challenge = encode(tamper.Challenge)
	}
	if tamper.Origin != "" {
		cd.Origin = tamper.Origin
	}
	b, err := json.Marshal(cd)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: encoding clientDataJSON: %w", err)
	}
	return b, nil
}

// effectiveDomain returns the host of origin, refusing origins on which a
// browser does not offer WebAuthn: not a secure context (http other than
// localhost), or a host that is not a valid domain (an IP address).
func effectiveDomain(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("webauthntest: Origin %q is not an origin (scheme://host[:port], no path)", origin)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return "", fmt.Errorf("%w: the origin's host %q is an IP address, not a valid domain, so it has no RP id; serve the page at http://localhost:PORT with RP id \"localhost\"", ErrSecurity, host)
	}
	if u.Scheme == "http" && host != "localhost" && !strings.HasSuffix(host, ".localhost") {
		return "", fmt.Errorf("%w: %q is not a secure context (http is only one for localhost)", ErrSecurity, origin)
	}
	return host, nil
}

// rpIDFits reports whether rpID may be used from a page whose host is host:
// it is the host itself or a registrable domain suffix of it. Without the
// Public Suffix List, a suffix is taken as registrable when it has two or more
// labels or is "localhost"; so "com" is refused but "co.uk" is not.
func rpIDFits(rpID, host string) bool {
	if rpID == host {
		return true
	}
	if !strings.HasSuffix(host, "."+rpID) {
		return false
	}
	return strings.Contains(rpID, ".") || rpID == "localhost"
}

func offersES256(params []credentialParameter) bool {
	if len(params) == 0 {
		return true // the specification's default is ES256 and RS256
	}
	for _, p := range params {
		if p.Type == "public-key" && p.Alg == algES256 {
			return true
		}
	}
	return false
}

func newCredentialID() ([]byte, error) {
	var n [1]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, fmt.Errorf("webauthntest: credential id: %w", err)
	}
	id := make([]byte, minCredentialIDLen+int(n[0])%(maxCredentialIDLen-minCredentialIDLen+1))
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("webauthntest: credential id: %w", err)
	}
	return id, nil
}

// authenticatorData returns rpIdHash || flags || signCount.
func authenticatorData(rpID string, flags byte, counter uint32) []byte {
	hash := sha256.Sum256([]byte(rpID))
	b := append(hash[:], flags)
	return binary.BigEndian.AppendUint32(b, counter)
}

func sign(key *ecdsa.PrivateKey, data []byte, wrong bool) ([]byte, error) {
	if wrong {
		data = append(data, 0)
	}
	digest := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("webauthntest: signing: %w", err)
	}
	return sig, nil
}

// coseEC2Key encodes pub as the COSE_Key {1: 2, 3: -7, -1: 1, -2: x, -3: y}
// (kty EC2, alg ES256, crv P-256), keys in CTAP2 canonical order.
func coseEC2Key(pub *ecdsa.PublicKey) ([]byte, error) {
	point, err := pub.Bytes() // 0x04 || x || y, each 32 bytes
	if err != nil {
		return nil, fmt.Errorf("webauthntest: encoding the public key: %w", err)
	}
	x, y := point[1:33], point[33:65]
	b := cborHead(nil, cborMap, 5)
	b = cborInt(b, 1)
	b = cborInt(b, 2)
	b = cborInt(b, 3)
	b = cborInt(b, algES256)
	b = cborInt(b, -1)
	b = cborInt(b, 1)
	b = cborInt(b, -2)
	b = cborBytes(b, x)
	b = cborInt(b, -3)
	b = cborBytes(b, y)
	return b, nil
}

// noneAttestation encodes {"fmt": "none", "attStmt": {}, "authData": authData}.
func noneAttestation(authData []byte) []byte {
	b := cborHead(nil, cborMap, 3)
	b = cborText(b, "fmt")
	b = cborText(b, "none")
	b = cborText(b, "attStmt")
	b = cborHead(b, cborMap, 0)
	b = cborText(b, "authData")
	return cborBytes(b, authData)
}

// packedSelfAttestation encodes {"fmt": "packed", "attStmt": {"alg": -7,
// "sig": sig}, "authData": authData}.
func packedSelfAttestation(authData, sig []byte) []byte {
	b := cborHead(nil, cborMap, 3)
	b = cborText(b, "fmt")
	b = cborText(b, "packed")
	b = cborText(b, "attStmt")
	b = cborHead(b, cborMap, 2)
	b = cborText(b, "alg")
	b = cborInt(b, algES256)
	b = cborText(b, "sig")
	b = cborBytes(b, sig)
	b = cborText(b, "authData")
	return cborBytes(b, authData)
}

// The few CBOR items (RFC 8949) the attestation object and the COSE key need,
// in definite-length, shortest-form encoding.
const (
	cborUint  = 0
	cborNeg   = 1
	cborBstr  = 2
	cborTstr  = 3
	cborMap   = 5
	cborShift = 5
)

func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << cborShift
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, m|27), n)
	}
}

func cborInt(b []byte, v int64) []byte {
	if v >= 0 {
		return cborHead(b, cborUint, uint64(v))
	}
	return cborHead(b, cborNeg, uint64(-1-v))
}

func cborBytes(b, p []byte) []byte { return append(cborHead(b, cborBstr, uint64(len(p))), p...) }

func cborText(b []byte, s string) []byte { return append(cborHead(b, cborTstr, uint64(len(s))), s...) }

func transports(attachment string) []string {
	if attachment == Platform {
		return []string{"internal"}
	}
	return []string{"usb"}
}

func encode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeBase64URL decodes base64url with or without padding, as the
// browser's parseCreationOptionsFromJSON does.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
