package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// DefaultPruneBatch is how many deliveries (or updates) one prune transaction removes.
const DefaultPruneBatch = 1000

// maxPruneBatch keeps a batch's IN list far below both dialects' parameter limits.
const maxPruneBatch = 10000

// selectDestinations lists the distinct destination IDs that have deliveries (notification
// channels' included), one deliveries_destination_time probe per destination: a loose index
// scan, which neither SQLite nor PostgreSQL does for SELECT DISTINCT by itself.
const selectDestinations = `WITH RECURSIVE d(id) AS (
    SELECT MIN(destination_id) FROM deliveries
    UNION ALL
    SELECT (SELECT MIN(destination_id) FROM deliveries WHERE destination_id > d.id) FROM d WHERE d.id IS NOT NULL
)
SELECT id FROM d WHERE id IS NOT NULL`

// selectPrunableDeliveries picks up to $2 finished deliveries of destination $3 last changed
// before $1, through deliveries_destination_time (destination_id, updated_at): the range of the
// destination's old rows, whose status is checked on each (deliveries_undelivered, the status
// index, does not hold delivered rows: migration 027). There used to be a partial index on updated_at for this
// (deliveries_prune, migration 005); migration 024 dropped it, because every delivery paid for
// it on the hot path (about an eighth of the status store's CPU per delivery on SQLite,
// BenchmarkDeliveryLifecycle) for a pass that runs once an hour.
const selectPrunableDeliveries = `SELECT delivery_id FROM deliveries
WHERE status IN ('delivered', 'dead_lettered', 'excluded') AND destination_id = $3 AND updated_at < $1
LIMIT $2`

// selectPrunableUpdates picks up to $2 updates received before $1 that have no delivery left:
// updates_received finds the old ones and deliveries_update answers "any delivery left?" for
// each. OFFSET 0 keeps PostgreSQL from turning NOT EXISTS into an anti-join, which it may run by
// hashing every delivery's update_id (a full scan of deliveries per batch) when its statistics
// say few updates qualify; as a correlated subquery it is one index probe per old update.
const selectPrunableUpdates = `SELECT u.update_id FROM updates u
WHERE u.received_at < $1
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.update_id = u.update_id LIMIT 1 OFFSET 0)
LIMIT $2`

// Prune deletes what is older than the retention horizon before: deliveries in a terminal
// status (delivered, dead-lettered, excluded) last changed before it, with their attempts, and
// then updates received before it that have no delivery left. Pending and retrying deliveries
// (and so their updates) are kept however old. It works in batches of batch rows
// (DefaultPruneBatch when batch <= 0), each its own short transaction, until nothing is left or
// ctx ends, and returns how many deliveries and updates it deleted (attempts are not counted).
//
// Each batch selects the IDs it will delete and then deletes by ID list, so both dialects delete
// through the primary keys whatever their statistics say. On PostgreSQL the selection takes the
// rows FOR UPDATE SKIP LOCKED: nodes pruning at the same time share the work instead of waiting
// on each other, and a row changed since the scan read it is re-checked before it is taken.
func (s *DB) Prune(ctx context.Context, before time.Time, batch int) (deleted int64, err error) {
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	batch = min(batch, maxPruneBatch)
	dests, err := s.deliveryDestinations(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	type step struct {
		what, sel string
		extra     []any
		deletes   []string
	}
	var steps []step
	for _, d := range dests {
		steps = append(steps, step{"deliveries", selectPrunableDeliveries, []any{d},
			[]string{`DELETE FROM attempts WHERE delivery_id IN `, `DELETE FROM deliveries WHERE delivery_id IN `}})
	}
	steps = append(steps, step{"updates", selectPrunableUpdates, nil, []string{`DELETE FROM updates WHERE update_id IN `}})
	for _, st := range steps {
		for {
			n, err := s.pruneBatch(ctx, st.sel, ms(before), batch, st.extra, st.deletes)
			deleted += n
			if err != nil {
				return deleted, fmt.Errorf("prune %s: %w", st.what, err)
			}
			if n < int64(batch) {
				break
			}
		}
	}
	return deleted, nil
}

// deliveryDestinations returns the destination IDs that have deliveries (selectDestinations).
func (s *DB) deliveryDestinations(ctx context.Context) ([]string, error) {
	return s.queryStrings(ctx, selectDestinations)
}

// pruneBatch selects up to batch IDs with sel (parameters: before, batch, then extra) and runs
// each of deletes (a statement ending in "IN ") on them, in one transaction. It returns how
// many rows the last delete removed.
func (s *DB) pruneBatch(ctx context.Context, sel string, before int64, batch int, extra []any, deletes []string) (int64, error) {
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	if s.dialect == Postgres {
		sel += " FOR UPDATE SKIP LOCKED"
	}
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, sel, append([]any{before, batch}, extra...)...)
	if err != nil {
		return 0, err
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list := "(" + placeholders(1, len(ids)) + ")"
	var n int64
	for _, d := range deletes {
		res, err := tx.ExecContext(ctx, d+list, ids...)
		if err != nil {
			return 0, err
		}
		if n, err = res.RowsAffected(); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return n, nil
}

// placeholders returns "$from, $from+1, …" for n parameters.
func placeholders(from, n int) string {
	var b strings.Builder
	b.Grow(n * 6)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// RunPruner prunes what is older than retention (see Prune) at once and then every interval,
// until ctx ends. Failures are logged and retried at the next interval.
//
// After each pass, the first one included, it refreshes SQLite's planner statistics (Optimize).
func RunPruner(ctx context.Context, s *DB, retention, interval time.Duration, log *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		before := start.Add(-retention)
		n, err := s.Prune(ctx, before, DefaultPruneBatch)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error("prune status store", zap.Error(err), zap.Int64("deleted", n), zap.Time("before", before))
		case n > 0:
			log.Info("pruned status store", zap.Int64("deleted", n), zap.Time("before", before), zap.Duration("took", time.Since(start)))
		}
		if err := s.Optimize(ctx); err != nil && ctx.Err() == nil {
			log.Warn("refresh query planner statistics", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Optimize refreshes SQLite's query planner statistics (ANALYZE; analysis_limit, set when the
// database is opened, makes it sample about a thousand rows per index, so it stays cheap on
// large tables). Without statistics SQLite picks indexes by rules of thumb, which choose badly
// for some of qgate's queries once tables are large (TestStore "query plans"); RunPruner runs it
// after each pass, the first as soon as the node starts. PostgreSQL's autovacuum keeps its own statistics, so there it
// does nothing.
func (s *DB) Optimize(ctx context.Context) error {
	if s.dialect != SQLite {
		return nil
	}
	_, err := s.exec(ctx, `ANALYZE`)
	return err
}
