package config_test

import (
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hostportal/idp/config"
)

// FuzzLoad reads a configuration file and IDP_* variables (one KEY=VALUE a
// line) made up by the fuzzer. Load never panics; a refused configuration
// names, on every line of its error, the key (or variable) at fault; an
// accepted one validates again and holds exactly the whole numbers the
// file gave its number keys (no silent wrap-around or truncation).
func FuzzLoad(f *testing.F) {
	for _, s := range []struct{ file, env string }{
		{"", ""},
		{"issuer: https://login.example.com\nsecret_key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", ""},
		{"clients:\n  - id: portal\n    secret: 0123456789abcdef0123456789abcdef-long\n    redirect_uris: [https://portal.example.com/cb]\n", ""},
		{"password:\n  argon2:\n    parallelism: 300\n    memory_kib: -1\n", ""},
		{"password:\n  min_length: 12.7\n", ""},
		{"sms:\n  limits:\n    per_user_hour: 9223372036854775808\n", ""},
		{"colour: blue\nredis:\n  uri: x\n", ""},
		{"issuer: {a: b}\ntokens: [1, 2]\nsms: 5\n", ""},
		{"clients:\n  - id: \"a\\nb\"\n", ""},
		{"\"a\\nb\": 1\n", ""},
		{"mfa:\n  remember_device: 3600\n", "IDP_MFA_REMEMBER_DEVICE=1e400h"},
		{"? [a]\n: 1\n", ""},
		{"", "IDP_PASSWORD_ARGON2_PARALLELISM=300\nIDP_REDIS_URI=redis://x\nIDP_CLIENTS=[]"},
		{"", "IDP_TRUSTED_PROXIES=10.0.0.0/8,proxy\nIDP_SMS_ALLOWED_COUNTRIES=US,Narnia"},
		{"trusted_proxies: [\"::ffff:10.0.0.0/104\", 127.0.0.1]\n", "IDP_ISSUER=http://localhost:8080/"},
	} {
		f.Add(s.file, s.env)
	}
	path := filepath.Join(f.TempDir(), "idp.yaml")
	top := map[string]bool{}
	for _, k := range config.Keys() {
		top[strings.SplitN(k, ".", 2)[0]] = true
	}
	top["clients"] = true
	f.Fuzz(func(t *testing.T, file, env string) {
		src := config.Source{}
		if file != "" {
			if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}
			src.File = path
		}
		var names []string
		if env != "" {
			src.Environ = strings.Split(env, "\n")
			for _, kv := range src.Environ {
				name, _, _ := strings.Cut(kv, "=")
				names = append(names, name)
			}
		}
		cfg, err := config.Load(src)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Load returned a configuration with the error %v", err)
			}
			lines := errLines(err)
			if strings.HasPrefix(lines[0], "configuration file ") {
				return // the file itself: not YAML (with the parser's line), or unreadable
			}
			// The keys a line may name: the configuration's, what the
			// file wrote (unknown keys), the variables given.
			named := map[string]bool{}
			for k := range top {
				named[k] = true
			}
			for _, k := range yamlTopKeys(file) {
				named[k] = true
			}
			for _, n := range names {
				named[n] = true
			}
			for _, line := range lines {
				if !namesKey(strings.TrimPrefix(line, "'"), named) {
					t.Fatalf("error line %q names no key; the whole error:\n%v", line, err)
				}
			}
			return
		}
		again := *cfg
		if err := again.Validate(); err != nil {
			t.Fatalf("an accepted configuration does not validate again: %v", err)
		}
		var doc map[string]any
		if yaml.Unmarshal([]byte(file), &doc) != nil {
			return
		}
		for key, v := range yamlLeaves(doc, "") {
			if !knownKey(key) || strings.Contains(env, config.EnvName(key)+"=") {
				continue
			}
			got := reflect.ValueOf(field(t, cfg, key))
			if !isInteger(got.Kind()) {
				continue
			}
			n, whole := yamlNumber(v)
			if !whole {
				t.Fatalf("%s: %v (not a whole number) was accepted as %v", key, v, got)
			}
			if n != nil && !sameNumber(got, n) {
				t.Fatalf("%s: %v was read as %v", key, v, got)
			}
		}
	})
}

// namesKey reports whether line starts with one of the names (or with one
// quoted, for a key with a line break), followed by the end of the key (a
// dot, an index, a colon, a quote or a space).
func namesKey(line string, names map[string]bool) bool {
	if strings.HasPrefix(line, `"`) {
		q, err := strconv.QuotedPrefix(line)
		if err != nil {
			return false
		}
		k, _ := strconv.Unquote(q)
		return namesKey(k, names)
	}
	for n := range names {
		if n == "" || !strings.HasPrefix(strings.ToLower(line), strings.ToLower(n)) {
			continue
		}
		rest := line[len(n):]
		if rest == "" || strings.ContainsRune(".[:' ", rune(rest[0])) {
			return true
		}
	}
	return false
}

// yamlTopKeys are the top-level keys of a YAML mapping as the errors may
// name them: lower case (viper's), and also their parts before a dot
// (viper's path separator) and between ", " (mapstructure lists unknown
// keys joined by it).
func yamlTopKeys(file string) []string {
	var doc map[string]any
	if yaml.Unmarshal([]byte(file), &doc) != nil {
		return nil
	}
	var out []string
	for k := range doc {
		for _, p := range strings.Split(strings.ToLower(k), ", ") {
			out = append(out, p, strings.Split(p, ".")[0])
		}
	}
	return out
}

// yamlLeaves flattens a YAML document into key paths (lower case, as the
// configuration reads them) and their scalar values.
func yamlLeaves(m map[string]any, prefix string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		key := prefix + strings.ToLower(k)
		if sub, ok := v.(map[string]any); ok {
			for kk, vv := range yamlLeaves(sub, key+".") {
				out[kk] = vv
			}
			continue
		}
		out[key] = v
	}
	return out
}

func knownKey(key string) bool {
	for _, k := range config.Keys() {
		if k == key {
			return true
		}
	}
	return false
}

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// yamlNumber returns a YAML number as a float64 (nil for a value that is
// not a number: the decoder refuses those itself) and whether it is whole.
func yamlNumber(v any) (*float64, bool) {
	var n float64
	switch x := v.(type) {
	case int:
		n = float64(x)
	case uint64:
		n = float64(x)
	case float64:
		n = x
	default:
		return nil, true
	}
	return &n, n == math.Trunc(n) && !math.IsInf(n, 0)
}

func sameNumber(got reflect.Value, n *float64) bool {
	if got.CanInt() {
		return float64(got.Int()) == *n
	}
	return float64(got.Uint()) == *n
}

// FuzzValidateRedirectURI: a redirect URI that registration accepts is an
// absolute URI that parses back to itself (what is matched is what the
// browser is sent to), has no fragment, and is https, http on a loopback
// host, or a reverse-domain app scheme; a URI differing from it is not it.
func FuzzValidateRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://portal.example.com/callback", "http://127.0.0.1:9/callback", "http://localhost/cb", "http://[::1]:8080/cb",
		"com.example.app:/oauth2redirect", "https://portal.example.com/cb#frag", "https://portal.example.com/cb#",
		"http://portal.example.com/cb", "http://localhost.evil.com/cb", "javascript:alert(1)", "https:portal.example.com",
		"https:///cb", "/relative", "HTTPS://PORTAL.EXAMPLE.COM/cb", "https://portal.example.com/a b", "https://ex%61mple.com/cb",
		"https://user:pass@portal.example.com/cb", "https://portal.example.com/cb?x=1&x=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if err := config.ValidateRedirectURI(raw); err != nil {
			if !strings.Contains(err.Error(), "\"") {
				t.Fatalf("error %q does not quote the URI", err)
			}
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which url.Parse refuses: %v", raw, err)
		}
		if u.String() != raw {
			t.Fatalf("accepted %q, which reads back as %q: the provider would send the browser elsewhere than registered", raw, u.String())
		}
		if u.Fragment != "" || strings.Contains(raw, "#") {
			t.Fatalf("accepted %q with a fragment", raw)
		}
		switch {
		case u.Scheme == "https":
			if u.Host == "" {
				t.Fatalf("accepted https %q without a host", raw)
			}
		case u.Scheme == "http":
			if !config.IsLoopbackHost(u.Hostname()) {
				t.Fatalf("accepted plain http %q on host %q", raw, u.Hostname())
			}
		case !strings.Contains(u.Scheme, "."):
			t.Fatalf("accepted %q with the scheme %q", raw, u.Scheme)
		}
	})
}

// FuzzParseProxy: a trusted_proxies entry that is accepted is a network
// that holds the address written (or the network's address), of the same
// family; anything else is refused with the entry quoted.
func FuzzParseProxy(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8", "127.0.0.1", " fd00::/8 ", "::ffff:10.0.0.0/104", "::1", "10.0.0.1/33", "10.0.0.0/-1", "proxy.internal",
		"", "0.0.0.0/0", "::/0", "fe80::1%eth0", "10.0.0.1/8", "1.2.3.4:80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := config.ParseProxy(s)
		if err != nil {
			if n != nil {
				t.Fatalf("ParseProxy(%q) returned %v with the error %v", s, n, err)
			}
			return
		}
		entry := strings.TrimSpace(s)
		addr, _, _ := strings.Cut(entry, "/")
		ip := net.ParseIP(addr)
		if ip == nil {
			t.Fatalf("ParseProxy(%q) = %v, but %q is not an address", s, n, addr)
		}
		if !n.Contains(ip) {
			t.Fatalf("ParseProxy(%q) = %v, which does not hold %v", s, n, ip)
		}
		ones, bits := n.Mask.Size()
		if bits == 0 || ones > bits {
			t.Fatalf("ParseProxy(%q) = %v: mask %v is not canonical", s, n, n.Mask)
		}
		if !strings.Contains(entry, "/") && ones != bits {
			t.Fatalf("ParseProxy(%q) = %v, not the single address", s, n)
		}
	})
}
