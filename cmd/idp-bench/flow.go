package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hostportal/idp/mfa"
	"github.com/hostportal/idp/secret"
)

// benchScope is what the bench asks for: a portal's usual scopes, with a
// refresh token.
const benchScope = "openid profile email offline_access"

// maxBody bounds what is read of a response.
const maxBody = 1 << 20

// stepError is a failed operation: the step of the flow it failed at and
// a short kind ("HTTP 503", "timeout"), which the report counts, and a
// detail shown once per kind.
type stepError struct {
	step, kind, detail string
}

func (e *stepError) Error() string {
	if e.detail == "" {
		return e.step + ": " + e.kind
	}
	return e.step + ": " + e.kind + " (" + e.detail + ")"
}

// key is what the report counts errors by.
func (e *stepError) key() string { return e.step + ": " + e.kind }

func failed(step, kind, detail string) *stepError {
	return &stepError{step: step, kind: kind, detail: detail}
}

// transportError names what went wrong below HTTP, in the few kinds a load
// test runs into.
func transportError(step string, err error) *stepError {
	var ne net.Error
	kind := "transport error"
	switch {
	case errors.Is(err, context.Canceled):
		kind = "interrupted"
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		kind = "connection reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		kind = "no free local port"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		kind = "connection closed"
	case errors.As(err, &ne) && ne.Timeout():
		kind = "timeout"
	}
	return failed(step, kind, err.Error())
}

// endpoints are the provider's, from its discovery document.
type endpoints struct {
	issuer                            *url.URL
	discovery, authorize, token, jwks string
	userinfo                          string
	discoveryDoc, jwksDoc             []byte // the bytes served, for the static reference
}

// client is what a virtual user sends with: the shared transport (each
// virtual user has at most one request in flight) and the bench client's
// credentials.
type client struct {
	api          *http.Client // for the requests of the portal's back end: no cookies
	tr           http.RoundTripper
	ep           *endpoints
	clientID     string
	clientSecret string
	now          func() time.Time
}

// browser is one browser: its own cookie jar, and redirects not followed,
// so that the flow sees each Location (as idptest.Browser does).
type browser struct {
	c    *client
	http *http.Client
}

func (c *client) newBrowser() (*browser, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	return &browser{c: c, http: &http.Client{
		Transport:     c.tr,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// page is a response with its body read.
type page struct {
	status   int
	body     string
	location *url.URL // resolved; nil when not a redirect
	url      *url.URL
}

func (b *browser) do(req *http.Request, step string) (*page, error) {
	req.Header.Set("User-Agent", "idp-bench")
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, transportError(step, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, transportError(step, err)
	}
	p := &page{status: resp.StatusCode, body: string(body), url: req.URL}
	if loc, err := resp.Location(); err == nil {
		p.location = loc
	}
	return p, nil
}

func (b *browser) get(ctx context.Context, u, step string) (*page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, failed(step, "bad URL", err.Error())
	}
	return b.do(req, step)
}

func (b *browser) post(ctx context.Context, u string, form url.Values, step string) (*page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, failed(step, "bad URL", err.Error())
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req, step)
}

// follow follows redirects while they stay on the provider and returns the
// first page that is not one: a page, or the redirect that leaves.
func (b *browser) follow(ctx context.Context, p *page, step string) (*page, error) {
	for range 10 {
		if p.location == nil || !b.c.onProvider(p.location) {
			return p, nil
		}
		var err error
		if p, err = b.get(ctx, p.location.String(), step); err != nil {
			return nil, err
		}
	}
	return nil, failed(step, "redirect loop", p.url.String())
}

func (c *client) onProvider(u *url.URL) bool {
	return u.Scheme == c.ep.issuer.Scheme && u.Host == c.ep.issuer.Host
}

// form is a form of a page: where it goes, its hidden inputs, and the
// names of its other fields and buttons.
type form struct {
	action  string
	values  url.Values
	fields  map[string]bool
	buttons map[string][]string
}

var (
	formRE   = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRE  = regexp.MustCompile(`(?is)<(input|button)\b([^>]*)>`)
	attrRE   = regexp.MustCompile(`(?i)\b([a-z_-]+)="([^"]*)"`)
	actionRE = regexp.MustCompile(`(?i)\baction="([^"]*)"`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRE.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

// forms parses the page's forms as a browser would submit them.
func (p *page) forms() []form {
	var out []form
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		f := form{values: url.Values{}, fields: map[string]bool{}, buttons: map[string][]string{}}
		action := p.url
		if a := actionRE.FindStringSubmatch(m[1]); a != nil {
			if u, err := p.url.Parse(html.UnescapeString(a[1])); err == nil {
				action = u
			}
		}
		f.action = action.String()
		for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
			at := attrs(in[2])
			name := at["name"]
			switch {
			case name == "":
			case strings.EqualFold(in[1], "button"):
				f.buttons[name] = append(f.buttons[name], at["value"])
			case at["type"] == "hidden":
				f.values.Set(name, at["value"])
			default:
				f.fields[name] = true
			}
		}
		out = append(out, f)
	}
	return out
}

// loginForm finds the form of the login step the page shows: "password",
// "mfa" (an authentication code) or "consent".
func (p *page) loginForm() (form, string) {
	for _, f := range p.forms() {
		switch {
		case f.fields["password"]:
			return f, "password"
		case f.fields["code"]:
			return f, "mfa"
		case slices.Contains(f.buttons["decision"], "allow"):
			return f, "consent"
		}
	}
	return form{}, ""
}

// benchUser is one bench account. last is the time step of the last code
// this run sent for it: a step is never sent twice, since the provider
// refuses a code (and any older one) once accepted.
type benchUser struct {
	name   string
	secret []byte
	last   int64
}

// tokens are what the token endpoint answered.
type tokens struct {
	access, refresh, id string
}

// login is the whole flow a portal causes, in a new browser: the
// authorization request with PKCE, the hosted pages (the password, the
// authentication code from u's authenticator app, consent if asked), the
// redirect back to the portal, and the code exchange.
func (c *client) login(ctx context.Context, u *benchUser) (*tokens, error) {
	b, err := c.newBrowser()
	if err != nil {
		return nil, failed("authorize", "cookie jar", err.Error())
	}
	verifier := secret.RandomToken(32)
	sum := sha256.Sum256([]byte(verifier))
	state := secret.RandomToken(12)
	q := url.Values{
		"client_id":             {c.clientID},
		"redirect_uri":          {benchRedirectURI},
		"response_type":         {"code"},
		"scope":                 {benchScope},
		"state":                 {state},
		"nonce":                 {secret.RandomToken(12)},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	step := "authorize"
	p, err := b.get(ctx, c.ep.authorize+"?"+q.Encode(), step)
	if err == nil {
		p, err = b.follow(ctx, p, step)
	}
	seen := map[string]bool{}
	for err == nil && p.location == nil {
		if p.status != http.StatusOK {
			kind := fmt.Sprintf("HTTP %d", p.status)
			if step == "mfa" && strings.Contains(p.body, "already used") {
				kind = "code already used"
			}
			return nil, failed(step, kind, "")
		}
		f, next := p.loginForm()
		switch {
		case next == "":
			return nil, failed(step, "unexpected page", p.url.Path)
		case seen[next]:
			return nil, failed(next, "asked again", "")
		}
		seen[next], step = true, next
		switch next {
		case "password":
			f.values.Set("username", u.name)
			f.values.Set("password", benchPassword)
		case "mfa":
			now := c.now()
			f.values.Set("code", mfa.TOTPCode(u.secret, now))
			u.last = mfa.TOTPStep(now)
		case "consent":
			f.values.Set("decision", "allow")
		}
		if p, err = b.post(ctx, f.action, f.values, step); err == nil {
			p, err = b.follow(ctx, p, step)
		}
	}
	if err != nil {
		return nil, err
	}
	code, err := codeFrom(p.location, state)
	if err != nil {
		return nil, err
	}
	t, err := c.tokenRequest(ctx, "token", url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {benchRedirectURI},
		"code_verifier": {verifier},
	})
	if err != nil {
		return nil, err
	}
	if t.id == "" || t.refresh == "" {
		return nil, failed("token", "no ID token or refresh token", "")
	}
	return t, nil
}

// codeFrom reads the code off the redirect to the portal.
func codeFrom(loc *url.URL, state string) (string, error) {
	if !strings.HasPrefix(loc.String(), benchRedirectURI) {
		return "", failed("callback", "redirect elsewhere", loc.Redacted())
	}
	q := loc.Query()
	switch {
	case q.Get("error") != "":
		return "", failed("callback", "error "+q.Get("error"), q.Get("error_description"))
	case q.Get("state") != state:
		return "", failed("callback", "wrong state", "")
	case q.Get("code") == "":
		return "", failed("callback", "no code", "")
	}
	return q.Get("code"), nil
}

// tokenRequest posts a grant to the token endpoint as the bench client
// (client_secret_basic).
func (c *client) tokenRequest(ctx context.Context, step string, form url.Values) (*tokens, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ep.token, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, failed(step, "bad URL", err.Error())
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "idp-bench")
	// RFC 6749 section 2.3.1: form-encoded, then Basic.
	req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.clientSecret))
	var body struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
		Error        string `json:"error"`
	}
	if err := c.doJSON(req, step, &body); err != nil {
		return nil, err
	}
	if body.AccessToken == "" {
		return nil, failed(step, "no access token", "")
	}
	return &tokens{access: body.AccessToken, refresh: body.RefreshToken, id: body.IDToken}, nil
}

func (c *client) refresh(ctx context.Context, refreshToken string) (*tokens, error) {
	return c.tokenRequest(ctx, "refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

func (c *client) clientCredentials(ctx context.Context) error {
	_, err := c.tokenRequest(ctx, "client_credentials", url.Values{"grant_type": {"client_credentials"}})
	return err
}

func (c *client) userinfo(ctx context.Context, accessToken string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.ep.userinfo, nil)
	if err != nil {
		return failed("userinfo", "bad URL", err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("User-Agent", "idp-bench")
	var body struct {
		Sub string `json:"sub"`
	}
	if err := c.doJSON(req, "userinfo", &body); err != nil {
		return err
	}
	if body.Sub == "" {
		return failed("userinfo", "no sub", "")
	}
	return nil
}

// fetch GETs u and reads the whole body, as a relying party fetches the
// discovery document or the key set.
func (c *client) fetch(ctx context.Context, u, step string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return failed(step, "bad URL", err.Error())
	}
	req.Header.Set("User-Agent", "idp-bench")
	resp, err := c.api.Do(req)
	if err != nil {
		return transportError(step, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return transportError(step, err)
	}
	if resp.StatusCode != http.StatusOK {
		return failed(step, fmt.Sprintf("HTTP %d", resp.StatusCode), "")
	}
	if n == 0 {
		return failed(step, "empty body", "")
	}
	return nil
}

func (c *client) doJSON(req *http.Request, step string, v any) error {
	resp, err := c.api.Do(req)
	if err != nil {
		return transportError(step, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return transportError(step, err)
	}
	if resp.StatusCode != http.StatusOK {
		var oe struct {
			Error string `json:"error"`
		}
		kind := fmt.Sprintf("HTTP %d", resp.StatusCode)
		if json.Unmarshal(raw, &oe) == nil && oe.Error != "" {
			kind += " " + oe.Error
		}
		return failed(step, kind, strings.TrimSpace(string(raw[:min(len(raw), 200)])))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return failed(step, "not JSON", err.Error())
	}
	return nil
}
