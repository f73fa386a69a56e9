package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/password"
	"github.com/hostportal/idp/storage"
)

// The admin API (SPEC.md "Admin API", documented in api/openapi.yaml):
// /admin/v1/..., JSON in and out, errors as application/problem+json (RFC
// 9457). A call is authorised by a bearer access token of the
// client_credentials grant whose scopes include idp:admin, of a client
// that still exists and still holds that scope. There are no cookies, so
// no CSRF tokens.
//
// Every call after authentication (including those refused with 403) is
// the audit event admin.request, with the calling client as actor
// ("client:ID"), its address and user agent, the operation and the status;
// the operations of manage write their own events (user.created, ...) as
// well, with the same actor.

const (
	adminScope = "idp:admin"
	adminRealm = "idp-admin"
	// adminPasswordLinkTTL is how long the password link of a user created
	// without a password works: the portal mails it, and people take a
	// weekend to open it.
	adminPasswordLinkTTL = 72 * time.Hour
)

// Problem types beyond about:blank (whose title is the status's phrase).
const (
	problemInvalidInput     = "urn:hostportal:idp:problem:invalid-input"
	problemMalformedJSON    = "urn:hostportal:idp:problem:malformed-json"
	problemDeclaredInConfig = "urn:hostportal:idp:problem:declared-in-config"
)

// adminRoute is one path of the admin API and the operations it serves.
type adminRoute struct {
	pattern string // a ServeMux pattern without a method
	methods []adminMethod
}

type adminMethod struct {
	method    string
	operation string // the operationId in api/openapi.yaml
	handle    func(*adminCall)
}

// adminRoutes is every route of the admin API; mountAdmin serves these and
// nothing else, and the OpenAPI test compares them with api/openapi.yaml.
func (s *Server) adminRoutes() []adminRoute {
	get, post, put, patch, del := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	return []adminRoute{
		{"/admin/v1/users", []adminMethod{
			{get, "listUsers", s.adminListUsers},
			{post, "createUser", s.adminCreateUser},
		}},
		{"/admin/v1/users/{username}", []adminMethod{
			{get, "getUser", s.withUser(s.adminGetUser)},
			{patch, "updateUser", s.withUser(s.adminUpdateUser)},
			{del, "deleteUser", s.withUser(s.adminDeleteUser)},
		}},
		{"/admin/v1/users/{username}/phone", []adminMethod{
			{put, "setUserPhone", s.withUser(s.adminSetPhone)},
			{del, "clearUserPhone", s.withUser(s.adminClearPhone)},
		}},
		{"/admin/v1/users/{username}/reset-mfa", []adminMethod{{post, "resetUserMFA", s.withUser(s.adminResetMFA)}}},
		{"/admin/v1/users/{username}/disable", []adminMethod{{post, "disableUser", s.withUser(s.adminDisable)}}},
		{"/admin/v1/users/{username}/enable", []adminMethod{{post, "enableUser", s.withUser(s.adminEnable)}}},
		{"/admin/v1/users/{username}/unlock", []adminMethod{{post, "unlockUser", s.withUser(s.adminUnlock)}}},
		{"/admin/v1/users/{username}/events", []adminMethod{{get, "listUserEvents", s.withUser(s.adminUserEvents)}}},
		{"/admin/v1/clients", []adminMethod{
			{get, "listClients", s.adminListClients},
			{post, "createClient", s.adminCreateClient},
		}},
		{"/admin/v1/clients/{client_id}", []adminMethod{
			{get, "getClient", s.adminGetClient},
			{patch, "updateClient", s.adminUpdateClient},
			{del, "deleteClient", s.adminDeleteClient},
		}},
		{"/admin/v1/clients/{client_id}/rotate-secret", []adminMethod{{post, "rotateClientSecret", s.adminRotateSecret}}},
	}
}

// mountAdmin registers the admin API. The patterns carry no method: a
// wrong method gets the API's own 405 (with Allow), never the provider's
// handlers; any other path under /admin/ gets the API's 401 or 404.
func (s *Server) mountAdmin(mux *http.ServeMux) {
	for _, rt := range s.adminRoutes() {
		mux.Handle(rt.pattern, s.adminEndpoint(rt))
	}
	mux.Handle("/admin/", s.adminEndpoint(adminRoute{}))
}

// adminCall is one authenticated call: who makes it, and what the audit
// event says about it.
type adminCall struct {
	s     *Server
	w     *adminResponse
	r     *http.Request
	ctx   context.Context
	actor manage.Actor // the calling client
	svc   *manage.Service

	operation string
	user      *storage.User // the user the call is about, when known
	clientID  string        // the client the call is about, when any
	reason    string        // why it was refused, for the audit event
}

// adminResponse records the status for the audit event.
type adminResponse struct {
	http.ResponseWriter
	status int
}

func (w *adminResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *adminResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *adminResponse) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) adminEndpoint(rt adminRoute) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "no-store")
		w := &adminResponse{ResponseWriter: rw}
		c := &adminCall{s: s, w: w, r: r, ctx: r.Context(), operation: "unknown"}
		client, ok := s.adminAuthenticate(c)
		if client == nil {
			return // 401 or 500: no caller to name
		}
		c.actor = manage.ClientActor(client.ID, s.clientIP(r), r.UserAgent())
		defer func() {
			if p := recover(); p != nil {
				if w.status == 0 {
					w.status = http.StatusInternalServerError // what net/http makes of it
				}
				c.auditCall()
				panic(p)
			}
			c.auditCall()
		}()
		if !ok {
			return // 403, written
		}
		c.svc = s.manage()
		c.svc.Log = slog.Default()
		i := slices.IndexFunc(rt.methods, func(m adminMethod) bool { return m.method == r.Method })
		switch {
		case len(rt.methods) == 0:
			c.problem(http.StatusNotFound, "about:blank", "", "There is no such resource in the admin API (see api/openapi.yaml).", nil)
		case i < 0:
			allow := make([]string, 0, len(rt.methods))
			for _, m := range rt.methods {
				allow = append(allow, m.method)
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			c.problem(http.StatusMethodNotAllowed, "about:blank", "",
				fmt.Sprintf("%s is not allowed here; use %s.", r.Method, strings.Join(allow, " or ")), nil)
		default:
			c.operation = rt.methods[i].operation
			rt.methods[i].handle(c)
		}
	})
}

// auditCall writes the call's admin.request event.
func (c *adminCall) auditCall() {
	status := c.w.status
	if status == 0 {
		status = http.StatusOK
	}
	e := storage.AuditEvent{Type: "admin.request", Actor: c.actor.Name, ClientID: c.clientID, Result: "success",
		Details: map[string]string{"operation": c.operation, "method": c.r.Method, "path": c.r.URL.Path, "status": fmt.Sprint(status)}}
	if status >= 400 {
		e.Result = "failure"
	}
	if c.reason != "" {
		e.Details["reason"] = c.reason
	}
	if c.user != nil {
		e.UserID, e.Username = c.user.ID, c.user.Username
	}
	c.s.audit(context.WithoutCancel(c.ctx), c.r, e)
}

// adminAuthenticate checks the bearer token. It returns the calling client
// and true when the call may go on; the client and false when it answered
// 403 (the caller is known, and audited); nil when it answered 401 or 500.
func (s *Server) adminAuthenticate(c *adminCall) (*storage.Client, bool) {
	ctx, r := c.ctx, c.r
	token, given := bearerToken(r)
	if !given {
		c.w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q", adminRealm))
		c.problem(http.StatusUnauthorized, "about:blank", "",
			"This API needs an access token: send Authorization: Bearer with a token of the client_credentials grant with scope idp:admin.", nil)
		return nil, false
	}
	invalid := func(why string) (*storage.Client, bool) {
		slog.InfoContext(ctx, "admin API: token refused", "reason", why, "ip", s.clientIP(r))
		c.w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q, error=\"invalid_token\", error_description=%q", adminRealm, why))
		c.problem(http.StatusUnauthorized, "about:blank", "", "The access token is "+why+": get a new one with the client_credentials grant.", nil)
		return nil, false
	}
	// The checks of oidcStorage.accessToken (expiry, the deny-list), made
	// here so that a store failure is a 500, not a refused token. Its
	// checks of a user's password changes do not concern client tokens,
	// the only ones let through.
	plain, err := accessTokenCrypto{keys: s.keys}.Decrypt(token)
	if err != nil {
		return invalid("not valid")
	}
	tokenID, subject, _ := strings.Cut(plain, ":")
	d, ok := decodeAccessTokenID(tokenID)
	if !ok {
		return invalid("not valid")
	}
	if d.expired(s.now()) {
		return invalid("expired")
	}
	for _, id := range []string{d.ID, familyRevocationID(d.Family)} {
		if id == "" {
			continue
		}
		revoked, err := s.store.IsAccessTokenRevoked(ctx, id)
		if err != nil {
			c.serverError(err)
			return nil, false
		}
		if revoked {
			return invalid("revoked")
		}
	}
	if d.Issued != 0 {
		stale, err := s.tokensRevokedAfter(ctx, "client:"+d.ClientID, time.Unix(0, d.Issued))
		if err != nil {
			c.serverError(err)
			return nil, false
		}
		if stale {
			return invalid("from before the client's secret changed")
		}
	}
	client, err := s.store.ClientByID(ctx, d.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return invalid("of a client that no longer exists")
	}
	if err != nil {
		c.serverError(err)
		return nil, false
	}
	forbidden := func(reason, detail string) (*storage.Client, bool) {
		c.reason = reason
		c.w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q, error=\"insufficient_scope\", scope=%q", adminRealm, adminScope))
		c.problem(http.StatusForbidden, "about:blank", "", detail, nil)
		return client, false
	}
	switch {
	case d.Grant != string(oidc.GrantTypeClientCredentials) || subject != d.ClientID:
		return forbidden("not a client_credentials token",
			"This API takes access tokens of the client_credentials grant only, not a user's.")
	case !slices.Contains(d.Scopes, adminScope):
		return forbidden("token without scope idp:admin",
			"The access token was not issued with scope idp:admin: ask for it in the client_credentials request.")
	case !slices.Contains(client.Scopes, adminScope):
		return forbidden("client without scope idp:admin",
			"The client no longer holds scope idp:admin.")
	}
	return client, true
}

// bearerToken reads Authorization: Bearer. given is false when the request
// has no bearer credentials at all (then 401 carries no error code, RFC
// 6750 section 3.1), true when it has, well-formed or not.
func bearerToken(r *http.Request) (token string, given bool) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", false
	}
	scheme, tok, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", len(values) > 1
	}
	tok = strings.TrimSpace(tok)
	if len(values) > 1 || tok == "" || len(tok) > 8192 {
		return "", true
	}
	return tok, true
}

// problemField names one bad input of a request.
type problemField struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// problemDetails is an RFC 9457 problem.
type problemDetails struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Errors []problemField `json:"errors,omitempty"`
}

// problem answers with a problem. An empty title is the status's phrase
// (what about:blank requires).
func (c *adminCall) problem(status int, typ, title, detail string, errs []problemField) {
	if title == "" {
		title = http.StatusText(status)
	}
	raw, err := json.Marshal(problemDetails{Type: typ, Title: title, Status: status, Detail: detail, Errors: errs})
	if err != nil {
		panic(err) // only strings and numbers
	}
	c.w.Header().Set("Content-Type", "application/problem+json")
	c.w.WriteHeader(status)
	c.w.Write(append(raw, '\n'))
}

func (c *adminCall) invalid(detail string, errs []problemField) {
	c.problem(http.StatusBadRequest, problemInvalidInput, "Invalid input", detail, errs)
}

func (c *adminCall) serverError(err error) {
	slog.ErrorContext(c.ctx, "admin API call failed", "operation", c.operation, "path", c.r.URL.Path, "error", err)
	if unavailable(err) {
		c.w.Header().Set("Retry-After", retryAfterUnavailable)
		c.problem(http.StatusServiceUnavailable, "about:blank", "", msgUnavailable, nil)
		return
	}
	c.problem(http.StatusInternalServerError, "about:blank", "", "Something went wrong on our side; try again in a moment.", nil)
}

// fail answers with the problem err is: bad values (400, each field
// named), a missing record (404), a conflict (409) or our failure (500).
// The messages of manage's errors are written for callers; others are
// logged, never shown.
func (c *adminCall) fail(err error) {
	if probs := manage.Problems(err); len(probs) > 0 {
		errs := make([]problemField, 0, len(probs))
		for _, p := range probs {
			field := p.Field
			if field == "id" {
				field = "client_id" // config's key; the API's is client_id
			}
			errs = append(errs, problemField{Field: field, Message: p.Message})
		}
		detail := errs[0].Message
		if len(errs) > 1 {
			detail = fmt.Sprintf("%d values are not right; see errors.", len(errs))
		}
		c.invalid(detail, errs)
		return
	}
	switch {
	case errors.Is(err, manage.ErrDeclaredInConfig):
		c.problem(http.StatusConflict, problemDeclaredInConfig, "Declared in the configuration file", err.Error(), nil)
	case errors.Is(err, storage.ErrNotFound):
		c.problem(http.StatusNotFound, "about:blank", "", err.Error(), nil)
	case errors.Is(err, storage.ErrConflict), errors.Is(err, manage.ErrPublicClient):
		c.problem(http.StatusConflict, "about:blank", "", err.Error(), nil)
	case errors.Is(err, password.ErrBusy):
		c.w.Header().Set("Retry-After", "5")
		c.problem(http.StatusServiceUnavailable, "about:blank", "", "The service is very busy right now; try again in a few seconds.", nil)
	default:
		c.serverError(err)
	}
}

// reply answers with v as JSON.
func (c *adminCall) reply(status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		c.serverError(err)
		return
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	c.w.Write(append(raw, '\n'))
}

// decode reads a JSON object body into v: application/json (or, for
// PATCH, application/merge-patch+json), at most maxBodyBytes, one object,
// no field v does not have. It answers the problem itself and returns false
// when the body is not right.
func (c *adminCall) decode(v any) bool {
	accepted := []string{"application/json"}
	if c.r.Method == http.MethodPatch {
		accepted = append(accepted, "application/merge-patch+json")
	}
	mt, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if cs, ok := params["charset"]; err != nil || !slices.Contains(accepted, mt) || ok && !strings.EqualFold(cs, "utf-8") {
		switch c.r.Method {
		case http.MethodPatch:
			c.w.Header().Set("Accept-Patch", strings.Join(accepted, ", "))
		case http.MethodPost:
			c.w.Header().Set("Accept-Post", strings.Join(accepted, ", "))
		}
		c.problem(http.StatusUnsupportedMediaType, "about:blank", "",
			"Send the body as JSON with Content-Type: application/json.", nil)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		c.problem(http.StatusRequestEntityTooLarge, "about:blank", "",
			fmt.Sprintf("The body is larger than %d KiB.", maxBodyBytes>>10), nil)
		return false
	case err != nil:
		c.problem(http.StatusBadRequest, problemMalformedJSON, "Malformed JSON", "The body could not be read.", nil)
		return false
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		c.problem(http.StatusBadRequest, problemMalformedJSON, "Malformed JSON", "The body must be a JSON object.", nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
		err = errors.New("trailing data")
	}
	if err == nil {
		return true
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ) && typ.Field != "":
		msg := fmt.Sprintf("%s must be %s, not a JSON %s.", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		c.invalid(msg, []problemField{{Field: typ.Field, Message: msg}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if f, err := strconv.Unquote(field); err == nil {
			field = f
		}
		msg := fmt.Sprintf("%s is not a field of this request.", field)
		c.invalid(msg, []problemField{{Field: field, Message: msg}})
	case errors.As(err, &syntax):
		c.problem(http.StatusBadRequest, problemMalformedJSON, "Malformed JSON",
			fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset), nil)
	default:
		c.problem(http.StatusBadRequest, problemMalformedJSON, "Malformed JSON", "The body must be one JSON object.", nil)
	}
	return false
}

// jsonKind names a Go kind as the JSON type a caller sends.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "ptr":
		return "a value of another type"
	}
	return "a " + kind
}
