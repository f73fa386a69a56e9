package mail_test

import (
	"flag"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/mail"
	"github.com/hostportal/idp/mail/mailtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	sampleLink    = "https://login.example.com/reset?token=Zm9v&user=alice"
	sampleConfirm = "https://login.example.com/confirm-email?token=YmFy"
	sampleAccount = "https://login.example.com/account"
	evilUsername  = `<script>alert("x")</script>`
)

// samples is one message of each kind, with what it must say.
var samples = []struct {
	name    string
	content mail.Content
	subject string
	links   []string // every link the HTML may hold
	says    []string // in both bodies (HTML-escaped in the HTML)
}{
	{
		name:    "reset_link",
		content: mail.ResetLink{Issuer: "login.example.com", Username: "alice", Link: sampleLink, Expires: time.Hour},
		subject: "Reset your password",
		links:   []string{sampleLink},
		says:    []string{"alice", "login.example.com", sampleLink, "within 1 hour", "did not ask"},
	},
	{
		name:    "confirm_email",
		content: mail.ConfirmEmail{Issuer: "login.example.com", Username: "alice", Link: sampleConfirm, Expires: 48 * time.Hour},
		subject: "Confirm your e-mail address",
		links:   []string{sampleConfirm},
		says:    []string{"alice", "login.example.com", sampleConfirm, "within 2 days", "confirm"},
	},
	{
		name: "notice",
		content: mail.Notice{Issuer: "login.example.com", Username: "alice", What: "Two-step verification was turned off",
			When: "2 May 2025, 14:03 UTC", IP: "203.0.113.7", Device: "Firefox on Windows", AccountURL: sampleAccount},
		subject: "Security alert: Two-step verification was turned off",
		links:   []string{sampleAccount},
		says: []string{"alice", "Two-step verification was turned off", "2 May 2025, 14:03 UTC", "203.0.113.7",
			"Firefox on Windows", sampleAccount, "wasn't you", "Reset your password", "Forgot password?", "support"},
	},
}

func TestLoad(t *testing.T) {
	if err := mail.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

var (
	attrURL  = regexp.MustCompile(`(?i)\b(?:href|src|action|background)\s*=\s*"([^"]*)"`)
	cssURL   = regexp.MustCompile(`(?i)url\(`)
	imageTag = regexp.MustCompile(`(?i)<(img|picture|video|audio|iframe|object|embed|link|script)\b`)
)

func TestRender(t *testing.T) {
	for _, tt := range samples {
		t.Run(tt.name, func(t *testing.T) {
			subject, text, htmlBody, err := mail.Render(tt.content)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if subject != tt.subject {
				t.Errorf("subject %q, want %q", subject, tt.subject)
			}
			for _, s := range tt.says {
				if !strings.Contains(text, s) {
					t.Errorf("text does not say %q:\n%s", s, text)
				}
				if !strings.Contains(htmlBody, s) && !strings.Contains(htmlBody, html.EscapeString(s)) {
					t.Errorf("HTML does not say %q:\n%s", s, htmlBody)
				}
			}
			// No images, scripts or stylesheets from anywhere, and no links but the caller's.
			if m := imageTag.FindString(htmlBody); m != "" {
				t.Errorf("HTML holds %s", m)
			}
			if cssURL.MatchString(htmlBody) {
				t.Error("HTML loads something through CSS url()")
			}
			for _, m := range attrURL.FindAllStringSubmatch(htmlBody, -1) {
				link := html.UnescapeString(m[1])
				if !slices.Contains(tt.links, link) {
					t.Errorf("HTML links to %q, which the caller did not pass", link)
				}
			}
			golden(t, tt.name+".txt", text)
			golden(t, tt.name+".html", htmlBody)
		})
	}
}

// golden compares got with testdata/name.golden; go test -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", name, path, got)
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	for _, c := range []mail.Content{
		mail.ResetLink{Issuer: "<b>idp</b>", Username: evilUsername, Link: sampleLink},
		mail.ConfirmEmail{Issuer: "<b>idp</b>", Username: evilUsername, Link: sampleLink},
		mail.Notice{Issuer: "<b>idp</b>", Username: evilUsername, What: "A <i>key</i> was added", When: "<now>",
			IP: "<ip>", Device: `"><script>x</script>`, AccountURL: sampleAccount},
	} {
		_, text, htmlBody, err := mail.Render(c)
		if err != nil {
			t.Fatalf("Render(%T): %v", c, err)
		}
		for _, raw := range []string{"<script", "<b>idp", "<i>key", "<now>", "<ip>"} {
			if strings.Contains(htmlBody, raw) {
				t.Errorf("%T: HTML holds %q unescaped", c, raw)
			}
		}
		if !strings.Contains(htmlBody, "&lt;script&gt;") {
			t.Errorf("%T: HTML lacks the escaped username", c)
		}
		if !strings.Contains(text, evilUsername) {
			t.Errorf("%T: text lacks the username as it is", c)
		}
	}
}

func TestRenderNoticeSubjectIsOneLine(t *testing.T) {
	subject, _, _, err := mail.Render(mail.Notice{Issuer: "idp", What: "A key\r\nBcc: eve@example.com\twas added", When: "now"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Security alert: A key Bcc: eve@example.com was added"; subject != want {
		t.Errorf("subject %q, want %q", subject, want)
	}
}

func TestRenderNoticeWithoutOptionalFields(t *testing.T) {
	_, text, htmlBody, err := mail.Render(mail.Notice{Issuer: "idp", Username: "alice", What: "Your password was changed", When: "now"})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{text, htmlBody} {
		if strings.Contains(body, "From") || strings.Contains(body, "href") {
			t.Errorf("a notice without IP, device and account URL says From or links:\n%s", body)
		}
		if !strings.Contains(body, "Forgot password?") {
			t.Errorf("no way to reset the password:\n%s", body)
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	for _, tt := range []struct {
		name    string
		content mail.Content
	}{
		{"reset without link", mail.ResetLink{Issuer: "idp"}},
		{"reset with relative link", mail.ResetLink{Issuer: "idp", Link: "/reset?token=x"}},
		{"reset with javascript link", mail.ResetLink{Issuer: "idp", Link: "javascript:alert(1)"}},
		{"confirm with ftp link", mail.ConfirmEmail{Issuer: "idp", Link: "ftp://login.example.com/x"}},
		{"confirm without link", mail.ConfirmEmail{Issuer: "idp"}},
		{"notice without what", mail.Notice{Issuer: "idp", When: "now"}},
		{"notice with a data URL", mail.Notice{Issuer: "idp", What: "x", AccountURL: "data:text/html,hi"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, _, err := mail.Render(tt.content); err == nil {
				t.Error("rendered, want an error")
			}
		})
	}
}

// A rendered message goes through SMTP and arrives with both parts intact.
func TestRenderedMessageThroughSMTP(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithStartTLS())
	s := newSMTP(t, srv, nil)
	for _, tt := range samples {
		subject, text, htmlBody, err := mail.Render(tt.content)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(t.Context(), mail.Message{To: testTo, Subject: subject, Text: text, HTML: htmlBody}); err != nil {
			t.Fatalf("Send %s: %v", tt.name, err)
		}
		got := srv.Last(t)
		if got.Subject != subject || got.Text != text || got.HTML != htmlBody {
			t.Errorf("%s arrived changed:\nsubject %q\ntext %q\nhtml %q", tt.name, got.Subject, got.Text, got.HTML)
		}
	}
}
