package sqlstore_test

import (
	"path/filepath"
	"testing"

	"github.com/hostportal/idp/storage"
	"github.com/hostportal/idp/storage/conformance"
)

func TestSQLiteConformance(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Store {
		return openMigrated(t, "sqlite://"+filepath.Join(t.TempDir(), "idp.db"))
	})
}
