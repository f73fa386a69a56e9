package idp_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/mfa/sms/smstest"
)

// scrape reads env's /metrics as Prometheus does, and checks that the
// answer is the text format and not cacheable.
func scrape(t *testing.T, env *idptest.Env) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(env.Issuer + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: status %d", resp.StatusCode)
	}
	if ft := expfmt.ResponseFormat(resp.Header).FormatType(); ft != expfmt.TypeTextPlain {
		t.Fatalf("/metrics Content-Type %q is not the Prometheus text format", resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("/metrics Cache-Control %q, want no-store", cc)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// sum adds up the series of name whose labels include labels (name,
// value, ...): counters' values, histograms' sample counts.
func sum(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var n float64
	for _, m := range fams[name].GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		n += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return n
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
		}) {
			return false
		}
	}
	return true
}

// labelValues are the values label takes in the series of name.
func labelValues(fams map[string]*dto.MetricFamily, name, label string) []string {
	var vs []string
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && !slices.Contains(vs, l.GetValue()) {
				vs = append(vs, l.GetValue())
			}
		}
	}
	return vs
}

// noLabelValueContains fails when any label of any series contains one of words.
func noLabelValueContains(t *testing.T, fams map[string]*dto.MetricFamily, words ...string) {
	t.Helper()
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, w := range words {
					if strings.Contains(l.GetValue(), w) {
						t.Errorf("%s{%s=%q} holds %q", name, l.GetName(), l.GetValue(), w)
					}
				}
			}
		}
	}
}

// want checks one series' value.
func want(t *testing.T, fams map[string]*dto.MetricFamily, value float64, name string, labels ...string) {
	t.Helper()
	if got := sum(fams, name, labels...); got != value {
		t.Errorf("%s%v = %v, want %v", name, labels, got, value)
	}
}

func TestMetricLoginsAndTokens(t *testing.T) {
	t.Parallel()
	env, r := setup(t, idptest.Backends[0])
	if p := login(t, env, env.NewBrowser(), r.start(), "alice", "not the password"); p.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %s", p)
	}
	if p := login(t, env, env.NewBrowser(), r.start(), "nobody", "not the password"); p.Status != http.StatusUnauthorized {
		t.Fatalf("unknown user: %s", p)
	}
	f := r.start()
	tok, _, _ := r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
	refresh(t, r, tok.RefreshToken)

	m := scrape(t, env)
	want(t, m, 2, "idp_logins_total", "result", "failure", "factor", "pwd")
	want(t, m, 1, "idp_logins_total", "result", "success", "factor", "pwd")
	want(t, m, 1, "idp_logins_total", "result", "success")
	want(t, m, 1, "idp_tokens_issued_total", "grant", "authorization_code")
	want(t, m, 1, "idp_tokens_issued_total", "grant", "refresh_token")
	want(t, m, 0, "idp_tokens_issued_total", "grant", "client_credentials")
	want(t, m, 0, "idp_server_errors_total")
	noLabelValueContains(t, m, "alice", "nobody", "portal", "127.0.0.1")
}

func TestMetricSecondFactor(t *testing.T) {
	t.Parallel()
	env, r := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	app, _ := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
	before := scrape(t, env)
	want(t, before, 0, "idp_second_factor_checks_total", "method", "totp")

	b := env.NewBrowser()
	f := r.start()
	p := login(t, env, b, f, "alice", alicePassword)
	code := app.code(t, 0)
	wrong := submitCode(t, env, b, p, wrongCode(code), false)
	if wrong.Status != http.StatusUnauthorized {
		t.Fatalf("wrong code: %s", wrong)
	}
	r.codeFrom(f, consentIfAsked(t, env, b, submitCode(t, env, b, wrong, code, false)))

	m := scrape(t, env)
	want(t, m, 1, "idp_second_factor_checks_total", "method", "totp", "result", "failure")
	want(t, m, 1, "idp_second_factor_checks_total", "method", "totp", "result", "success")
	want(t, m, 2, "idp_second_factor_checks_total")
	want(t, m, 1, "idp_logins_total", "result", "success", "factor", "pwd+otp")
	want(t, m, 1, "idp_logins_total", "result", "success", "factor", "pwd") // the account login before enrolment
	want(t, m, 0, "idp_logins_total", "result", "failure")
}

func TestMetricSMS(t *testing.T) {
	t.Parallel()
	env, r, tw := smsSetup(t, idptest.Backends[0])
	if _, err := env.Manage.SetPhone(context.Background(), manage.Operator, "alice", alicePhone); err != nil {
		t.Fatal(err)
	}
	br := env.NewBrowser()
	enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))

	lb, f, sf := toSecondFactor(t, env, r)
	tw.FailNext(http.StatusBadRequest, smstest.TwilioError(21211, 400, "The 'To' number "+alicePhone+" is not a valid phone number."))
	send := func() *idptest.Page { return lb.Follow(env.Issuer, lb.Post(env.Issuer+"/login/sms/send", sf.Form())) }
	if p := send(); p.Status != http.StatusBadGateway {
		t.Fatalf("a message the provider refused: %s", p)
	}
	if p := send(); p.Status != http.StatusTooManyRequests {
		t.Fatalf("a second message within the resend interval: %s", p)
	}
	env.Clock.Advance(31 * time.Second)
	sent := send()
	code := codeOf(t, env, tw.Last(t))
	if p := enterSMS(t, env, lb, sent, wrongCode(code)); p.Status != http.StatusUnauthorized {
		t.Fatalf("wrong SMS code: %s", p)
	}
	r.codeFrom(f, enterSMS(t, env, lb, sent, code))

	m := scrape(t, env)
	want(t, m, 1, "idp_sms_total", "outcome", "failed", "limit", "")
	want(t, m, 1, "idp_sms_total", "outcome", "refused", "limit", "resend_interval")
	want(t, m, 1, "idp_sms_total", "outcome", "refused")
	want(t, m, 1, "idp_sms_total", "outcome", "sent", "limit", "")
	want(t, m, 1, "idp_second_factor_checks_total", "method", "sms", "result", "failure")
	want(t, m, 1, "idp_second_factor_checks_total", "method", "sms", "result", "success")
	want(t, m, 1, "idp_logins_total", "result", "success", "factor", "pwd+sms")
	noLabelValueContains(t, m, alicePhone, "0000", "alice")
}

func TestMetricClientCredentials(t *testing.T) {
	t.Parallel()
	env, _ := setup(t, idptest.Backends[0])
	secret := env.AddClient(manage.NewClient{ID: "backend", Grants: []string{"client_credentials"}, Scopes: []string{"idp:admin"}})
	if _, err := clientCredentials(env, "backend", secret, "idp:admin").Token(); err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	if _, err := clientCredentials(env, "backend", "wrong-secret-wrong-secret-wrong-secret", "idp:admin").Token(); err == nil {
		t.Fatal("wrong client secret accepted")
	}
	m := scrape(t, env)
	want(t, m, 1, "idp_tokens_issued_total", "grant", "client_credentials")
	want(t, m, 1, "idp_tokens_issued_total")
	if sum(m, "idp_http_request_duration_seconds", "route", "/oauth/token", "method", "POST", "code", "200") != 1 {
		t.Errorf("the token request is not timed under /oauth/token")
	}
	noLabelValueContains(t, m, "backend", "idp:admin")
}

func TestMetricRequestDurations(t *testing.T) {
	t.Parallel()
	env, r := setup(t, idptest.Backends[0])
	f := r.start()
	r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
	b := env.NewBrowser()
	unique := randomString()
	if p := b.Get(env.Issuer + "/no/such/" + unique); p.Status != http.StatusNotFound {
		t.Fatalf("an unknown path: %s", p)
	}
	b.Get(env.Issuer + "/login?id=" + unique)
	b.Get(env.Issuer + "/static/" + unique + ".css")

	m := scrape(t, env)
	const h = "idp_http_request_duration_seconds"
	if h := m[h]; h.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("%s is a %v, want a histogram", h.GetName(), h.GetType())
	}
	for _, c := range []struct {
		route, method, code string
	}{
		{"/authorize", "GET", ""},
		{"/authorize/callback", "GET", ""},
		{"/login/password", "POST", "303"},
		{"/oauth/token", "POST", "200"},
		{"/keys", "GET", "200"},
		{"/.well-known/openid-configuration", "GET", "200"},
		{"/login", "GET", ""},
		{"/static/", "GET", "404"},
		{"other", "GET", "404"},
	} {
		labels := []string{"route", c.route, "method", c.method}
		if c.code != "" {
			labels = append(labels, "code", c.code)
		}
		if sum(m, h, labels...) == 0 {
			t.Errorf("no request timed with %v; routes %v", labels, labelValues(m, h, "route"))
		}
	}
	// Routes are patterns: never a path with an id, a query or a state.
	noLabelValueContains(t, m, unique, "?", f.state, "/no/such")
	for _, route := range labelValues(m, h, "route") {
		if route != "other" && !strings.HasPrefix(route, "/") {
			t.Errorf("route %q is neither a pattern's path nor other", route)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	env := idptest.New(t, idptest.Backends[0], idptest.Options{})
	scrape(t, env)
	m := scrape(t, env)
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "idp_logins_total", "idp_second_factor_checks_total",
		"idp_sms_total", "idp_tokens_issued_total", "idp_server_errors_total", "idp_http_request_duration_seconds"} {
		if m[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	want(t, m, 1, "idp_http_request_duration_seconds", "route", "/metrics", "method", "GET", "code", "200")

	req, err := http.NewRequest(http.MethodPost, env.Issuer+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("POST /metrics answered the metrics")
	}
}

// Each Server counts on its own registry; the process-wide one stays empty.
func TestMetricRegistriesAreIndependent(t *testing.T) {
	t.Parallel()
	one, r := setup(t, idptest.Backends[0])
	two, _ := setup(t, idptest.Backends[0])
	login(t, one, one.NewBrowser(), r.start(), "alice", "not the password")
	want(t, scrape(t, one), 1, "idp_logins_total", "result", "failure")
	want(t, scrape(t, two), 0, "idp_logins_total", "result", "failure")

	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "idp_") {
			t.Errorf("%s is on the default registry", f.GetName())
		}
	}
}
