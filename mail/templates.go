package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
	"unicode"
)

// Content is what one kind of message says: ResetLink, ConfirmEmail or
// Notice. Render turns it into a subject and the two bodies.
type Content interface {
	kind() string // the base name of its templates
	subject() string
	check() error
}

// ResetLink is the message with a password reset link.
type ResetLink struct {
	Issuer   string        // the provider's name as users know it, e.g. login.example.com
	Username string        // whose password
	Link     string        // the provider's reset page for this request, an absolute http(s) URL
	Expires  time.Duration // how long Link works; 0 leaves it unsaid
}

// ConfirmEmail is the message that confirms an e-mail address belongs to
// the user.
type ConfirmEmail struct {
	Issuer   string
	Username string
	Link     string        // the provider's confirmation page for this address, an absolute http(s) URL
	Expires  time.Duration // how long Link works; 0 leaves it unsaid
}

// Notice is a security notification: something changed on the account.
type Notice struct {
	Issuer   string
	Username string
	// What happened, as a sentence without a full stop, e.g. "Two-step
	// verification was turned off". The subject is "Security alert: " + What.
	What   string
	When   string // e.g. "2 May 2025, 14:03 UTC", formatted by the caller
	IP     string // the client's address; empty leaves it unsaid
	Device string // e.g. "Firefox on Windows"; empty leaves it unsaid
	// AccountURL is where the user resets the password or reviews the
	// account, at the provider; empty: the message points to the sign-in
	// page's "Forgot password?" only.
	AccountURL string
	// Advice, when set, replaces the "if this wasn't you" steps, for
	// events after which resetting the password would not help (the
	// address itself was changed: reset links would go to the new one).
	Advice string
}

func (ResetLink) kind() string    { return "reset_link" }
func (ConfirmEmail) kind() string { return "confirm_email" }
func (Notice) kind() string       { return "notice" }

func (ResetLink) subject() string    { return "Reset your password" }
func (ConfirmEmail) subject() string { return "Confirm your e-mail address" }
func (n Notice) subject() string     { return "Security alert: " + oneLine(n.What) }

func (r ResetLink) check() error    { return checkLink("Link", r.Link, true) }
func (c ConfirmEmail) check() error { return checkLink("Link", c.Link, true) }
func (n Notice) check() error {
	if strings.TrimSpace(n.What) == "" {
		return errors.New("mail: Notice.What is empty")
	}
	return checkLink("AccountURL", n.AccountURL, false)
}

// kinds lists every Content, zero-valued: Load renders each once.
var kinds = []Content{ResetLink{}, ConfirmEmail{}, Notice{}}

//go:embed templates/*.txt templates/*.html
var files embed.FS

// set is the parsed templates of every kind.
type set struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

var loaded = sync.OnceValues(func() (*set, error) { return parse(files) })

// Load parses every template and renders each once with empty data, so
// that a missing or broken template stops the server at start-up rather
// than a message later.
func Load() error {
	_, err := loaded()
	return err
}

// Render returns the subject and the text and HTML bodies of c. The HTML is
// escaped by html/template; it has no images and no links but the ones in
// c.
func Render(c Content) (subject, text, html string, err error) {
	s, err := loaded()
	if err != nil {
		return "", "", "", err
	}
	if err := c.check(); err != nil {
		return "", "", "", err
	}
	text, html, err = s.render(c)
	if err != nil {
		return "", "", "", err
	}
	return c.subject(), text, html, nil
}

var funcs = map[string]any{"duration": duration}

func parse(fsys fs.FS) (*set, error) {
	s := &set{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	var errs []error
	for _, c := range kinds {
		name := c.kind()
		t, err := texttemplate.New(name+".txt").Funcs(funcs).ParseFS(fsys, "templates/"+name+".txt")
		if err != nil {
			errs = append(errs, fmt.Errorf("mail: template %s.txt: %w", name, err))
		}
		s.text[name] = t
		// The kind's file names the title and content that layout.html places.
		h, err := htmltemplate.New(name+".html").Funcs(funcs).ParseFS(fsys, "templates/"+name+".html", "templates/layout.html")
		if err != nil {
			errs = append(errs, fmt.Errorf("mail: template %s.html: %w", name, err))
		}
		s.html[name] = h
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, c := range kinds {
		if _, _, err := s.render(c); err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}

func (s *set) render(c Content) (text, html string, err error) {
	name := c.kind()
	var tb, hb bytes.Buffer
	if err := s.text[name].Execute(&tb, c); err != nil {
		return "", "", fmt.Errorf("mail: template %s.txt: %w", name, err)
	}
	if err := s.html[name].Execute(&hb, c); err != nil {
		return "", "", fmt.Errorf("mail: template %s.html: %w", name, err)
	}
	return tb.String(), hb.String(), nil
}

// checkLink refuses a link that is not an absolute http(s) URL: links lead
// only to the provider's own pages, which the caller builds.
func checkLink(field, link string, required bool) error {
	if link == "" && !required {
		return nil
	}
	u, err := url.Parse(link)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("mail: %s must be an absolute http(s) URL at the provider, got %q", field, link)
	}
	return nil
}

// oneLine keeps a header value on one line.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }), " ")
}

// duration says d in words: "1 hour", "30 minutes", "2 days".
func duration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return unit(int64((d+30*time.Second)/time.Minute), "minute")
	default:
		return unit(int64((d+time.Second/2)/time.Second), "second")
	}
}
