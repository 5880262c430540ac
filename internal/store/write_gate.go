package store

import (
	"context"
	"database/sql"
	"fmt"
)

// SQLite lets one connection write at a time; a second writer waits in SQLite's busy handler,
// which polls with sleeps of up to 100 ms while it holds a pooled connection. With hundreds of
// lanes claiming their destinations at once beside the status writer's transactions, those
// waiters took every connection of the pool: the lanes' reads timed out behind them, their jobs
// parked, and the parks queued more writes (a start-up stall at 400 destinations). So on SQLite
// every write of the store passes one gate, in Go and in arrival order, before it takes a
// connection: writers queue without holding one, reads always find one, and SQLite's busy
// handler only ever meets another process. PostgreSQL locks rows, not the database: no gate.

// newWriteGate returns the gate for a dialect (nil: none).
func newWriteGate(d Dialect) chan struct{} {
	if d == SQLite {
		return make(chan struct{}, 1)
	}
	return nil
}

// lockWrite passes the write gate, or returns ctx's error; release reopens it.
func (s *DB) lockWrite(ctx context.Context) (release func(), err error) {
	if s.gate == nil {
		return func() {}, nil
	}
	s.gateWaiting.Add(1)
	defer s.gateWaiting.Add(-1)
	select {
	case s.gate <- struct{}{}:
		return func() {
			s.writes.Add(1)
			<-s.gate
		}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to write: %w", context.Cause(ctx))
	}
}

// exec runs one write statement outside a transaction, through the gate.
func (s *DB) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	release, err := s.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.db.ExecContext(ctx, q, args...)
}

// writeTx is a transaction that holds the write gate until it ends.
type writeTx struct {
	*sql.Tx
	release func()
}

// beginWrite begins a transaction that writes, through the gate.
func (s *DB) beginWrite(ctx context.Context) (*writeTx, error) {
	release, err := s.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		release()
		return nil, err
	}
	return &writeTx{Tx: tx, release: release}, nil
}

// Commit commits and reopens the gate.
func (t *writeTx) Commit() error {
	defer t.end()
	return t.Tx.Commit()
}

// Rollback rolls back (after Commit: does nothing) and reopens the gate.
func (t *writeTx) Rollback() error {
	defer t.end()
	return t.Tx.Rollback()
}

func (t *writeTx) end() {
	if t.release != nil {
		t.release()
		t.release = nil
	}
}
