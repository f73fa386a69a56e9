package idp

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hostportal/idp/secret"
	"github.com/hostportal/idp/storage/pending"
)

// Single-use links sent by e-mail: the password reset and the confirmation
// of a new e-mail address. Each kind is one mechanism: a random token, kept
// only as its hash in the pending-login store with the record it stands
// for; at most one live link per user and kind (a newer one voids the
// older); and spent once, atomically.

// Link kinds.
const (
	linkReset = "reset"
	linkEmail = "email"
)

// linkEnvelope is what a link's hash maps to.
type linkEnvelope struct {
	UserID  string          `json:"u"`
	Expires time.Time       `json:"x"`
	Data    json.RawMessage `json:"d"`
}

func linkKey(kind, hash string) string       { return "link:" + kind + ":" + hash }
func linkUserKey(kind, userID string) string { return "link:" + kind + ":user:" + userID }

// issueLink makes a new link of kind for the user, standing for data and
// good for ttl, and voids the user's older one. It returns the token (for
// the e-mail) and its hash.
func (s *Server) issueLink(ctx context.Context, kind, userID string, data any, ttl time.Duration) (token, hash string, err error) {
	d, err := json.Marshal(data)
	if err != nil {
		return "", "", err
	}
	env, err := json.Marshal(linkEnvelope{UserID: userID, Expires: s.now().Add(ttl), Data: d})
	if err != nil {
		return "", "", err
	}
	if err := s.dropLink(ctx, kind, userID); err != nil {
		return "", "", err
	}
	token = secret.RandomToken(32)
	hash = hashToken(token)
	if err := s.pending.Set(ctx, linkKey(kind, hash), env, ttl); err != nil {
		return "", "", err
	}
	if err := s.pending.Set(ctx, linkUserKey(kind, userID), []byte(hash), ttl); err != nil {
		return "", "", err
	}
	return token, hash, nil
}

// readLink reads the link of kind with hash into data and returns its
// user; "" when there is no such link, it expired, or a newer one
// replaced it.
func (s *Server) readLink(ctx context.Context, kind, hash string, data any) (string, error) {
	raw, err := s.pending.Get(ctx, linkKey(kind, hash))
	if errors.Is(err, pending.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var env linkEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return "", err
	}
	cur, err := s.pending.Get(ctx, linkUserKey(kind, env.UserID))
	if errors.Is(err, pending.ErrNotFound) || (err == nil && string(cur) != hash) || !env.Expires.After(s.now()) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return env.UserID, json.Unmarshal(env.Data, data)
}

// userLink reads the user's live link of kind into data and returns its
// hash; "" when there is none.
func (s *Server) userLink(ctx context.Context, kind, userID string, data any) (string, error) {
	cur, err := s.pending.Get(ctx, linkUserKey(kind, userID))
	if errors.Is(err, pending.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	owner, err := s.readLink(ctx, kind, string(cur), data)
	if err != nil || owner != userID {
		return "", err
	}
	return string(cur), nil
}

// spendLink takes the link of kind with hash, once: of two concurrent
// uses, one gets true.
func (s *Server) spendLink(ctx context.Context, kind, hash, userID string) (bool, error) {
	if _, err := s.pending.GetDel(ctx, linkKey(kind, hash)); errors.Is(err, pending.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, s.pending.Delete(ctx, linkUserKey(kind, userID))
}

// dropLink voids the user's live link of kind, if any (a newer link, a
// mail that did not go out, a password change cancelling an e-mail change).
func (s *Server) dropLink(ctx context.Context, kind, userID string) error {
	cur, err := s.pending.Get(ctx, linkUserKey(kind, userID))
	if errors.Is(err, pending.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.pending.Delete(ctx, linkKey(kind, string(cur))); err != nil {
		return err
	}
	return s.pending.Delete(ctx, linkUserKey(kind, userID))
}
