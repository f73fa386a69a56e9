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
