package redisstore

import (
	"crypto/tls"
	"slices"
	"testing"
	"time"
)

func TestParseURLSingle(t *testing.T) {
	cfg, err := parseURL("redis://user:pw@cache.internal:6380/3", DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.single
	if o == nil || cfg.failover != nil || cfg.cluster != nil {
		t.Fatalf("want a single-server config, got %+v", cfg)
	}
	if o.Addr != "cache.internal:6380" || o.DB != 3 || o.Username != "user" || o.Password != "pw" || o.TLSConfig != nil {
		t.Errorf("options = addr %q db %d user %q pw %q tls %v", o.Addr, o.DB, o.Username, o.Password, o.TLSConfig)
	}
	if o.DialTimeout != DefaultTimeout || o.ReadTimeout != DefaultTimeout || o.WriteTimeout != DefaultTimeout {
		t.Errorf("timeouts = %v %v %v, want %v", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, DefaultTimeout)
	}

	cfg, err = parseURL("rediss://cache.internal?dial_timeout=5s&read_timeout=-1&write_timeout=3", DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	o = cfg.single
	if o.Addr != "cache.internal:6379" || o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.internal" {
		t.Errorf("rediss: addr %q tls %+v", o.Addr, o.TLSConfig)
	}
	if o.DialTimeout != 5*time.Second || o.ReadTimeout != -1 || o.WriteTimeout != 3*time.Second {
		t.Errorf("URL timeouts not kept: %v %v %v", o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
	}

	cfg, err = parseURL("unix:///run/redis.sock?db=2", DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.single; o.Network != "unix" || o.Addr != "/run/redis.sock" || o.DB != 2 {
		t.Errorf("unix: %q %q %d", o.Network, o.Addr, o.DB)
	}
}

func TestParseURLSentinel(t *testing.T) {
	cfg, err := parseURL("rediss+sentinel://suser:spw@s1,s2:26380,[fd00::1]/mymaster/4?password=mpw&pool_size=7", DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.failover
	if o == nil {
		t.Fatalf("want a Sentinel config, got %+v", cfg)
	}
	if want := []string{"s1:26379", "s2:26380", "[fd00::1]:26379"}; !slices.Equal(o.SentinelAddrs, want) {
		t.Errorf("SentinelAddrs = %q, want %q", o.SentinelAddrs, want)
	}
	if o.MasterName != "mymaster" || o.DB != 4 || o.PoolSize != 7 {
		t.Errorf("master %q db %d pool %d", o.MasterName, o.DB, o.PoolSize)
	}
	if o.SentinelUsername != "suser" || o.SentinelPassword != "spw" || o.Password != "mpw" {
		t.Errorf("credentials: sentinel %q/%q master password %q", o.SentinelUsername, o.SentinelPassword, o.Password)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "" || o.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config = %+v, want TLS 1.2+ with the name taken from each address", o.TLSConfig)
	}
	if o.DialTimeout != DefaultTimeout || o.ReadTimeout != DefaultTimeout || o.WriteTimeout != DefaultTimeout {
		t.Errorf("timeouts = %v %v %v", o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
	}

	cfg, err = parseURL("redis+sentinel://s1:26379/mymaster?db=2", DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.failover; o.DB != 2 || o.TLSConfig != nil || !slices.Equal(o.SentinelAddrs, []string{"s1:26379"}) {
		t.Errorf("db %d tls %v addrs %q", o.DB, o.TLSConfig, o.SentinelAddrs)
	}
}

func TestParseURLCluster(t *testing.T) {
	cfg, err := parseURL("redis+cluster://u:pw@n1:7000,n2,[::1]:7002?read_timeout=4s", DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.cluster
	if o == nil {
		t.Fatalf("want a cluster config, got %+v", cfg)
	}
	if want := []string{"n1:7000", "n2:6379", "[::1]:7002"}; !slices.Equal(o.Addrs, want) {
		t.Errorf("Addrs = %q, want %q", o.Addrs, want)
	}
	if o.Username != "u" || o.Password != "pw" || o.TLSConfig != nil {
		t.Errorf("user %q pw %q tls %v", o.Username, o.Password, o.TLSConfig)
	}
	if o.ReadTimeout != 4*time.Second || o.DialTimeout != DefaultTimeout || o.WriteTimeout != DefaultTimeout {
		t.Errorf("timeouts = %v %v %v", o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
	}

	cfg, err = parseURL("rediss+cluster://n1/0", DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.cluster; o.TLSConfig == nil || o.TLSConfig.ServerName != "" || o.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config = %+v", o.TLSConfig)
	}
}

// The timeout given (redis.timeout) fills in the timeouts each form's URL
// does not set.
func TestParseURLTimeout(t *testing.T) {
	const d = 300 * time.Millisecond
	for _, u := range []string{"redis://h?read_timeout=4s", "redis+sentinel://s1/m?read_timeout=4s", "redis+cluster://n1?read_timeout=4s"} {
		cfg, err := parseURL(u, d)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		var dial, read, write time.Duration
		switch {
		case cfg.single != nil:
			dial, read, write = cfg.single.DialTimeout, cfg.single.ReadTimeout, cfg.single.WriteTimeout
		case cfg.failover != nil:
			dial, read, write = cfg.failover.DialTimeout, cfg.failover.ReadTimeout, cfg.failover.WriteTimeout
		case cfg.cluster != nil:
			dial, read, write = cfg.cluster.DialTimeout, cfg.cluster.ReadTimeout, cfg.cluster.WriteTimeout
		}
		if dial != d || read != 4*time.Second || write != d {
			t.Errorf("%s: dial %v read %v write %v, want %v 4s %v", u, dial, read, write, d, d)
		}
	}
}
