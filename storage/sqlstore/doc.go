// Package sqlstore owns the SQL backend of the durable store: one
// implementation of storage.Store for both SQLite (modernc.org/sqlite, pure
// Go) and PostgreSQL (pgx through database/sql), with the schema of each as
// numbered, embedded goose migrations under migrations/<dialect>.
//
// Both dialects share the same queries (written with ? placeholders and
// rebound to $n for PostgreSQL) and the same encodings: times are BIGINT
// unix milliseconds in UTC, with 0 meaning "not set" (a zero time.Time);
// booleans are BOOLEAN in PostgreSQL and 0/1 in SQLite; string lists and
// audit details are JSON text.
//
// Open connects but does not change the schema; call Migrate once at start
// (it is safe to run from several processes at the same time).
package sqlstore
