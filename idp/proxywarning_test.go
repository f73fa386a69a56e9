package idp_test

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hostportal/idp/idp"
	"github.com/hostportal/idp/idp/idptest"
)

// TestUntrustedProxyWarning: X-Forwarded-For from a private address that
// trusted_proxies does not list is logged once, since every client behind
// that proxy would count as one network; a public client sending the
// header itself is not a proxy and logs nothing.
func TestUntrustedProxyWarning(t *testing.T) {
	env := idptest.New(t, idptest.Backends[0], idptest.Options{})
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	public := httptest.NewRequest("GET", "/login", nil)
	public.RemoteAddr = "198.51.100.20:4000"
	public.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := idp.ClientIP(env.Server, public); got != "198.51.100.20" {
		t.Fatalf("client ip %q", got)
	}
	if logs.Len() != 0 {
		t.Fatalf("a public client's own header was logged: %s", logs.String())
	}
	for range 3 {
		r := httptest.NewRequest("GET", "/login", nil)
		r.RemoteAddr = "10.1.2.3:5000"
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := idp.ClientIP(env.Server, r); got != "10.1.2.3" {
			t.Fatalf("an untrusted proxy was believed: %q", got)
		}
	}
	if n := strings.Count(logs.String(), "trusted_proxies does not list"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
	}
}
