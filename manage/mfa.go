package manage

import (
	"context"
	"errors"
	"fmt"

	"github.com/hostportal/idp/storage"
)

// RemoveSecondFactors removes every second factor of the user: the
// authenticator app, the security keys and passkeys, the recovery codes and
// the remembered devices. (The user's WebAuthn handle stays: it names no
// credential, and keys registered later reuse it.) Each removal is
// idempotent, so a failure part-way is repaired by running it again.
func (s *Service) RemoveSecondFactors(ctx context.Context, userID string) error {
	if err := s.Store.DeleteTOTP(ctx, userID); err != nil {
		return fmt.Errorf("removing the authenticator app: %w", err)
	}
	if _, err := s.Store.DeleteSecurityKeys(ctx, userID); err != nil {
		return fmt.Errorf("removing the security keys: %w", err)
	}
	if err := s.Store.DeleteRecoveryCodes(ctx, userID); err != nil {
		return fmt.Errorf("removing the recovery codes: %w", err)
	}
	if _, err := s.Store.DeleteRememberedDevices(ctx, userID); err != nil {
		return fmt.Errorf("forgetting the remembered devices: %w", err)
	}
	return nil
}

// MFAStatus is what a user has of second factors.
type MFAStatus struct {
	TOTP              bool
	SecurityKeys      int // security keys and passkeys
	RecoveryCodesLeft int
	RememberedDevices int // not yet expired
}

// MFA reports the user's second factors.
func (s *Service) MFA(ctx context.Context, userID string) (MFAStatus, error) {
	var st MFAStatus
	_, err := s.Store.TOTPByUser(ctx, userID)
	switch {
	case err == nil:
		st.TOTP = true
	case !errors.Is(err, storage.ErrNotFound):
		return st, err
	}
	if st.SecurityKeys, err = s.Store.CountSecurityKeys(ctx, userID); err != nil {
		return st, err
	}
	if st.RecoveryCodesLeft, err = s.Store.CountRecoveryCodes(ctx, userID); err != nil {
		return st, err
	}
	devices, err := s.Store.ListRememberedDevices(ctx, userID)
	if err != nil {
		return st, err
	}
	now := s.now()
	for _, d := range devices {
		if d.ExpiresAt.After(now) {
			st.RememberedDevices++
		}
	}
	return st, nil
}

// ResetMFA is the support reset (a user with a new phone, a lost key): it
// removes every second factor (authenticator app, security keys and
// passkeys), recovery code and remembered device of the user, and marks
// their cell phone unverified, so that they can enrol again.
// Event: mfa.reset.
func (s *Service) ResetMFA(ctx context.Context, actor Actor, username string) (*storage.User, error) {
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return nil, err
	}
	before, err := s.MFA(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if err := s.RemoveSecondFactors(ctx, u.ID); err != nil {
		return nil, fmt.Errorf("resetting the second factors of %s: %w", u.Username, err)
	}
	details := map[string]string{
		"authenticator_app":  fmt.Sprint(before.TOTP),
		"security_keys":      fmt.Sprint(before.SecurityKeys),
		"recovery_codes":     fmt.Sprint(before.RecoveryCodesLeft),
		"remembered_devices": fmt.Sprint(before.RememberedDevices),
	}
	// The cell phone is a second factor too (SMS codes): the number stays
	// on the account, unverified, so that no code goes to it until the
	// user confirms it again (or an operator sets it, which counts as
	// verified).
	if u.PhoneVerified {
		u.PhoneVerified, u.UpdatedAt = false, s.now()
		if err := s.Store.UpdateUser(ctx, u); err != nil {
			return nil, fmt.Errorf("resetting the cell phone of %s: %w", u.Username, err)
		}
		details["phone"] = "unverified"
	}
	return u, s.audit(ctx, actor, storage.AuditEvent{Type: "mfa.reset", UserID: u.ID, Username: u.Username, Details: details},
		"the second factors of "+u.Username+" were removed")
}
