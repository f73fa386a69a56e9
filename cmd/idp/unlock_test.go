package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/regulation"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/pending/redisstore"
	"github.com/hostportal/idp/storage/sqlstore"
)

// TestUserUnlock: `idp user unlock` records user.unlocked in the audit log
// (which a running server honours whatever its pending store) and clears
// the counts in Redis when redis.url is set.
func TestUserUnlock(t *testing.T) {
	e := newTestEnv(t)
	url, prefix := testenv.RedisURL(t)
	e.environ = append(e.environ, "IDP_REDIS_URL="+url, "IDP_REDIS_KEY_PREFIX="+prefix)
	e.ok("long enough password 1\n", "user", "add", "alice", "--email", "alice@example.com")
	e.fails("", "no user named nobody", "user", "unlock", "nobody")

	rs, err := redisstore.Open(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ctx := context.Background()
	reg, err := regulation.New(rs, regulation.Defaults(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if _, err := reg.Record(ctx, regulation.Attempt{Account: "alice", Factor: regulation.TOTP, Network: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
	}
	if out := e.ok("", "user", "unlock", "alice"); !strings.Contains(out, "alice is unlocked") {
		t.Errorf("unlock = %q", out)
	}
	if n, until, err := reg.Failures(ctx, "alice", regulation.TOTP); n != 0 || !until.IsZero() || err != nil {
		t.Errorf("after unlock: %d failures, delay until %v, %v", n, until, err)
	}
	st, err := sqlstore.Open(ctx, "sqlite://"+strings.TrimPrefix(e.environ[0], "IDP_DATABASE_URL=sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.ListAudit(ctx, storage.AuditQuery{Type: "user.unlocked"})
	if err != nil || len(evs) != 1 || evs[0].Username != "alice" || evs[0].Actor != "operator" {
		t.Fatalf("user.unlocked events %+v, %v", evs, err)
	}
}
