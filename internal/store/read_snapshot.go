package store

import (
	"context"
	"database/sql"
	"fmt"
)

// querier is what a read needs: *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readSnapshot runs f in a read-only transaction that sees one snapshot of the database:
// REPEATABLE READ on PostgreSQL (each statement of READ COMMITTED sees its own), a deferred
// transaction on SQLite (WAL keeps the snapshot of its first read). Use it when a reply joins
// rows that one write transaction changes together.
func (s *DB) readSnapshot(ctx context.Context, f func(q querier) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	defer tx.Rollback()
	return f(tx)
}
