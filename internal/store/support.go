package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// LatencySample bounds how many recent deliveries the latency percentiles of DestinationStats
// are computed over, so that a busy destination's stats stay one cheap query.
const LatencySample = 10000

func percentiles(v []float64) delivery.Percentiles {
	p := delivery.Percentiles{Samples: len(v)}
	if len(v) == 0 {
		return p
	}
	slices.Sort(v)
	at := func(q float64) *float64 {
		i := int(math.Ceil(q*float64(len(v)))) - 1
		x := math.Round(v[max(i, 0)]*100) / 100
		return &x
	}
	p.P50, p.P99 = at(0.50), at(0.99)
	return p
}

// DestinationStats computes a destination's figures for deliveries routed since since.
func (s *DB) DestinationStats(ctx context.Context, destID string, since time.Time) (delivery.Stats, error) {
	st := delivery.Stats{
		ByStatus:             map[delivery.Status]int64{},
		ExcludedByReason:     map[string]int64{},
		DeadLetteredByReason: map[string]int64{},
	}
	for _, s := range []delivery.Status{delivery.Pending, delivery.Retrying, delivery.Delivered, delivery.DeadLettered, delivery.Excluded} {
		st.ByStatus[s] = 0
	}
	// Rows change updated_at only forward, so updated_at >= since covers every row created since
	// and lets the (destination_id, updated_at) index do the work.
	rows, err := s.db.QueryContext(ctx, `SELECT status, reason, COUNT(*) FROM deliveries
WHERE destination_id = $1 AND updated_at >= $2 AND created_at >= $2 GROUP BY status, reason`, destID, ms(since))
	if err != nil {
		return st, fmt.Errorf("destination stats: %w", err)
	}
	for rows.Next() {
		var status, reason string
		var n int64
		if err := rows.Scan(&status, &reason, &n); err != nil {
			rows.Close()
			return st, err
		}
		st.Received += n
		st.ByStatus[delivery.Status(status)] += n
		switch delivery.Status(status) {
		case delivery.Excluded:
			st.ExcludedByReason[reason] += n
		case delivery.DeadLettered:
			st.DeadLetteredByReason[reason] += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}

	// The delivering attempt's latency: on the delivery's row when it was the first
	// (onDeliveryRow), else its attempts row.
	rows, err = s.db.QueryContext(ctx, `SELECT COALESCE(d.first_latency_ms, a.latency_ms), d.updated_at - u.received_at FROM deliveries d
LEFT JOIN attempts a ON a.delivery_id = d.delivery_id AND a.n = d.attempts AND d.first_latency_ms IS NULL
JOIN updates u ON u.update_id = d.update_id
WHERE d.destination_id = $1 AND d.updated_at >= $2 AND d.status = 'delivered' AND COALESCE(d.first_latency_ms, a.latency_ms) IS NOT NULL
ORDER BY d.updated_at DESC LIMIT $3`, destID, ms(since), LatencySample)
	if err != nil {
		return st, fmt.Errorf("destination latency: %w", err)
	}
	var attempt, e2e []float64
	for rows.Next() {
		var a float64
		var e int64
		if err := rows.Scan(&a, &e); err != nil {
			rows.Close()
			return st, err
		}
		attempt, e2e = append(attempt, a), append(e2e, float64(max(e, 0)))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	st.AttemptLatency, st.EndToEnd = percentiles(attempt), percentiles(e2e)

	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'retrying') AND `+undelivered+` AND destination_id = $1`, destID).Scan(&st.Backlog); err != nil {
		return st, fmt.Errorf("destination backlog: %w", err)
	}
	if st.Parked, err = s.CountParked(ctx, destID); err != nil {
		return st, err
	}
	return st, nil
}

// LastAlert returns a destination's latest alert of one of kinds (any kind when none is
// given), or nil.
func (s *DB) LastAlert(ctx context.Context, destID string, kinds ...string) (*delivery.Alert, error) {
	alerts, err := s.Alerts(ctx, destID, time.Time{}, 1, kinds...)
	if err != nil || len(alerts) == 0 {
		return nil, err
	}
	return &alerts[0], nil
}

// ErrBadCursor is returned for a cursor this store did not make.
var ErrBadCursor = fault.New(fault.Invalid, "query.cursor", "invalid_cursor", "the cursor is not one this API returned; start again without it")

// SearchDeliveries returns deliveries matching q, the most recently changed first, with their
// attempts, and the cursor of the next page ("" at the end). Paging is by (last change,
// delivery ID): a delivery that changes between two pages may move to an earlier page.
func (s *DB) SearchDeliveries(ctx context.Context, q delivery.Query) ([]delivery.Record, string, error) {
	var w where
	w.filter(q.DestinationID, q.Reason, q.Since, q.Until)
	if q.IdentityHash != "" {
		p := w.arg(q.IdentityHash)
		w.add("(d.email_hash = " + p + " OR d.external_id_hash = " + p + ")")
	}
	if q.Status != "" {
		w.add("d.status = " + w.arg(string(q.Status)))
		if q.Status != delivery.Delivered {
			w.add("d." + undelivered) // the status index holds every status but delivered
		}
	}
	if q.Cursor != "" {
		at, id, ok := decodeCursor(q.Cursor)
		if !ok {
			return nil, "", ErrBadCursor
		}
		a, i := w.arg(at), w.arg(id)
		w.add("(d.updated_at < " + a + " OR (d.updated_at = " + a + " AND d.delivery_id < " + i + "))")
	}
	limit := max(q.Limit, 1)
	var recs []delivery.Record
	err := s.readSnapshot(ctx, func(qr querier) error {
		var err error
		recs, err = records(ctx, qr, w.sql()+" ORDER BY d.updated_at DESC, d.delivery_id DESC LIMIT "+w.arg(limit+1), w.args...)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(recs) > limit {
		recs = recs[:limit]
		last := recs[limit-1]
		next = encodeCursor(ms(last.UpdatedAt), last.DeliveryID)
	}
	return recs, next, nil
}

// where builds the WHERE clause of a deliveries query (alias d) with numbered parameters.
type where struct {
	clauses []string
	args    []any
}

// arg adds a parameter (strings cleaned as the stored text is: see cleanText) and returns its
// placeholder.
func (w *where) arg(v any) string {
	if s, ok := v.(string); ok {
		v = cleanText(s)
	}
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) add(clause string) { w.clauses = append(w.clauses, clause) }

// filter adds the filters the search and the replay share; empty values do not filter.
func (w *where) filter(destID, reason string, since, until time.Time) {
	if destID != "" {
		w.add("d.destination_id = " + w.arg(destID))
	}
	if reason != "" {
		w.add("d.reason = " + w.arg(reason))
	}
	if !since.IsZero() {
		w.add("d.updated_at >= " + w.arg(ms(since)))
	}
	if !until.IsZero() {
		w.add("d.updated_at < " + w.arg(ms(until)))
	}
}

func (w *where) sql() string {
	if len(w.clauses) == 0 {
		return ""
	}
	return "WHERE " + strings.Join(w.clauses, " AND ")
}

func encodeCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + "|" + id))
}

func decodeCursor(c string) (int64, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", false
	}
	at, id, ok := strings.Cut(string(b), "|")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || !strings.HasPrefix(id, "dlv_") {
		return 0, "", false
	}
	return n, id, true
}

// replaySeqBase puts replayed deliveries ahead of live ones in their profile's park order
// (live jobs use their Kafka offset, which is never negative), ordered among themselves by
// when their update was received.
const replaySeqBase = -(int64(1) << 62)

// ReplayDeadLetters gives dead-lettered deliveries another go: each goes back to pending (reason
// "replayed") and is parked, due now, for its destination's dispatcher, which sends it with the
// same Idempotency-Key and continues its attempt numbering. It returns the IDs replayed;
// deliveries that are not dead-lettered, or were stored without a payload or with one that is
// not JSON (it could never be sent), are left alone: one such row does not fail the replay of
// the others.
//
// Order per (profile, destination) holds across a replay: a dead letter whose destination has
// already been delivered a newer update of the same profile (received later; the update ID, a
// UUIDv7, breaks ties) is skipped with reason delivery.SkipNewerDelivered unless f.Force.
func (s *DB) ReplayDeadLetters(ctx context.Context, f delivery.ReplayFilter, now time.Time) (delivery.ReplayOutcome, error) {
	var out delivery.ReplayOutcome
	var w where
	w.add("d.status = 'dead_lettered'")
	w.add("d." + undelivered)
	w.add("d.payload IS NOT NULL")
	if len(f.DeliveryIDs) > 0 {
		ph := make([]string, len(f.DeliveryIDs))
		for i, id := range f.DeliveryIDs {
			ph[i] = w.arg(id)
		}
		w.add("d.delivery_id IN (" + strings.Join(ph, ", ") + ")")
	}
	w.filter(f.DestinationID, f.Reason, f.Since, f.Until)
	limit := max(f.Limit, 1)
	q := `SELECT d.delivery_id, d.update_id, d.destination_id, d.attempts, d.payload, u.profile_key, u.received_at
FROM deliveries d JOIN updates u ON u.update_id = d.update_id
` + w.sql() + ` ORDER BY u.received_at, d.delivery_id LIMIT ` + w.arg(limit)

	tx, err := s.beginWrite(ctx)
	if err != nil {
		return out, fmt.Errorf("replay: %w", err)
	}
	defer tx.Rollback()
	type row struct {
		job      delivery.Job
		attempts int
	}
	var todo []row
	rows, err := tx.QueryContext(ctx, q, w.args...)
	if err != nil {
		return out, fmt.Errorf("replay: select: %w", err)
	}
	for rows.Next() {
		var r row
		var received int64
		var payload []byte
		if err := rows.Scan(&r.job.DeliveryID, &r.job.UpdateID, &r.job.DestinationID, &r.attempts, &payload, &r.job.ProfileKey, &received); err != nil {
			rows.Close()
			return out, err
		}
		r.job.ReceivedAt, r.job.Payload = fromMS(received), payload
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}
	for _, r := range todo {
		if !json.Valid(r.job.Payload) {
			continue
		}
		if !f.Force {
			newer, err := newerDelivered(ctx, tx.Tx, r.job)
			if err != nil {
				return out, err
			}
			if newer != "" {
				out.Skipped = append(out.Skipped, delivery.Skipped{DeliveryID: r.job.DeliveryID, Reason: delivery.SkipNewerDelivered, NewerUpdateID: newer})
				continue
			}
		}
		job, err := delivery.EncodeJob(r.job)
		if err != nil {
			continue
		}
		res, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'pending', reason = 'replayed', next_attempt_at = NULL, updated_at = $2
WHERE delivery_id = $1 AND status = 'dead_lettered'`, r.job.DeliveryID, ms(now))
		if err != nil {
			return out, fmt.Errorf("replay: update: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO parked (delivery_id, destination_id, profile_key, seq, due_at, attempts, first_attempt_at, job)
VALUES ($1, $2, $3, $4, $5, $6, NULL, $7) ON CONFLICT (delivery_id) DO NOTHING`,
			r.job.DeliveryID, r.job.DestinationID, r.job.ProfileKey, replaySeqBase+ms(r.job.ReceivedAt), ms(now), r.attempts, job); err != nil {
			return out, fmt.Errorf("replay: park: %w", err)
		}
		out.Replayed = append(out.Replayed, delivery.Replayed{DeliveryID: r.job.DeliveryID, DestinationID: r.job.DestinationID})
	}
	if err := tx.Commit(); err != nil {
		return delivery.ReplayOutcome{}, fmt.Errorf("replay: commit: %w", err)
	}
	return out, nil
}

// newerDelivered returns the ID of an update of job's profile, newer than job's, that has been
// delivered to job's destination, or "".
func newerDelivered(ctx context.Context, tx *sql.Tx, job delivery.Job) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT u.update_id FROM updates u JOIN deliveries d ON d.update_id = u.update_id
WHERE u.profile_key = $1 AND d.destination_id = $2 AND d.status = 'delivered'
  AND (u.received_at > $3 OR (u.received_at = $3 AND u.update_id > $4))
ORDER BY u.received_at DESC, u.update_id DESC LIMIT 1`, job.ProfileKey, job.DestinationID, ms(job.ReceivedAt), job.UpdateID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("replay: newer delivered: %w", err)
	}
	return id, nil
}
