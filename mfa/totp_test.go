package mfa

import (
	"bytes"
	"image/png"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// rfcSecret is the SHA1 seed of RFC 6238's test vectors.
var rfcSecret = []byte("12345678901234567890")

// TestMatchTOTPRFC6238 checks the RFC 6238 appendix B SHA1 vectors (their
// last six digits) at the exact times of the RFC.
func TestMatchTOTPRFC6238(t *testing.T) {
	tests := []struct {
		unix int64
		code string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			now := time.Unix(tt.unix, 0)
			step, ok := MatchTOTP(rfcSecret, tt.code, now)
			if !ok {
				t.Fatalf("MatchTOTP(%q at %d) refused", tt.code, tt.unix)
			}
			if want := tt.unix / 30; step != want {
				t.Errorf("step = %d, want %d", step, want)
			}
			if got := TOTPCode(rfcSecret, now); got != tt.code {
				t.Errorf("TOTPCode = %q, want %q", got, tt.code)
			}
		})
	}
}

func TestTOTPStep(t *testing.T) {
	tests := []struct {
		unix int64
		want int64
	}{
		{0, 0}, {29, 0}, {30, 1}, {59, 1}, {60, 2},
		{1111111109, 37037036}, {-1, -1}, {-30, -1}, {-31, -2},
	}
	for _, tt := range tests {
		if got := TOTPStep(time.Unix(tt.unix, 0)); got != tt.want {
			t.Errorf("TOTPStep(%d) = %d, want %d", tt.unix, got, tt.want)
		}
	}
	// Sub-second time and location do not matter.
	if got := TOTPStep(time.Unix(59, 999999999).In(time.FixedZone("x", 5*3600))); got != 1 {
		t.Errorf("TOTPStep(59.999s) = %d, want 1", got)
	}
}

// windowNow is a fixed time whose codes for rfcSecret are all distinct
// within ±20 steps (checked by distinctCodes), so the skew and clock tests
// need no allowance for chance equalities.
var windowNow = time.Unix(1_700_000_015, 0)

func distinctCodes(t *testing.T, sec []byte, now time.Time, steps int64) {
	t.Helper()
	seen := map[string]int64{}
	cur := TOTPStep(now)
	for d := -steps; d <= steps; d++ {
		c := totpCodeAt(sec, cur+d)
		if prev, dup := seen[c]; dup {
			t.Fatalf("steps %+d and %+d share code %s: pick another time", prev, d, c)
		}
		seen[c] = d
	}
}

func totpCodeAt(sec []byte, step int64) string {
	return TOTPCode(sec, time.Unix(step*30, 0))
}

func TestMatchTOTPSkew(t *testing.T) {
	distinctCodes(t, rfcSecret, windowNow, 20)
	cur := TOTPStep(windowNow)
	tests := []struct {
		offset int64
		ok     bool
	}{
		{-3, false}, {-2, false}, {-1, true}, {0, true}, {1, true}, {2, false}, {3, false},
	}
	for _, tt := range tests {
		step := cur + tt.offset
		got, ok := MatchTOTP(rfcSecret, totpCodeAt(rfcSecret, step), windowNow)
		if ok != tt.ok {
			t.Errorf("offset %+d: ok = %v, want %v", tt.offset, ok, tt.ok)
			continue
		}
		if ok && got != step {
			t.Errorf("offset %+d: step = %d, want %d", tt.offset, got, step)
		}
	}
	// Anywhere inside a step, not only at its start.
	for _, sub := range []time.Duration{0, time.Second, 29*time.Second + 999*time.Millisecond} {
		now := time.Unix(cur*30, 0).Add(sub)
		if got, ok := MatchTOTP(rfcSecret, totpCodeAt(rfcSecret, cur+1), now); !ok || got != cur+1 {
			t.Errorf("at +%v into the step: %d, %v", sub, got, ok)
		}
	}
}

func TestMatchTOTPNormalisation(t *testing.T) {
	now := time.Unix(59, 0) // code 287082
	tests := []struct {
		code string
		ok   bool
	}{
		{"287082", true},
		{"287 082", true},
		{"287-082", true},
		{" 287082 ", true},
		{"28 70 82", true},
		{"287\t082", true},
		{"287082\r\n", true},
		{"287\u00a0082", true}, // no-break space
		{"287\u2013082", true}, // en dash
		{"287\xff082", false},  // not UTF-8
		{"", false},
		{"12345", false},
		{"1234567", false},
		{"2870821", false},
		{"12a456", false},
		{"28708a", false},
		{"１２３４５６", false}, // full-width digits
		{"２８７０８２", false}, // full-width digits of the right code
		{"287082\x00", false},
		{"+287082", false},
		{"-------", false},
		{"287.082", false},
		{"287082" + strings.Repeat(" ", 100), false}, // too long to bother
		{"000000", false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			step, ok := MatchTOTP(rfcSecret, tt.code, now)
			if ok != tt.ok {
				t.Fatalf("MatchTOTP(%q) ok = %v, want %v", tt.code, ok, tt.ok)
			}
			if ok && step != 1 {
				t.Errorf("step = %d, want 1", step)
			}
		})
	}
}

func TestMatchTOTPEmptySecret(t *testing.T) {
	now := time.Unix(59, 0)
	code := TOTPCode(nil, now) // what HMAC under an empty key gives
	if _, ok := MatchTOTP(nil, code, now); ok {
		t.Error("MatchTOTP accepted a code for an empty secret")
	}
	if _, ok := ClockOffset(nil, code, now, 20); ok {
		t.Error("ClockOffset matched a code for an empty secret")
	}
}

func TestMatchTOTPBefore1970(t *testing.T) {
	// Steps before the epoch have no code; nothing panics.
	for _, unix := range []int64{-1, -31, -1 << 40} {
		if _, ok := MatchTOTP(rfcSecret, "123456", time.Unix(unix, 0)); ok {
			t.Errorf("matched at %d", unix)
		}
	}
	// At time 0 the steps 0 and 1 are still checked.
	code := TOTPCode(rfcSecret, time.Unix(30, 0))
	if step, ok := MatchTOTP(rfcSecret, code, time.Unix(0, 0)); !ok || step != 1 {
		t.Errorf("MatchTOTP at 0 = %d, %v; want 1, true", step, ok)
	}
}

func TestClockOffset(t *testing.T) {
	distinctCodes(t, rfcSecret, windowNow, 20)
	cur := TOTPStep(windowNow)
	tests := []struct {
		offset int64
		max    int
		want   int
		ok     bool
	}{
		{5, 20, 5, true},
		{-7, 20, -7, true},
		{2, 20, 2, true},
		{-2, 20, -2, true},
		{20, 20, 20, true},
		{-20, 20, -20, true},
		{21, 20, 0, false},
		{5, 4, 0, false},
		{0, 20, 0, false}, // the accepted window is MatchTOTP's business
		{1, 20, 0, false},
		{-1, 20, 0, false},
		{5, 0, 0, false},
		{5, -3, 0, false},
	}
	for _, tt := range tests {
		code := totpCodeAt(rfcSecret, cur+tt.offset)
		got, ok := ClockOffset(rfcSecret, code, windowNow, tt.max)
		if got != tt.want || ok != tt.ok {
			t.Errorf("offset %+d within %d: got %d, %v; want %d, %v", tt.offset, tt.max, got, ok, tt.want, tt.ok)
		}
	}
	for _, junk := range []string{"", "12345", "abcdef", "１２３４５６"} {
		if _, ok := ClockOffset(rfcSecret, junk, windowNow, 20); ok {
			t.Errorf("ClockOffset(%q) matched", junk)
		}
	}
}

func TestNewTOTPSecret(t *testing.T) {
	a, b := NewTOTPSecret(), NewTOTPSecret()
	if len(a) != 20 || len(b) != 20 {
		t.Fatalf("lengths %d, %d; want 20", len(a), len(b))
	}
	if bytes.Equal(a, b) {
		t.Error("two secrets are equal")
	}
}

func TestTOTPURL(t *testing.T) {
	sec := []byte("12345678901234567890")
	const secB32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	tests := []struct {
		name, issuer, account string
		labelIssuer           string // the issuer as the label shows it
		want                  string // the exact URI, when fixed
	}{
		{
			name: "plain", issuer: "Example", account: "alice",
			want: "otpauth://totp/Example:alice?secret=" + secB32 + "&issuer=Example&algorithm=SHA1&digits=6&period=30",
		},
		{
			name: "spaces", issuer: "ACME Co", account: "john doe@example.com",
			want: "otpauth://totp/ACME%20Co:john%20doe@example.com?secret=" + secB32 + "&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30",
		},
		{
			name: "host with port", issuer: "localhost:8080", account: "alice",
			labelIssuer: "localhost 8080",
			want:        "otpauth://totp/localhost%208080:alice?secret=" + secB32 + "&issuer=localhost%3A8080&algorithm=SHA1&digits=6&period=30",
		},
		{name: "colon in account", issuer: "Example", account: "a:b:c"},
		{name: "colons in both", issuer: "x:y", account: "a:b", labelIssuer: "x y"},
		{name: "unicode", issuer: "Société Générale", account: "josé@exämple.com"},
		{name: "cjk", issuer: "東京", account: "ユーザー"},
		{name: "query characters", issuer: "C++ & Co=1", account: "a+b&c=d?e#f"},
		{name: "percent and slash", issuer: "100%/ok", account: "a/b%20c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := TOTPURL(tt.issuer, tt.account, sec)
			if tt.want != "" && u != tt.want {
				t.Errorf("TOTPURL =\n %s\nwant\n %s", u, tt.want)
			}
			if !strings.HasPrefix(u, "otpauth://totp/") || strings.ContainsAny(u, " +") {
				t.Errorf("TOTPURL = %s: not a clean otpauth URI", u)
			}
			key, err := otp.NewKeyFromURL(u)
			if err != nil {
				t.Fatal(err)
			}
			if key.Type() != "totp" {
				t.Errorf("Type = %q", key.Type())
			}
			if key.Issuer() != tt.issuer {
				t.Errorf("Issuer = %q, want %q", key.Issuer(), tt.issuer)
			}
			if key.AccountName() != tt.account {
				t.Errorf("AccountName = %q, want %q", key.AccountName(), tt.account)
			}
			labelIssuer := tt.labelIssuer
			if labelIssuer == "" {
				labelIssuer = tt.issuer
			}
			if want := "/" + labelIssuer + ":" + tt.account; keyPath(t, key) != want {
				t.Errorf("label = %q, want %q", keyPath(t, key), want)
			}
			if key.Secret() != secB32 {
				t.Errorf("Secret = %q, want %q", key.Secret(), secB32)
			}
			if key.Digits() != otp.DigitsSix || key.Period() != 30 || key.Algorithm() != otp.AlgorithmSHA1 {
				t.Errorf("Digits, Period, Algorithm = %v, %v, %v", key.Digits(), key.Period(), key.Algorithm())
			}
			// The explicit parameters are there, not just defaults.
			for _, p := range []string{"algorithm=SHA1", "digits=6", "period=30"} {
				if !strings.Contains(u, p) {
					t.Errorf("TOTPURL lacks %s", p)
				}
			}
		})
	}
}

// keyPath returns the decoded path of the key's URI: "/" and its label.
func keyPath(t *testing.T, key *otp.Key) string {
	t.Helper()
	u, err := url.Parse(key.String())
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

func TestTOTPURLEmptyIssuer(t *testing.T) {
	u := TOTPURL("", "alice", rfcSecret)
	if strings.Contains(u, "issuer=") {
		t.Errorf("TOTPURL with no issuer = %s", u)
	}
	key, err := otp.NewKeyFromURL(u)
	if err != nil {
		t.Fatal(err)
	}
	if key.AccountName() != "alice" || key.Issuer() != "" {
		t.Errorf("AccountName, Issuer = %q, %q", key.AccountName(), key.Issuer())
	}
}

func TestTOTPQRCode(t *testing.T) {
	u := TOTPURL("Example Portal", "alice@example.com", NewTOTPSecret())
	for _, size := range []int{200, 256, 333} {
		b, err := TOTPQRCode(u, size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("size %d: not a PNG: %v", size, err)
		}
		if r := img.Bounds(); r.Dx() != size || r.Dy() != size {
			t.Errorf("size %d: image is %dx%d", size, r.Dx(), r.Dy())
		}
	}
	for _, size := range []int{0, -5, 10} {
		if _, err := TOTPQRCode(u, size); err == nil {
			t.Errorf("size %d: no error", size)
		}
	}
}

func TestFormatSetupKey(t *testing.T) {
	tests := []struct {
		secret []byte
		want   string
	}{
		{[]byte("12345678901234567890"), "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"},
		{[]byte("Hello!\xde\xad\xbe\xef"), "JBSW Y3DP EHPK 3PXP"},
		{[]byte("a"), "ME"},
		{[]byte("abcde"), "MFRG GZDF"},
		{[]byte("abcdef"), "MFRG GZDF MY"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := FormatSetupKey(tt.secret); got != tt.want {
			t.Errorf("FormatSetupKey(%q) = %q, want %q", tt.secret, got, tt.want)
		}
	}
	// A new secret gives eight groups of four base32 letters.
	re := regexp.MustCompile(`^[A-Z2-7]{4}( [A-Z2-7]{4}){7}$`)
	if k := FormatSetupKey(NewTOTPSecret()); !re.MatchString(k) {
		t.Errorf("FormatSetupKey(new) = %q", k)
	}
	// What the user types back, spaces and all, is the secret: apps accept
	// it as written.
	sec := NewTOTPSecret()
	typed := strings.ReplaceAll(FormatSetupKey(sec), " ", "")
	if got, err := b32.DecodeString(typed); err != nil || !bytes.Equal(got, sec) {
		t.Errorf("setup key does not decode to the secret: %v", err)
	}
}

func FuzzMatchTOTP(f *testing.F) {
	for _, s := range []struct {
		code string
		unix int64
	}{
		{"287082", 59}, {"287 082", 59}, {"287-082", 89}, {"", 0}, {"12345", 1},
		{"1234567", 1e9}, {"12a456", 1e9}, {"１２３４５６", 1e9}, {"------", -1},
		{"081804", 1111111109}, {"999999", -1 << 62}, {"000000", 1 << 62},
	} {
		f.Add(s.code, s.unix)
	}
	f.Fuzz(func(t *testing.T, code string, unix int64) {
		now := time.Unix(unix, 0)
		step, ok := MatchTOTP(rfcSecret, code, now)
		if !ok {
			return
		}
		cur := TOTPStep(now)
		if step < cur-TOTPSkew || step > cur+TOTPSkew {
			t.Fatalf("MatchTOTP(%q at %d) matched step %d outside %d±1", code, unix, step, cur)
		}
		n, valid := normalizeTOTPCode(code)
		if !valid {
			t.Fatalf("MatchTOTP accepted %q that does not normalise", code)
		}
		if want := TOTPCode(rfcSecret, time.Unix(step*30, 0)); n != want {
			t.Fatalf("MatchTOTP(%q) matched step %d whose code is %s", code, step, want)
		}
	})
}

func BenchmarkMatchTOTP(b *testing.B) {
	sec := NewTOTPSecret()
	now := time.Unix(1_700_000_000, 0)
	code := TOTPCode(sec, now)
	for b.Loop() {
		if _, ok := MatchTOTP(sec, code, now); !ok {
			b.Fatal("refused")
		}
	}
}
