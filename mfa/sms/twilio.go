package sms

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twilio/twilio-go/client"
	twilioapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// DefaultTwilioAPIURL is where Twilio's REST API lives; TwilioOptions.APIURL
// replaces it, for a fake in tests or a forward proxy.
const DefaultTwilioAPIURL = "https://api.twilio.com"

// DefaultTwilioTimeout bounds one Send when TwilioOptions.Timeout is zero:
// a login page waits for it, so it must be short.
const DefaultTwilioTimeout = 10 * time.Second

// maxErrorBody bounds how much of an error answer is read. Twilio's JSON
// errors are a few hundred bytes; a proxy's HTML page needs no more.
const maxErrorBody = 64 << 10

// TwilioOptions configure the Twilio provider (config keys sms.twilio.* and sms.timeout).
type TwilioOptions struct {
	AccountSID string // sms.twilio.account_sid: "AC" and 32 letters or digits
	AuthToken  string // sms.twilio.auth_token
	// From (sms.twilio.from) is a sender number (+E.164 or a short code), an
	// alphanumeric sender ID, or a Messaging Service SID ("MG...", see
	// MessagingServiceSID), which lets Twilio pick the sender.
	From string
	// APIURL (sms.twilio.api_url) replaces DefaultTwilioAPIURL when set. A
	// path in it is kept as a prefix. Plain http is accepted only for a
	// loopback host, since the auth token travels in every request.
	APIURL  string
	Timeout time.Duration // sms.timeout; 0 means DefaultTwilioTimeout
}

// Twilio sends messages through Twilio's Programmable Messaging API. It is
// safe for concurrent use.
type Twilio struct {
	accountSID string
	authToken  string
	from       string // set when the sender is a number or alphanumeric ID
	service    string // set when the sender is a Messaging Service
	base       *url.URL
	timeout    time.Duration
	transport  http.RoundTripper // shared, so connections are reused
}

var _ Sender = (*Twilio)(nil)

var (
	accountSIDPattern = regexp.MustCompile(`^AC[A-Za-z0-9]{32}$`)
	// twilio-go refuses, before sending, a token that is not alphanumeric.
	authTokenPattern = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	e164Pattern      = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	shortCodePattern = regexp.MustCompile(`^[0-9]{3,15}$`)
	// Alphanumeric sender IDs: up to 11 of these characters, at least one
	// letter (Twilio's rule, so that they cannot pass for a number).
	alphaSenderPattern = regexp.MustCompile(`^[A-Za-z0-9 +\-_&]{1,11}$`)
	serviceSIDPattern  = regexp.MustCompile(`^MG[A-Za-z0-9]{32}$`)
)

const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// MessagingServiceSID reports whether from is a Twilio Messaging Service SID
// ("MG" and 32 letters or digits) rather than a sender number or ID.
func MessagingServiceSID(from string) bool {
	return serviceSIDPattern.MatchString(from)
}

// NewTwilio checks o and returns a Twilio provider. It refuses what twilio-go
// or Twilio would refuse on the first Send, reporting every problem at once
// and naming its config key; it never echoes the auth token.
func NewTwilio(o TwilioOptions) (*Twilio, error) {
	var errs []error
	switch {
	case o.AccountSID == "":
		errs = append(errs, errors.New("sms.twilio.account_sid: missing"))
	case !accountSIDPattern.MatchString(o.AccountSID):
		errs = append(errs, errors.New(`sms.twilio.account_sid: must be an account SID, "AC" followed by 32 letters or digits`))
	}
	switch {
	case o.AuthToken == "":
		errs = append(errs, errors.New("sms.twilio.auth_token: missing"))
	case !authTokenPattern.MatchString(o.AuthToken):
		errs = append(errs, errors.New("sms.twilio.auth_token: must be letters and digits only"))
	}
	t := &Twilio{accountSID: o.AccountSID, authToken: o.AuthToken, timeout: o.Timeout}
	switch {
	case o.From == "":
		errs = append(errs, errors.New("sms.twilio.from: missing"))
	case MessagingServiceSID(o.From):
		t.service = o.From
	case e164Pattern.MatchString(o.From), shortCodePattern.MatchString(o.From):
		t.from = o.From
	case strings.HasPrefix(o.From, "+"):
		// Sender IDs may contain "+", but one that starts with it is far
		// more likely a mistyped number than a name.
		errs = append(errs, errors.New("sms.twilio.from: a number must be in E.164 form, + and up to 15 digits (+14155550123)"))
	case alphaSenderPattern.MatchString(o.From) && strings.ContainsAny(o.From, letters):
		t.from = o.From
	default:
		errs = append(errs, errors.New(`sms.twilio.from: must be a number in E.164 form (+14155550123), a short code, an alphanumeric sender ID of up to 11 characters, or a Messaging Service SID ("MG" and 32 letters or digits)`))
	}
	apiURL := o.APIURL
	if apiURL == "" {
		apiURL = DefaultTwilioAPIURL
	}
	base, err := parseAPIURL(apiURL)
	if err != nil {
		errs = append(errs, fmt.Errorf("sms.twilio.api_url: %w", err))
	}
	t.base = base
	switch {
	case o.Timeout < 0:
		errs = append(errs, errors.New("sms.timeout: must not be negative"))
	case o.Timeout == 0:
		t.timeout = DefaultTwilioTimeout
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t.transport = dt.Clone()
	} else {
		t.transport = http.DefaultTransport
	}
	return t, nil
}

// parseAPIURL accepts an absolute http(s) URL without credentials, query or
// fragment; http only for loopback hosts.
func parseAPIURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the input; it holds no secret we accept anyway.
		return nil, err
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, errors.New("must be an http or https URL")
	case u.Host == "" || u.Opaque != "":
		return nil, errors.New("must be an absolute URL with a host")
	case u.User != nil:
		return nil, errors.New("must not hold credentials; the account SID and auth token are set apart")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("must not have a query or fragment")
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return nil, errors.New("must be https unless the host is loopback: every request carries the auth token")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u, nil
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Send asks Twilio to send body to to. It returns when Twilio answers, the
// timeout passes or ctx is done, whichever comes first. Every error is an
// *Error; none is retried here, because a lost answer may hide a message
// already sent.
func (t *Twilio) Send(ctx context.Context, to, body string) error {
	switch {
	case !e164Pattern.MatchString(to):
		return &Error{Provider: "twilio", Message: "recipient is not an E.164 number"}
	case body == "":
		return &Error{Provider: "twilio", Message: "empty message"}
	}
	if err := ctx.Err(); err != nil {
		return &Error{Provider: "twilio", Temporary: true, Err: err}
	}

	// A client per call: twilio-go builds every request on
	// context.Background(), so the only way to make ctx cancel the request
	// itself (not just stop waiting for it) is a transport that knows ctx.
	// The transport also remembers the real status, which twilio-go drops
	// when an error body is not JSON.
	rt := &callTransport{ctx: ctx, base: t.base, next: t.transport}
	c := &client.Client{
		Credentials: client.NewCredentials(t.accountSID, t.authToken),
		HTTPClient: &http.Client{
			Transport: rt,
			Timeout:   t.timeout,
			// twilio-go's own default client does the same; a followed 307
			// would POST the message again elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	c.SetAccountSid(t.accountSID)
	api := twilioapi.NewApiServiceWithClient(c)

	params := (&twilioapi.CreateMessageParams{}).SetTo(to).SetBody(body)
	if t.service != "" {
		params.SetMessagingServiceSid(t.service)
	} else {
		params.SetFrom(t.from)
	}
	msg, err := api.CreateMessage(params)
	status := int(rt.status.Load())
	if err != nil {
		return t.sendError(err, status, rt)
	}
	if msg == nil || msg.Sid == nil || *msg.Sid == "" {
		// Twilio may well have queued it: not Temporary, so nobody resends.
		return &Error{Provider: "twilio", Status: status, Err: errors.New("answer without a message SID")}
	}
	return nil
}

// sendError turns what twilio-go returned into an *Error.
func (t *Twilio) sendError(err error, status int, rt *callTransport) *Error {
	e := &Error{Provider: "twilio", Status: status, Err: err}
	var (
		rest     *client.TwilioRestError
		redirect *redirectError
		uerr     *url.Error
	)
	switch {
	case errors.As(err, &redirect):
		e.Message = redirect.Error()
	case errors.As(err, &rest):
		e.Code = rest.Code
		e.Message = rest.Message
		if e.Status == 0 {
			e.Status = rest.Status
		}
		e.Temporary = temporaryStatus(e.Status)
	case errors.As(err, &uerr):
		// No answer, or one cut off. The url.Error names the URL twilio-go
		// built (api.twilio.com), not the one the transport went to.
		if u := rt.url.Load(); u != nil {
			e.Err = &url.Error{Op: uerr.Op, URL: *u, Err: uerr.Err}
		}
		e.Temporary = !errors.Is(err, errSecondRequest) && !certificateError(err)
	default:
		// An error answer that was not JSON ("error decoding the response
		// for an HTTP error code: 500"), or a success answer that was not
		// a message.
		e.Temporary = temporaryStatus(status)
	}
	return e
}

func certificateError(err error) bool {
	var verr *tls.CertificateVerificationError
	return errors.As(err, &verr)
}

// errSecondRequest is returned if twilio-go ever sends a second request for
// one Send: it re-sends after some error answers (X-Twilio-ApiVersion v1.0,
// not used by the Messages API today), and a message must not go out twice.
var errSecondRequest = errors.New("twilio-go tried a second request for one message; refused")

// redirectError is Twilio answering 3xx. twilio-go would take a 3xx for a
// success and decode its body as a message.
type redirectError struct {
	status   int
	location string
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("redirect to %q not followed", e.location)
}

// callTransport serves one Send: it sends the request to the configured API
// URL under the caller's context, lets only one request through, and keeps
// what the caller needs to report a failure.
type callTransport struct {
	ctx    context.Context
	base   *url.URL
	next   http.RoundTripper
	sent   atomic.Bool
	status atomic.Int32
	url    atomic.Pointer[string]
}

func (c *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.sent.Swap(true) {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even when refusing
		}
		return nil, errSecondRequest
	}
	out := req.Clone(c.ctx)
	u := *req.URL
	u.Scheme = c.base.Scheme
	u.Host = c.base.Host
	if c.base.RawPath != "" || req.URL.RawPath != "" {
		u.RawPath = c.base.EscapedPath() + req.URL.EscapedPath()
	}
	u.Path = c.base.Path + req.URL.Path
	out.URL = &u
	out.Host = ""
	s := u.Redacted()
	c.url.Store(&s)

	resp, err := c.next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	c.status.Store(int32(resp.StatusCode))
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		resp.Body.Close()
		return nil, &redirectError{status: resp.StatusCode, location: resp.Header.Get("Location")}
	case resp.StatusCode >= 400:
		// twilio-go never closes an error answer's body, which would keep
		// the connection from being reused: read it here and close it.
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, nil
}
