package sqlstore_test

import (
	"testing"

	"github.com/hostportal/idp/internal/testenv"
	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/conformance"
)

func TestPostgresConformance(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Store {
		return openMigrated(t, testenv.PostgresURL(t))
	})
}

// TestPostgresPoolBound: database.max_connections bounds the pool, which
// is what keeps several instances under PostgreSQL's max_connections.
func TestPostgresPoolBound(t *testing.T) {
	st := openMigrated(t, testenv.PostgresURL(t))
	if n := st.MaxConnections(); n != 20 {
		t.Errorf("default pool bound %d, want 20", n)
	}
	st.SetMaxConnections(3)
	if n := st.MaxConnections(); n != 3 {
		t.Errorf("pool bound %d after SetMaxConnections(3)", n)
	}
}
