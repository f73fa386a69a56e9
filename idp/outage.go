package idp

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// outageAware serves the library's routes. At those that read the stores
// (token, userinfo, introspection, revocation) an error answer given while
// the database or Redis is down becomes 503 with Retry-After and
// temporarily_unavailable: the library reports any failed read of a code
// or a refresh token as invalid_grant, which a portal takes as final (it
// would drop the user's refresh token over a minute's outage). Only an
// error answer costs the readiness check.
func (s *Server) outageAware(p *op.Provider) http.Handler {
	paths := map[string]bool{}
	for _, e := range []*op.Endpoint{p.TokenEndpoint(), p.UserinfoEndpoint(), p.IntrospectionEndpoint(), p.RevocationEndpoint()} {
		if path := e.Relative(); path != "" {
			paths[path] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !paths[r.URL.Path] {
			p.ServeHTTP(w, r)
			return
		}
		buf := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		p.ServeHTTP(buf, r)
		if buf.status >= http.StatusBadRequest {
			if err := s.ready(r.Context()); err != nil {
				slog.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "status", http.StatusServiceUnavailable,
					"library_status", buf.status, "error", err)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", retryAfterUnavailable)
				w.WriteHeader(http.StatusServiceUnavailable)
				json.NewEncoder(w).Encode(map[string]string{"error": "temporarily_unavailable",
					"error_description": "the service is temporarily unavailable; try again in a minute"})
				return
			}
		}
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.WriteHeader(buf.status)
		w.Write(buf.body.Bytes())
	})
}

// bufferedResponse holds a response until outageAware has seen its status.
// The library's answers at these endpoints are small JSON documents.
type bufferedResponse struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if !b.wroteHeader {
		b.status, b.wroteHeader = status, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wroteHeader = true
	return b.body.Write(p)
}
