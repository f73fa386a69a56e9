// Package mailtest provides a fake SMTP server on loopback that records the
// messages it accepts, for tests of package mail and of code that sends
// e-mail. Point mail.SMTPOptions at it with Host, Port, TLS, TLSConfig and,
// with WithAuth, Username and Password.
//
// It deliberately does not import package mail, so that mail's own tests
// can use it.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one message the server accepted.
type Mail struct {
	From    string      // the envelope sender (MAIL FROM)
	To      []string    // the envelope recipients (RCPT TO)
	Header  mail.Header // the message's header, as received
	Subject string      // decoded (RFC 2047)
	// Text and HTML are the text/plain and text/html parts (or the single
	// body), transfer encoding undone, with \n line ends.
	Text, HTML string
	Raw        []byte // the message as received
	TLS        bool   // it came over TLS (STARTTLS or implicit)
	Auth       string // the username it authenticated as; empty: none
}

// Option changes how NewServer sets a server up.
type Option func(*Server)

// WithAuth makes the server require AUTH PLAIN with Username and Password,
// which NewServer sets to fresh values.
func WithAuth() Option {
	return func(s *Server) {
		s.Username = "mailer-" + randomHex(4)
		s.Password = randomHex(16)
	}
}

// WithStartTLS makes the server offer STARTTLS with a fresh self-signed
// certificate, and accept AUTH only after it; TLSConfig trusts the
// certificate.
func WithStartTLS() Option { return func(s *Server) { s.TLS = "starttls" } }

// WithImplicitTLS makes the server speak TLS from the first byte (port 465
// style) with a fresh self-signed certificate; TLSConfig trusts it.
func WithImplicitTLS() Option { return func(s *Server) { s.TLS = "implicit" } }

// Server is a fake SMTP server on 127.0.0.1. It is safe for concurrent use.
type Server struct {
	Host string // "127.0.0.1"
	Port int
	// TLS is what mail.SMTPOptions.TLS must be: "none" (the default, plain
	// SMTP), "starttls" or "implicit".
	TLS string
	// TLSConfig is a client configuration that trusts the server's
	// certificate, for mail.SMTPOptions.TLSConfig; nil without TLS.
	TLSConfig *tls.Config
	// Username and Password are set by WithAuth; AUTH is then required.
	Username, Password string

	t         testing.TB
	serverTLS *tls.Config

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener
	served   chan struct{} // closed when srv's Serve returns
	mails    []Mail
	failNext *smtp.SMTPError
	ended    bool // the test is over: log nothing more
}

// NewServer starts a fake SMTP server on 127.0.0.1 and a free port, plain
// SMTP without AUTH unless options say otherwise; t.Cleanup stops it.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{Host: "127.0.0.1", TLS: "none", t: t}
	for _, o := range opts {
		o(s)
	}
	if s.TLS != "none" {
		s.serverTLS, s.TLSConfig = selfSigned(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.serve(ln)
	t.Cleanup(func() {
		s.Down()
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
	})
	return s
}

// Addr is Host:Port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Mails returns a copy of the accepted messages, oldest first.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Last returns the newest accepted message, failing the test if there is none.
func (s *Server) Last(t testing.TB) Mail {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mails) == 0 {
		t.Fatal("mailtest: no message was sent")
	}
	return s.mails[len(s.mails)-1]
}

// WaitFor waits up to five seconds until the server has accepted at least n
// messages (senders may be asynchronous) and returns them; it fails the
// test if they do not come.
func (s *Server) WaitFor(t testing.TB, n int) []Mail {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mails := s.Mails()
		if len(mails) >= n {
			return mails
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailtest: %d messages after 5s, want %d", len(mails), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FailNext makes the next DATA get this reply instead of being accepted,
// e.g. 451 "Try again later" or 554 "Rejected".
func (s *Server) FailNext(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
}

// Down stops the server: connections in progress are cut and new ones are
// refused, until Up.
func (s *Server) Down() {
	s.mu.Lock()
	srv, ln, served := s.srv, s.ln, s.served
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	_ = ln.Close() // Serve may not have taken it yet
	<-served
}

// Up starts the server again on the same port after Down.
func (s *Server) Up() {
	s.t.Helper()
	s.mu.Lock()
	up := s.srv != nil
	s.mu.Unlock()
	if up {
		return
	}
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		s.t.Fatalf("mailtest: listen again on %s: %v", s.Addr(), err)
	}
	s.serve(ln)
}

func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = logger{s}
	switch s.TLS {
	case "starttls":
		srv.TLSConfig = s.serverTLS
	case "implicit":
		ln = tls.NewListener(ln, s.serverTLS)
	default:
		srv.AllowInsecureAuth = true // plain SMTP on loopback
	}
	served := make(chan struct{})
	s.mu.Lock()
	s.srv, s.ln, s.served = srv, ln, served
	s.mu.Unlock()
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // returns when Down closes it
	}()
}

// logger sends go-smtp's complaints (a client that hung up, a failed TLS
// handshake) to the test log while the test runs.
type logger struct{ s *Server }

func (l logger) Printf(format string, v ...any) { l.log(fmt.Sprintf(format, v...)) }
func (l logger) Println(v ...any)               { l.log(fmt.Sprintln(v...)) }

func (l logger) log(line string) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if !l.s.ended {
		l.s.t.Logf("mailtest server: %s", strings.TrimSpace(line))
	}
}

// session is one SMTP connection.
type session struct {
	s    *Server
	conn *smtp.Conn
	user string // authenticated as
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if subtle.ConstantTimeCompare([]byte(username), []byte(ss.s.Username)) != 1 ||
			subtle.ConstantTimeCompare([]byte(password), []byte(ss.s.Password)) != 1 {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) authorized() error {
	if ss.s.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := ss.authorized(); err != nil {
		return err
	}
	ss.from, ss.to = from, nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.authorized(); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r) // read it all even when refusing it
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	fail := ss.s.failNext
	ss.s.failNext = nil
	ss.s.mu.Unlock()
	if fail != nil {
		return fail
	}
	m, err := parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: " + err.Error()}
	}
	m.From, m.To, m.Auth = ss.from, ss.to, ss.user
	_, m.TLS = ss.conn.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, m)
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// parse reads a received message into a Mail.
func parse(raw []byte) (Mail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Mail{}, err
	}
	m := Mail{Header: msg.Header, Raw: raw}
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Mail{}, fmt.Errorf("subject: %w", err)
	}
	if err := m.walk(textproto.MIMEHeader(msg.Header), msg.Body); err != nil {
		return Mail{}, err
	}
	return m, nil
}

// walk finds the text and HTML parts under one MIME entity.
func (m *Mail) walk(h textproto.MIMEHeader, body io.Reader) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// Raw: the transfer encoding is undone below, for every part alike.
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mediaType, err)
			}
			if err := m.walk(p.Header, p); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); enc {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks
	case "", "7bit", "8bit", "binary":
	default:
		return fmt.Errorf("unknown transfer encoding %q", enc)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s body: %w", mediaType, err)
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	switch {
	case mediaType == "text/plain" && m.Text == "":
		m.Text = text
	case mediaType == "text/html" && m.HTML == "":
		m.HTML = text
	}
	return nil
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost, and
// returns the server's configuration and a client's that trusts it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return server, client
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return fmt.Sprintf("%x", b)
}
