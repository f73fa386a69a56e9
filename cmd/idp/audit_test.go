package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

// auditStore opens the test environment's database (after a first command
// has created it) to write events at chosen times.
func (e *testEnv) auditStore() *sqlstore.Store {
	e.t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(e.dir, "idp.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

func appendEvents(t *testing.T, st storage.Audit, events ...*storage.AuditEvent) {
	t.Helper()
	for _, ev := range events {
		if err := st.AppendAudit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// jsonTypes runs audit list --json with args and returns the events' types,
// newest first.
func (e *testEnv) jsonTypes(args ...string) []string {
	e.t.Helper()
	events := decodeJSON[[]map[string]any](e.t, e.ok("", append([]string{"audit", "list", "--json"}, args...)...))
	var types []string
	for _, ev := range events {
		typ, _ := ev["type"].(string)
		types = append(types, typ)
	}
	return types
}

// auditEnv is an environment with alice, bob and only these events, oldest
// first: a.day3 (80h ago), a.day1 (30h), b.hour (2h, bob's), a.now (1m ago).
func auditEnv(t *testing.T) (*testEnv, time.Time) {
	e := newTestEnv(t)
	e.ok(pw+"\n", "user", "add", "alice", "--email", "alice@example.com")
	e.ok("", "user", "add", "bob", "--email", "bob@example.com")
	st := e.auditStore()
	ctx := context.Background()
	alice, err := st.UserByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := st.UserByUsername(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// Not the commands' own user.created events: they happened just now.
	if _, err := st.DeleteAuditBefore(ctx, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, st,
		&storage.AuditEvent{Time: now.Add(-80 * time.Hour), Type: "a.day3", Actor: "user", UserID: alice.ID, Username: "alice", Result: "success"},
		&storage.AuditEvent{Time: now.Add(-30 * time.Hour), Type: "a.day1", Actor: "user", UserID: alice.ID, Username: "alice", Result: "success"},
		&storage.AuditEvent{Time: now.Add(-2 * time.Hour), Type: "b.hour", Actor: "user", UserID: bob.ID, Username: "bob", Result: "success"},
		&storage.AuditEvent{Time: now.Add(-time.Minute), Type: "a.now", Actor: "user", UserID: alice.ID, Username: "alice",
			ClientID: "portal", IP: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", Result: "failure",
			Details: map[string]string{"factor": "password", "reason": "wrong password", "empty": ""}},
	)
	return e, now
}

func TestAuditListSince(t *testing.T) {
	e, now := auditEnv(t)
	for _, tc := range []struct {
		since string
		want  []string
	}{
		{"", []string{"a.now", "b.hour", "a.day1", "a.day3"}},
		{"24h", []string{"a.now", "b.hour"}},
		{"90m", []string{"a.now"}},
		{"1h30m", []string{"a.now"}},
		{"3d", []string{"a.now", "b.hour", "a.day1"}},
		{"4d", []string{"a.now", "b.hour", "a.day1", "a.day3"}},
		{"0s", nil},
		{now.Add(-31 * time.Hour).UTC().Format(time.RFC3339), []string{"a.now", "b.hour", "a.day1"}},
		{now.Add(-3 * time.Hour).In(time.FixedZone("", -5*3600)).Format(time.RFC3339), []string{"a.now", "b.hour"}},
		{now.Add(-90 * time.Second).UTC().Format(time.RFC3339Nano), []string{"a.now"}},
		{now.Add(time.Hour).UTC().Format(time.RFC3339), nil},
	} {
		t.Run(tc.since, func(t *testing.T) {
			var args []string
			if tc.since != "" {
				args = []string{"--since", tc.since}
			}
			if got := e.jsonTypes(args...); !slices.Equal(got, tc.want) {
				t.Errorf("--since %q: events %v, want %v", tc.since, got, tc.want)
			}
		})
	}
	if out := e.ok("", "audit", "list", "--since", "0s"); out != "No events match.\n" {
		t.Errorf("audit list with nothing to show = %q", out)
	}

	for _, bad := range []string{"yesterday", "-1h", "24", "7days", "-3d", "d", "1y", "2026-03-01", "2026-03-01T00:00:00",
		"2026-13-01T00:00:00Z", "2026-03-01 00:00:00Z"} {
		err := e.fails("", `invalid --since "`+bad+`"`, "audit", "list", "--since", bad)
		if err != nil && !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("--since %q: error %q does not say what is accepted", bad, err)
		}
	}
}

func TestAuditListUser(t *testing.T) {
	e, _ := auditEnv(t)
	if got, want := e.jsonTypes("--user", "alice"), []string{"a.now", "a.day1", "a.day3"}; !slices.Equal(got, want) {
		t.Errorf("--user alice: %v, want %v", got, want)
	}
	if got, want := e.jsonTypes("--user", "BOB", "--since", "24h"), []string{"b.hour"}; !slices.Equal(got, want) {
		t.Errorf("--user BOB --since 24h: %v, want %v", got, want)
	}
	out := e.ok("", "audit", "list", "--user", "bob")
	if strings.Contains(out, "alice") || !strings.Contains(out, "b.hour") {
		t.Errorf("audit list --user bob shows others' events:\n%s", out)
	}
	e.fails("", "no user named carol", "audit", "list", "--user", "carol")
	e.fails("", "no user named carol", "audit", "list", "--user", "carol", "--json")
}

func TestAuditListLimit(t *testing.T) {
	e := newTestEnv(t)
	e.ok("", "user", "add", "alice", "--email", "alice@example.com")
	st := e.auditStore()
	now := time.Now()
	var events []*storage.AuditEvent
	for i := range 150 {
		events = append(events, &storage.AuditEvent{Time: now.Add(time.Duration(i-150) * time.Second),
			Type: "login.failed", Actor: "user", Result: "failure", Details: map[string]string{"n": strconv.Itoa(i)}})
	}
	appendEvents(t, st, events...)

	count := func(args ...string) int {
		t.Helper()
		return len(decodeJSON[[]any](t, e.ok("", append([]string{"audit", "list", "--json"}, args...)...)))
	}
	if n := count(); n != 100 {
		t.Errorf("default limit: %d events, want 100", n)
	}
	if n := count("--limit", "1"); n != 1 {
		t.Errorf("--limit 1: %d events", n)
	}
	if n := count("--limit", "10000"); n != 151 {
		t.Errorf("--limit 10000: %d events, want all 151", n)
	}
	// The limit keeps the newest.
	newest := decodeJSON[[]map[string]any](t, e.ok("", "audit", "list", "--json", "--limit", "2", "--since", "1h"))
	if len(newest) != 2 || newest[0]["details"].(map[string]any)["n"] != "149" || newest[1]["details"].(map[string]any)["n"] != "148" {
		t.Errorf("--limit 2 --since 1h = %v, want events 149 and 148", newest)
	}
	text := strings.Split(strings.TrimSpace(e.ok("", "audit", "list", "--limit", "3")), "\n")
	if len(text) != 4 {
		t.Errorf("--limit 3 printed %d lines, want a header and 3 rows:\n%s", len(text), strings.Join(text, "\n"))
	}

	for _, tc := range []struct{ limit, want string }{
		{"0", "--limit must be from 1 to 10000, got 0"},
		{"-5", "--limit must be from 1 to 10000, got -5"},
		{"10001", "--limit must be from 1 to 10000, got 10001"},
		{"many", `invalid argument "many" for "--limit"`},
		{"1.5", `invalid argument "1.5" for "--limit"`},
	} {
		e.fails("", tc.want, "audit", "list", "--limit", tc.limit)
	}
}

func TestAuditListOutput(t *testing.T) {
	e, now := auditEnv(t)

	// --json: one array of objects with the event's fields.
	out := e.ok("", "audit", "list", "--json", "--since", "5m")
	if !strings.HasPrefix(out, "[") || !strings.HasSuffix(out, "]\n") {
		t.Errorf("--json is not one array:\n%s", out)
	}
	events := decodeJSON[[]map[string]any](t, out)
	if len(events) != 1 {
		t.Fatalf("--json --since 5m = %v", events)
	}
	ev := events[0]
	wantKeys := []string{"actor", "client_id", "details", "id", "ip", "result", "time", "type", "user_agent", "user_id", "username"}
	if got := jsonKeys(t, ev); !slices.Equal(got, wantKeys) {
		t.Errorf("--json keys = %v, want %v", got, wantKeys)
	}
	if ev["type"] != "a.now" || ev["username"] != "alice" || ev["client_id"] != "portal" || ev["ip"] != "192.0.2.7" ||
		ev["result"] != "failure" || ev["actor"] != "user" || ev["details"].(map[string]any)["reason"] != "wrong password" {
		t.Errorf("--json event = %v", ev)
	}
	if ts, err := time.Parse(time.RFC3339Nano, ev["time"].(string)); err != nil || ts.Sub(now.Add(-time.Minute)).Abs() > time.Millisecond {
		t.Errorf("--json time %v (%v), want %v", ev["time"], err, now.Add(-time.Minute))
	}
	if out := e.ok("", "audit", "list", "--json", "--since", "0s"); strings.TrimSpace(out) != "[]" {
		t.Errorf("--json with no events = %q, want []", out)
	}

	// The table: a header, then one row per event with time, type, result,
	// actor, user, client, IP and the details (empty ones left out).
	lines := strings.Split(strings.TrimSpace(e.ok("", "audit", "list", "--since", "24h")), "\n")
	if len(lines) != 3 {
		t.Fatalf("audit list --since 24h =\n%s", strings.Join(lines, "\n"))
	}
	if got, want := strings.Fields(lines[0]), []string{"TIME", "TYPE", "RESULT", "ACTOR", "USER", "CLIENT", "IP", "DETAILS"}; !slices.Equal(got, want) {
		t.Errorf("header %v, want %v", got, want)
	}
	row := lines[1]
	for _, want := range []string{
		now.Add(-time.Minute).UTC().Format("2006-01-02 15:04:"), " UTC", "a.now", "failure", "user", "alice", "portal", "192.0.2.7",
		"factor=password reason=wrong password",
	} {
		if !strings.Contains(row, want) {
			t.Errorf("row lacks %q: %s", want, row)
		}
	}
	if strings.Contains(row, "empty=") || strings.Contains(row, "Firefox") {
		t.Errorf("row shows an empty detail or the user agent: %s", row)
	}
	// Columns line up, and a missing value is "-".
	if i := strings.Index(lines[0], "TYPE"); strings.Index(lines[1], "a.now") != i || strings.Index(lines[2], "b.hour") != i {
		t.Errorf("columns are not aligned:\n%s", strings.Join(lines, "\n"))
	}
	if f := strings.Fields(lines[2]); !slices.Contains(f, "-") {
		t.Errorf("bob's event without client or IP has no '-': %s", lines[2])
	}
}

// The hourly cleanup deletes audit events older than audit.retention, and
// says how many; 0 keeps them.
func TestCleanupAuditRetention(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	e := newTestEnv(t)
	e.ok("", "migrate")
	st := e.auditStore()
	now := time.Now()
	appendEvents(t, st,
		&storage.AuditEvent{Time: now.Add(-400 * 24 * time.Hour), Type: "old.1", Actor: "user", Result: "success"},
		&storage.AuditEvent{Time: now.Add(-366 * 24 * time.Hour), Type: "old.2", Actor: "user", Result: "success"},
		&storage.AuditEvent{Time: now.Add(-364 * 24 * time.Hour), Type: "recent.1", Actor: "user", Result: "success"},
		&storage.AuditEvent{Time: now.Add(-time.Hour), Type: "recent.2", Actor: "user", Result: "success"},
	)

	cleanupOnce(context.Background(), st, now, 0)
	if got := e.jsonTypes(); len(got) != 4 {
		t.Errorf("retention 0 deleted events: %v left", got)
	}
	if strings.Contains(logs.String(), "audit events") {
		t.Errorf("retention 0 logged an audit cleanup: %s", logs.String())
	}

	cleanupOnce(context.Background(), st, now, 365*24*time.Hour)
	if got, want := e.jsonTypes(), []string{"recent.2", "recent.1"}; !slices.Equal(got, want) {
		t.Errorf("after the cleanup: %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), `"what":"audit events","deleted":2`) {
		t.Errorf("the cleanup did not log how many events it deleted: %s", logs.String())
	}

	logs.Reset()
	cleanupOnce(context.Background(), st, now, 365*24*time.Hour)
	if !strings.Contains(logs.String(), `"what":"audit events","deleted":0`) {
		t.Errorf("a cleanup with nothing to delete did not say so: %s", logs.String())
	}
	if got := e.jsonTypes(); len(got) != 2 {
		t.Errorf("a second cleanup deleted more: %v", got)
	}
}

// audit.retention reaches `idp serve`: a negative value stops it.
func TestAuditRetentionConfig(t *testing.T) {
	e := newTestEnv(t)
	e.environ = append(e.environ, "IDP_AUDIT_RETENTION=-1h")
	e.fails("", "audit.retention: must not be negative", "audit", "list")
	file := filepath.Join(e.dir, "idp.yaml")
	if err := os.WriteFile(file, []byte("audit:\n  retention: 0s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.environ = e.environ[:len(e.environ)-1]
	if out := e.ok("", "--config", file, "audit", "list"); out != "No events match.\n" {
		t.Errorf("audit list with audit.retention 0 = %q", out)
	}
}
