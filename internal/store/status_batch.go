package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/qgate/qgate/internal/delivery"
)

// Apply writes updates and events (insertUpdates, applyEvents) on PostgreSQL with multi-row
// INSERT … VALUES (…), (…) statements instead of one statement per row: there every statement
// is a network round trip, so a batch of n events costs a few round trips instead of 2n. SQLite
// runs in-process, where a statement prepared once per transaction and run per row is cheaper
// than parsing a long multi-row statement per batch, so it keeps one row per statement. The
// rules are those of one row at a time:
//
//   - Rows are written in chunks whose sizes are powers of two up to maxChunkRows, so each
//     statement has one of a few shapes (the driver's statement cache stays small).
//   - A chunk never holds two events of one delivery: PostgreSQL refuses to upsert a row twice in
//     one statement, and events of one delivery must apply in order. A repeated delivery starts a
//     new run; runs, and chunks within a run, are applied in order.

// maxChunkRows bounds the rows of one statement (16 parameters each for deliveries: far below
// the parameter limits of both dialects).
const maxChunkRows = 256

const insertUpdatesHead = `INSERT INTO updates (update_id, profile_key, received_at, routed_at, audiences, queued) VALUES `

const upsertDeliveriesHead = `INSERT INTO deliveries
    (delivery_id, update_id, destination_id, status, reason, attempts, created_at, updated_at, next_attempt_at, email_hash, external_id_hash, payload,
     first_attempt_at, first_status_code, first_latency_ms, first_reason)
VALUES `

const upsertDeliveriesTail = `
ON CONFLICT (delivery_id) DO UPDATE SET
    status = excluded.status,
    reason = excluded.reason,
    attempts = CASE WHEN excluded.attempts > deliveries.attempts THEN excluded.attempts ELSE deliveries.attempts END,
    updated_at = excluded.updated_at,
    next_attempt_at = excluded.next_attempt_at,
    payload = COALESCE(excluded.payload, deliveries.payload),
    first_attempt_at = COALESCE(deliveries.first_attempt_at, excluded.first_attempt_at),
    first_status_code = COALESCE(deliveries.first_status_code, excluded.first_status_code),
    first_latency_ms = COALESCE(deliveries.first_latency_ms, excluded.first_latency_ms),
    first_reason = COALESCE(deliveries.first_reason, excluded.first_reason)
WHERE excluded.status <> 'pending'
  AND NOT (deliveries.status IN ('delivered', 'dead_lettered', 'excluded')
           AND excluded.status NOT IN ('delivered', 'dead_lettered', 'excluded'))`

const insertAttemptsHead = `INSERT INTO attempts (delivery_id, n, at, status_code, latency_ms, outcome, reason, error) VALUES `

// Per-row parameter patterns: the parameter (1-based within the row) of each column.
var (
	updateParams   = []int{1, 2, 3, 4, 5, 6}
	deliveryParams = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	attemptParams  = []int{1, 2, 3, 4, 5, 6, 7, 8}
)

// rowWriter runs the statements of one Apply: multi-row on PostgreSQL; on SQLite one row per
// statement, each statement prepared once.
type rowWriter struct {
	s       *DB
	tx      *sql.Tx
	maxRows int
	stmts   map[string]*sql.Stmt
}

func (s *DB) rowWriter(tx *sql.Tx) *rowWriter {
	if s.dialect == SQLite {
		return &rowWriter{s: s, tx: tx, maxRows: 1, stmts: map[string]*sql.Stmt{}}
	}
	return &rowWriter{s: s, tx: tx, maxRows: maxChunkRows}
}

// exec runs q in the transaction: on SQLite through the store's prepared statement (DB.prepared),
// on PostgreSQL as is.
func (w *rowWriter) exec(ctx context.Context, q string, args ...any) error {
	if w.stmts == nil {
		_, err := w.tx.ExecContext(ctx, q, args...)
		return err
	}
	st, ok := w.stmts[q]
	if !ok {
		shared, err := w.s.prepared(ctx, q)
		if err != nil {
			return err
		}
		st = w.tx.StmtContext(ctx, shared)
		w.stmts[q] = st
	}
	_, err := st.ExecContext(ctx, args...)
	return err
}

func (w *rowWriter) close() {
	for _, st := range w.stmts {
		st.Close()
	}
}

// insertUpdates inserts updates not yet recorded (an update is recorded once).
func (w *rowWriter) insertUpdates(ctx context.Context, ups []delivery.Update) error {
	for _, c := range chunks(len(ups), w.maxRows) {
		args := make([]any, 0, 6*(c[1]-c[0]))
		for _, u := range ups[c[0]:c[1]] {
			auds, _ := json.Marshal(cleanTexts(u.Audiences))
			var queued sql.NullString
			if len(u.Queued) > 0 {
				b, _ := json.Marshal(cleanTexts(u.Queued))
				queued = sql.NullString{String: string(b), Valid: true}
			}
			args = append(args, u.UpdateID, u.ProfileKey, ms(u.ReceivedAt), ms(u.RoutedAt), string(auds), queued)
		}
		q := insertUpdatesHead + values(c[1]-c[0], updateParams, 6) + ` ON CONFLICT (update_id) DO NOTHING`
		if err := w.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("insert updates: %w", err)
		}
	}
	return nil
}

// onDeliveryRow reports whether e's attempt is kept on its delivery's row (first_* columns)
// instead of an attempts row: a delivery delivered at its first attempt, the common case, then
// costs one row instead of two (issue #12). Every other attempt is an attempts row; readers
// take both (records in status.go, and the attempt queries of alerts.go, series.go and support.go).
func onDeliveryRow(e delivery.Event) bool {
	return e.Attempt != nil && e.Attempt.N == 1 && e.Status == delivery.Delivered && e.Attempt.Outcome == firstAttemptOutcome && e.Attempt.Error == ""
}

// firstAttemptOutcome is the outcome of an attempt kept on its delivery's row.
const firstAttemptOutcome = "delivered"

// applyEvents upserts each event's delivery and records its attempt, in event order.
func (w *rowWriter) applyEvents(ctx context.Context, events []delivery.Event) error {
	runs := [][]delivery.Event{events}
	if w.maxRows > 1 {
		runs = distinctRuns(events)
	}
	for _, run := range runs {
		for _, c := range chunks(len(run), w.maxRows) {
			part := run[c[0]:c[1]]
			dargs := make([]any, 0, 16*len(part))
			var aargs []any
			for _, e := range part {
				n := 0
				if e.Attempt != nil {
					n = e.Attempt.N
				}
				var next sql.NullInt64
				if e.NextAttemptAt != nil {
					next = sql.NullInt64{Int64: ms(*e.NextAttemptAt), Valid: true}
				}
				var payload []byte
				if len(e.Payload) > 0 {
					payload = e.Payload
				}
				created := e.At
				if !e.CreatedAt.IsZero() && e.CreatedAt.Before(e.At) {
					created = e.CreatedAt
				}
				dargs = append(dargs, e.DeliveryID, e.UpdateID, e.DestinationID, cleanText(string(e.Status)), cleanText(e.Reason), n, ms(created), ms(e.At), next,
					nullString(e.EmailHash), nullString(e.ExternalIDHash), payload)
				if onDeliveryRow(e) {
					a := e.Attempt
					dargs = append(dargs, ms(a.At), a.StatusCode, a.LatencyMS, cleanText(a.Reason))
					continue
				}
				dargs = append(dargs, nil, nil, nil, nil)
				if a := e.Attempt; a != nil {
					aargs = append(aargs, e.DeliveryID, a.N, ms(a.At), a.StatusCode, a.LatencyMS, cleanText(a.Outcome), cleanText(a.Reason), cleanText(a.Error))
				}
			}
			if err := w.exec(ctx, upsertDeliveriesHead+values(len(part), deliveryParams, 16)+upsertDeliveriesTail, dargs...); err != nil {
				return fmt.Errorf("upsert deliveries: %w", err)
			}
			// Attempts of one chunk may need more than one statement (chunks of powers of two).
			for _, ac := range chunks(len(aargs)/8, w.maxRows) {
				q := insertAttemptsHead + values(ac[1]-ac[0], attemptParams, 8) + ` ON CONFLICT (delivery_id, n) DO NOTHING`
				if err := w.exec(ctx, q, aargs[ac[0]*8:ac[1]*8]...); err != nil {
					return fmt.Errorf("insert attempts: %w", err)
				}
			}
		}
	}
	return nil
}

// distinctRuns splits events, in order, into consecutive runs without a repeated delivery.
func distinctRuns(events []delivery.Event) [][]delivery.Event {
	var runs [][]delivery.Event
	seen := make(map[string]struct{}, len(events))
	start := 0
	for i, e := range events {
		if _, dup := seen[e.DeliveryID]; dup {
			runs = append(runs, events[start:i])
			clear(seen)
			start = i
		}
		seen[e.DeliveryID] = struct{}{}
	}
	if start < len(events) {
		runs = append(runs, events[start:])
	}
	return runs
}

// chunks splits n rows into [from, to) ranges of size rows (a power of two) and then of
// decreasing powers of two: chunks(300, 256) → 256, 32, 8, 4.
func chunks(n, size int) [][2]int {
	var out [][2]int
	at := 0
	for n-at >= size {
		out = append(out, [2]int{at, at + size})
		at += size
	}
	for rest := n - at; rest > 0; rest = n - at {
		size := 1 << (bits.Len(uint(rest)) - 1)
		out = append(out, [2]int{at, at + size})
		at += size
	}
	return out
}

// values returns the VALUES rows of n rows whose columns take the parameters of pattern (1-based
// within a row of width parameters): values(2, []int{1, 2, 2}, 2) = "($1, $2, $2), ($3, $4, $4)".
func values(n int, pattern []int, width int) string {
	var b strings.Builder
	b.Grow(n * len(pattern) * 6)
	for r := range n {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i, p := range pattern {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(r*width + p))
		}
		b.WriteByte(')')
	}
	return b.String()
}
