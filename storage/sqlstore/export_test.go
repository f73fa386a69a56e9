package sqlstore

import (
	"context"
	"fmt"
)

// MigrateUpTo brings the schema to version (not beyond), as an older
// release's Migrate would have left it. For tests of upgrades only.
func (s *Store) MigrateUpTo(ctx context.Context, version int64) error {
	p, err := s.migrationProvider()
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("sqlstore: migrate %s up to %d: %w", s.dialect, version, err)
	}
	return nil
}

// MigrateDownTo rolls the schema back to version. For tests of the Down
// sections only: the provider never rolls back.
func (s *Store) MigrateDownTo(ctx context.Context, version int64) error {
	p, err := s.migrationProvider()
	if err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("sqlstore: migrate %s down to %d: %w", s.dialect, version, err)
	}
	return nil
}
