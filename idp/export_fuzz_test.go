package idp

import "net/http"

// ClientIP and ClientNetwork expose the caller's address as the server
// reads it (trusted_proxies and X-Forwarded-For) to FuzzClientIP.
func ClientIP(s *Server, r *http.Request) string      { return s.clientIP(r) }
func ClientNetwork(s *Server, r *http.Request) string { return s.clientNetwork(r) }
