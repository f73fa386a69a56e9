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
		buf := &errorHoldingResponse{w: w}
		p.ServeHTTP(buf, r)
		if !buf.holding {
			return // a success (or nothing written) went straight through
		}
		if err := s.ready(r.Context()); err != nil {
			slog.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "status", http.StatusServiceUnavailable,
				"library_status", buf.status, "error", err)
			for k := range w.Header() {
				delete(w.Header(), k)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Retry-After", retryAfterUnavailable)
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"error": "temporarily_unavailable",
				"error_description": "the service is temporarily unavailable; try again in a minute"})
			return
		}
		w.WriteHeader(buf.status)
		w.Write(buf.body.Bytes())
	})
}

// errorHoldingResponse passes a success straight through and holds an
// error answer (status 400 and up) until outageAware has decided whether
// it was caused by an outage. The library's answers at these endpoints are
// small JSON documents.
type errorHoldingResponse struct {
	w           http.ResponseWriter
	status      int
	wroteHeader bool
	holding     bool
	body        bytes.Buffer
}

func (b *errorHoldingResponse) Header() http.Header { return b.w.Header() }

func (b *errorHoldingResponse) WriteHeader(status int) {
	if b.wroteHeader {
		return
	}
	b.status, b.wroteHeader = status, true
	if status >= http.StatusBadRequest {
		b.holding = true
		return
	}
	b.w.WriteHeader(status)
}

func (b *errorHoldingResponse) Write(p []byte) (int, error) {
	if !b.wroteHeader {
		b.WriteHeader(http.StatusOK)
	}
	if b.holding {
		return b.body.Write(p)
	}
	return b.w.Write(p)
}
