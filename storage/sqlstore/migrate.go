package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// LatestMigration is the schema version Migrate brings a database to: the
// number of the newest file in migrations/sqlite and migrations/postgres
// (the two dialects move in step; a test checks both).
const LatestMigration int64 = 4

//go:embed migrations
var migrations embed.FS

// Migrate brings the schema to LatestMigration. It is idempotent, and on
// PostgreSQL several processes may run it at once: a session-level advisory
// lock makes them take turns. (SQLite needs no lock: goose applies each
// migration in a transaction, and the file allows one writer at a time.)
func (s *Store) Migrate(ctx context.Context) error {
	p, err := s.migrationProvider()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlstore: migrate %s: %w", s.dialect, err)
	}
	return nil
}

// MigrationVersion returns the newest migration applied to the database, 0
// for a database never migrated. It does not wait for a running Migrate.
func (s *Store) MigrationVersion(ctx context.Context) (int64, error) {
	p, err := s.migrationProvider()
	if err != nil {
		return 0, err
	}
	current, _, err := p.GetVersions(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: migration version: %w", err)
	}
	return current, nil
}

// migrationProvider builds a goose provider for this store's dialect. It is
// never closed: Provider.Close would close s.db.
func (s *Store) migrationProvider() (*goose.Provider, error) {
	files, err := fs.Sub(migrations, "migrations/"+s.dialect)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations for %s: %w", s.dialect, err)
	}
	// Only the embedded SQL files count, not Go migrations some other
	// package might register with goose globally.
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	dialect := goose.DialectSQLite3
	if s.dialect == dialectPostgres {
		dialect = goose.DialectPostgres
		// Retry every second (the default is every 5) for up to 5 minutes,
		// so a replica that starts beside a migrating one waits briefly.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db, files, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations for %s: %w", s.dialect, err)
	}
	return p, nil
}
