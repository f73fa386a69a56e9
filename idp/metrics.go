package idp

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending"
)

// metrics are a Server's Prometheus metrics, served at /metrics. Each
// Server has its own registry, not the process-wide default, so that two
// Servers in one process (parallel tests) count apart.
//
// Every label value comes from a fixed set and anything else is "other":
// no request, user or client can add series. Nothing that names a user,
// a client, an address or a path is a label.
type metrics struct {
	registry      *prometheus.Registry
	logins        *prometheus.CounterVec
	secondFactors *prometheus.CounterVec
	sms           *prometheus.CounterVec
	tokens        *prometheus.CounterVec
	serverErrors  *prometheus.CounterVec
	regulation    *prometheus.CounterVec
	requests      *prometheus.HistogramVec
	// libraryRoutes are the paths the OpenID library serves behind the
	// router's catch-all "/": the path is the route only for these.
	libraryRoutes map[string]bool
}

// Label values of the bounded sets, besides "other".
var (
	secondFactorMethods = []string{"totp", "sms", "security_key", "recovery_code"}
	// smsLimitNames are the limits of smsLimits, the resend gap, and the
	// phone.go cap on numbers set per day.
	smsLimitNames = []string{"resend_interval", "user_hour", "user_day", "number_hour", "number_day",
		"ip_hour", "ip_day", "total_hour", "total_day", "numbers_per_user_day"}
	tokenGrants       = []string{"authorization_code", "refresh_token", "client_credentials"}
	serverErrorCauses = []string{"database", "pending_store", "busy", "other"}
	// regulationFactors and regulationSubjects are regulation's Factors
	// and the subjects of a delay.
	regulationFactors  = []string{"password", "totp", "sms", "recovery", "security_key"}
	regulationSubjects = []string{"account", "account_everywhere", "network", "busy"}
	requestMethodNames = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions}
)

func newMetrics(p *op.Provider) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_logins_total",
			Help: "Finished logins (result success, factor from the login's amr: pwd, pwd+otp, pwd+sms, pwd+hwk, pwd+swk, " +
				"pwd+mfa for a recovery code or a remembered device, passkey) and refused first factors (result failure, factor pwd or passkey).",
		}, []string{"result", "factor"}),
		secondFactors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_second_factor_checks_total",
			Help: "Second-factor checks during a login, by method (totp, sms, security_key, recovery_code) and result.",
		}, []string{"method", "result"}),
		sms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_sms_total",
			Help: "Text messages with a code: sent, refused by a limit (named by limit), or failed at the provider.",
		}, []string{"outcome", "limit"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_tokens_issued_total",
			Help: "Access tokens made, by grant.",
		}, []string{"grant"}),
		serverErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_server_errors_total",
			Help: "Pages answered with a server error, by cause: database or pending_store when the error says which store " +
				"it came from (outages included), busy when password hashing was at capacity, other for the rest.",
		}, []string{"cause"}),
		regulation: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idp_regulation_total",
			Help: "Brute-force limits: delays imposed by a failed check (event ban) and attempts refused unchecked while one ran " +
				"(event throttled), by factor and subject (account, network, or busy: another check of the account's factor was running).",
		}, []string{"event", "factor", "subject"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "idp_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route (the router's pattern without its method), method and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "code"}),
		libraryRoutes: map[string]bool{},
	}
	for _, e := range []*op.Endpoint{p.TokenEndpoint(), p.IntrospectionEndpoint(), p.UserinfoEndpoint(),
		p.RevocationEndpoint(), p.KeysEndpoint()} {
		if path := e.Relative(); path != "" {
			m.libraryRoutes[path] = true
		}
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.logins, m.secondFactors, m.sms, m.tokens, m.serverErrors, m.regulation, m.requests,
	)
	// The usual series exist at zero from the start, so that rates and
	// alerts see the first event.
	for _, f := range []string{"pwd", "pwd+otp", "pwd+sms", "pwd+hwk", "pwd+swk", "pwd+mfa", "passkey"} {
		m.logins.WithLabelValues("success", f)
	}
	for _, f := range []string{"pwd", "passkey"} {
		m.logins.WithLabelValues("failure", f)
	}
	for _, method := range secondFactorMethods {
		m.secondFactors.WithLabelValues(method, "success")
		m.secondFactors.WithLabelValues(method, "failure")
	}
	m.sms.WithLabelValues("sent", "")
	m.sms.WithLabelValues("failed", "")
	for _, l := range smsLimitNames {
		m.sms.WithLabelValues("refused", l)
	}
	for _, g := range tokenGrants {
		m.tokens.WithLabelValues(g)
	}
	for _, c := range serverErrorCauses {
		m.serverErrors.WithLabelValues(c)
	}
	for _, f := range regulationFactors {
		for _, sub := range regulationSubjects[:3] {
			m.regulation.WithLabelValues("ban", f, sub)
		}
		for _, sub := range regulationSubjects {
			m.regulation.WithLabelValues("throttled", f, sub)
		}
	}
	return m
}

// oneOf is v when it is in set, else "other".
func oneOf(v string, set []string) string {
	if slices.Contains(set, v) {
		return v
	}
	return "other"
}

// observe counts an audit event: logins, second factors, text messages.
func (m *metrics) observe(e storage.AuditEvent) {
	switch e.Type {
	case "regulation.ban":
		m.regulation.WithLabelValues("ban", oneOf(e.Details["factor"], regulationFactors), oneOf(e.Details["subject"], regulationSubjects)).Inc()
	case "login.succeeded":
		m.logins.WithLabelValues("success", loginFactors(e.Details["amr"])).Inc()
	case "login.failed":
		factor := map[string]string{"password": "pwd", "passkey": "passkey"}[e.Details["factor"]]
		m.logins.WithLabelValues("failure", oneOf(factor, []string{"pwd", "passkey"})).Inc()
	case "mfa.passed", "mfa.failed":
		// A passkey is a login of its own (idp_logins_total). A wrong code
		// in the account pages ("where") is not a login's check, and a
		// right one there is not audited.
		if e.Details["method"] == "passkey" || e.Details["where"] != "" {
			return
		}
		result := "success"
		if e.Type == "mfa.failed" {
			result = "failure"
		}
		m.secondFactors.WithLabelValues(oneOf(e.Details["method"], secondFactorMethods), result).Inc()
	case "mfa.recovery_code_used":
		m.secondFactors.WithLabelValues("recovery_code", "success").Inc()
	case "sms.sent":
		m.sms.WithLabelValues("sent", "").Inc()
	case "sms.failed":
		m.sms.WithLabelValues("failed", "").Inc()
	case "sms.refused":
		m.sms.WithLabelValues("refused", oneOf(e.Details["limit"], smsLimitNames)).Inc()
	}
}

// loginFactors names the factors of a finished login from its amr values
// (space-separated, RFC 8176): "pwd" and its second factors joined by
// "+" (otp, sms, hwk, swk), "pwd+mfa" when the second factor has no amr
// value of its own (a recovery code or a remembered device: amr does not
// tell them apart), "passkey" for a security key without a password, or
// "other".
func loginFactors(amr string) string {
	seen := map[string]bool{}
	for _, v := range strings.Fields(amr) {
		if !slices.Contains([]string{"pwd", "otp", "sms", "hwk", "swk", "mfa"}, v) {
			return "other"
		}
		seen[v] = true
	}
	var parts []string
	switch {
	case seen["pwd"]:
		parts = append(parts, "pwd")
	case seen["hwk"] || seen["swk"]:
		parts = append(parts, "passkey")
		seen["hwk"], seen["swk"] = false, false
	default:
		return "other"
	}
	for _, v := range []string{"otp", "sms", "hwk", "swk"} {
		if seen[v] {
			parts = append(parts, v)
		}
	}
	if len(parts) == 1 && parts[0] == "pwd" && seen["mfa"] {
		parts = append(parts, "mfa")
	}
	return strings.Join(parts, "+")
}

// tokenIssued counts an access token made for grant.
// throttled counts an attempt refused unchecked by a running delay.
func (m *metrics) throttled(factor, subject string) {
	m.regulation.WithLabelValues("throttled", oneOf(factor, regulationFactors), oneOf(subject, regulationSubjects)).Inc()
}

func (m *metrics) tokenIssued(grant string) {
	m.tokens.WithLabelValues(oneOf(grant, tokenGrants)).Inc()
}

// serverError counts a server error page by its cause. The stores'
// errors carry no type of their own (a failed connection looks the same
// from either), so a store is named only when the error matches one of
// its sentinels; the rest is "other".
func (m *metrics) serverError(err error) {
	m.serverErrors.WithLabelValues(serverErrorCause(err)).Inc()
}

func serverErrorCause(err error) string {
	switch {
	case errors.Is(err, password.ErrBusy):
		return "busy"
	case errors.Is(err, pending.ErrNotFound), errors.Is(err, pending.ErrUnavailable):
		return "pending_store"
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrTokenUsed),
		errors.Is(err, storage.ErrUnavailable):
		return "database"
	}
	return "other"
}

// handler serves the registry in the Prometheus formats. Its answers
// hold nothing secret, but are never cached.
func (m *metrics) handler() http.Handler {
	h := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// instrument times the requests router answers. ServeMux records the
// pattern that matched in the Request it was handed, so the route is read
// after router returned. Every route of the library matches "/": for
// those, the path is the route when it is one of the library's endpoints.
func (m *metrics) instrument(router http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		path := r.URL.Path
		sw := &statusWriter{ResponseWriter: w}
		router.ServeHTTP(sw, r)
		m.requests.WithLabelValues(m.route(r.Pattern, path), oneOf(r.Method, requestMethodNames), statusLabel(sw.status)).
			Observe(time.Since(start).Seconds())
	})
}

// route is the route label of a request that matched pattern: the
// pattern without its method, or "other" (nothing matched, or a path
// behind "/" that is none of the library's endpoints).
func (m *metrics) route(pattern, path string) string {
	switch {
	case pattern == "":
		return "other"
	case pattern == "/":
		if m.libraryRoutes[path] {
			return path
		}
		return "other"
	}
	if _, p, ok := strings.Cut(pattern, " "); ok {
		return p
	}
	return pattern
}

func statusLabel(code int) string {
	switch {
	case code == 0:
		return "200" // nothing written: net/http answers 200
	case code >= 100 && code <= 599:
		return strconv.Itoa(code)
	}
	return "other"
}

// statusWriter records the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	// 1xx responses are interim: the final code comes after them.
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
