package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"               // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hostportal/idp/storage"
)

var _ storage.Store = (*Store)(nil)

// dialect names; they double as the directory names under migrations/.
const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
)

// sqlitePragmas configure every SQLite connection the pool opens (pragmas
// are per connection). WAL lets readers run beside the one writer;
// busy_timeout makes a writer wait for the lock instead of failing at once;
// foreign_keys is off by default in SQLite and the schema relies on its
// cascades. _txlock=immediate takes the write lock at BEGIN, so two
// read-then-write transactions cannot deadlock on a lock upgrade (which
// busy_timeout cannot resolve).
const sqlitePragmas = "_pragma=busy_timeout(5000)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(NORMAL)" +
	"&_txlock=immediate"

// Store is a storage.Store on an SQL database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect string

	// stmts caches prepared statements by query text, for SQLite only:
	// modernc.org/sqlite parses every query it is given afresh (a tenth of
	// a refresh's CPU went to SQLite's parser), while pgx already caches
	// statements per connection. database/sql prepares a cached statement
	// lazily on each pooled connection and re-prepares it after a reconnect.
	stmtMu sync.RWMutex
	stmts  map[string]*sql.Stmt
}

// Open connects to the database named by url and checks that it answers:
//
//	sqlite://PATH                 a file (relative or absolute); its directory is created
//	sqlite://:memory:             a private in-memory database (one connection)
//	postgres://... postgresql://  a PostgreSQL connection URL, as pgx reads it
//
// Open does not create or change the schema: call Migrate.
func Open(ctx context.Context, url string) (*Store, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		// Do not echo url: it may hold a password.
		return nil, errors.New("sqlstore: database URL has no scheme; accepted: sqlite://PATH, postgres://..., postgresql://...")
	}
	var (
		s   *Store
		err error
	)
	switch strings.ToLower(scheme) {
	case "sqlite":
		s, err = openSQLite(rest)
	case "postgres", "postgresql":
		s, err = openPostgres(url)
	default:
		return nil, fmt.Errorf("sqlstore: unsupported database URL scheme %q; accepted: sqlite://PATH, postgres://..., postgresql://...", scheme)
	}
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlstore: connect to %s: %w", s.dialect, unavailable(err)), s.db.Close())
	}
	return s, nil
}

func openSQLite(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlstore: sqlite URL has no path; want sqlite://PATH, e.g. sqlite://data/idp.db")
	}
	if path == ":memory:" {
		db, err := sql.Open("sqlite", ":memory:?"+sqlitePragmas)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
		}
		// Each connection to :memory: is a database of its own, so the pool
		// must hold exactly one connection and never recycle it.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		return &Store{db: db, dialect: dialectSQLite}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlstore: create directory for sqlite database: %w", err)
	}
	// The file holds password hashes and sealed keys: create it private
	// rather than with SQLite's 0644. SQLite gives the -wal and -shm files
	// the database file's mode.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: create sqlite database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlstore: create sqlite database file: %w", err)
	}
	// A file: URI keeps a '?' or '#' in the path from being read as the
	// start of the DSN parameters.
	db, err := sql.Open("sqlite", "file:"+escapeURIPath(path)+"?"+sqlitePragmas)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	// database/sql keeps 2 idle connections by default: under load the
	// others would be closed and reopened (pragmas and prepared statements
	// again) on every burst.
	db.SetMaxIdleConns(16)
	return &Store{db: db, dialect: dialectSQLite}, nil
}

// escapeURIPath percent-encodes the characters that SQLite's URI parser
// would otherwise take as syntax.
func escapeURIPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(p)
}

func openPostgres(url string) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	// Bound the pool so that several replicas stay under the server's
	// max_connections (100 by default).
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Store{db: db, dialect: dialectPostgres}, nil
}

// SetMaxConnections bounds the PostgreSQL pool at n connections (half of
// them kept idle); SQLite keeps its own settings.
func (s *Store) SetMaxConnections(n int) {
	if s.dialect != dialectPostgres || n < 1 {
		return
	}
	s.db.SetMaxOpenConns(n)
	s.db.SetMaxIdleConns(max(n/2, 1))
}

// MaxConnections is the pool's bound (0: none).
func (s *Store) MaxConnections() int { return s.db.Stats().MaxOpenConnections }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", unavailable(err))
	}
	return nil
}

// Close closes the cached statements and the connection pool.
func (s *Store) Close() error {
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		_ = st.Close() // closing the pool below releases them in any case
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common, so that a query helper
// runs inside or outside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// row and rows are *sql.Row and *sql.Rows whose errors say
// storage.ErrUnavailable when the database could not be reached (see
// unavailable). Every statement goes through exec, query or queryRow, so
// every such error is marked.
type row struct{ *sql.Row }

func (r row) Scan(dest ...any) error { return unavailable(r.Row.Scan(dest...)) }

type rows struct{ *sql.Rows }

func (r rows) Scan(dest ...any) error { return unavailable(r.Rows.Scan(dest...)) }
func (r rows) Err() error             { return unavailable(r.Rows.Err()) }

// rebind turns the ? placeholders of query into PostgreSQL's $1, $2, ...
// Queries in this package never hold a literal '?', so a plain scan is enough.
func (s *Store) rebind(query string) string {
	if s.dialect != dialectPostgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// stmt returns the cached prepared statement for query, bound to q when q
// is a transaction, or nil when statements are not cached (PostgreSQL) or
// the statement cannot be prepared (the caller then runs the query as text,
// which reports the error).
func (s *Store) stmt(ctx context.Context, q querier, query string) *sql.Stmt {
	if s.dialect != dialectSQLite {
		return nil
	}
	s.stmtMu.RLock()
	st := s.stmts[query]
	s.stmtMu.RUnlock()
	if st == nil {
		s.stmtMu.Lock()
		if st = s.stmts[query]; st == nil {
			var err error
			if st, err = s.db.PrepareContext(ctx, query); err != nil {
				s.stmtMu.Unlock()
				return nil
			}
			if s.stmts == nil {
				s.stmts = make(map[string]*sql.Stmt)
			}
			s.stmts[query] = st
		}
		s.stmtMu.Unlock()
	}
	if tx, ok := q.(*sql.Tx); ok {
		return tx.StmtContext(ctx, st)
	}
	return st
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	if st := s.stmt(ctx, q, query); st != nil {
		res, err := st.ExecContext(ctx, args...)
		return res, unavailable(err)
	}
	res, err := q.ExecContext(ctx, s.rebind(query), args...)
	return res, unavailable(err)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (rows, error) {
	if st := s.stmt(ctx, q, query); st != nil {
		r, err := st.QueryContext(ctx, args...)
		return rows{r}, unavailable(err)
	}
	r, err := q.QueryContext(ctx, s.rebind(query), args...)
	return rows{r}, unavailable(err)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) row {
	if st := s.stmt(ctx, q, query); st != nil {
		return row{st.QueryRowContext(ctx, args...)}
	}
	return row{q.QueryRowContext(ctx, s.rebind(query), args...)}
}

// execOne runs a statement that must touch exactly one row; none means the
// row does not exist.
func (s *Store) execOne(ctx context.Context, q querier, op, query string, args ...any) error {
	res, err := s.exec(ctx, q, query, args...)
	if err != nil {
		return dbError(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	}
	return nil
}

// execCount runs a statement and returns how many rows it touched.
func (s *Store) execCount(ctx context.Context, q querier, op, query string, args ...any) (int64, error) {
	res, err := s.exec(ctx, q, query, args...)
	if err != nil {
		return 0, dbError(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return n, nil
}

// inTx runs fn in a transaction, committing if it returns nil and rolling
// back otherwise.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", op, unavailable(err))
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("%s: rollback: %w", op, rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return dbError(op+": commit", unavailable(err))
	}
	return nil
}

// PostgreSQL SQLSTATEs that say the server cannot serve now, besides class
// 08 (connection exception): shutting down, crashed, starting up, out of
// connections.
var pgUnavailableCodes = []string{"57P01", "57P02", "57P03", "53300"}

// unavailable marks err with storage.ErrUnavailable when it says the
// database could not be reached or the connection broke, rather than that
// the statement failed: a refused or timed-out dial, a connection closed
// under a query, a deadline passed, or PostgreSQL refusing to serve for
// now. Other errors (and nil) are returned as they are.
func unavailable(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	var (
		pgErr      *pgconn.PgError
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	var down bool
	switch {
	case errors.As(err, &pgErr):
		// Also inside a ConnectError: a wrong password or database name
		// is a configuration error, not an outage.
		down = strings.HasPrefix(pgErr.Code, "08") || slices.Contains(pgUnavailableCodes, pgErr.Code)
	default:
		down = errors.As(err, &connectErr) || errors.As(err, &netErr) ||
			errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
			errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, context.DeadlineExceeded)
	}
	if !down {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// dbError maps a driver error to the storage errors callers test for, and
// keeps the driver's error in the chain for the log.
func dbError(op string, err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("%s: %w: %w", op, storage.ErrConflict, err)
	case isForeignKeyViolation(err):
		return fmt.Errorf("%s: referenced user or client does not exist: %w: %w", op, storage.ErrNotFound, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// PostgreSQL SQLSTATEs.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgUniqueViolation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		code := liteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgForeignKeyViolation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// millis encodes t as unix milliseconds, with 0 for the zero time so that
// "not set" survives a round trip.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMillis decodes what millis stored, in UTC.
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// encodeList stores a string list as JSON; nil and empty are both "[]".
func encodeList(l []string) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("encode list: %w", err)
	}
	return string(b), nil
}

// decodeList reads what encodeList stored; an empty list comes back nil.
func decodeList(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode list: %w", err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// encodeLists encodes several lists at once, for the INSERT and UPDATE
// statements that store them side by side.
func encodeLists(lists ...[]string) ([]string, error) {
	out := make([]string, len(lists))
	for i, l := range lists {
		enc, err := encodeList(l)
		if err != nil {
			return nil, err
		}
		out[i] = enc
	}
	return out, nil
}

// limitOrDefault applies the contract's "0 means 100".
func limitOrDefault(n int) int {
	if n <= 0 {
		return 100
	}
	return n
}
