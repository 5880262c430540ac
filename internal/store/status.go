package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// ErrUpdateNotFound is returned for an unknown (or not yet routed) update.
var ErrUpdateNotFound = fault.New(fault.NotFound, "updateId", "update_not_found", "no such update has been routed (it may still be queued; try again shortly)")

// Apply writes a batch in one transaction: updates are inserted once; each event upserts its
// delivery (a terminal status is never replaced by a non-terminal one, and "pending" never
// replaces anything) and records its attempt. How rows are written: status_batch.go.
func (s *DB) Apply(ctx context.Context, b delivery.Batch) error {
	if err := checkBatch(b); err != nil {
		return fmt.Errorf("apply status: %w", err)
	}
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("apply status: %w", err)
	}
	defer tx.Rollback()
	w := s.rowWriter(tx.Tx)
	defer w.close()
	if err := w.insertUpdates(ctx, b.Updates); err != nil {
		return err
	}
	if err := w.applyEvents(ctx, b.Routed); err != nil {
		return err
	}
	if err := w.applyEvents(ctx, b.Events); err != nil {
		return err
	}
	if err := s.applyParking(ctx, w, b); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("apply status: commit: %w", err)
	}
	return nil
}

// undelivered is the predicate of deliveries_undelivered, the status index (status,
// destination_id, updated_at) over every delivery not delivered (migration 027). SQLite uses a
// partial index only for a query whose WHERE names its predicate, so every query that reads the
// status index adds it, even where its own status test implies it.
const undelivered = "status <> 'delivered'"

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// GetUpdate returns an update and each of its deliveries with their attempts, read in one
// snapshot (a delivery's status and its attempts are written in one transaction).
func (s *DB) GetUpdate(ctx context.Context, updateID string) (delivery.Update, []delivery.Record, error) {
	var u delivery.Update
	var recs []delivery.Record
	err := s.readSnapshot(ctx, func(q querier) error {
		var received, routed int64
		var auds string
		var queued sql.NullString
		err := q.QueryRowContext(ctx, `SELECT update_id, profile_key, received_at, routed_at, audiences, queued FROM updates WHERE update_id = $1`, cleanText(updateID)).
			Scan(&u.UpdateID, &u.ProfileKey, &received, &routed, &auds, &queued)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUpdateNotFound
		}
		if err != nil {
			return fmt.Errorf("get update: %w", err)
		}
		u.ReceivedAt, u.RoutedAt = fromMS(received), fromMS(routed)
		_ = json.Unmarshal([]byte(auds), &u.Audiences)
		if queued.Valid {
			_ = json.Unmarshal([]byte(queued.String), &u.Queued)
		}
		recs, err = records(ctx, q, `WHERE d.update_id = $1 ORDER BY d.destination_id`, cleanText(updateID))
		if err == nil {
			recs = withQueued(u, recs)
		}
		return err
	})
	if err != nil {
		return u, nil, err
	}
	return u, recs, nil
}

// withQueued returns recs (ordered by destination) with a pending record for each destination
// u was queued for that has no row yet: the status writer may hold a pending row back, to
// write it merged into the delivery's first outcome (StatusWriter).
func withQueued(u delivery.Update, recs []delivery.Record) []delivery.Record {
	if len(u.Queued) == 0 {
		return recs
	}
	have := make(map[string]bool, len(recs))
	for _, r := range recs {
		have[r.DestinationID] = true
	}
	added := false
	for _, dest := range u.Queued {
		if have[dest] {
			continue
		}
		have[dest] = true
		added = true
		recs = append(recs, delivery.Record{DeliveryID: delivery.ID(u.UpdateID, dest), UpdateID: u.UpdateID, DestinationID: dest,
			Status: delivery.Pending, CreatedAt: u.RoutedAt, UpdatedAt: u.RoutedAt, Attempts: []delivery.Attempt{}})
	}
	if added {
		slices.SortFunc(recs, func(a, b delivery.Record) int { return strings.Compare(a.DestinationID, b.DestinationID) })
	}
	return recs
}

// GetDelivery returns one delivery with its attempts.
func (s *DB) GetDelivery(ctx context.Context, deliveryID string) (delivery.Record, error) {
	var recs []delivery.Record
	err := s.readSnapshot(ctx, func(q querier) error {
		var err error
		recs, err = records(ctx, q, `WHERE d.delivery_id = $1`, cleanText(deliveryID))
		return err
	})
	if err != nil {
		return delivery.Record{}, err
	}
	if len(recs) == 0 {
		return delivery.Record{}, fault.New(fault.NotFound, "deliveryId", "delivery_not_found", "no such delivery")
	}
	return recs[0], nil
}

// records loads deliveries matching where (over alias d) and their attempts, through q (a
// snapshot: see readSnapshot).
func records(ctx context.Context, q querier, where string, args ...any) ([]delivery.Record, error) {
	rows, err := q.QueryContext(ctx, `SELECT d.delivery_id, d.update_id, d.destination_id, d.status, d.reason, d.created_at, d.updated_at, d.next_attempt_at,
    d.first_attempt_at, d.first_status_code, d.first_latency_ms, d.first_reason FROM deliveries d `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query deliveries: %w", err)
	}
	var out []delivery.Record
	index := map[string]int{}
	for rows.Next() {
		var r delivery.Record
		var status string
		var created, updated int64
		var next, firstAt, firstCode sql.NullInt64
		var firstLatency sql.NullFloat64
		var firstReason sql.NullString
		if err := rows.Scan(&r.DeliveryID, &r.UpdateID, &r.DestinationID, &status, &r.Reason, &created, &updated, &next,
			&firstAt, &firstCode, &firstLatency, &firstReason); err != nil {
			rows.Close()
			return nil, err
		}
		r.Status, r.CreatedAt, r.UpdatedAt, r.NextAttemptAt = delivery.Status(status), fromMS(created), fromMS(updated), fromNullMS(next)
		r.Attempts = []delivery.Attempt{}
		if firstAt.Valid { // delivered at its first attempt, kept on the row (onDeliveryRow)
			r.Attempts = append(r.Attempts, delivery.Attempt{N: 1, At: fromMS(firstAt.Int64), StatusCode: int(firstCode.Int64),
				LatencyMS: firstLatency.Float64, Outcome: firstAttemptOutcome, Reason: firstReason.String})
		}
		index[r.DeliveryID] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		arows, err := q.QueryContext(ctx, `SELECT n, at, status_code, latency_ms, outcome, reason, error FROM attempts WHERE delivery_id = $1 ORDER BY n`, out[i].DeliveryID)
		if err != nil {
			return nil, fmt.Errorf("query attempts: %w", err)
		}
		for arows.Next() {
			var a delivery.Attempt
			var at int64
			if err := arows.Scan(&a.N, &at, &a.StatusCode, &a.LatencyMS, &a.Outcome, &a.Reason, &a.Error); err != nil {
				arows.Close()
				return nil, err
			}
			a.At = fromMS(at)
			out[i].Attempts = append(out[i].Attempts, a)
		}
		arows.Close()
	}
	return out, nil
}
