package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds each operation, and dialling, reading and writing
// when the URL does not set dial_timeout, read_timeout or write_timeout
// (redis.timeout's default): a stalled Redis must fail a login quickly
// rather than hold it for go-redis's longer defaults.
const DefaultTimeout = 2 * time.Second

// urlForms is quoted in every URL error so the operator sees what is accepted.
const urlForms = "expected redis://[user:password@]host[:port][/db][?options], " +
	"rediss://... (TLS), unix://[user:password@]/path/to/socket[?db=N], " +
	"redis+sentinel://[user:password@]host1[:26379][,host2[:26379]...]/mastername[/db][?options] " +
	"or redis+cluster://[user:password@]host1[:6379][,host2[:6379]...][?options] " +
	"(rediss+sentinel://, rediss+cluster:// for TLS)"

// clientConfig is a parsed URL: exactly one of the fields is set.
type clientConfig struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// NewClient makes the go-redis client a URL describes (the forms are in the
// package documentation), with DefaultTimeout for the timeouts the URL does
// not set. It does not connect: go-redis dials on first use. The caller
// closes the client.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	return newClient(rawURL, DefaultTimeout)
}

func newClient(rawURL string, timeout time.Duration) (redis.UniversalClient, error) {
	cfg, err := parseURL(rawURL, timeout)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.failover != nil:
		return redis.NewFailoverClient(cfg.failover), nil
	case cfg.cluster != nil:
		return redis.NewClusterClient(cfg.cluster), nil
	default:
		return redis.NewClient(cfg.single), nil
	}
}

// parseURL reads rawURL; timeout is the dial, read and write timeout where
// the URL sets none.
func parseURL(rawURL string, timeout time.Duration) (clientConfig, error) {
	cfg, err := parseURLForms(rawURL)
	if err != nil {
		// url.Parse errors quote the whole URL, password included; keep only
		// the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return clientConfig{}, fmt.Errorf("redisstore: invalid Redis URL: %v; %s", err, urlForms)
	}
	// A timeout the URL set is kept (a negative one disables it); the
	// others get timeout.
	orDefault := func(d *time.Duration) {
		if *d == 0 {
			*d = timeout
		}
	}
	switch {
	case cfg.single != nil:
		orDefault(&cfg.single.DialTimeout)
		orDefault(&cfg.single.ReadTimeout)
		orDefault(&cfg.single.WriteTimeout)
	case cfg.failover != nil:
		orDefault(&cfg.failover.DialTimeout)
		orDefault(&cfg.failover.ReadTimeout)
		orDefault(&cfg.failover.WriteTimeout)
	case cfg.cluster != nil:
		orDefault(&cfg.cluster.DialTimeout)
		orDefault(&cfg.cluster.ReadTimeout)
		orDefault(&cfg.cluster.WriteTimeout)
	}
	return cfg, nil
}

func parseURLForms(rawURL string) (clientConfig, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return clientConfig{}, errors.New("no scheme")
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return clientConfig{}, err
		}
		return clientConfig{single: o}, nil
	case "redis+sentinel", "rediss+sentinel":
		return parseSentinel(scheme, rest)
	case "redis+cluster", "rediss+cluster":
		return parseCluster(scheme, rest)
	default:
		return clientConfig{}, fmt.Errorf("unknown scheme %q", scheme)
	}
}

// multiHost is a URL with a comma-separated list of hosts, which net/url
// cannot parse when an IPv6 literal is among them.
type multiHost struct {
	tls   bool
	user  *url.Userinfo
	hosts []string // host:port, default port filled in
	path  []string // path segments
	query url.Values
}

func parseMultiHost(scheme, rest string, defaultPort string) (multiHost, error) {
	mh := multiHost{tls: strings.HasPrefix(strings.ToLower(scheme), "rediss+")}
	authority := rest
	tail := ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	hostList := authority
	userinfo := ""
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostList = authority[:i+1], authority[i+1:]
	}
	// Parse what is left with a placeholder host so that net/url decodes the
	// user information, path and query.
	u, err := url.Parse("redis://" + userinfo + "placeholder" + tail)
	if err != nil {
		return mh, err
	}
	if u.Fragment != "" {
		return mh, errors.New("a fragment (#) is not allowed")
	}
	mh.user = u.User
	mh.query = u.Query()
	mh.path = strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	for h := range strings.SplitSeq(hostList, ",") {
		if h == "" {
			return mh, errors.New("empty host in the host list")
		}
		hp, err := withPort(h, defaultPort)
		if err != nil {
			return mh, err
		}
		mh.hosts = append(mh.hosts, hp)
	}
	return mh, nil
}

// withPort accepts host, host:port, [v6] and [v6]:port.
func withPort(h, defaultPort string) (string, error) {
	if host, port, err := net.SplitHostPort(h); err == nil {
		if host == "" {
			return "", fmt.Errorf("host missing in %q", h)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("invalid port in %q", h)
		}
		return net.JoinHostPort(host, port), nil
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") && len(h) > 2 {
		return net.JoinHostPort(h[1:len(h)-1], defaultPort), nil
	}
	if strings.ContainsAny(h, ":[]") {
		return "", fmt.Errorf("invalid host %q (write IPv6 addresses in brackets)", h)
	}
	return net.JoinHostPort(h, defaultPort), nil
}

// goRedisURL rewrites a multi-host URL into the single-host form that
// go-redis's own parsers take (first host, the others as addr=), so every
// query option they know is honoured.
func (mh multiHost) goRedisURL(path string) string {
	scheme := "redis"
	if mh.tls {
		scheme = "rediss"
	}
	q := url.Values{}
	for k, v := range mh.query {
		q[k] = v
	}
	q["addr"] = append(q["addr"], mh.hosts[1:]...)
	u := url.URL{Scheme: scheme, User: mh.user, Host: mh.hosts[0], Path: path, RawQuery: q.Encode()}
	return u.String()
}

// parseSentinel: redis+sentinel://[user:password@]s1[:26379],s2/master[/db][?options].
// As in go-redis, the user information authenticates to the Sentinels;
// username= and password= in the query authenticate to the master.
func parseSentinel(scheme, rest string) (clientConfig, error) {
	mh, err := parseMultiHost(scheme, rest, "26379")
	if err != nil {
		return clientConfig{}, err
	}
	if mh.query.Has("master_name") || mh.query.Has("addr") {
		return clientConfig{}, errors.New("give the master name as the path and the Sentinels in the host list, not as master_name= or addr=")
	}
	path := ""
	switch len(mh.path) {
	case 0:
		return clientConfig{}, errors.New("sentinel URL needs the master name as its path")
	case 1:
	case 2:
		path = "/" + mh.path[1]
	default:
		return clientConfig{}, errors.New("sentinel URL path must be /mastername or /mastername/db")
	}
	mh.query.Set("master_name", mh.path[0])
	o, err := redis.ParseFailoverURL(mh.goRedisURL(path))
	if err != nil {
		return clientConfig{}, err
	}
	if o.TLSConfig != nil {
		// go-redis pins the first Sentinel's name; let each connection check
		// the certificate against the host it dials (Sentinels and master).
		o.TLSConfig.ServerName = ""
	}
	return clientConfig{failover: o}, nil
}

// parseCluster: redis+cluster://[user:password@]n1[:6379],n2[?options]. A
// cluster has no databases, so a path other than / or /0 is an error.
func parseCluster(scheme, rest string) (clientConfig, error) {
	mh, err := parseMultiHost(scheme, rest, "6379")
	if err != nil {
		return clientConfig{}, err
	}
	if mh.query.Has("addr") {
		return clientConfig{}, errors.New("list the cluster nodes in the host list, not as addr=")
	}
	if len(mh.path) > 1 || (len(mh.path) == 1 && mh.path[0] != "0") {
		return clientConfig{}, errors.New("a cluster URL takes no database path (a Redis Cluster has only database 0)")
	}
	o, err := redis.ParseClusterURL(mh.goRedisURL(""))
	if err != nil {
		return clientConfig{}, err
	}
	if o.TLSConfig != nil {
		// As for Sentinel: verify each node against its own name.
		o.TLSConfig.ServerName = ""
		o.TLSConfig.MinVersion = tls.VersionTLS12 // as go-redis sets for the other forms
	}
	return clientConfig{cluster: o}, nil
}
