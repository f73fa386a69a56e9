package idp

import "context"

// CheckSMSCode exposes the SMS code check to the tests of idp_test, which
// cannot otherwise reach a code's try limit past the per-login one: it
// returns "ok", "wrong", "spent" or "missing".
func CheckSMSCode(s *Server, ctx context.Context, scope, phone, code string) (string, error) {
	res, err := s.checkSMSCode(ctx, scope, phone, code)
	return [...]string{smsOK: "ok", smsWrong: "wrong", smsSpent: "spent", smsMissing: "missing"}[res], err
}

// IssueEmailLink starts a change of the user's e-mail address as the
// account page does, without sending the mail.
func IssueEmailLink(s *Server, ctx context.Context, userID, email string) error {
	_, _, err := s.issueLink(ctx, linkEmail, userID, emailChange{Email: email}, emailChangeTTL)
	return err
}

// EmailChangePending reports whether the user has an unconfirmed change of address.
func EmailChangePending(s *Server, ctx context.Context, userID string) (bool, error) {
	c, err := s.pendingEmail(ctx, userID)
	return c != nil, err
}
