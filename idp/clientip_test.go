package idp

import (
	"net"
	"net/http/httptest"
	"testing"
)

// clientIP believes X-Forwarded-For only from trusted_proxies, and then
// only the hops they wrote; per-IP limits count IPv6 clients by /64.
func TestClientIP(t *testing.T) {
	var proxies []*net.IPNet
	for _, c := range []string{"10.0.0.0/8", "fd00::/8"} {
		_, n, _ := net.ParseCIDR(c)
		proxies = append(proxies, n)
	}
	s := &Server{proxies: proxies}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		ip, network  string
	}{
		{"direct", "203.0.113.7:5000", nil, "203.0.113.7", "203.0.113.7"},
		{"untrusted peer's header ignored", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7", "203.0.113.7"},
		{"one proxy", "10.1.2.3:443", []string{"198.51.100.1"}, "198.51.100.1", "198.51.100.1"},
		{"client-written hops ignored", "10.1.2.3:443", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1", "198.51.100.1"},
		{"two proxies", "10.1.2.3:443", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1", "198.51.100.1"},
		{"several headers", "10.1.2.3:443", []string{"1.2.3.4", "198.51.100.1"}, "198.51.100.1", "198.51.100.1"},
		{"junk hop", "10.1.2.3:443", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3", "10.1.2.3"},
		{"only proxies", "10.1.2.3:443", []string{"10.4.4.4"}, "10.1.2.3", "10.1.2.3"},
		{"no header from proxy", "10.1.2.3:443", nil, "10.1.2.3", "10.1.2.3"},
		{"ipv6 client by /64", "[fd00::1]:443", []string{"2001:db8:1:2:3:4:5:6"}, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"ipv6 direct", "[2001:db8:1:2::9]:443", nil, "2001:db8:1:2::9", "2001:db8:1:2::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, h := range tc.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			if got := s.clientIP(r); got != tc.ip {
				t.Errorf("clientIP = %q, want %q", got, tc.ip)
			}
			if got := s.clientNetwork(r); got != tc.network {
				t.Errorf("clientNetwork = %q, want %q", got, tc.network)
			}
		})
	}
}
