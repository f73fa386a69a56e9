package idp_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/storage"
)

// The browsers of this test say who they are, as real ones do.
const (
	chromeOnLinux  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	edgeOnWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
	safariOnIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

// withUserAgent makes b send ua on every request.
func withUserAgent(b *idptest.Browser, ua string) *idptest.Browser {
	b.Client.Transport = userAgentTransport{ua: ua, next: http.DefaultTransport}
	return b
}

type userAgentTransport struct {
	ua   string
	next http.RoundTripper
}

func (t userAgentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", t.ua)
	return t.next.RoundTrip(r)
}

// activityEntry is one event of "Recent security activity" as the page shows it.
type activityEntry struct{ label, when, device, ip string }

var (
	activitySectionRE = regexp.MustCompile(`(?s)<section[^>]*id="activity".*?</section>`)
	activityItemRE    = regexp.MustCompile(`(?s)<li>\s*<p class="device-name">(.*?)</p>(.*?)</li>`)
	activityFieldRE   = regexp.MustCompile(`(?s)<dt>(.*?)</dt>\s*<dd>(.*?)</dd>`)
)

// activity reads the account page's "Recent security activity", newest
// first, and the section's whole text.
func activity(t *testing.T, p *idptest.Page) ([]activityEntry, string) {
	t.Helper()
	section := activitySectionRE.FindString(p.Body)
	if section == "" || !strings.Contains(section, "Recent security activity") {
		t.Fatalf("account page has no Recent security activity section:\n%s", p.Body)
	}
	if devices := strings.Index(p.Body, "Remembered devices"); devices < 0 || strings.Index(p.Body, section) < devices {
		t.Errorf("Recent security activity is not after Remembered devices")
	}
	var entries []activityEntry
	for _, m := range activityItemRE.FindAllStringSubmatch(section, -1) {
		e := activityEntry{label: unescapeHTML(m[1])}
		for _, f := range activityFieldRE.FindAllStringSubmatch(m[2], -1) {
			switch f[1] {
			case "When":
				e.when = f[2]
			case "Device":
				e.device = f[2]
			case "IP address":
				e.ip = f[2]
			}
		}
		entries = append(entries, e)
	}
	return entries, section
}

func labels(entries []activityEntry) []string {
	var l []string
	for _, e := range entries {
		l = append(l, e.label)
	}
	return l
}

// TestAccountActivity: a failed attempt, the login and turning 2-Factor
// Auth on appear on the user's account page, newest first, with when, from
// which browser and IP; another user's events do not.
func TestAccountActivity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, _ := setup(t, b)
		env.AddUser("bob", "bob's long passphrase")

		// Bob, on another computer: a wrong password, then a login.
		bobBrowser := withUserAgent(env.NewBrowser(), edgeOnWindows)
		p := bobBrowser.Follow(env.Issuer, bobBrowser.Get(env.Issuer+"/account"))
		form := p.Form()
		form.Set("username", "bob")
		form.Set("password", "not bob's password")
		if p := bobBrowser.Post(env.Issuer+"/login/password", form); p.Status != http.StatusUnauthorized {
			t.Fatalf("bob's wrong password: %s", p)
		}
		env.Clock.Advance(time.Minute)
		loginToAccount(t, env, withUserAgent(env.NewBrowser(), edgeOnWindows), "bob", "bob's long passphrase", nil)

		// Alice mistypes her password once, then logs in.
		env.Clock.Advance(time.Hour)
		failedAt := env.Clock.Now()
		br := withUserAgent(env.NewBrowser(), chromeOnLinux)
		p = br.Follow(env.Issuer, br.Get(env.Issuer+"/account"))
		form = p.Form()
		form.Set("username", "alice")
		form.Set("password", "not alice's password")
		if p := br.Post(env.Issuer+"/login/password", form); p.Status != http.StatusUnauthorized {
			t.Fatalf("alice's wrong password: %s", p)
		}
		env.Clock.Advance(2 * time.Minute)
		loggedInAt := env.Clock.Now()
		br = withUserAgent(env.NewBrowser(), chromeOnLinux)
		p = loginToAccount(t, env, br, "alice", alicePassword, nil)

		entries, section := activity(t, p)
		want := []activityEntry{
			{"New sign-in", formatDate(loggedInAt), "Chrome on Linux", "127.0.0.1"},
			{"Failed sign-in attempt", formatDate(failedAt), "Chrome on Linux", "127.0.0.1"},
		}
		if !slices.Equal(entries, want) {
			t.Errorf("activity after the login:\n got %q\nwant %q", entries, want)
		}
		if !strings.Contains(section, "Not you?") || !strings.Contains(section, "Change your password") || !strings.Contains(section, "contact support") {
			t.Errorf("activity section lacks the line telling the user what to do:\n%s", section)
		}

		// Alice turns 2-Factor Auth on; the page then lists it first.
		env.Clock.Advance(5 * time.Minute)
		enabledAt := env.Clock.Now()
		enrol(t, env, br, p)
		p = br.Get(env.Issuer + "/account")
		if p.Status != http.StatusOK {
			t.Fatalf("account page after enrolment: %s", p)
		}
		entries, section = activity(t, p)
		if got, want := labels(entries), []string{"2-Factor Auth turned on", "New sign-in", "Failed sign-in attempt"}; !slices.Equal(got, want) {
			t.Errorf("activity after enrolment: %q, want %q", got, want)
		}
		if len(entries) > 0 && (entries[0].when != formatDate(enabledAt) || entries[0].device != "Chrome on Linux" || entries[0].ip != "127.0.0.1") {
			t.Errorf("2-Factor Auth turned on: %+v, want it at %s from Chrome on Linux, 127.0.0.1", entries[0], formatDate(enabledAt))
		}
		// The enrolment's other events (the recovery codes made with it)
		// are not listed, nor is any of bob's.
		if strings.Contains(section, "Edge on Windows") || strings.Count(section, "Failed sign-in attempt") != 1 {
			t.Errorf("alice's page shows bob's events:\n%s", section)
		}

		// A login with the new second factor is listed too; bob's page has
		// only his own events.
		env.Clock.Advance(time.Minute)
		bobPage := loginToAccount(t, env, withUserAgent(env.NewBrowser(), edgeOnWindows), "bob", "bob's long passphrase", nil)
		bobEntries, bobSection := activity(t, bobPage)
		if got, want := labels(bobEntries), []string{"New sign-in", "New sign-in", "Failed sign-in attempt"}; !slices.Equal(got, want) {
			t.Errorf("bob's activity: %q, want %q", got, want)
		}
		if strings.Contains(bobSection, "Chrome on Linux") || strings.Contains(bobSection, "2-Factor Auth") {
			t.Errorf("bob's page shows alice's events:\n%s", bobSection)
		}
	})
}

// TestAccountActivityCurated: the page shows the ten newest of the curated
// events, each with its label, skips the rest of the log, and makes up no
// browser for an operator's command.
func TestAccountActivityCurated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, _ := setup(t, b)
		ctx := context.Background()
		alice, err := env.Store.UserByUsername(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		start := env.Clock.Now().Add(-24 * time.Hour)
		n := 0
		add := func(e storage.AuditEvent) {
			t.Helper()
			n++
			e.Time, e.UserID, e.Username = start.Add(time.Duration(n)*time.Minute), alice.ID, "alice"
			if e.Actor == "" {
				e.Actor, e.UserAgent = "user", safariOnIPhone
			}
			if e.IP == "" && e.Actor == "user" {
				e.IP = fmt.Sprintf("198.51.100.%d", n)
			}
			if e.Result == "" {
				e.Result = "success"
			}
			if err := env.Store.AppendAudit(ctx, &e); err != nil {
				t.Fatal(err)
			}
		}
		// Older than the ten shown: not listed.
		add(storage.AuditEvent{Type: "user.email_changed"})
		// The ten newest curated ones (with the login below), oldest first,
		// and between them events the page does not show.
		add(storage.AuditEvent{Type: "user.phone_verified"})
		add(storage.AuditEvent{Type: "mfa.reset", Actor: "operator"})
		add(storage.AuditEvent{Type: "password.reset"})
		add(storage.AuditEvent{Type: "mfa.passed"})
		add(storage.AuditEvent{Type: "user.password_changed"})
		add(storage.AuditEvent{Type: "sms.sent"})
		add(storage.AuditEvent{Type: "user.phone_removed"})
		add(storage.AuditEvent{Type: "mfa.security_key_added", Details: map[string]string{"name": "YubiKey 5C"}})
		add(storage.AuditEvent{Type: "mfa.security_key_add_failed", Result: "failure"})
		add(storage.AuditEvent{Type: "mfa.security_key_removed", Details: map[string]string{"name": "Old key"}})
		add(storage.AuditEvent{Type: "mfa.totp_disabled", Result: "failure"}) // did not happen
		add(storage.AuditEvent{Type: "mfa.totp_disabled"})
		add(storage.AuditEvent{Type: "mfa.recovery_code_used"})
		for range 30 {
			add(storage.AuditEvent{Type: "mfa.failed", Result: "failure"})
		}
		// Another user's newer events are not hers.
		if err := env.Store.AppendAudit(ctx, &storage.AuditEvent{Time: env.Clock.Now(), Type: "mfa.totp_enabled", Actor: "user",
			UserID: "someone-else", Username: "bob", Result: "success"}); err != nil {
			t.Fatal(err)
		}

		p := loginToAccount(t, env, withUserAgent(env.NewBrowser(), chromeOnLinux), "alice", alicePassword, nil)
		entries, _ := activity(t, p)
		want := []string{
			"New sign-in",
			"Recovery code used",
			"2-Factor Auth turned off",
			"Security key removed: Old key",
			"Security key added: YubiKey 5C",
			"Cell phone removed",
			"Password changed",
			"Password reset",
			"Second factors reset by support",
			"Cell phone added",
		}
		if got := labels(entries); !slices.Equal(got, want) {
			t.Fatalf("activity:\n got %q\nwant %q", got, want)
		}
		if e := entries[1]; e.device != "Safari on iPhone" || e.ip != "198.51.100.14" || e.when != formatDate(start.Add(14*time.Minute)) {
			t.Errorf("Recovery code used: %+v", e)
		}
		if e := entries[8]; e.device != "" || e.ip != "" || e.when != formatDate(start.Add(3*time.Minute)) {
			t.Errorf("an operator's reset shows a device or IP: %+v", e)
		}
	})
}

// formatDate is how the account pages write a time.
func formatDate(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }
