package mail_test

import (
	"context"
	"errors"
	"net"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/mail"
	"github.com/hostportal/idp/mail/mailtest"
)

const (
	testFrom = "Secure Sign-In <no-reply@login.example.com>"
	testTo   = "alice@example.com"
	testLink = "https://login.example.com/reset?token=Zm9vYmFy"
)

var testMessage = mail.Message{
	To:      testTo,
	Subject: "Reset your password",
	Text:    "Open this link:\n\n" + testLink + "\n\nGrüße, and a line of 80 characters to see the soft line breaks of quoted-printable: ok\n",
	HTML:    `<p>Open <a href="` + testLink + `">this link</a>. Grüße</p>`,
}

// newSMTP returns a provider talking to srv, after edit adjusts its options.
func newSMTP(t *testing.T, srv *mailtest.Server, edit func(*mail.SMTPOptions)) *mail.SMTP {
	t.Helper()
	o := mail.SMTPOptions{
		Host:      srv.Host,
		Port:      srv.Port,
		TLS:       srv.TLS,
		TLSConfig: srv.TLSConfig,
		Username:  srv.Username,
		Password:  srv.Password,
		From:      testFrom,
		Timeout:   5 * time.Second,
	}
	if edit != nil {
		edit(&o)
	}
	s, err := mail.NewSMTP(o)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

// asError fails the test unless err is a *mail.Error whose text holds none
// of secrets.
func asError(t *testing.T, err error, secrets ...string) *mail.Error {
	t.Helper()
	if err == nil {
		t.Fatal("succeeded, want an error")
	}
	var e *mail.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %q, want *mail.Error", err, err)
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("error %q reveals %q", err, secret)
		}
	}
	return e
}

func TestSMTPSend(t *testing.T) {
	tests := []struct {
		name string
		opts []mailtest.Option
	}{
		{"plain", nil},
		{"plain with auth", []mailtest.Option{mailtest.WithAuth()}},
		{"starttls", []mailtest.Option{mailtest.WithStartTLS()}},
		{"starttls with auth", []mailtest.Option{mailtest.WithStartTLS(), mailtest.WithAuth()}},
		{"implicit", []mailtest.Option{mailtest.WithImplicitTLS()}},
		{"implicit with auth", []mailtest.Option{mailtest.WithImplicitTLS(), mailtest.WithAuth()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts...)
			s := newSMTP(t, srv, nil)
			if err := s.Send(t.Context(), testMessage); err != nil {
				t.Fatalf("Send: %v", err)
			}
			mails := srv.Mails()
			if len(mails) != 1 {
				t.Fatalf("server got %d messages, want 1", len(mails))
			}
			got := mails[0]
			if got.Subject != testMessage.Subject || got.Text != testMessage.Text || got.HTML != testMessage.HTML {
				t.Errorf("got subject %q\ntext %q\nhtml %q\nwant %q\n%q\n%q", got.Subject, got.Text, got.HTML,
					testMessage.Subject, testMessage.Text, testMessage.HTML)
			}
			if got.From != "no-reply@login.example.com" || !slices.Equal(got.To, []string{testTo}) {
				t.Errorf("envelope from %q to %q", got.From, got.To)
			}
			from, err := netmail.ParseAddress(got.Header.Get("From"))
			if err != nil || from.Name != "Secure Sign-In" || from.Address != "no-reply@login.example.com" {
				t.Errorf("From header %q (%v), want %q", got.Header.Get("From"), err, testFrom)
			}
			if to := got.Header.Get("To"); to != "<"+testTo+">" && to != testTo {
				t.Errorf("To header %q, want %s", to, testTo)
			}
			if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative;") {
				t.Errorf("Content-Type %q, want multipart/alternative", ct)
			}
			if id := got.Header.Get("Message-Id"); !strings.HasSuffix(id, "@login.example.com>") {
				t.Errorf("Message-ID %q, want one at the sender's domain", id)
			}
			if got.Header.Get("Date") == "" || got.Header.Get("Auto-Submitted") != "auto-generated" {
				t.Errorf("Date %q, Auto-Submitted %q", got.Header.Get("Date"), got.Header.Get("Auto-Submitted"))
			}
			if ua := got.Header.Get("User-Agent") + got.Header.Get("X-Mailer"); ua != "" {
				t.Errorf("the message names the mailer: %q", ua)
			}
			if wantTLS := srv.TLS != "none"; got.TLS != wantTLS {
				t.Errorf("came over TLS %v, want %v", got.TLS, wantTLS)
			}
			if got.Auth != srv.Username {
				t.Errorf("authenticated as %q, want %q", got.Auth, srv.Username)
			}
		})
	}
}

func TestSMTPSendTextOnly(t *testing.T) {
	srv := mailtest.NewServer(t)
	m := testMessage
	m.HTML = ""
	// A line with a lone dot must not end the DATA early (dot-stuffing).
	m.Text = "first\n.\nMAIL FROM:<eve@example.com>\nlast\n"
	if err := newSMTP(t, srv, nil).Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.WaitFor(t, 1)
	if len(got) != 1 || got[0].Text != m.Text || got[0].HTML != "" {
		t.Errorf("got %d messages, text %q html %q; want one with text %q", len(got), got[0].Text, got[0].HTML, m.Text)
	}
}

func TestSMTPSendErrors(t *testing.T) {
	tests := []struct {
		name          string
		opts          []mailtest.Option
		prepare       func(*mailtest.Server)
		edit          func(srv *mailtest.Server, o *mail.SMTPOptions)
		wantCode      int
		wantTemporary bool
		wantText      string
	}{
		{
			name:     "wrong password",
			opts:     []mailtest.Option{mailtest.WithAuth()},
			edit:     func(_ *mailtest.Server, o *mail.SMTPOptions) { o.Password = "wrong-password-0123" },
			wantCode: 535,
		},
		{
			name:     "wrong password over STARTTLS",
			opts:     []mailtest.Option{mailtest.WithStartTLS(), mailtest.WithAuth()},
			edit:     func(_ *mailtest.Server, o *mail.SMTPOptions) { o.Password = "wrong-password-0123" },
			wantCode: 535,
		},
		{
			name:     "no credentials for a server that wants them",
			opts:     []mailtest.Option{mailtest.WithAuth()},
			edit:     func(_ *mailtest.Server, o *mail.SMTPOptions) { o.Username, o.Password = "", "" },
			wantCode: 502,
		},
		{
			name: "credentials for a server without AUTH",
			edit: func(_ *mailtest.Server, o *mail.SMTPOptions) {
				o.Username, o.Password = "mailer", "secret-password-0123"
			},
			wantText: "AUTH",
		},
		{
			name:          "451 at DATA",
			prepare:       func(srv *mailtest.Server) { srv.FailNext(451, "Try again later") },
			wantCode:      451,
			wantTemporary: true,
		},
		{
			name:     "554 at DATA",
			prepare:  func(srv *mailtest.Server) { srv.FailNext(554, "Rejected") },
			wantCode: 554,
		},
		{
			name:     "starttls against a server without STARTTLS",
			edit:     func(_ *mailtest.Server, o *mail.SMTPOptions) { o.TLS = "starttls" },
			wantText: "STARTTLS",
		},
		{
			name: "starttls against a server without STARTTLS, with credentials",
			opts: []mailtest.Option{mailtest.WithAuth()},
			edit: func(_ *mailtest.Server, o *mail.SMTPOptions) { o.TLS = "starttls" },
		},
		{
			name: "starttls with a certificate nobody vouches for",
			opts: []mailtest.Option{mailtest.WithStartTLS()},
			edit: func(_ *mailtest.Server, o *mail.SMTPOptions) { o.TLSConfig = nil },
		},
		{
			name: "implicit with a certificate nobody vouches for",
			opts: []mailtest.Option{mailtest.WithImplicitTLS()},
			edit: func(_ *mailtest.Server, o *mail.SMTPOptions) { o.TLSConfig = nil },
		},
		{
			name: "implicit against a plain server",
			edit: func(_ *mailtest.Server, o *mail.SMTPOptions) { o.TLS = "implicit" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts...)
			if tt.prepare != nil {
				tt.prepare(srv)
			}
			var password string
			s := newSMTP(t, srv, func(o *mail.SMTPOptions) {
				if tt.edit != nil {
					tt.edit(srv, o)
				}
				password = o.Password
			})
			err := s.Send(t.Context(), testMessage)
			e := asError(t, err, password, srv.Password, testLink)
			if e.Code != tt.wantCode || e.Temporary != tt.wantTemporary {
				t.Errorf("Code %d Temporary %v, want %d %v (%v)", e.Code, e.Temporary, tt.wantCode, tt.wantTemporary, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), srv.Addr()) {
				t.Errorf("error %q does not hold %q and the server %s", err, tt.wantText, srv.Addr())
			}
			if n := len(srv.Mails()); n != 0 {
				t.Errorf("server accepted %d messages, want 0", n)
			}
		})
	}
}

func TestSMTPServerDownAndUp(t *testing.T) {
	srv := mailtest.NewServer(t)
	s := newSMTP(t, srv, nil)
	srv.Down()
	start := time.Now()
	e := asError(t, s.Send(t.Context(), testMessage))
	if !e.Temporary {
		t.Errorf("connection refused is not Temporary: %v", e)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refused connection took %v", d)
	}
	srv.Up()
	if err := s.Send(t.Context(), testMessage); err != nil {
		t.Fatalf("Send after Up: %v", err)
	}
	srv.WaitFor(t, 1)
}

// stallingListener accepts connections and never says a word, like a
// firewall that drops packets or a hung server.
func stallingListener(t *testing.T) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
			close(done)
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	a := ln.Addr().(*net.TCPAddr)
	return "127.0.0.1", a.Port
}

func TestSMTPTimeoutAndContext(t *testing.T) {
	host, port := stallingListener(t)
	stalled := func(timeout time.Duration) *mail.SMTP {
		s, err := mail.NewSMTP(mail.SMTPOptions{Host: host, Port: port, TLS: "none", From: testFrom, Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     func(t *testing.T) context.Context
		want    error
		within  time.Duration
	}{
		{
			name:    "timeout",
			timeout: time.Second,
			ctx:     func(t *testing.T) context.Context { return t.Context() },
			want:    context.DeadlineExceeded,
			within:  3 * time.Second,
		},
		{
			name:    "cancelled while waiting",
			timeout: time.Minute,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx
			},
			want:   context.Canceled,
			within: 2 * time.Second,
		},
		{
			name:    "cancelled before",
			timeout: time.Minute,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			want:   context.Canceled,
			within: 100 * time.Millisecond,
		},
		{
			name:    "caller's deadline shorter than the timeout",
			timeout: time.Minute,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want:   context.DeadlineExceeded,
			within: 2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stalled(tt.timeout)
			for _, op := range []struct {
				name string
				run  func(context.Context) error
			}{
				{"Send", func(ctx context.Context) error { return s.Send(ctx, testMessage) }},
				{"Check", s.Check},
			} {
				start := time.Now()
				e := asError(t, op.run(tt.ctx(t)))
				if d := time.Since(start); d > tt.within {
					t.Errorf("%s returned after %v, want within %v", op.name, d, tt.within)
				}
				if !errors.Is(e, tt.want) || !e.Temporary {
					t.Errorf("%s: %v (Temporary %v), want %v and Temporary", op.name, e, e.Temporary, tt.want)
				}
			}
		})
	}
}

func TestSMTPRefusesHeaderInjection(t *testing.T) {
	tests := []struct {
		name string
		edit func(*mail.Message)
	}{
		{"subject with CRLF", func(m *mail.Message) { m.Subject = "Hello\r\nBcc: eve@example.com" }},
		{"subject with LF", func(m *mail.Message) { m.Subject = "Hello\nBcc: eve@example.com" }},
		{"subject with CR", func(m *mail.Message) { m.Subject = "Hello\rBcc: eve@example.com" }},
		{"to with CRLF", func(m *mail.Message) { m.To = testTo + "\r\nBcc: eve@example.com" }},
		{"to with LF", func(m *mail.Message) { m.To = testTo + "\nBcc: eve@example.com" }},
		{"two recipients", func(m *mail.Message) { m.To = testTo + ", eve@example.com" }},
		{"to with a display name", func(m *mail.Message) { m.To = "Alice <" + testTo + ">" }},
		{"to not an address", func(m *mail.Message) { m.To = "alice" }},
		{"empty to", func(m *mail.Message) { m.To = "" }},
		{"empty subject", func(m *mail.Message) { m.Subject = " " }},
		{"empty text", func(m *mail.Message) { m.Text = "" }},
	}
	srv := mailtest.NewServer(t)
	s := newSMTP(t, srv, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage
			tt.edit(&m)
			e := asError(t, s.Send(t.Context(), m))
			if e.Temporary {
				t.Errorf("Temporary for a message that can never be sent: %v", e)
			}
			if strings.ContainsAny(e.Error(), "\r\n") {
				t.Errorf("error %q holds a line break", e)
			}
		})
	}
	if n := len(srv.Mails()); n != 0 {
		t.Errorf("server accepted %d messages, want 0", n)
	}
}

func TestSMTPCheck(t *testing.T) {
	tests := []struct {
		name     string
		opts     []mailtest.Option
		edit     func(*mail.SMTPOptions)
		down     bool
		wantErr  bool
		wantCode int
	}{
		{name: "plain", opts: nil},
		{name: "starttls with auth", opts: []mailtest.Option{mailtest.WithStartTLS(), mailtest.WithAuth()}},
		{name: "implicit with auth", opts: []mailtest.Option{mailtest.WithImplicitTLS(), mailtest.WithAuth()}},
		{name: "down", down: true, wantErr: true},
		{name: "wrong password", opts: []mailtest.Option{mailtest.WithStartTLS(), mailtest.WithAuth()},
			edit: func(o *mail.SMTPOptions) { o.Password = "wrong-password-0123" }, wantErr: true, wantCode: 535},
		{name: "starttls against a server without it", edit: func(o *mail.SMTPOptions) { o.TLS = "starttls" }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tt.opts...)
			var password string
			s := newSMTP(t, srv, func(o *mail.SMTPOptions) {
				if tt.edit != nil {
					tt.edit(o)
				}
				password = o.Password
			})
			if tt.down {
				srv.Down()
			}
			err := s.Check(t.Context())
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
			} else if e := asError(t, err, password, srv.Password); e.Code != tt.wantCode {
				t.Errorf("Code %d, want %d (%v)", e.Code, tt.wantCode, e)
			}
			if n := len(srv.Mails()); n != 0 {
				t.Errorf("Check sent %d messages", n)
			}
		})
	}
}

func TestNewSMTPRefuses(t *testing.T) {
	good := mail.SMTPOptions{Host: "smtp.example.com", Port: 587, TLS: "starttls", From: testFrom,
		Username: "mailer", Password: "hunter2-but-longer"}
	tests := []struct {
		name    string
		edit    func(*mail.SMTPOptions)
		wantKey string
	}{
		{"missing host", func(o *mail.SMTPOptions) { o.Host = "" }, "email.smtp.host"},
		{"host with port", func(o *mail.SMTPOptions) { o.Host = "smtp.example.com:587" }, "email.smtp.host"},
		{"host with a line break", func(o *mail.SMTPOptions) { o.Host = "smtp.example.com\r\nX" }, "email.smtp.host"},
		{"port too high", func(o *mail.SMTPOptions) { o.Port = 70000 }, "email.smtp.port"},
		{"negative port", func(o *mail.SMTPOptions) { o.Port = -1 }, "email.smtp.port"},
		{"unknown tls", func(o *mail.SMTPOptions) { o.TLS = "ssl" }, "email.smtp.tls"},
		{"tls none off loopback", func(o *mail.SMTPOptions) { o.TLS = "none" }, "email.smtp.tls"},
		{"username without password", func(o *mail.SMTPOptions) { o.Password = "" }, "email.smtp.password"},
		{"password without username", func(o *mail.SMTPOptions) { o.Username = "" }, "email.smtp.username"},
		{"missing from", func(o *mail.SMTPOptions) { o.From = "" }, "email.from"},
		{"bad from", func(o *mail.SMTPOptions) { o.From = "Secure Sign-In" }, "email.from"},
		{"two froms", func(o *mail.SMTPOptions) { o.From = "a@example.com, b@example.com" }, "email.from"},
		{"negative timeout", func(o *mail.SMTPOptions) { o.Timeout = -time.Second }, "email.smtp.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.edit(&o)
			s, err := mail.NewSMTP(o)
			if err == nil {
				t.Fatalf("NewSMTP = %v, want an error", s)
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("error %q does not name %s", err, tt.wantKey)
			}
			if strings.Contains(err.Error(), good.Password) {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}

	t.Run("every problem at once", func(t *testing.T) {
		_, err := mail.NewSMTP(mail.SMTPOptions{TLS: "ssl", Port: -1, Password: "hunter2-but-longer"})
		for _, key := range []string{"email.smtp.host", "email.smtp.tls", "email.smtp.port", "email.smtp.username", "email.from"} {
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("error %v does not name %s", err, key)
			}
		}
	})

	t.Run("accepts", func(t *testing.T) {
		for _, edit := range []func(*mail.SMTPOptions){
			func(*mail.SMTPOptions) {},
			func(o *mail.SMTPOptions) { o.Username, o.Password = "", "" },
			func(o *mail.SMTPOptions) { o.Port, o.TLS = 0, "" }, // 587 and starttls
			func(o *mail.SMTPOptions) { o.Port, o.TLS = 465, "implicit" },
			func(o *mail.SMTPOptions) { o.Host, o.TLS = "localhost", "none" },
			func(o *mail.SMTPOptions) { o.Host, o.TLS = "127.0.0.1", "none" },
			func(o *mail.SMTPOptions) { o.Host, o.TLS = "::1", "none" },
			func(o *mail.SMTPOptions) { o.From = "no-reply@login.example.com" },
		} {
			o := good
			edit(&o)
			if _, err := mail.NewSMTP(o); err != nil {
				t.Errorf("NewSMTP(Host %q TLS %q Port %d From %q): %v", o.Host, o.TLS, o.Port, o.From, err)
			}
		}
	})
}

func TestFromConfig(t *testing.T) {
	srv := mailtest.NewServer(t)
	tests := []struct {
		name    string
		cfg     config.EmailConfig
		want    string // the sender's type; empty: nil
		wantErr bool
	}{
		{name: "none", cfg: config.EmailConfig{Provider: "none"}},
		{name: "empty", cfg: config.EmailConfig{}},
		{name: "console", cfg: config.EmailConfig{Provider: "console", From: testFrom}, want: "mail.Console"},
		{name: "smtp", cfg: config.EmailConfig{Provider: "smtp", From: testFrom,
			SMTP: config.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: "none", Timeout: 5 * time.Second}}, want: "*mail.SMTP"},
		{name: "smtp without host", cfg: config.EmailConfig{Provider: "smtp", From: testFrom,
			SMTP: config.SMTPConfig{Port: 587, TLS: "starttls", Timeout: 5 * time.Second}}, wantErr: true},
		{name: "unknown", cfg: config.EmailConfig{Provider: "pigeon"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := mail.FromConfig(tt.cfg, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("FromConfig: %v, want error %v", err, tt.wantErr)
			}
			if got := typeName(s); got != tt.want {
				t.Errorf("sender %s, want %q", got, tt.want)
			}
		})
	}

	t.Run("smtp sends", func(t *testing.T) {
		cfg := config.Defaults().Email
		cfg.Provider, cfg.From = "smtp", testFrom
		cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.TLS = srv.Host, srv.Port, "none"
		s, err := mail.FromConfig(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(t.Context(), testMessage); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := srv.Last(t); got.Subject != testMessage.Subject {
			t.Errorf("got %+v", got)
		}
	})
}

func typeName(s mail.Sender) string {
	switch s.(type) {
	case nil:
		return ""
	case mail.Console:
		return "mail.Console"
	case *mail.SMTP:
		return "*mail.SMTP"
	}
	return "unknown"
}
