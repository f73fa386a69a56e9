package webauthntest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/hostportal/idp/internal/webauthntest"
)

// go-webauthn refuses an IP address as the RP id (see TestRPIDMustBeADomain),
// so these tests run the relying party at localhost.
const (
	testRPID   = "localhost"
	testOrigin = "http://localhost:34567"
)

type testUser struct {
	id    []byte
	name  string
	creds []webauthn.Credential
}

func newUser(name string) *testUser { return &testUser{id: []byte("user-handle-" + name), name: name} }

func (u *testUser) WebAuthnID() []byte                         { return u.id }
func (u *testUser) WebAuthnName() string                       { return u.name }
func (u *testUser) WebAuthnDisplayName() string                { return u.name }
func (u *testUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// store records cred in the user, replacing the record with the same id, as
// a server does after each ceremony.
func (u *testUser) store(cred *webauthn.Credential) {
	for i := range u.creds {
		if bytes.Equal(u.creds[i].ID, cred.ID) {
			u.creds[i] = *cred
			return
		}
	}
	u.creds = append(u.creds, *cred)
}

func newRP(t *testing.T, rpID, origin string) *webauthn.WebAuthn {
	t.Helper()
	rp, err := webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "IdP test", RPOrigins: []string{origin}})
	if err != nil {
		t.Fatalf("webauthn.New: %v", err)
	}
	return rp
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return b
}

func beginRegistration(t *testing.T, rp *webauthn.WebAuthn, u *testUser, opts ...webauthn.RegistrationOption) ([]byte, webauthn.SessionData) {
	t.Helper()
	creation, session, err := rp.BeginRegistration(u, opts...)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	return mustJSON(t, creation), *session
}

func finishRegistration(rp *webauthn.WebAuthn, u *testUser, session webauthn.SessionData, response []byte) (*webauthn.Credential, error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, err
	}
	return rp.CreateCredential(u, session, parsed)
}

// register runs a whole registration ceremony that must succeed and stores
// the credential in u.
func register(t *testing.T, rp *webauthn.WebAuthn, a *webauthntest.Authenticator, u *testUser, opts ...webauthn.RegistrationOption) *webauthn.Credential {
	t.Helper()
	options, session := beginRegistration(t, rp, u, opts...)
	response, err := a.Register(options)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	cred, err := finishRegistration(rp, u, session, response)
	if err != nil {
		t.Fatalf("CreateCredential: %s", describe(err))
	}
	u.store(cred)
	return cred
}

func beginLogin(t *testing.T, rp *webauthn.WebAuthn, u *testUser, opts ...webauthn.LoginOption) ([]byte, webauthn.SessionData) {
	t.Helper()
	assertion, session, err := rp.BeginLogin(u, opts...)
	if err != nil {
		t.Fatalf("BeginLogin: %v", err)
	}
	return mustJSON(t, assertion), *session
}

func finishLogin(rp *webauthn.WebAuthn, u *testUser, session webauthn.SessionData, response []byte) (*webauthn.Credential, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, err
	}
	return rp.ValidateLogin(u, session, parsed)
}

// login runs a whole login ceremony that must succeed and stores the updated
// credential in u.
func login(t *testing.T, rp *webauthn.WebAuthn, a *webauthntest.Authenticator, u *testUser, opts ...webauthn.LoginOption) *webauthn.Credential {
	t.Helper()
	options, session := beginLogin(t, rp, u, opts...)
	response, err := a.Assert(options)
	if err != nil {
		t.Fatalf("Assert: %v", err)
	}
	cred, err := finishLogin(rp, u, session, response)
	if err != nil {
		t.Fatalf("ValidateLogin: %s", describe(err))
	}
	u.store(cred)
	return cred
}

// describe gives the details and debugging information of a go-webauthn
// error; its Error method gives only the details, which are often generic.
func describe(err error) string {
	var e *protocol.Error
	if errors.As(err, &e) {
		return e.Details + ": " + e.DevInfo
	}
	return err.Error()
}

func TestRPIDMustBeADomain(t *testing.T) {
	for _, rpID := range []string{"127.0.0.1", "::1"} {
		_, err := webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "IdP test", RPOrigins: []string{"http://127.0.0.1:34567"}})
		if err == nil || !strings.Contains(err.Error(), "not an IP address") {
			t.Errorf("webauthn.New(RPID %q) = %v, want the IP address refusal", rpID, err)
		}
	}

	// Setting the RP id per ceremony does not get around it either.
	rp := newRP(t, testRPID, testOrigin)
	if _, _, err := rp.BeginRegistration(newUser("alice"), webauthn.WithRegistrationRelyingPartyID("127.0.0.1")); err == nil || !strings.Contains(err.Error(), "not an IP address") {
		t.Errorf("BeginRegistration(rp id 127.0.0.1) = %v, want the IP address refusal", err)
	}
	if _, _, err := rp.BeginDiscoverableLogin(webauthn.WithLoginRelyingPartyID("127.0.0.1")); err == nil || !strings.Contains(err.Error(), "not an IP address") {
		t.Errorf("BeginDiscoverableLogin(rp id 127.0.0.1) = %v, want the IP address refusal", err)
	}

	// A browser refuses a page at an IP address as well, whatever RP id the
	// options name, and so does the authenticator.
	options := []byte(`{"publicKey":{"rp":{"id":"127.0.0.1","name":"IdP"},"user":{"id":"dXNlcg","name":"u","displayName":"u"},"challenge":"AAAAAAAAAAAAAAAAAAAAAA","pubKeyCredParams":[{"type":"public-key","alg":-7}]}}`)
	if _, err := webauthntest.New("http://127.0.0.1:34567").Register(options); !errors.Is(err, webauthntest.ErrSecurity) {
		t.Errorf("Register from http://127.0.0.1 = %v, want ErrSecurity", err)
	}
}

func TestRegisterAndLogin(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	a := webauthntest.New(testOrigin)
	u := newUser("alice")

	cred := register(t, rp, a, u)
	if cred.AttestationFormat != "none" || cred.Authenticator.SignCount != 0 || cred.Authenticator.Attachment != protocol.CrossPlatform {
		t.Errorf("credential: format %q, counter %d, attachment %q; want none, 0, cross-platform",
			cred.AttestationFormat, cred.Authenticator.SignCount, cred.Authenticator.Attachment)
	}
	if fmt.Sprint(cred.Transport) != "[usb]" || !cred.Flags.UserPresent || cred.Flags.UserVerified || cred.Flags.BackupEligible {
		t.Errorf("credential: transports %v, flags %+v; want [usb], UP only", cred.Transport, cred.Flags)
	}
	if ids := a.Credentials(); len(ids) != 1 || !bytes.Equal(ids[0], cred.ID) {
		t.Errorf("Credentials() = %x, want [%x]", ids, cred.ID)
	}

	for want := uint32(1); want <= 3; want++ {
		cred = login(t, rp, a, u)
		if cred.Authenticator.SignCount != want || cred.Authenticator.CloneWarning {
			t.Errorf("login %d: counter %d, clone warning %v; want %d, false", want, cred.Authenticator.SignCount, cred.Authenticator.CloneWarning, want)
		}
		if n, ok := a.Counter(cred.ID); !ok || n != want {
			t.Errorf("Counter() = %d, %v; want %d, true", n, ok, want)
		}
	}
}

func TestResponseShape(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	a := webauthntest.New(testOrigin)
	u := newUser("alice")

	options, session := beginRegistration(t, rp, u, webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	response, err := a.Register(options)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	var reg struct {
		ID                      string
		RawID                   string
		Type                    string
		AuthenticatorAttachment string
		Response                map[string]json.RawMessage
		ClientExtensionResults  map[string]json.RawMessage
	}
	if err := json.Unmarshal(response, &reg); err != nil {
		t.Fatal(err)
	}
	if reg.ID != reg.RawID || reg.Type != "public-key" || reg.AuthenticatorAttachment != "cross-platform" {
		t.Errorf("registration response: id %q rawId %q type %q attachment %q", reg.ID, reg.RawID, reg.Type, reg.AuthenticatorAttachment)
	}
	for _, member := range []string{"clientDataJSON", "authenticatorData", "transports", "publicKey", "publicKeyAlgorithm", "attestationObject"} {
		if _, ok := reg.Response[member]; !ok {
			t.Errorf("registration response has no response.%s", member)
		}
	}
	if got := string(reg.ClientExtensionResults["credProps"]); got != `{"rk":false}` {
		t.Errorf("clientExtensionResults.credProps = %s, want {\"rk\":false}", got)
	}
	wantClientData := `{"type":"webauthn.create","challenge":"` + session.Challenge + `","origin":"` + testOrigin + `","crossOrigin":false}`
	if got := decodeMember(t, reg.Response["clientDataJSON"]); string(got) != wantClientData {
		t.Errorf("clientDataJSON = %s, want %s", got, wantClientData)
	}

	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		t.Fatalf("ParseCredentialCreationResponseBytes: %s", describe(err))
	}
	att := parsed.Response.AttestationObject
	if att.Format != "none" || len(att.AttStatement) != 0 {
		t.Errorf("attestation object: fmt %q, attStmt %v; want none, empty", att.Format, att.AttStatement)
	}
	const up, at = protocol.FlagUserPresent, protocol.FlagAttestedCredentialData
	if att.AuthData.Flags != up|at {
		t.Errorf("flags = %08b, want UP|AT", att.AuthData.Flags)
	}
	if !bytes.Equal(att.AuthData.AttData.AAGUID, make([]byte, 16)) {
		t.Errorf("AAGUID = %x, want zero", att.AuthData.AttData.AAGUID)
	}
	if n := len(parsed.RawID); n < 16 || n > 32 {
		t.Errorf("credential id is %d bytes, want 16 to 32", n)
	}
	key, err := webauthncose.ParsePublicKey(att.AuthData.AttData.CredentialPublicKey)
	if err != nil {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	ec2, ok := key.(webauthncose.EC2PublicKeyData)
	if !ok || ec2.KeyType != int64(webauthncose.EllipticKey) || ec2.Algorithm != int64(webauthncose.AlgES256) || ec2.Curve != int64(webauthncose.P256) {
		t.Errorf("credential public key = %+v, want EC2 ES256 P-256", key)
	}
	cred, err := rp.CreateCredential(u, session, parsed)
	if err != nil {
		t.Fatalf("CreateCredential: %s", describe(err))
	}
	u.store(cred)

	options, session = beginLogin(t, rp, u)
	response, err = a.Assert(options)
	if err != nil {
		t.Fatalf("Assert: %v", err)
	}
	var auth struct {
		Response               map[string]json.RawMessage
		ClientExtensionResults map[string]json.RawMessage
	}
	if err := json.Unmarshal(response, &auth); err != nil {
		t.Fatal(err)
	}
	for _, member := range []string{"clientDataJSON", "authenticatorData", "signature"} {
		if _, ok := auth.Response[member]; !ok {
			t.Errorf("authentication response has no response.%s", member)
		}
	}
	if _, ok := auth.Response["userHandle"]; ok {
		t.Error("authentication response with a non-discoverable credential has a userHandle")
	}
	if auth.ClientExtensionResults == nil || len(auth.ClientExtensionResults) != 0 {
		t.Errorf("clientExtensionResults = %v, want {}", auth.ClientExtensionResults)
	}
	wantClientData = `{"type":"webauthn.get","challenge":"` + session.Challenge + `","origin":"` + testOrigin + `","crossOrigin":false}`
	if got := decodeMember(t, auth.Response["clientDataJSON"]); string(got) != wantClientData {
		t.Errorf("clientDataJSON = %s, want %s", got, wantClientData)
	}
}

func decodeMember(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q is not unpadded base64url: %v", s, err)
	}
	return b
}

func TestDiscoverableLogin(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	a := webauthntest.New(testOrigin)
	a.Attachment = webauthntest.Platform
	a.UserVerified = true
	a.BackupEligible = true
	users := map[string]*testUser{}
	passkey := []webauthn.RegistrationOption{
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()),
	}
	for _, name := range []string{"alice", "bob"} {
		u := newUser(name)
		users[string(u.id)] = u
		cred := register(t, rp, a, u, passkey...)
		if cred.Extensions.RK == nil || !*cred.Extensions.RK {
			t.Errorf("%s: credProps rk = %v, want true", name, cred.Extensions.RK)
		}
		f := cred.Flags
		if !f.UserVerified || !f.BackupEligible || !f.BackupState || cred.Authenticator.Attachment != protocol.Platform || fmt.Sprint(cred.Transport) != "[internal]" {
			t.Errorf("%s: flags %+v, attachment %q, transports %v; want UV BE BS, platform, [internal]", name, f, cred.Authenticator.Attachment, cred.Transport)
		}
	}
	byHandle := func(rawID, userHandle []byte) (webauthn.User, error) {
		if u, ok := users[string(userHandle)]; ok {
			return u, nil
		}
		return nil, fmt.Errorf("no user with handle %q", userHandle)
	}
	passkeyLogin := func() *testUser {
		t.Helper()
		assertion, session, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			t.Fatalf("BeginDiscoverableLogin: %v", err)
		}
		response, err := a.Assert(mustJSON(t, assertion))
		if err != nil {
			t.Fatalf("Assert: %v", err)
		}
		parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
		if err != nil {
			t.Fatalf("ParseCredentialRequestResponseBytes: %s", describe(err))
		}
		user, cred, err := rp.ValidatePasskeyLogin(byHandle, *session, parsed)
		if err != nil {
			t.Fatalf("ValidatePasskeyLogin: %s", describe(err))
		}
		u := user.(*testUser)
		u.store(cred)
		return u
	}

	// With two accounts on the authenticator, the newest is taken unless the
	// test chooses, as the user would in the browser's account picker.
	if u := passkeyLogin(); u.name != "bob" {
		t.Errorf("passkey login found %s, want bob", u.name)
	}
	a.PreferCredential = users["user-handle-alice"].creds[0].ID
	if u := passkeyLogin(); u.name != "alice" {
		t.Errorf("passkey login with alice chosen found %s, want alice", u.name)
	}
}

func TestDiscoverableCredentialReplacesOlder(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	a := webauthntest.New(testOrigin)
	u := newUser("alice")
	register(t, rp, a, u) // a non-discoverable one stays
	first := register(t, rp, a, u, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	second := register(t, rp, a, u, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	ids := a.Credentials()
	if len(ids) != 2 || !bytes.Equal(ids[1], second.ID) {
		t.Fatalf("Credentials() = %x, want the non-discoverable one and %x", ids, second.ID)
	}
	for _, id := range ids {
		if bytes.Equal(id, first.ID) {
			t.Errorf("the replaced discoverable credential %x is still held", first.ID)
		}
	}
}

func TestZeroCounters(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	a := webauthntest.New(testOrigin)
	a.ZeroCounters(true)
	u := newUser("alice")
	register(t, rp, a, u)
	for range 2 {
		cred := login(t, rp, a, u)
		if cred.Authenticator.SignCount != 0 || cred.Authenticator.CloneWarning {
			t.Errorf("counter %d, clone warning %v; want 0, false", cred.Authenticator.SignCount, cred.Authenticator.CloneWarning)
		}
	}
}

func TestCounterGoingBackwardsWarnsOfClone(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	a := webauthntest.New(testOrigin)
	a.InitialCounter = 10
	u := newUser("alice")
	cred := register(t, rp, a, u)
	if cred.Authenticator.SignCount != 10 {
		t.Fatalf("registered counter = %d, want InitialCounter 10", cred.Authenticator.SignCount)
	}
	if cred = login(t, rp, a, u); cred.Authenticator.SignCount != 11 || cred.Authenticator.CloneWarning {
		t.Fatalf("counter %d, clone warning %v; want 11, false", cred.Authenticator.SignCount, cred.Authenticator.CloneWarning)
	}
	a.SetCounter(cred.ID, 4) // the next assertion reports 5
	if cred = login(t, rp, a, u); !cred.Authenticator.CloneWarning || cred.Authenticator.SignCount != 11 {
		t.Errorf("counter %d, clone warning %v; want 11 kept, true", cred.Authenticator.SignCount, cred.Authenticator.CloneWarning)
	}
}

func TestSelfAttestation(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	a := webauthntest.New(testOrigin)
	a.SelfAttestation = true
	u := newUser("alice")
	cred := register(t, rp, a, u, webauthn.WithConveyancePreference(protocol.PreferDirectAttestation))
	if cred.AttestationFormat != "packed" || cred.AttestationType != "basic_surrogate" {
		t.Errorf("attestation %q/%q, want packed/basic_surrogate (self)", cred.AttestationFormat, cred.AttestationType)
	}
	login(t, rp, a, u)
}

func TestReplayAgainstNewSessionFails(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	a := webauthntest.New(testOrigin)
	u := newUser("alice")
	register(t, rp, a, u)

	options, session := beginLogin(t, rp, u)
	response, err := a.Assert(options)
	if err != nil {
		t.Fatalf("Assert: %v", err)
	}
	cred, err := finishLogin(rp, u, session, response)
	if err != nil {
		t.Fatalf("first ValidateLogin: %s", describe(err))
	}
	u.store(cred)

	_, next := beginLogin(t, rp, u)
	if _, err := finishLogin(rp, u, next, response); err == nil || !strings.Contains(describe(err), "challenge") {
		t.Errorf("replay against a new session: %v, want a challenge mismatch", err)
	}

	// Against the same session the library accepts it again, with only the
	// counter to tell: a handler must consume its session data once used.
	replayed, err := finishLogin(rp, u, session, response)
	if err != nil {
		t.Fatalf("replay against the same session: %s", describe(err))
	}
	if !replayed.Authenticator.CloneWarning {
		t.Error("replay against the same session: no clone warning")
	}
}

// TestServerRejectsTamperedLogin checks that each tamper hook produces an
// assertion that the real library parses and then rejects for the intended
// reason.
func TestServerRejectsTamperedLogin(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, a *webauthntest.Authenticator)
		opts    []webauthn.LoginOption
		wantErr string
	}{
		{
			name:    "user verification required but not done",
			tamper:  func(_ *testing.T, a *webauthntest.Authenticator) { a.Tamper.IgnoreUserVerification = true },
			opts:    []webauthn.LoginOption{webauthn.WithUserVerification(protocol.VerificationRequired)},
			wantErr: "User verification required",
		},
		{
			name:    "origin on another port",
			tamper:  func(_ *testing.T, a *webauthntest.Authenticator) { a.Origin = "http://localhost:1" },
			wantErr: "Error validating origin",
		},
		{
			name:    "origin of a subdomain",
			tamper:  func(_ *testing.T, a *webauthntest.Authenticator) { a.Origin = "http://evil.localhost:34567" },
			wantErr: "Error validating origin",
		},
		{
			name:    "origin of another site",
			tamper:  func(_ *testing.T, a *webauthntest.Authenticator) { a.Tamper.Origin = "https://evil.example" },
			wantErr: "Error validating origin",
		},
		{
			name:    "challenge of another session",
			tamper:  func(_ *testing.T, a *webauthntest.Authenticator) { a.Tamper.Challenge = bytes.Repeat([]byte{7}, 32) },
			wantErr: "Error validating challenge",
		},
		{
			name:    "ceremony type of a registration",
			tamper:  func(_ *testing.T, a *webauthntest.Authenticator) { a.Tamper.Type = "webauthn.create" },
			wantErr: "Error validating ceremony type",
		},
		{
			name:    "RP id hash of another relying party",
			tamper:  func(_ *testing.T, a *webauthntest.Authenticator) { a.Tamper.RPID = "evil.localhost" },
			wantErr: "RP Hash mismatch",
		},
		{
			name:    "user not present",
			tamper:  func(_ *testing.T, a *webauthntest.Authenticator) { a.Tamper.NoUserPresence = true },
			wantErr: "User presence required",
		},
		{
			name:    "signature over other data",
			tamper:  func(_ *testing.T, a *webauthntest.Authenticator) { a.Tamper.BadSignature = true },
			wantErr: "Error validating the assertion signature",
		},
		{
			name: "credential of another relying party",
			tamper: func(t *testing.T, a *webauthntest.Authenticator) {
				const otherOrigin = "http://other.localhost:34567"
				other := newRP(t, "other.localhost", otherOrigin)
				a.Origin = otherOrigin
				foreign := register(t, other, a, newUser("mallory"))
				a.Origin = testOrigin
				a.Tamper.Credential = foreign.ID
			},
			wantErr: "not owned by the user",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := newRP(t, testRPID, testOrigin)
			a := webauthntest.New(testOrigin)
			u := newUser("alice")
			register(t, rp, a, u)
			tt.tamper(t, a)

			options, session := beginLogin(t, rp, u, tt.opts...)
			response, err := a.Assert(options)
			if err != nil {
				t.Fatalf("Assert: %v", err)
			}
			_, err = finishLogin(rp, u, session, response)
			if err == nil || !strings.Contains(describe(err), tt.wantErr) {
				t.Errorf("login error = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestServerRejectsTamperedRegistration(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(a *webauthntest.Authenticator)
		opts    []webauthn.RegistrationOption
		wantErr string
	}{
		{
			name:    "user verification required but not done",
			tamper:  func(a *webauthntest.Authenticator) { a.Tamper.IgnoreUserVerification = true },
			opts:    []webauthn.RegistrationOption{webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired})},
			wantErr: "User verification required",
		},
		{
			name:    "origin on another port",
			tamper:  func(a *webauthntest.Authenticator) { a.Origin = "http://localhost:1" },
			wantErr: "Error validating origin",
		},
		{
			name:    "challenge of another session",
			tamper:  func(a *webauthntest.Authenticator) { a.Tamper.Challenge = bytes.Repeat([]byte{7}, 32) },
			wantErr: "Error validating challenge",
		},
		{
			name:    "ceremony type of a login",
			tamper:  func(a *webauthntest.Authenticator) { a.Tamper.Type = "webauthn.get" },
			wantErr: "Error validating ceremony type",
		},
		{
			name:    "RP id hash of another relying party",
			tamper:  func(a *webauthntest.Authenticator) { a.Tamper.RPID = "evil.localhost" },
			wantErr: "RP Hash mismatch",
		},
		{
			name:    "user not present",
			tamper:  func(a *webauthntest.Authenticator) { a.Tamper.NoUserPresence = true },
			wantErr: "User presence required",
		},
		{
			name: "self attestation over other data",
			tamper: func(a *webauthntest.Authenticator) {
				a.SelfAttestation = true
				a.Tamper.BadSignature = true
			},
			opts:    []webauthn.RegistrationOption{webauthn.WithConveyancePreference(protocol.PreferDirectAttestation)},
			wantErr: "Unable to verify signature",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := newRP(t, testRPID, testOrigin)
			a := webauthntest.New(testOrigin)
			u := newUser("alice")
			tt.tamper(a)

			options, session := beginRegistration(t, rp, u, tt.opts...)
			response, err := a.Register(options)
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			_, err = finishRegistration(rp, u, session, response)
			if err == nil || !strings.Contains(describe(err), tt.wantErr) {
				t.Errorf("registration error = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}

// TestAuthenticatorRefuses checks the refusals a browser would make before
// the server sees anything.
func TestAuthenticatorRefuses(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	holder := webauthntest.New(testOrigin)
	alice := newUser("alice")
	aliceCred := register(t, rp, holder, alice)

	registerWith := func(a *webauthntest.Authenticator, opts ...webauthn.RegistrationOption) func(t *testing.T) error {
		return func(t *testing.T) error {
			options, _ := beginRegistration(t, rp, newUser("bob"), opts...)
			_, err := a.Register(options)
			return err
		}
	}
	assertWith := func(a *webauthntest.Authenticator, opts ...webauthn.LoginOption) func(t *testing.T) error {
		return func(t *testing.T) error {
			options, _ := beginLogin(t, rp, alice, opts...)
			_, err := a.Assert(options)
			return err
		}
	}
	discoverableWith := func(a *webauthntest.Authenticator) func(t *testing.T) error {
		return func(t *testing.T) error {
			assertion, _, err := rp.BeginDiscoverableLogin()
			if err != nil {
				t.Fatalf("BeginDiscoverableLogin: %v", err)
			}
			_, err = a.Assert(mustJSON(t, assertion))
			return err
		}
	}
	uvRequired := protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}
	platformOnly := protocol.AuthenticatorSelection{AuthenticatorAttachment: protocol.Platform}
	fresh := func(origin string) *webauthntest.Authenticator { return webauthntest.New(origin) }

	tests := []struct {
		name    string
		run     func(t *testing.T) error
		wantErr error
	}{
		{"registration needing user verification", registerWith(fresh(testOrigin), webauthn.WithAuthenticatorSelection(uvRequired)), webauthntest.ErrNotAllowed},
		{"login needing user verification", assertWith(holder, webauthn.WithUserVerification(protocol.VerificationRequired)), webauthntest.ErrNotAllowed},
		{"excluded credential", registerWith(holder, webauthn.WithExclusions([]protocol.CredentialDescriptor{aliceCred.Descriptor()})), webauthntest.ErrInvalidState},
		{"RP id a superdomain would own", registerWith(fresh(testOrigin), webauthn.WithRegistrationRelyingPartyID("other.localhost")), webauthntest.ErrSecurity},
		{"RP id of another site", registerWith(fresh(testOrigin), webauthn.WithRegistrationRelyingPartyID("example.com")), webauthntest.ErrSecurity},
		{"origin at an IP address", registerWith(fresh("http://127.0.0.1:34567")), webauthntest.ErrSecurity},
		{"origin not a secure context", registerWith(fresh("http://idp.example")), webauthntest.ErrSecurity},
		{"other attachment asked for", registerWith(fresh(testOrigin), webauthn.WithAuthenticatorSelection(platformOnly)), webauthntest.ErrNotAllowed},
		{"no ES256 offered", registerWith(fresh(testOrigin), webauthn.WithCredentialParameters([]protocol.CredentialParameter{{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256}})), webauthntest.ErrNotSupported},
		{"login with no listed credential held", assertWith(fresh(testOrigin)), webauthntest.ErrNotAllowed},
		{"discoverable login with none held", discoverableWith(holder), webauthntest.ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(t); !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}

	t.Run("options without publicKey", func(t *testing.T) {
		if _, err := holder.Assert([]byte(`{"challenge":"AAAAAAAAAAAAAAAAAAAAAA"}`)); err == nil || !strings.Contains(err.Error(), "publicKey") {
			t.Errorf("error = %v, want one naming publicKey", err)
		}
	})
}

func TestConcurrentCeremonies(t *testing.T) {
	rp := newRP(t, testRPID, testOrigin)
	a := webauthntest.New(testOrigin)
	u := newUser("alice")
	register(t, rp, a, u)

	const n = 16
	type result struct {
		counter uint32
		err     error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range n {
		// Each goroutine also registers another user, so registrations and
		// assertions interleave on one authenticator.
		wg.Go(func() {
			assertion, session, err := rp.BeginLogin(u)
			if err != nil {
				results <- result{err: err}
				return
			}
			options, err := json.Marshal(assertion)
			if err != nil {
				results <- result{err: err}
				return
			}
			response, err := a.Assert(options)
			if err != nil {
				results <- result{err: err}
				return
			}
			parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
			if err != nil {
				results <- result{err: err}
				return
			}
			if _, err := rp.ValidateLogin(u, *session, parsed); err != nil {
				results <- result{err: err}
				return
			}
			creation, _, err := rp.BeginRegistration(newUser("bob"))
			if err != nil {
				results <- result{err: err}
				return
			}
			other, err := json.Marshal(creation)
			if err != nil {
				results <- result{err: err}
				return
			}
			if _, err := a.Register(other); err != nil {
				results <- result{err: err}
				return
			}
			results <- result{counter: parsed.Response.AuthenticatorData.Counter}
		})
	}
	wg.Wait()
	close(results)
	seen := map[uint32]bool{}
	for r := range results {
		if r.err != nil {
			t.Errorf("concurrent ceremony: %s", describe(r.err))
			continue
		}
		seen[r.counter] = true
	}
	for c := uint32(1); c <= n; c++ {
		if !seen[c] {
			t.Errorf("no assertion reported counter %d; counters seen: %v", c, seen)
		}
	}
	if got := len(a.Credentials()); got != n+1 {
		t.Errorf("Credentials() holds %d, want %d", got, n+1)
	}
}
