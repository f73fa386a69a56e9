package manage

import (
	"errors"
	"fmt"

	"github.com/hostportal/idp/storage"
)

// ErrInvalid is what every *InvalidError wraps: errors.Is(err, ErrInvalid)
// tells a bad request (HTTP 400) from a conflict or a missing record.
var ErrInvalid = errors.New("manage: invalid input")

// InvalidError is a value that breaks a rule. Message is a sentence for the
// caller (it names the value and what to fix); Field is the input's key in
// the admin API (username, email, name, phone, password, client_id,
// redirect_uris, ...).
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) *InvalidError {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// statusError is a sentence safe to show whose kind is a storage sentinel
// (storage.ErrConflict, storage.ErrNotFound), so callers can test it with
// errors.Is without the store's own wording reaching the message.
type statusError struct {
	msg  string
	kind error
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.kind }

func conflict(format string, args ...any) error {
	return &statusError{msg: fmt.Sprintf(format, args...), kind: storage.ErrConflict}
}

func notFound(format string, args ...any) error {
	return &statusError{msg: fmt.Sprintf(format, args...), kind: storage.ErrNotFound}
}

// Problems returns every *InvalidError in err (operations report all the
// bad values of one request at once, joined), for an API answer that lists
// each field.
func Problems(err error) []*InvalidError {
	var out []*InvalidError
	var walk func(error)
	walk = func(err error) {
		if inv, ok := err.(*InvalidError); ok {
			out = append(out, inv)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}
