package idp

import "context"

// CheckSMSCode exposes the SMS code check to the tests of idp_test, which
// cannot otherwise reach a code's try limit past the per-login one: it
// returns "ok", "wrong", "spent" or "missing".
func CheckSMSCode(s *Server, ctx context.Context, scope, phone, code string) (string, error) {
	res, err := s.checkSMSCode(ctx, scope, phone, code)
	return [...]string{smsOK: "ok", smsWrong: "wrong", smsSpent: "spent", smsMissing: "missing"}[res], err
}
