package sqlstore_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/sqlstore"
)

var (
	_ storage.Store        = (*sqlstore.Store)(nil)
	_ storage.SecurityKeys = (*sqlstore.Store)(nil)
)

// open opens url and closes the store when t ends.
func open(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func openMigrated(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	s := open(t, url)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// dialects names a fresh, empty database of each kind for t.
var dialects = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "idp.db") }},
	{"postgres", func(t *testing.T) string { return testenv.PostgresURL(t) }},
}

func TestMigrateReachesLatest(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			s := open(t, d.url(t))
			v, err := s.MigrationVersion(ctx)
			if err != nil {
				t.Fatalf("MigrationVersion before Migrate: %v", err)
			}
			if v != 0 {
				t.Errorf("fresh database at version %d, want 0", v)
			}
			// Migrate is idempotent: the second run finds nothing to do.
			for i := range 2 {
				if err := s.Migrate(ctx); err != nil {
					t.Fatalf("Migrate #%d: %v", i+1, err)
				}
				v, err := s.MigrationVersion(ctx)
				if err != nil {
					t.Fatalf("MigrationVersion: %v", err)
				}
				if v != sqlstore.LatestMigration {
					t.Errorf("after Migrate #%d at version %d, want %d", i+1, v, sqlstore.LatestMigration)
				}
			}
			if err := s.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

// TestLatestMigrationMatchesFiles keeps LatestMigration and the two
// dialects' migration files in step.
func TestLatestMigrationMatchesFiles(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		entries, err := os.ReadDir(filepath.Join("migrations", dialect))
		if err != nil {
			t.Fatal(err)
		}
		var newest int64
		for _, e := range entries {
			num, _, ok := strings.Cut(e.Name(), "_")
			if !ok || !strings.HasSuffix(e.Name(), ".sql") {
				t.Errorf("%s/%s: want NNNNN_name.sql", dialect, e.Name())
				continue
			}
			v, err := strconv.ParseInt(num, 10, 64)
			if err != nil {
				t.Errorf("%s/%s: %v", dialect, e.Name(), err)
				continue
			}
			newest = max(newest, v)
		}
		if newest != sqlstore.LatestMigration {
			t.Errorf("newest %s migration is %d, LatestMigration is %d", dialect, newest, sqlstore.LatestMigration)
		}
	}
}

// TestConcurrentMigratePostgres runs Migrate from two stores (as two
// replicas starting together would) on one fresh database.
func TestConcurrentMigratePostgres(t *testing.T) {
	url := testenv.PostgresURL(t)
	stores := []*sqlstore.Store{open(t, url), open(t, url)}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d: %v", i, err)
		}
	}
	v, err := stores[0].MigrationVersion(t.Context())
	if err != nil {
		t.Fatalf("MigrationVersion: %v", err)
	}
	if v != sqlstore.LatestMigration {
		t.Errorf("version %d, want %d", v, sqlstore.LatestMigration)
	}
}

func TestOpenRejectsBadURL(t *testing.T) {
	for _, url := range []string{
		"mysql://root:hunter2@localhost/idp",
		"data/idp.db",
		"",
		"sqlite://",
	} {
		s, err := sqlstore.Open(t.Context(), url)
		if err == nil {
			if cerr := s.Close(); cerr != nil {
				t.Errorf("Close: %v", cerr)
			}
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		// Every message names the accepted form(s).
		msg := err.Error()
		want := []string{"sqlite://", "postgres://"}
		if url == "sqlite://" {
			want = []string{"sqlite://PATH"}
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("Open(%q) error %q does not mention %s", url, msg, w)
			}
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("Open(%q) error %q leaks the password", url, msg)
		}
	}
}

// TestOpenSQLiteCreatesDirectory also checks that URI syntax in the path
// ('?', '#', '%') is taken literally and that the file is private.
func TestOpenSQLiteCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "we?ird#100%")
	s := openMigrated(t, "sqlite://"+filepath.Join(dir, "idp.db"))
	if err := s.CreateUser(t.Context(), &storage.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "idp.db"))
	if err != nil {
		t.Fatalf("database file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("database file mode %v, want no access for group and others", perm)
	}
}

// TestOpenSQLiteRelativePath checks sqlite://data/idp.db is relative to the
// working directory.
func TestOpenSQLiteRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	openMigrated(t, "sqlite://data/idp.db")
	if _, err := os.Stat(filepath.Join("data", "idp.db")); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestSQLiteMemory(t *testing.T) {
	s := openMigrated(t, "sqlite://:memory:")
	ctx := t.Context()
	if err := s.CreateUser(ctx, &storage.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	// The user must be visible on the next call: the pool keeps the one
	// connection that holds the in-memory database.
	if _, err := s.UserByUsername(ctx, "alice"); err != nil {
		t.Fatalf("UserByUsername: %v", err)
	}
}
