// Package config owns the provider's configuration: the typed Config every
// other package receives, its defaults, and loading it with viper from a YAML
// file and IDP_* environment variables. Unknown keys and invalid values are
// all reported at once, each naming its key.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Config is the whole configuration. The mapstructure tags are the stable
// configuration keys of SPEC.md (and the ones this project added).
type Config struct {
	// Issuer is the provider's URL, as portals see it; https unless the
	// host is localhost or a loopback address.
	Issuer string `mapstructure:"issuer"`
	// Listen is the address (HOST:PORT) the server listens on.
	Listen string `mapstructure:"listen"`
	// TrustedProxies are the CIDRs of reverse proxies whose X-Forwarded-For
	// is believed; empty: the client is the peer of the connection.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// DataDir holds the generated secret.key when secret_key is not set.
	DataDir string `mapstructure:"data_dir"`
	// SecretKey is 32 bytes, base64: it seals signing keys, TOTP secrets and
	// access tokens and signs cookies; the same on every instance.
	SecretKey string         `mapstructure:"secret_key"`
	Database  DatabaseConfig `mapstructure:"database"`
	Redis     RedisConfig    `mapstructure:"redis"`
	SMS       SMSConfig      `mapstructure:"sms"`
	Email     EmailConfig    `mapstructure:"email"`
	MFA       MFAConfig      `mapstructure:"mfa"`
	WebAuthn  WebAuthnConfig `mapstructure:"webauthn"`
	Password  PasswordConfig `mapstructure:"password"`
	Tokens    TokensConfig   `mapstructure:"tokens"`
	Keys      KeysConfig     `mapstructure:"keys"`
	Session   SessionConfig  `mapstructure:"session"`
	// Regulation is the brute-force limits of every factor.
	Regulation RegulationConfig `mapstructure:"regulation"`
	Audit      AuditConfig      `mapstructure:"audit"`
	Log        LogConfig        `mapstructure:"log"`
	// Clients are relying parties declared in the file (the fields of
	// `idp client add`), written to the database at start.
	Clients    []ClientConfig `mapstructure:"clients"`
	secretKey  []byte
	issuerHost string
}

// DatabaseConfig: database.*
type DatabaseConfig struct {
	URL string `mapstructure:"url"` // sqlite://PATH or postgres://...
	// MaxConnections bounds each instance's pool of PostgreSQL connections
	// (default 20; SQLite ignores it). Keep instances x max_connections
	// under the server's max_connections (100 by default), with room for
	// migrations, backups and psql.
	MaxConnections int `mapstructure:"max_connections"`
}

// RedisConfig: redis.*
type RedisConfig struct {
	URL       string `mapstructure:"url"`        // empty: in-process pending-login store
	KeyPrefix string `mapstructure:"key_prefix"` // prepended to every key
	// Timeout bounds each Redis operation (connecting, the command and its
	// retries): a Redis slower than that makes the page answer 503. It is
	// also the dial, read and write timeout unless redis.url sets them.
	Timeout time.Duration `mapstructure:"timeout"`
}

// SMSConfig: sms.*
type SMSConfig struct {
	Provider string `mapstructure:"provider"` // none, console, twilio
	// Message is the text of a code message; {code}, {issuer} and {minutes}
	// are replaced. The WebOTP line "@host #code" is always appended.
	Message string `mapstructure:"message"`
	// Timeout bounds one call to the provider.
	Timeout time.Duration `mapstructure:"timeout"`
	// AllowedCountries restricts where codes go: calling codes ("1", "+44")
	// or ISO regions ("US", "GB"); empty allows every country.
	AllowedCountries []string     `mapstructure:"allowed_countries"`
	Limits           SMSLimits    `mapstructure:"limits"`
	Twilio           TwilioConfig `mapstructure:"twilio"`
}

// SMSLimits: sms.limits.* (against SMS pumping: every message costs money
// and a bot can make a form send thousands).
type SMSLimits struct {
	ResendInterval time.Duration `mapstructure:"resend_interval"` // at most one message per pending login (or phone verification) this often
	PerUserHour    int           `mapstructure:"per_user_hour"`   // messages to one user in a clock hour
	PerUserDay     int           `mapstructure:"per_user_day"`    // messages to one user in a UTC day
	PerNumberHour  int           `mapstructure:"per_number_hour"` // messages to one number in a clock hour, whoever asks
	PerNumberDay   int           `mapstructure:"per_number_day"`  // messages to one number in a UTC day
	PerIPHour      int           `mapstructure:"per_ip_hour"`     // messages asked for from one client IP (IPv6 by /64) in a clock hour
	PerIPDay       int           `mapstructure:"per_ip_day"`      // the same in a UTC day
	// NumbersPerUserDay caps the different numbers a user may save (each
	// gets a verification text) in a day.
	NumbersPerUserDay int `mapstructure:"numbers_per_user_day"`
	// TotalHour and TotalDay are a ceiling on every message the deployment
	// sends: what SMS pumping can cost at most.
	TotalHour int `mapstructure:"total_hour"`
	TotalDay  int `mapstructure:"total_day"` // the deployment's ceiling in a UTC day
}

// TwilioConfig: sms.twilio.*
type TwilioConfig struct {
	AccountSID string `mapstructure:"account_sid"` // the Twilio account SID (AC...)
	AuthToken  string `mapstructure:"auth_token"`  // set it with IDP_SMS_TWILIO_AUTH_TOKEN, not in the file
	From       string `mapstructure:"from"`        // +E164 sender, alphanumeric sender id, or a Messaging Service SID (MG...)
	APIURL     string `mapstructure:"api_url"`     // base URL of the Twilio API, or of a Twilio-compatible gateway (plain http only on loopback)
}

// EmailConfig: email.* (password reset links, e-mail confirmation and
// security notifications).
type EmailConfig struct {
	Provider string `mapstructure:"provider"` // none, console, smtp
	// From is the sender, an RFC 5322 address such as
	// "Secure Sign-In <no-reply@login.example.com>"; required unless the
	// provider is none.
	From string `mapstructure:"from"`
	// Notifications sends security notifications: two-step verification
	// turned on or off, a recovery code used, a security key or phone added
	// or removed, the password changed, MFA reset by an operator.
	Notifications bool       `mapstructure:"notifications"`
	SMTP          SMTPConfig `mapstructure:"smtp"`
}

// SMTPConfig: email.smtp.* (the submission server of provider smtp).
type SMTPConfig struct {
	Host     string `mapstructure:"host"`     // required for provider smtp
	Port     int    `mapstructure:"port"`     // 587 for starttls, 465 for implicit
	Username string `mapstructure:"username"` // empty: no SMTP AUTH
	// Password: set it with IDP_EMAIL_SMTP_PASSWORD, not in the file.
	Password string `mapstructure:"password"`
	// TLS is starttls (STARTTLS is then mandatory: no fallback to plain
	// text), implicit (TLS from the first byte, port 465) or none (only for
	// a relay on localhost or a loopback address).
	TLS string `mapstructure:"tls"`
	// Timeout bounds one message: connecting, the conversation and QUIT.
	Timeout time.Duration `mapstructure:"timeout"`
}

// SMTPTLSModes are the values of email.smtp.tls.
var SMTPTLSModes = []string{"starttls", "implicit", "none"}

// MFAConfig: mfa.*
type MFAConfig struct {
	RememberDevice time.Duration `mapstructure:"remember_device"` // how long "Remember this device" lasts; 0 hides the checkbox
	Required       bool          `mapstructure:"required"`        // every user must set up a second factor at their next login
	// SMSAsOnlyFactor lets a verified cell phone be a user's only second
	// factor. Off by default: SMS is the weakest factor (NIST SP 800-63B
	// calls it restricted), so it is a fallback next to the app.
	SMSAsOnlyFactor bool       `mapstructure:"sms_as_only_factor"`
	TOTP            TOTPConfig `mapstructure:"totp"`
}

// TOTPConfig: mfa.totp.*
type TOTPConfig struct {
	Issuer string `mapstructure:"issuer"` // shown in authenticator apps; default: the issuer's host
}

// WebAuthnConfig: webauthn.*
type WebAuthnConfig struct {
	RPID string `mapstructure:"rp_id"` // default: the issuer's host
	// Passkeys offers "Sign in with a passkey" on the login page: a
	// discoverable credential with user verification stands for both
	// factors. Off by default (see README).
	Passkeys bool `mapstructure:"passkeys"`
}

// PasswordConfig: password.*
type PasswordConfig struct {
	// MinLength is the fewest characters a new password may have: at least
	// 8 (NIST SP 800-63B), default 12.
	MinLength int          `mapstructure:"min_length"`
	Argon2    Argon2Config `mapstructure:"argon2"`
}

// MaxPasswordLength is the longest password accepted (manage's limit), so
// also the largest password.min_length.
const MaxPasswordLength = 1024

// Argon2Config: password.argon2.* (argon2id parameters for new hashes).
type Argon2Config struct {
	MemoryKiB   uint32 `mapstructure:"memory_kib"`  // memory per hash in KiB (OWASP: 19456)
	Iterations  uint32 `mapstructure:"iterations"`  // passes over the memory (OWASP: 2)
	Parallelism uint8  `mapstructure:"parallelism"` // lanes (OWASP: 1)
}

// TokensConfig: tokens.* (lifetimes).
type TokensConfig struct {
	AccessTokenLifetime  time.Duration `mapstructure:"access_token_lifetime"`  // how long an access token works
	IDTokenLifetime      time.Duration `mapstructure:"id_token_lifetime"`      // the exp of ID tokens
	RefreshTokenLifetime time.Duration `mapstructure:"refresh_token_lifetime"` // sliding: each rotation starts it again
}

// KeysConfig: keys.* (the keys that sign ID tokens).
type KeysConfig struct {
	// Algorithm is the signature algorithm of ID tokens: RS256 (RSA-2048,
	// the default: OpenID Connect requires it, so every library accepts
	// it), ES256 (ECDSA P-256) or EdDSA (Ed25519), whose signatures cost
	// about 30 and 40 times less CPU than RS256's. Change it only when every
	// portal's library accepts it. When the active key has another
	// algorithm, `idp serve` makes a new key at start; the old one stays
	// published until the tokens it signed have expired. Portals that read
	// the discovery document before the change (go-oidc reads the accepted
	// algorithms from it once) refuse the new tokens until they restart.
	Algorithm string `mapstructure:"algorithm"`
	// ReloadInterval is how often a running server rereads the signing keys
	// from the database, so that `idp keys rotate` or another instance's
	// new key is used here too. Keep it under a minute: `idp keys rotate`
	// tells operators that servers pick the new key up within one.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
}

// SigningAlgorithms are the values of keys.algorithm (the JOSE names).
var SigningAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// SessionConfig: session.* (the provider's own browser session and pending logins).
type SessionConfig struct {
	Lifetime     time.Duration `mapstructure:"lifetime"`      // how long a user stays logged in at the provider
	LoginTimeout time.Duration `mapstructure:"login_timeout"` // how long a pending login may take
}

// RegulationConfig: regulation.* (brute-force limits). Every failed check
// of any factor (password, authenticator code, SMS code, recovery code,
// security key; in logins, password resets and the account pages) counts
// for the account and that factor, and for the client's network (an IPv4
// address or an IPv6 /64, behind trusted_proxies the forwarded client).
// Past the free failures each further one imposes a delay, doubling from
// base_delay up to max_delay, before the next check is even run. A correct
// answer clears the account's count for that factor only. Nothing is
// locked for good: a count starts again forget_after its first failure, a
// remembered device skips the delays, and `idp user unlock` ends them.
type RegulationConfig struct {
	AccountFailures int `mapstructure:"account_failures"` // free failures of one factor for one account from one network (default 5)
	// AccountTotalFailures is the same from all networks together (default
	// 20): a distributed attack on one account. A browser that completed a
	// login to the account before is not delayed by it.
	AccountTotalFailures int           `mapstructure:"account_total_failures"`
	NetworkFailures      int           `mapstructure:"network_failures"` // free failures from one network, any account and factor (default 100)
	BaseDelay            time.Duration `mapstructure:"base_delay"`       // the first delay (default 1s)
	MaxDelay             time.Duration `mapstructure:"max_delay"`        // the longest delay (default 15m)
	ForgetAfter          time.Duration `mapstructure:"forget_after"`     // a count starts again this long after its first failure (default 24h)
}

// AuditConfig: audit.* (the security log in the database).
type AuditConfig struct {
	// Retention is how long audit events are kept: `idp serve` deletes older
	// ones every hour. Default 8760h (one year); 0 keeps them forever.
	Retention time.Duration `mapstructure:"retention"`
}

// DefaultAuditRetention is audit.retention's default: one year.
const DefaultAuditRetention = 365 * 24 * time.Hour

// LogConfig: log.*
type LogConfig struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // json, text
}

// ClientConfig is a relying party declared in the file: the fields of
// `idp client add`.
type ClientConfig struct {
	ID                     string   `mapstructure:"id"`                        // the client id: letters, digits and - _ .
	Name                   string   `mapstructure:"name"`                      // shown on the login and consent pages
	Secret                 string   `mapstructure:"secret"`                    // at least 32 characters; none for a public client
	Public                 bool     `mapstructure:"public"`                    // no secret; PKCE S256 required
	RedirectURIs           []string `mapstructure:"redirect_uris"`             // matched exactly
	PostLogoutRedirectURIs []string `mapstructure:"post_logout_redirect_uris"` // where RP-initiated logout may return
	FirstParty             bool     `mapstructure:"first_party"`               // skips the consent page
	RequireMFA             bool     `mapstructure:"require_mfa"`               // never gets a code for a login without a second factor
	Grants                 []string `mapstructure:"grants"`                    // authorization_code, refresh_token, client_credentials
	Scopes                 []string `mapstructure:"scopes"`                    // scopes beyond the standard ones, e.g. idp:admin
}

// Grant types a client may have.
var GrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}

// DefaultSMSMessage is sms.message's default.
const DefaultSMSMessage = "{code} is your {issuer} login code. It expires in {minutes} minutes."

// Defaults returns the embedded defaults (SPEC.md).
func Defaults() Config {
	return Config{
		Issuer:   "http://localhost:8080",
		Listen:   "127.0.0.1:8080",
		DataDir:  "data",
		Database: DatabaseConfig{URL: "sqlite://data/idp.db", MaxConnections: 20},
		Redis:    RedisConfig{KeyPrefix: "idp:", Timeout: 2 * time.Second},
		SMS: SMSConfig{
			Provider: "none",
			Message:  DefaultSMSMessage,
			Timeout:  10 * time.Second,
			Limits: SMSLimits{ResendInterval: 30 * time.Second, PerUserHour: 5, PerUserDay: 10,
				PerNumberHour: 5, PerNumberDay: 10, PerIPHour: 20, PerIPDay: 100,
				NumbersPerUserDay: 3, TotalHour: 1000, TotalDay: 10000},
			Twilio: TwilioConfig{APIURL: "https://api.twilio.com"},
		},
		Email: EmailConfig{
			Provider:      "none",
			Notifications: true,
			SMTP:          SMTPConfig{Port: 587, TLS: "starttls", Timeout: 10 * time.Second},
		},
		MFA: MFAConfig{RememberDevice: 720 * time.Hour},
		// OWASP's argon2id recommendation (m=19 MiB, t=2, p=1).
		Password: PasswordConfig{MinLength: 12, Argon2: Argon2Config{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}},
		Tokens: TokensConfig{
			AccessTokenLifetime:  time.Hour,
			IDTokenLifetime:      time.Hour,
			RefreshTokenLifetime: 30 * 24 * time.Hour,
		},
		Keys:    KeysConfig{Algorithm: "RS256", ReloadInterval: 30 * time.Second},
		Session: SessionConfig{Lifetime: 12 * time.Hour, LoginTimeout: 10 * time.Minute},
		Audit:   AuditConfig{Retention: DefaultAuditRetention},
		Regulation: RegulationConfig{AccountFailures: 5, AccountTotalFailures: 20, NetworkFailures: 100, BaseDelay: time.Second,
			MaxDelay: 15 * time.Minute, ForgetAfter: 24 * time.Hour},
		Log: LogConfig{Level: "info", Format: "json"},
	}
}

// SecretKeyBytes returns the decoded 32-byte secret_key (after Validate, or
// after SetSecretKey).
func (c *Config) SecretKeyBytes() []byte { return c.secretKey }

// SetSecretKey sets the 32-byte secret key (e.g. one read from data/secret.key).
func (c *Config) SetSecretKey(key []byte) error {
	if len(key) != 32 {
		return fmt.Errorf("secret_key: must be 32 bytes, got %d", len(key))
	}
	c.secretKey = slices.Clone(key)
	c.SecretKey = base64.StdEncoding.EncodeToString(key)
	return nil
}

// IssuerHost is the issuer URL's host name (without port).
func (c *Config) IssuerHost() string { return c.issuerHost }

// TOTPIssuer is the name authenticator apps show (mfa.totp.issuer, default: the issuer's host).
func (c *Config) TOTPIssuer() string {
	if c.MFA.TOTP.Issuer != "" {
		return c.MFA.TOTP.Issuer
	}
	return c.issuerHost
}

// RPID is the WebAuthn relying party id (webauthn.rp_id, default: the issuer's host).
func (c *Config) RPID() string {
	if c.WebAuthn.RPID != "" {
		return c.WebAuthn.RPID
	}
	return c.issuerHost
}

// IsLoopbackHost reports whether host is localhost or a loopback address,
// where plain http is allowed.
func IsLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate checks every value and reports every problem at once, each
// naming its key. It also normalises (issuer without trailing slash) and
// decodes the secret key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	c.Issuer = strings.TrimRight(c.Issuer, "/")
	if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		bad("issuer", "must be an absolute http(s) URL such as https://login.example.com, got %q", c.Issuer)
	} else {
		c.issuerHost = u.Hostname()
		switch {
		case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(c.Issuer, "?#"):
			bad("issuer", "must not have a query or fragment")
		case u.Scheme == "http" && !IsLoopbackHost(c.issuerHost):
			bad("issuer", "must use https unless the host is localhost or 127.0.0.1, got %q", c.Issuer)
		}
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		bad("listen", "must be HOST:PORT such as 127.0.0.1:8080, got %q", c.Listen)
	}
	for _, p := range c.TrustedProxies {
		if _, err := ParseProxy(p); err != nil {
			bad("trusted_proxies", "%v", err)
		}
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.SecretKey != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.SecretKey))
		if err != nil {
			bad("secret_key", "must be base64 (for example the output of `openssl rand -base64 32`)")
		} else if len(key) != 32 {
			bad("secret_key", "must decode to 32 bytes, got %d", len(key))
		} else {
			c.secretKey = key
		}
	}
	switch {
	case strings.HasPrefix(c.Database.URL, "sqlite://") && len(c.Database.URL) > len("sqlite://"):
	case strings.HasPrefix(c.Database.URL, "postgres://"), strings.HasPrefix(c.Database.URL, "postgresql://"):
	default:
		bad("database.url", "must be sqlite://PATH or postgres://USER@HOST/DB, got %q", c.Database.URL)
	}
	if c.Redis.URL != "" {
		ok := false
		for _, p := range []string{"redis://", "rediss://", "redis+sentinel://", "rediss+sentinel://", "redis+cluster://", "rediss+cluster://", "unix://"} {
			ok = ok || strings.HasPrefix(c.Redis.URL, p)
		}
		if !ok {
			bad("redis.url", "must be empty (in-process store) or a redis://, rediss://, redis+sentinel://, redis+cluster:// (rediss+ for TLS) or unix:// URL")
		}
	}
	if c.Redis.Timeout <= 0 {
		bad("redis.timeout", "must be a positive duration such as 2s or 500ms, got %v", c.Redis.Timeout)
	}
	switch c.SMS.Provider {
	case "none", "console":
	case "twilio":
		tw := c.SMS.Twilio
		if !isAlnum(tw.AccountSID) {
			bad("sms.twilio.account_sid", "must be set to the Twilio account SID (letters and digits)")
		}
		if !isAlnum(tw.AuthToken) {
			bad("sms.twilio.auth_token", "must be set to the Twilio auth token (letters and digits)")
		}
		if tw.From == "" {
			bad("sms.twilio.from", "must be set to the sending number (+E164) or a Messaging Service SID")
		}
	default:
		bad("sms.provider", "must be none, console or twilio, got %q", c.SMS.Provider)
	}
	if !strings.Contains(c.SMS.Message, "{code}") {
		bad("sms.message", "must contain {code}, where the code goes")
	} else if len(c.SMS.Message) > 300 {
		bad("sms.message", "must be at most 300 characters (a long text is split into several paid messages)")
	}
	if c.SMS.Timeout < time.Second {
		bad("sms.timeout", "must be at least 1s (10s suits Twilio), got %v", c.SMS.Timeout)
	}
	for _, ac := range c.SMS.AllowedCountries {
		if err := validCountryEntry(ac); err != nil {
			bad("sms.allowed_countries", "%v", err)
		}
	}
	l := c.SMS.Limits
	if l.ResendInterval < time.Second {
		bad("sms.limits.resend_interval", "must be at least 1s, got %v", l.ResendInterval)
	}
	for key, n := range map[string]int{
		"sms.limits.per_user_hour": l.PerUserHour, "sms.limits.per_user_day": l.PerUserDay,
		"sms.limits.per_number_hour": l.PerNumberHour, "sms.limits.per_number_day": l.PerNumberDay,
		"sms.limits.per_ip_hour": l.PerIPHour, "sms.limits.per_ip_day": l.PerIPDay,
		"sms.limits.numbers_per_user_day": l.NumbersPerUserDay,
		"sms.limits.total_hour":           l.TotalHour, "sms.limits.total_day": l.TotalDay,
	} {
		if n < 1 {
			bad(key, "must be at least 1, got %d", n)
		}
	}
	if u, err := url.Parse(c.SMS.Twilio.APIURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		bad("sms.twilio.api_url", "must be an absolute http(s) URL, got %q", c.SMS.Twilio.APIURL)
	}
	errs = append(errs, c.Email.validate()...)
	if c.MFA.RememberDevice < 0 {
		bad("mfa.remember_device", "must not be negative (0 turns the checkbox off)")
	}
	if rp := c.WebAuthn.RPID; rp != "" && c.issuerHost != "" && rp != c.issuerHost && !strings.HasSuffix(c.issuerHost, "."+rp) {
		bad("webauthn.rp_id", "must be the issuer's host %q or a parent domain of it, got %q", c.issuerHost, rp)
	}
	if n := c.Password.MinLength; n < 8 || n > MaxPasswordLength {
		bad("password.min_length", "must be at least 8 (NIST SP 800-63B; 12 or more is better) and at most %d, got %d", MaxPasswordLength, n)
	}
	a := c.Password.Argon2
	if a.MemoryKiB < 1024 {
		bad("password.argon2.memory_kib", "must be at least 1024 (OWASP recommends 19456), got %d", a.MemoryKiB)
	}
	if a.Iterations < 1 {
		bad("password.argon2.iterations", "must be at least 1, got %d", a.Iterations)
	}
	if a.Parallelism < 1 {
		bad("password.argon2.parallelism", "must be at least 1, got %d", a.Parallelism)
	}
	for key, d := range map[string]time.Duration{
		"tokens.access_token_lifetime":  c.Tokens.AccessTokenLifetime,
		"tokens.id_token_lifetime":      c.Tokens.IDTokenLifetime,
		"tokens.refresh_token_lifetime": c.Tokens.RefreshTokenLifetime,
		"session.lifetime":              c.Session.Lifetime,
		"session.login_timeout":         c.Session.LoginTimeout,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration such as 1h or 10m")
		}
	}
	if !slices.Contains(SigningAlgorithms, c.Keys.Algorithm) {
		bad("keys.algorithm", "must be RS256, ES256 or EdDSA (in this case), got %q", c.Keys.Algorithm)
	}
	if c.Database.MaxConnections < 1 {
		bad("database.max_connections", "must be at least 1 (the default is 20), got %d", c.Database.MaxConnections)
	}
	if rg := c.Regulation; rg.AccountFailures < 1 {
		bad("regulation.account_failures", "must be at least 1 (the default is 5), got %d", rg.AccountFailures)
	} else if rg.AccountTotalFailures < rg.AccountFailures {
		bad("regulation.account_total_failures", "must be at least regulation.account_failures (%d), got %d", rg.AccountFailures, rg.AccountTotalFailures)
	} else if rg.NetworkFailures < 1 {
		bad("regulation.network_failures", "must be at least 1 (the default is 100), got %d", rg.NetworkFailures)
	} else if rg.BaseDelay <= 0 {
		bad("regulation.base_delay", "must be a positive duration such as 1s, got %v", rg.BaseDelay)
	} else if rg.MaxDelay < rg.BaseDelay {
		bad("regulation.max_delay", "must be at least regulation.base_delay (%v), got %v", rg.BaseDelay, rg.MaxDelay)
	} else if rg.ForgetAfter < rg.MaxDelay {
		bad("regulation.forget_after", "must be at least regulation.max_delay (%v), got %v", rg.MaxDelay, rg.ForgetAfter)
	}
	if c.Keys.ReloadInterval < time.Second {
		bad("keys.reload_interval", "must be at least 1s (the default is 30s), got %v", c.Keys.ReloadInterval)
	}
	if c.Audit.Retention < 0 {
		bad("audit.retention", "must not be negative (0 keeps audit events forever; the default is 8760h, one year), got %v", c.Audit.Retention)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"json", "text"}, c.Log.Format) {
		bad("log.format", "must be json or text, got %q", c.Log.Format)
	}
	seen := map[string]bool{}
	for i, cl := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		switch {
		case strings.IndexFunc(cl.ID, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			key = fmt.Sprintf("clients[%d] (%q)", i, cl.ID) // a line break in it would split the error's line
		case cl.ID != "":
			key = fmt.Sprintf("clients[%d] (%s)", i, cl.ID)
		}
		if seen[cl.ID] {
			bad(key+".id", "is declared twice")
		}
		seen[cl.ID] = true
		for _, err := range cl.Validate() {
			errs = append(errs, fmt.Errorf("%s.%w", key, err))
		}
	}
	// Sort for a stable message; errors.Join keeps one per line.
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// validate checks email.*; each error starts with its key.
func (e *EmailConfig) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch e.Provider {
	case "none", "console", "smtp":
	default:
		bad("email.provider", "must be none, console or smtp, got %q", e.Provider)
	}
	if e.From != "" {
		if _, err := mail.ParseAddress(e.From); err != nil {
			bad("email.from", "must be one address such as \"Secure Sign-In <no-reply@login.example.com>\", got %q (%s)",
				e.From, strings.TrimPrefix(err.Error(), "mail: "))
		}
	} else if e.Provider == "console" || e.Provider == "smtp" {
		bad("email.from", "must be set to the sender, such as \"Secure Sign-In <no-reply@login.example.com>\", when email.provider is %s", e.Provider)
	}
	s := e.SMTP
	switch {
	case s.Host == "" && e.Provider == "smtp":
		bad("email.smtp.host", "must be set to the SMTP server's host name when email.provider is smtp")
	case strings.ContainsAny(s.Host, ":/ \t\r\n") && net.ParseIP(s.Host) == nil:
		bad("email.smtp.host", "must be a host name or address without a port or scheme (the port is email.smtp.port), got %q", s.Host)
	}
	if s.Port < 1 || s.Port > 65535 {
		bad("email.smtp.port", "must be a port from 1 to 65535 (587 for starttls, 465 for implicit), got %d", s.Port)
	}
	switch s.TLS {
	case "starttls", "implicit":
	case "none":
		if s.Host != "" && !IsLoopbackHost(s.Host) {
			bad("email.smtp.tls", "none (no encryption) is allowed only when email.smtp.host is localhost or a loopback address such as 127.0.0.1, got host %q: use starttls or implicit", s.Host)
		}
	default:
		bad("email.smtp.tls", "must be %s, got %q", strings.Join(SMTPTLSModes, ", "), s.TLS)
	}
	if s.Timeout < time.Second {
		bad("email.smtp.timeout", "must be at least 1s (10s suits most servers), got %v", s.Timeout)
	}
	return errs
}

// Validate checks one client declaration; each error starts with the field's key.
func (cl *ClientConfig) Validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if err := ValidateClientID(cl.ID); err != nil {
		bad("id", "%v", err)
	}
	grants := cl.Grants
	if len(grants) == 0 {
		grants = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range grants {
		if !slices.Contains(GrantTypes, g) {
			bad("grants", "unknown grant %q (use %s)", g, strings.Join(GrantTypes, ", "))
		}
	}
	needsRedirect := slices.Contains(grants, "authorization_code")
	if needsRedirect && len(cl.RedirectURIs) == 0 {
		bad("redirect_uris", "at least one is required for the authorization_code grant")
	}
	for _, u := range cl.RedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			bad("redirect_uris", "%v", err)
		} else if !cl.Public && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			// The OIDC library refuses app schemes for confidential (web)
			// clients at every login: the URI could never be used.
			bad("redirect_uris", "%q is an app scheme, for public clients (native apps); a confidential client's redirect URIs are https (or http on localhost)", u)
		}
	}
	for _, u := range cl.PostLogoutRedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			bad("post_logout_redirect_uris", "%v", err)
		}
	}
	if cl.Public && cl.Secret != "" {
		bad("secret", "a public client has no secret")
	}
	if cl.Public && slices.Contains(grants, "client_credentials") {
		bad("grants", "a public client cannot use client_credentials")
	}
	if !cl.Public && cl.Secret == "" {
		bad("secret", "is required unless the client is public (public: true)")
	}
	if !cl.Public && cl.Secret != "" {
		if err := ValidateClientSecret(cl.Secret); err != nil {
			bad("secret", "%v", err)
		}
	}
	return errs
}

// ValidateClientID checks a client id: 1 to 128 characters of letters,
// digits and - _ . (it appears in URLs, logs and access tokens, where ':'
// separates fields).
func ValidateClientID(id string) error {
	if id == "" || len(id) > 128 {
		return errors.New("must be 1 to 128 characters")
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
			return fmt.Errorf("%q has a character other than letters, digits and - _ .", id)
		}
	}
	return nil
}

// MinClientSecretLength: client secrets are checked with a fast keyed hash,
// which is only safe for long random secrets.
const MinClientSecretLength = 32

// ValidateClientSecret refuses secrets too short to be random.
func ValidateClientSecret(s string) error {
	if len(s) < MinClientSecretLength {
		return fmt.Errorf("must be at least %d characters (a long random string, e.g. `openssl rand -hex 32`)", MinClientSecretLength)
	}
	return nil
}

// ValidateRedirectURI checks a redirect URI registration: absolute, in the
// normal form url.Parse gives it back in, no fragment, https unless the
// host is loopback (or a private-use scheme of a native app such as
// com.example.app:/cb).
func ValidateRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	// Redirect URIs are matched as written, but the browser is sent to the
	// URI as url.Parse reads it back: the two must be the same text (the
	// library, for one, tells https from an app scheme by the prefix
	// "https://", so HTTPS://... could never be used).
	if norm := u.String(); norm != raw {
		return fmt.Errorf("%q must be written in its normal form %q (scheme in lower case, spaces and other such characters escaped)", raw, norm)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", raw)
		}
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%q must use https (http is allowed only for localhost)", raw)
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("%q must use https, http on localhost, or a reverse-domain app scheme", raw)
		}
	}
	return nil
}

// ParseProxy reads a trusted_proxies entry: a CIDR (10.0.0.0/8,
// fd00::/8) or a single address.
func ParseProxy(s string) (*net.IPNet, error) {
	s = strings.TrimSpace(s)
	if _, n, err := net.ParseCIDR(s); err == nil {
		return n, nil
	}
	if ip := net.ParseIP(s); ip != nil {
		bits := 128
		if ip.To4() != nil {
			ip, bits = ip.To4(), 32
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
	}
	return nil, fmt.Errorf("%q is not an address or CIDR (such as 10.0.0.0/8 or 127.0.0.1)", s)
}

// validCountryEntry checks the form of an sms.allowed_countries entry: a
// calling code (1 to 3 digits, optionally with +) or a two-letter region.
// Whether the region exists is checked where the phone rules live (manage).
func validCountryEntry(s string) error {
	e := strings.TrimPrefix(strings.TrimSpace(s), "+")
	digits := e != "" && len(e) <= 3 && strings.Trim(e, "0123456789") == ""
	letters := len(e) == 2 && strings.Trim(strings.ToUpper(e), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
	if !digits && !letters {
		return fmt.Errorf("%q is neither a calling code (such as 1 or +44) nor a two-letter country code (such as US or GB)", s)
	}
	return nil
}

func isAlnum(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
