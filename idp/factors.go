package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/storage"
)

// The second factors a user has, and the checks of them. Every failed
// check at login goes through Server.failed; in the account pages through
// Server.accountFailure.

// factors is what a user can pass a login's second factor with.
type factors struct {
	user  *storage.User
	TOTP  bool // an authenticator app
	SMS   bool // a verified cell phone that can get codes now (see smsUsable)
	Phone bool // a verified cell phone, whether or not codes can be sent to it now
	Keys  int  // security keys (and passkeys), whether or not WebAuthn works now
	web   bool // WebAuthn works here
}

// KeysUsable reports whether the user can pass with a security key now.
func (f factors) KeysUsable() bool { return f.Keys > 0 && f.web }

// required reports whether a login must ask this user for a second
// factor. A phone alone counts only with mfa.sms_as_only_factor;
// otherwise it is a fallback next to the app. It counts by the verified
// phone, not by whether SMS works today: a user whose only factor is the
// phone is never let in with the password alone because the provider or
// the country list changed (they use a recovery code then).
// A security key always counts, also when WebAuthn stops working (the
// user then passes with a recovery code).
func (f factors) required(smsAlone bool) bool { return f.TOTP || f.Keys > 0 || (f.Phone && smsAlone) }

// factorsOf loads the user and their second factors.
func (s *Server) factorsOf(ctx context.Context, userID string) (factors, error) {
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return factors{}, err
	}
	has, err := s.hasSecondFactor(ctx, userID)
	if err != nil {
		return factors{}, err
	}
	keys, err := s.store.CountSecurityKeys(ctx, userID)
	if err != nil {
		return factors{}, err
	}
	return factors{user: u, TOTP: has, SMS: s.smsUsable(u), Phone: u.Phone != "" && u.PhoneVerified,
		Keys: keys, web: s.keysUsable()}, nil
}

// hasSecondFactor reports whether the user has an authenticator app (the
// 2-Factor Auth switch).
func (s *Server) hasSecondFactor(ctx context.Context, userID string) (bool, error) {
	_, err := s.store.TOTPByUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func totpAD(userID string) []byte { return []byte("totp:" + userID) }

// codeCheck is the outcome of checking an authentication code.
type codeCheck int

const (
	codeOK       codeCheck = iota
	codeWrong              // not the code of now (±1 step)
	codeReused             // right, but already accepted once
	codeClockOff           // right for a time minutes away: the phone's clock is wrong
)

// message is what the page says for a failed check.
func (c codeCheck) message() string {
	switch c {
	case codeReused:
		return "That code was already used. Wait for the next code in your authenticator app and enter it."
	case codeClockOff:
		return "That code would be right if your phone's clock were correct. Set your phone's date and time to update automatically, then enter the new code."
	default:
		return "That code is not right. Enter the current six-digit code from your authenticator app."
	}
}

// checkTOTPSecret checks the first code of an enrolment in progress (it
// has no replay guard yet: this code is what proves it), recognising a code
// made with a wrong clock so the user can be told.
func (s *Server) checkTOTPSecret(secret []byte, code string) (int64, codeCheck) {
	now := s.now()
	if step, ok := mfa.MatchTOTP(secret, code, now); ok {
		return step, codeOK
	}
	if _, off := mfa.ClockOffset(secret, code, now, clockSearchSteps); off {
		return 0, codeClockOff
	}
	return 0, codeWrong
}

// clockSearchSteps: codes this many 30-second steps away (10 minutes) are
// recognised to tell the user their clock is wrong; they are never accepted.
const clockSearchSteps = 20

// checkTOTP checks the user's authenticator code, accepting each time step
// at most once (the store's atomic set-if-greater).
func (s *Server) checkTOTP(ctx context.Context, userID, code string) (codeCheck, error) {
	t, err := s.store.TOTPByUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return codeWrong, nil
	}
	if err != nil {
		return codeWrong, err
	}
	secret, err := s.keys.Open(t.Secret, totpAD(userID))
	if err != nil {
		return codeWrong, fmt.Errorf("opening the TOTP secret of user %s: %w", userID, err)
	}
	// No clock hint here: at login it would tell a guesser that a code
	// becomes valid minutes later. Enrolment (checkTOTPSecret) has one.
	step, ok := mfa.MatchTOTP(secret, code, s.now())
	if !ok {
		return codeWrong, nil
	}
	advanced, err := s.store.AdvanceTOTPStep(ctx, userID, step)
	if err != nil {
		return codeWrong, err
	}
	if !advanced {
		return codeReused, nil
	}
	return codeOK, nil
}

// useRecoveryCode spends one of the user's recovery codes and stores a new
// one in its place, which it returns.
func (s *Server) useRecoveryCode(ctx context.Context, userID, code string) (string, bool, error) {
	hash, ok := mfa.HashRecoveryCode(s.keys, userID, code)
	if !ok {
		return "", false, nil
	}
	replacement := mfa.NewRecoveryCode()
	replacementHash, _ := mfa.HashRecoveryCode(s.keys, userID, replacement)
	err := s.store.ConsumeRecoveryCode(ctx, userID, hash, replacementHash, s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return replacement, true, nil
}

// newRecoveryCodes replaces the user's recovery codes with a new set.
func (s *Server) newRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	codes := mfa.NewRecoveryCodes(mfa.RecoveryCodeCount)
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i], _ = mfa.HashRecoveryCode(s.keys, userID, c) // a code NewRecoveryCodes made is always well-formed
	}
	if err := s.store.ReplaceRecoveryCodes(ctx, userID, hashes, s.now()); err != nil {
		return nil, err
	}
	return codes, nil
}

// enableTOTP saves a new set of recovery codes and then the proven
// enrolment (the step of the code that proved it is already spent). In this
// order a failure can leave codes without an app (harmless: the next
// enrolment replaces them), never an app without codes.
func (s *Server) enableTOTP(ctx context.Context, userID string, secret []byte, step int64) ([]string, error) {
	codes, err := s.newRecoveryCodes(ctx, userID)
	if err != nil {
		return nil, err
	}
	err = s.store.SetTOTP(ctx, &storage.TOTP{UserID: userID, Secret: s.keys.Seal(secret, totpAD(userID)), LastStep: step, CreatedAt: s.now()})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// rememberedDevice passes the second factor of l when this browser holds a
// valid remembered-device token for l's user.
func (s *Server) rememberedDevice(w http.ResponseWriter, r *http.Request, l *loaded) bool {
	ctx := r.Context()
	token := s.readCookie(r, s.cookies.device)
	if token == "" || s.cfg.MFA.RememberDevice <= 0 {
		return false
	}
	d, err := s.store.RememberedDeviceByHash(ctx, mfa.HashDeviceToken(token))
	if err != nil || d.UserID != l.UserID || !d.ExpiresAt.After(s.now()) {
		return false
	}
	if err := s.store.TouchRememberedDevice(ctx, d.ID, s.now()); err != nil {
		return false
	}
	l.AMR, l.ACR, l.FreshAuth = addAMR(l.AMR, "mfa"), acrMFA, true
	s.audit(ctx, r, storage.AuditEvent{Type: "mfa.remembered_device_used", UserID: l.UserID, Username: l.Username, ClientID: l.ClientID,
		Result: "success", Details: map[string]string{"device": d.Description}})
	return true
}

// rememberDevice lets this browser skip the second factor for the user
// for mfa.remember_device.
func (s *Server) rememberDevice(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string) error {
	if s.cfg.MFA.RememberDevice <= 0 {
		return nil
	}
	token := mfa.NewDeviceToken()
	now := s.now()
	d := &storage.RememberedDevice{
		ID: mfa.NewDeviceToken()[:22], UserID: userID, TokenHash: mfa.HashDeviceToken(token),
		Description: mfa.DescribeUserAgent(r.UserAgent()), CreatedAt: now, LastUsedAt: now,
		ExpiresAt: now.Add(s.cfg.MFA.RememberDevice),
	}
	if err := s.store.CreateRememberedDevice(ctx, d); err != nil {
		return err
	}
	s.setCookie(w, s.cookies.device, token, s.cfg.MFA.RememberDevice)
	return nil
}

// addAMR adds methods to amr, once each, keeping "mfa" last.
func addAMR(amr []string, methods ...string) []string {
	out := slices.Clone(amr)
	for _, m := range methods {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if i := slices.Index(out, "mfa"); i >= 0 {
		out = append(slices.Delete(out, i, i+1), "mfa")
	}
	return out
}

// rememberDaysFor is rememberDays for login l: 0 (no checkbox) in a
// password reset, which must not leave a remembered device behind.
func (s *Server) rememberDaysFor(l *loaded) int {
	if l.Reset {
		return 0
	}
	return s.rememberDays()
}

// resetNotice tells the user on a second-factor page that it is part of a
// password reset, not a login.
func resetNotice(l *loaded) string {
	if !l.Reset {
		return ""
	}
	return "To choose a new password for " + l.Username + ", first confirm it's you with your second factor."
}

// rememberDays is the number in "Remember this device for N days".
func (s *Server) rememberDays() int {
	d := s.cfg.MFA.RememberDevice
	if d <= 0 {
		return 0
	}
	return max(1, int((d+12*time.Hour)/(24*time.Hour)))
}

// sealJSON and openJSON keep short-lived secrets (an enrolment's codes) in
// the pending-login store sealed under secret_key.
func (s *Server) sealJSON(v any, ad string) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return s.keys.Seal(raw, []byte(ad)), nil
}

func (s *Server) openJSON(sealed []byte, ad string, v any) error {
	raw, err := s.keys.Open(sealed, []byte(ad))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
