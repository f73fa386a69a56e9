package sms_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostportal/idp/mfa/sms"
	"github.com/hostportal/idp/mfa/sms/smstest"
)

const (
	testTo   = "+14155550123"
	testBody = "Your login code is 493027"
)

// newTwilio returns a provider talking to fake, after edit adjusts its options.
func newTwilio(t *testing.T, fake *smstest.Twilio, edit func(*sms.TwilioOptions)) *sms.Twilio {
	t.Helper()
	o := sms.TwilioOptions{
		AccountSID: fake.AccountSID,
		AuthToken:  fake.AuthToken,
		From:       fake.From,
		APIURL:     fake.URL,
	}
	if edit != nil {
		edit(&o)
	}
	tw, err := sms.NewTwilio(o)
	if err != nil {
		t.Fatalf("NewTwilio: %v", err)
	}
	return tw
}

// asError fails the test unless err is an *sms.Error that keeps the message
// body and the auth token out of its text.
func asError(t *testing.T, err error, token string) *sms.Error {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	var e *sms.Error
	if !errors.As(err, &e) {
		t.Fatalf("Send error %T %q, want *sms.Error", err, err)
	}
	if e.Provider != "twilio" {
		t.Errorf("Provider = %q, want twilio", e.Provider)
	}
	for _, secret := range []string{testBody, "493027", token} {
		if strings.Contains(err.Error(), secret) || strings.Contains(e.Message, secret) {
			t.Errorf("error %q reveals %q", err, secret)
		}
	}
	return e
}

func TestTwilioSend(t *testing.T) {
	service := "MG" + strings.Repeat("0123456789abcdef", 2)
	tests := []struct {
		name        string
		from        func(fake *smstest.Twilio) string
		wantFrom    func(fake *smstest.Twilio) string
		wantService string
	}{
		{
			name:     "sender number",
			from:     func(f *smstest.Twilio) string { return f.From },
			wantFrom: func(f *smstest.Twilio) string { return f.From },
		},
		{
			name:     "alphanumeric sender",
			from:     func(*smstest.Twilio) string { return "HostPortal" },
			wantFrom: func(*smstest.Twilio) string { return "HostPortal" },
		},
		{
			name:        "messaging service",
			from:        func(*smstest.Twilio) string { return service },
			wantFrom:    func(*smstest.Twilio) string { return "" },
			wantService: service,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := smstest.NewTwilio(t)
			tw := newTwilio(t, fake, func(o *sms.TwilioOptions) { o.From = tt.from(fake) })
			if err := tw.Send(t.Context(), testTo, testBody); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if n := fake.Count(); n != 1 {
				t.Fatalf("fake got %d messages, want 1", n)
			}
			got := fake.Last(t)
			want := smstest.Message{To: testTo, From: tt.wantFrom(fake), MessagingServiceSID: tt.wantService, Body: testBody, Time: got.Time}
			if got != want {
				t.Errorf("fake got %+v, want %+v", got, want)
			}
		})
	}
}

func TestTwilioSendErrors(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		body          string
		wantStatus    int
		wantCode      int
		wantMessage   string
		wantTemporary bool
	}{
		{
			name:        "invalid To",
			status:      400,
			body:        smstest.TwilioError(21211, 400, "The 'To' number +1415555 is not a valid phone number."),
			wantStatus:  400,
			wantCode:    21211,
			wantMessage: "The 'To' number +1415555 is not a valid phone number.",
		},
		{
			name:        "unsubscribed recipient",
			status:      400,
			body:        smstest.TwilioError(21610, 400, "Attempt to send to unsubscribed recipient"),
			wantStatus:  400,
			wantCode:    21610,
			wantMessage: "Attempt to send to unsubscribed recipient",
		},
		{
			name:          "rate limited",
			status:        429,
			body:          smstest.TwilioError(20429, 429, "Too Many Requests"),
			wantStatus:    429,
			wantCode:      20429,
			wantMessage:   "Too Many Requests",
			wantTemporary: true,
		},
		{
			name:          "service unavailable",
			status:        503,
			body:          smstest.TwilioError(20503, 503, "Service Unavailable"),
			wantStatus:    503,
			wantCode:      20503,
			wantMessage:   "Service Unavailable",
			wantTemporary: true,
		},
		{
			name:          "non-JSON 500",
			status:        500,
			body:          "oops",
			wantStatus:    500,
			wantTemporary: true,
		},
		{
			name:       "non-JSON 400",
			status:     400,
			body:       "<html>bad request</html>",
			wantStatus: 400,
		},
		{
			// The HTTP status is the truth, whatever the body says.
			name:          "JSON error without status",
			status:        502,
			body:          `{}`,
			wantStatus:    502,
			wantTemporary: true,
		},
		{
			name:       "success that is not a message",
			status:     201,
			body:       `{}`,
			wantStatus: 201,
		},
		{
			name:       "success that is not JSON",
			status:     200,
			body:       "queued",
			wantStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := smstest.NewTwilio(t)
			tw := newTwilio(t, fake, nil)
			fake.FailNext(tt.status, tt.body)
			e := asError(t, tw.Send(t.Context(), testTo, testBody), fake.AuthToken)
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Message != tt.wantMessage || e.Temporary != tt.wantTemporary {
				t.Errorf("got Status %d, Code %d, Message %q, Temporary %v; want %d, %d, %q, %v",
					e.Status, e.Code, e.Message, e.Temporary, tt.wantStatus, tt.wantCode, tt.wantMessage, tt.wantTemporary)
			}
			if n := fake.Requests(); n != 1 {
				t.Errorf("fake got %d requests, want exactly 1 (no retry)", n)
			}
			if n := fake.Count(); n != 0 {
				t.Errorf("fake recorded %d messages, want 0", n)
			}
			// The next message goes through: the failure did not poison
			// the provider or its connections.
			if err := tw.Send(t.Context(), testTo, testBody); err != nil {
				t.Fatalf("Send after failure: %v", err)
			}
		})
	}
}

func TestTwilioErrorText(t *testing.T) {
	fake := smstest.NewTwilio(t)
	tw := newTwilio(t, fake, nil)
	fake.FailNext(400, smstest.TwilioError(21211, 400, "The 'To' number +1415555 is not a valid phone number."))
	err := tw.Send(t.Context(), testTo, testBody)
	want := "twilio: status 400, error 21211: The 'To' number +1415555 is not a valid phone number."
	if err == nil || err.Error() != want {
		t.Errorf("Send error %q, want %q", err, want)
	}
}

func TestTwilioWrongCredentials(t *testing.T) {
	tests := []struct {
		name string
		edit func(*sms.TwilioOptions)
	}{
		{"wrong token", func(o *sms.TwilioOptions) { o.AuthToken = strings.Repeat("0", 32) }},
		{"wrong account", func(o *sms.TwilioOptions) { o.AccountSID = "AC" + strings.Repeat("0", 32) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := smstest.NewTwilio(t)
			tw := newTwilio(t, fake, tt.edit)
			e := asError(t, tw.Send(t.Context(), testTo, testBody), fake.AuthToken)
			if e.Status != 401 || e.Code != 20003 || e.Temporary {
				t.Errorf("got Status %d, Code %d, Temporary %v; want 401, 20003, false", e.Status, e.Code, e.Temporary)
			}
			if n := fake.Count(); n != 0 {
				t.Errorf("fake recorded %d messages, want 0", n)
			}
		})
	}
}

func TestTwilioNoAnswer(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		fake := smstest.NewTwilio(t)
		fake.SetDelay(2 * time.Second)
		tw := newTwilio(t, fake, func(o *sms.TwilioOptions) { o.Timeout = 200 * time.Millisecond })
		start := time.Now()
		e := asError(t, tw.Send(t.Context(), testTo, testBody), fake.AuthToken)
		// A generous bound: the point is not waiting for the 2s answer.
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("Send took %v with a 200ms timeout", d)
		}
		if !e.Temporary || e.Status != 0 {
			t.Errorf("got Temporary %v, Status %d; want true, 0", e.Temporary, e.Status)
		}
		if !errors.Is(e, context.DeadlineExceeded) {
			t.Errorf("error %q is not context.DeadlineExceeded", e)
		}
		if !strings.Contains(e.Error(), fake.URL) {
			t.Errorf("error %q does not name the URL it went to (%s)", e, fake.URL)
		}
	})

	t.Run("context cancelled while waiting", func(t *testing.T) {
		fake := smstest.NewTwilio(t)
		fake.SetDelay(time.Minute)
		tw := newTwilio(t, fake, nil) // default 10s timeout: ctx must win
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		e := asError(t, tw.Send(ctx, testTo, testBody), fake.AuthToken)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Send took %v after its context ended", d)
		}
		if !e.Temporary || !errors.Is(e, context.DeadlineExceeded) {
			t.Errorf("got Temporary %v, error %q; want true, context.DeadlineExceeded", e.Temporary, e)
		}
	})

	t.Run("context cancelled before", func(t *testing.T) {
		fake := smstest.NewTwilio(t)
		tw := newTwilio(t, fake, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		e := asError(t, tw.Send(ctx, testTo, testBody), fake.AuthToken)
		if !errors.Is(e, context.Canceled) {
			t.Errorf("error %q is not context.Canceled", e)
		}
		if n := fake.Requests(); n != 0 {
			t.Errorf("fake got %d requests, want 0", n)
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		fake := smstest.NewTwilio(t) // for credentials only
		tw := newTwilio(t, fake, func(o *sms.TwilioOptions) { o.APIURL = "http://" + addr })
		e := asError(t, tw.Send(t.Context(), testTo, testBody), fake.AuthToken)
		if !e.Temporary || e.Status != 0 {
			t.Errorf("got Temporary %v, Status %d; want true, 0", e.Temporary, e.Status)
		}
	})
}

// A 3xx must neither be followed (that would POST the message again) nor,
// as twilio-go would have it, be taken for a success.
func TestTwilioRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			fake := smstest.NewTwilio(t)
			var hits int
			var mu sync.Mutex
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits++
				mu.Unlock()
				http.Redirect(w, r, fake.URL+r.URL.Path, status)
			}))
			t.Cleanup(redirector.Close)
			tw := newTwilio(t, fake, func(o *sms.TwilioOptions) { o.APIURL = redirector.URL })
			e := asError(t, tw.Send(t.Context(), testTo, testBody), fake.AuthToken)
			if e.Status != status || e.Temporary {
				t.Errorf("got Status %d, Temporary %v; want %d, false", e.Status, e.Temporary, status)
			}
			mu.Lock()
			defer mu.Unlock()
			if hits != 1 || fake.Requests() != 0 {
				t.Errorf("redirector got %d requests, fake %d; want 1, 0", hits, fake.Requests())
			}
		})
	}
}

func TestTwilioAPIURLPathPrefix(t *testing.T) {
	for _, prefix := range []string{"/twilio", "/twilio/", "/a%20b"} {
		t.Run(prefix, func(t *testing.T) {
			fake := smstest.NewTwilio(t)
			target, err := url.Parse(fake.URL)
			if err != nil {
				t.Fatal(err)
			}
			proxy := httputil.NewSingleHostReverseProxy(target)
			strip, err := url.PathUnescape(strings.TrimSuffix(prefix, "/"))
			if err != nil {
				t.Fatal(err)
			}
			gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasPrefix(r.URL.Path, strip+"/2010-04-01/") {
					http.NotFound(w, r)
					return
				}
				http.StripPrefix(strip, proxy).ServeHTTP(w, r)
			}))
			t.Cleanup(gateway.Close)

			tw := newTwilio(t, fake, func(o *sms.TwilioOptions) { o.APIURL = gateway.URL + prefix })
			if err := tw.Send(t.Context(), testTo, testBody); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := fake.Last(t); got.To != testTo || got.Body != testBody {
				t.Errorf("fake got %+v", got)
			}
		})
	}
}

func TestTwilioConcurrentSends(t *testing.T) {
	fake := smstest.NewTwilio(t)
	tw := newTwilio(t, fake, nil)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- tw.Send(t.Context(), testTo, testBody) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	if got := fake.Count(); got != n {
		t.Errorf("fake got %d messages, want %d", got, n)
	}
}

func TestTwilioSendRefusesLocally(t *testing.T) {
	tests := []struct{ name, to, body string }{
		{"to without plus", "14155550123", testBody},
		{"to with spaces", "+1 415 555 0123", testBody},
		{"empty to", "", testBody},
		{"empty body", testTo, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := smstest.NewTwilio(t)
			tw := newTwilio(t, fake, nil)
			e := asError(t, tw.Send(t.Context(), tt.to, tt.body), fake.AuthToken)
			if e.Temporary {
				t.Error("Temporary = true for a message that can never be sent")
			}
			if n := fake.Requests(); n != 0 {
				t.Errorf("fake got %d requests, want 0", n)
			}
		})
	}
}

func TestNewTwilioRefuses(t *testing.T) {
	good := sms.TwilioOptions{
		AccountSID: "AC" + strings.Repeat("0123456789abcdef", 2),
		AuthToken:  strings.Repeat("f", 32),
		From:       "+15005550006",
	}
	tests := []struct {
		name    string
		edit    func(*sms.TwilioOptions)
		wantKey string
	}{
		{"missing account SID", func(o *sms.TwilioOptions) { o.AccountSID = "" }, "sms.twilio.account_sid"},
		{"account SID with a dash", func(o *sms.TwilioOptions) { o.AccountSID = "AC" + strings.Repeat("0", 31) + "-" }, "sms.twilio.account_sid"},
		{"API key SID", func(o *sms.TwilioOptions) { o.AccountSID = "SK" + strings.Repeat("0", 32) }, "sms.twilio.account_sid"},
		{"short account SID", func(o *sms.TwilioOptions) { o.AccountSID = "AC123" }, "sms.twilio.account_sid"},
		{"missing token", func(o *sms.TwilioOptions) { o.AuthToken = "" }, "sms.twilio.auth_token"},
		{"token with symbols", func(o *sms.TwilioOptions) { o.AuthToken = "abc$def" }, "sms.twilio.auth_token"},
		{"missing from", func(o *sms.TwilioOptions) { o.From = "" }, "sms.twilio.from"},
		{"from with letters and plus", func(o *sms.TwilioOptions) { o.From = "+1415CALLME" }, "sms.twilio.from"},
		{"from alphanumeric too long", func(o *sms.TwilioOptions) { o.From = "HostPortalIDP" }, "sms.twilio.from"},
		{"api_url not a URL", func(o *sms.TwilioOptions) { o.APIURL = "://x" }, "sms.twilio.api_url"},
		{"api_url relative", func(o *sms.TwilioOptions) { o.APIURL = "api.twilio.com" }, "sms.twilio.api_url"},
		{"api_url ftp", func(o *sms.TwilioOptions) { o.APIURL = "ftp://api.twilio.com" }, "sms.twilio.api_url"},
		{"api_url http off loopback", func(o *sms.TwilioOptions) { o.APIURL = "http://api.twilio.com" }, "sms.twilio.api_url"},
		{"api_url with credentials", func(o *sms.TwilioOptions) { o.APIURL = "https://u:p@api.twilio.com" }, "sms.twilio.api_url"},
		{"api_url with query", func(o *sms.TwilioOptions) { o.APIURL = "https://api.twilio.com/?x=1" }, "sms.twilio.api_url"},
		{"negative timeout", func(o *sms.TwilioOptions) { o.Timeout = -time.Second }, "sms.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.edit(&o)
			tw, err := sms.NewTwilio(o)
			if err == nil {
				t.Fatalf("NewTwilio(%+v) = %v, want an error", o, tw)
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("error %q does not name %s", err, tt.wantKey)
			}
			if strings.Contains(err.Error(), o.AuthToken) && o.AuthToken != "" {
				t.Errorf("error %q reveals the auth token", err)
			}
		})
	}

	t.Run("every problem at once", func(t *testing.T) {
		_, err := sms.NewTwilio(sms.TwilioOptions{APIURL: "ftp://x"})
		if err == nil {
			t.Fatal("NewTwilio of nothing succeeded")
		}
		for _, key := range []string{"sms.twilio.account_sid", "sms.twilio.auth_token", "sms.twilio.from", "sms.twilio.api_url"} {
			if !strings.Contains(err.Error(), key) {
				t.Errorf("error %q does not name %s", err, key)
			}
		}
	})

	t.Run("accepts", func(t *testing.T) {
		for _, edit := range []func(*sms.TwilioOptions){
			func(*sms.TwilioOptions) {},
			func(o *sms.TwilioOptions) { o.From = "HostPortal" },
			func(o *sms.TwilioOptions) { o.From = "12345" },
			func(o *sms.TwilioOptions) { o.From = "MG" + strings.Repeat("a", 32) },
			func(o *sms.TwilioOptions) { o.APIURL = "https://twilio-proxy.example.com/prefix/" },
			func(o *sms.TwilioOptions) { o.APIURL = "http://localhost:8080" },
			func(o *sms.TwilioOptions) { o.APIURL = "http://[::1]:8080" },
		} {
			o := good
			edit(&o)
			if _, err := sms.NewTwilio(o); err != nil {
				t.Errorf("NewTwilio(From %q, APIURL %q): %v", o.From, o.APIURL, err)
			}
		}
	})
}

func TestMessagingServiceSID(t *testing.T) {
	tests := []struct {
		from string
		want bool
	}{
		{"MG" + strings.Repeat("0123456789abcdef", 2), true},
		{"MG123", false},
		{"+15005550006", false},
		{"MG" + strings.Repeat("0", 31) + "-", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := sms.MessagingServiceSID(tt.from); got != tt.want {
			t.Errorf("MessagingServiceSID(%q) = %v, want %v", tt.from, got, tt.want)
		}
	}
}
