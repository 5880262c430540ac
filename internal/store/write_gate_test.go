package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Writers queued behind a long SQLite write transaction hold no connection: a read made while
// more writers wait than the pool has connections is answered at once, and every queued write
// succeeds once the transaction ends (none meets "database is locked"). Before the gate, each
// waiting writer held a pooled connection inside SQLite's busy handler, and the read waited
// for one until its deadline.
func TestSQLiteWritersQueueWithoutHoldingConnections(t *testing.T) {
	db := openSQLiteForTest(t)
	ctx := context.Background()
	tx, err := db.beginWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO destination_claims (destination_id, node_id, expires_at) VALUES ('dst_held', 'node-tx', 0)`); err != nil {
		t.Fatal(err)
	}

	const writers = 12 // the SQLite pool has 4 connections
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	queued := make(chan struct{}, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			queued <- struct{}{}
			ok, _, err := db.Claim(ctx, fmt.Sprintf("dst_%02d", i), "node-w", time.Now(), time.Minute, false)
			if err == nil && !ok {
				err = fmt.Errorf("claim of dst_%02d refused", i)
			}
			errs <- err
		}()
	}
	for range writers {
		<-queued
	}
	// Await every writer at the gate (the only place a Claim can wait while the transaction
	// holds it), holding no connection: the transaction's is the only one in use.
	for deadline := time.Now().Add(10 * time.Second); db.gateWaiting.Load() < writers; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writers wait at the gate after 10 s", db.gateWaiting.Load(), writers)
		}
	}
	if n := db.db.Stats().InUse; n != 1 {
		t.Errorf("%d connections in use while %d writers wait, want 1 (the transaction's)", n, writers)
	}

	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := db.CountParked(rctx, "dst_held"); err != nil {
		t.Fatalf("a read while %d writers queue behind a transaction: %v", writers, err)
	}
	select {
	case err := <-errs:
		t.Fatalf("a write finished while the transaction held the gate: %v", err)
	default:
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
