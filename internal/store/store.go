// Package store persists what the domains declare they need — API keys, destinations, updates,
// deliveries, attempts, alerts — in SQLite (embedded default, one node) or PostgreSQL (several
// nodes). Both share one implementation over database/sql; only migrations and a few statements
// differ by dialect. Times are stored as Unix milliseconds (UTC) in both.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
)

// Dialect is the SQL flavour of a DB.
type Dialect string

// The dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

//go:embed migrations
var migrations embed.FS

// DB is the store.
type DB struct {
	db      *sql.DB
	dialect Dialect
	// stmts holds SQLite statements prepared once for the life of the store (see prepared).
	stmts sync.Map      // query → *sql.Stmt
	gate  chan struct{} // the write gate (write_gate.go); nil on PostgreSQL
	// gateWaiting counts the writes waiting at the gate.
	gateWaiting atomic.Int32
	// writes counts the writes through the gate (SQLite), for the checkpointer (checkpoint.go).
	writes atomic.Int64
	ckpt   *checkpointer // SQLite's background checkpoints; nil on PostgreSQL
}

// Options adjust how OpenWith connects; the zero value is Open.
type Options struct {
	// WrapConnector, when set, wraps the driver's connector before the store uses it: tests
	// inject faults through it (package storefault).
	WrapConnector func(driver.Connector) driver.Connector
}

// Open opens PostgreSQL when url is a postgres:// URL, else SQLite at dataDir/qgate.db, and
// applies pending migrations.
func Open(ctx context.Context, url, dataDir string) (*DB, error) {
	return OpenWith(ctx, url, dataDir, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, url, dataDir string, o Options) (*DB, error) {
	wrap := o.WrapConnector
	if wrap == nil {
		wrap = func(c driver.Connector) driver.Connector { return c }
	}
	var s *DB
	if url != "" {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db := sql.OpenDB(wrap(stdlib.GetConnector(*cfg)))
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s = &DB{db: db, dialect: Postgres, gate: newWriteGate(Postgres)}
	} else {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		path := filepath.Join(dataDir, "qgate.db")
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_pragma=analysis_limit(1000)&_pragma=wal_autocheckpoint(" + strconv.Itoa(autoCheckpointPages) + ")&_txlock=immediate"
		c, err := sqlite.NewConnector(dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		db := sql.OpenDB(wrap(c))
		db.SetMaxOpenConns(4)
		s = &DB{db: db, dialect: SQLite, gate: newWriteGate(SQLite)}
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connect to %s store: %w", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	if s.dialect == SQLite {
		s.startCheckpoints()
	}
	return s, nil
}

// queryStrings runs q, which selects one text column, and returns its values in order.
func (s *DB) queryStrings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Dialect reports which database backs the store.
func (s *DB) Dialect() Dialect { return s.dialect }

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database.
func (s *DB) Close() error {
	s.stopCheckpoints()
	s.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// prepared returns q prepared once for the store's life, on SQLite. The SQLite driver compiles a
// statement on every call that has arguments (there is no statement cache under database/sql),
// which for the status writer's small transactions cost about a quarter of their CPU. A
// statement prepared on the *sql.DB is compiled once per pooled connection, and a transaction
// reuses it through Tx.StmtContext. On PostgreSQL it returns nil: pgx caches prepared statements
// per connection by itself.
func (s *DB) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if s.dialect != SQLite {
		return nil, nil
	}
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// migrate applies the embedded migrations not yet applied, each in its own transaction. On
// PostgreSQL an advisory lock makes nodes that start together apply them once.
func (s *DB) migrate(ctx context.Context) error {
	dir := "migrations/" + string(s.dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)

	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if s.dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7142001)`); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7142001)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, name := range names {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, name).Scan(&n); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(dir + "/" + name)
		if err != nil {
			return err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, name, ms(time.Now())); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

// isUniqueViolation reports a unique-constraint failure in either dialect.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "duplicate key value")
}

var errNoRows = sql.ErrNoRows

func notFound(err error, nf error) error {
	if errors.Is(err, errNoRows) {
		return nf
	}
	return err
}
