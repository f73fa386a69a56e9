package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/hostportal/idp/config"
)

// DefaultSMTPTimeout bounds one Send or Check when SMTPOptions.Timeout is
// zero.
const DefaultSMTPTimeout = 10 * time.Second

// SMTPOptions configure the SMTP provider (config keys email.smtp.* and
// email.from).
type SMTPOptions struct {
	Host string // email.smtp.host: a name or an address, without port
	// Port (email.smtp.port); 0 means 587 for starttls, 465 for implicit
	// and 25 for none.
	Port int
	// Username and Password (email.smtp.username, email.smtp.password):
	// both or neither. With them AUTH is required (PLAIN or LOGIN, sent only
	// over TLS or to a loopback relay); a server that offers no AUTH is an
	// error, never an unauthenticated send.
	Username, Password string
	// TLS (email.smtp.tls) is starttls (the default): STARTTLS is mandatory
	// and a server that does not offer it is an error, never a fall back to
	// plain text; implicit: TLS from the first byte (port 465); none: plain
	// text, allowed only to a loopback host.
	TLS     string
	From    string        // email.from, such as "Secure Sign-In <no-reply@login.example.com>"
	Timeout time.Duration // email.smtp.timeout; 0 means DefaultSMTPTimeout
	// TLSConfig, when set, replaces the default TLS settings (system roots,
	// TLS 1.2 or later), e.g. with RootCAs holding a test server's CA. An
	// empty ServerName is set to Host.
	TLSConfig *tls.Config
}

// SMTP sends messages through an SMTP submission server, one connection per
// message. It is safe for concurrent use.
type SMTP struct {
	host, addr string
	port       int
	user, pass string
	mode       string // starttls, implicit, none
	from       *mail.Address
	domain     string // of From, for Message-IDs
	timeout    time.Duration
	tlsConfig  *tls.Config
}

var _ Sender = (*SMTP)(nil)

// NewSMTP checks o and returns an SMTP provider. It reports every problem at
// once, each naming its config key, and never echoes the password. It does
// not connect: Check does.
func NewSMTP(o SMTPOptions) (*SMTP, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	s := &SMTP{host: o.Host, port: o.Port, user: o.Username, pass: o.Password, mode: o.TLS, timeout: o.Timeout}
	if s.mode == "" {
		s.mode = "starttls"
	}
	switch {
	case o.Host == "":
		bad("email.smtp.host", "missing")
	case strings.ContainsAny(o.Host, ":/ \r\n") && net.ParseIP(o.Host) == nil:
		bad("email.smtp.host", "must be a host name or address without port or scheme, got %q", o.Host)
	}
	switch s.mode {
	case "starttls", "implicit":
	case "none":
		if o.Host != "" && !config.IsLoopbackHost(o.Host) {
			bad("email.smtp.tls", "none (no encryption) is allowed only when email.smtp.host is localhost or a loopback address, got host %q", o.Host)
		}
	default:
		bad("email.smtp.tls", "must be starttls, implicit or none, got %q", o.TLS)
	}
	if s.port == 0 {
		s.port = map[string]int{"starttls": 587, "implicit": 465, "none": 25}[s.mode]
	}
	if s.port < 1 || s.port > 65535 {
		bad("email.smtp.port", "must be from 1 to 65535, got %d", o.Port)
	}
	switch {
	case o.Username != "" && o.Password == "":
		bad("email.smtp.password", "missing (email.smtp.username is set)")
	case o.Username == "" && o.Password != "":
		bad("email.smtp.username", "missing (email.smtp.password is set)")
	}
	if from, err := mail.ParseAddress(o.From); err != nil {
		bad("email.from", "must be one address such as \"Secure Sign-In <no-reply@login.example.com>\", got %q", o.From)
	} else {
		s.from = from
		s.domain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	}
	switch {
	case o.Timeout < 0:
		bad("email.smtp.timeout", "must not be negative")
	case o.Timeout == 0:
		s.timeout = DefaultSMTPTimeout
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.addr = net.JoinHostPort(s.host, strconv.Itoa(s.port))
	if o.TLSConfig != nil {
		s.tlsConfig = o.TLSConfig.Clone()
	} else {
		s.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if s.tlsConfig.ServerName == "" {
		s.tlsConfig.ServerName = s.host
	}
	return s, nil
}

// Send delivers m: a multipart/alternative message (text, and HTML when
// set) from email.from to m.To. It returns when the server has accepted
// the message (or refused it), the timeout passes or ctx is done, whichever
// comes first. Every error is an *Error; nothing is retried here, since a
// lost answer may hide a message already accepted. A message whose To or
// Subject would add header lines is refused before connecting.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	// Refusals of the message itself are not about ctx.
	if err := m.check(); err != nil {
		return s.error(context.Background(), err)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	if err := msg.To(m.To); err != nil {
		return s.error(context.Background(), err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(rand.Text() + "@" + s.domain)
	msg.SetDate()
	// RFC 3834: out-of-office robots must not answer.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return s.session(ctx, msg)
}

// Check connects, greets (EHLO), starts TLS and authenticates as configured,
// and says QUIT: whether the server is reachable and accepts us, so that a
// caller can answer "cannot send e-mail now" before it queues work. Every
// error is an *Error.
func (s *SMTP) Check(ctx context.Context) error {
	return s.session(ctx, nil)
}

// session runs one SMTP conversation, sending msg if it is not nil.
func (s *SMTP) session(ctx context.Context, msg *gomail.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return s.error(ctx, err)
	}
	d := &dialer{ctx: ctx}
	defer d.close()
	if s.mode == "implicit" {
		d.tlsConfig = s.tlsConfig
	}
	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(s.timeout),
		gomail.WithTLSConfig(s.tlsConfig),
		gomail.WithDialContextFunc(d.dial),
		gomail.WithoutNoop(),
		gomail.WithoutRset(), // QUIT follows
	}
	switch s.mode {
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default: // implicit: the dialer already did TLS; none: loopback only
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.user != "" {
		// PLAIN and LOGIN send the password as it is: only over TLS, or to
		// the loopback relay that NewSMTP restricts tls none to.
		mechs := []gomail.SMTPAuthType{gomail.SMTPAuthPlain, gomail.SMTPAuthLogin}
		if s.mode == "none" {
			mechs = []gomail.SMTPAuthType{gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc}
		}
		opts = append(opts, gomail.WithUsername(s.user), gomail.WithPassword(s.pass),
			gomail.WithOpportunisticSMTPAuth(mechs...))
	}
	client, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return s.error(ctx, err)
	}
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return s.error(ctx, err)
	}
	if msg != nil {
		// A failure after the server took the message (at QUIT) is not
		// reported: reporting it would make the caller send it twice.
		if err := client.SendWithSMTPClient(conn, msg); err != nil && !msg.IsDelivered() {
			return s.error(ctx, err)
		}
		_ = client.CloseWithSMTPClient(conn)
		return nil
	}
	if err := client.CloseWithSMTPClient(conn); err != nil {
		return s.error(ctx, err)
	}
	return nil
}

// dialer opens the connection of one session: under the session's context
// (go-mail watches its context only while dialing, so the connection is
// closed when ctx is done, which ends any exchange in progress), with TLS
// from the first byte when tlsConfig is set.
type dialer struct {
	ctx       context.Context
	tlsConfig *tls.Config

	mu    sync.Mutex
	conns []net.Conn
}

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	raw, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, raw)
	d.mu.Unlock()
	context.AfterFunc(d.ctx, func() { _ = raw.Close() })
	if d.tlsConfig == nil {
		return raw, nil
	}
	// A *tls.Conn, so that go-mail's smtp client knows the connection is
	// encrypted.
	tc := tls.Client(raw, d.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// close closes every connection, also the ones go-mail leaves open when the
// greeting, STARTTLS or AUTH fails.
func (d *dialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
}

// Error is a failure to send a message, or from Check to reach the server
// and be accepted. Its text names the server and what failed; it never
// holds the password or the message, so it can be logged as it is. It is
// not meant for users' eyes.
type Error struct {
	Server string // host:port
	Code   int    // the server's SMTP reply code (451, 535, 550...), 0 when none came
	// Temporary reports no connection, a timeout, an interrupted exchange or
	// a 4xx reply: trying again later may work. A certificate that does not
	// verify, a server without STARTTLS, refused credentials or a 5xx reply
	// are not temporary.
	Temporary bool
	Err       error // the underlying error (errors.Is(err, context.Canceled) works)
	text      string
}

// Error reads like "smtp smtp.example.com:587: dial failed: ...".
func (e *Error) Error() string { return "smtp " + e.Server + ": " + e.text }

// Unwrap gives errors.Is and errors.As the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// error turns err into an *Error, naming the context's end or the timeout
// if that is what cut the conversation short.
func (s *SMTP) error(ctx context.Context, err error) *Error {
	switch ctxErr := ctx.Err(); {
	case ctxErr != nil && !errors.Is(err, ctxErr):
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	case ctxErr == nil && errors.Is(err, os.ErrDeadlineExceeded):
		// go-mail's deadline on the connection, the same timeout.
		err = fmt.Errorf("%w after %v (%w)", context.DeadlineExceeded, s.timeout, err)
	}
	e := &Error{Server: s.addr, Err: err, text: err.Error()}
	var (
		reply *textproto.Error
		send  *gomail.SendError
		cert  *tls.CertificateVerificationError
		ne    net.Error
	)
	switch {
	case errors.As(err, &reply):
		e.Code = reply.Code
	case errors.As(err, &send):
		e.Code = send.ErrorCode()
	}
	switch {
	case e.Code != 0:
		e.Temporary = e.Code >= 400 && e.Code < 500
	case errors.As(err, &cert), errors.Is(err, smtp.ErrUnencrypted):
	default:
		e.Temporary = errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	}
	// Servers do not echo credentials, but one that did must not put them
	// in the log: the password, and the base64 of AUTH PLAIN and LOGIN.
	if s.pass != "" {
		for _, secret := range []string{
			base64.StdEncoding.EncodeToString([]byte("\x00" + s.user + "\x00" + s.pass)),
			base64.StdEncoding.EncodeToString([]byte(s.pass)),
			s.pass,
		} {
			e.text = strings.ReplaceAll(e.text, secret, "[redacted]")
		}
	}
	return e
}
